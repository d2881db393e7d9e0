//! Services stopping and starting again.
//!
//! A service stops by faulting or exiting. Either way it stops alone: its
//! clients blocked on it are woken with `PeerDead` (nobody hangs), servers
//! holding its reply tokens will get `PeerDead` when they reply, and the
//! supervisor is notified. A restart (only the supervisor can ask) reloads
//! the image, grants the deployment's capabilities afresh and bumps the
//! generation, which the service's peers observe.

use super::task::{Blocked, State};
use super::{Kernel, Platform};
use faultline_ipc::abi::Error;
use faultline_ipc::kconfig::TaskFault;

/// What the glue should print when a service stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopReport {
    pub task: usize,
    pub generation: u32,
    pub woken_clients: usize,
}

impl Kernel {
    /// Stops `task` after a CPU fault.
    pub fn fault(&mut self, p: &mut impl Platform, task: usize, fault: TaskFault) -> StopReport {
        self.tasks[task].fault = Some(fault);
        self.stop(p, task, State::Faulted)
    }

    /// Stops `task` at its own request.
    pub fn exit(&mut self, p: &mut impl Platform, task: usize, code: u32) -> StopReport {
        self.stop(p, task, State::Exited { code })
    }

    fn stop(&mut self, p: &mut impl Platform, task: usize, state: State) -> StopReport {
        // A driver's devices stop with it: nothing it programmed keeps
        // mastering the bus or raising interrupts once it is gone.
        for slot in self.tasks[task].caps.slots() {
            if let super::caps::Cap::Pci {
                bus,
                device,
                function,
            } = slot.cap
            {
                p.quiesce(task, (bus, device, function));
            }
        }
        self.stop_dma(p, task);
        let t = &mut self.tasks[task];
        t.state = state;
        t.timer = None;
        t.notifications = 0;
        let generation = t.generation;
        self.note(task);
        let mut woken = 0;
        for i in 0..self.tasks.len() {
            let channel = match self.tasks[i].state {
                State::Blocked(Blocked::CallQueued { channel, .. })
                | State::Blocked(Blocked::AwaitingReply { channel, .. })
                | State::Blocked(Blocked::SendQueued { channel, .. }) => channel,
                _ => continue,
            };
            if usize::from(self.channels[usize::from(channel)].server) == task {
                let c = &mut self.tasks[i];
                c.regs.set_result(Error::PeerDead as u64, [0; 4]);
                c.state = State::Runnable;
                self.note(i);
                woken += 1;
            }
        }
        if self.current == Some(task) {
            self.current = None;
        }
        self.notify_supervisor();
        StopReport {
            task,
            generation,
            woken_clients: woken,
        }
    }

    /// Restarts a stopped service: fresh image, fresh capabilities, new
    /// generation.
    pub fn restart(&mut self, p: &mut impl Platform, task: usize) -> Result<(), Error> {
        let t = self.tasks.get(task).ok_or(Error::NotFound)?;
        if !t.state.is_stopped() || t.refused.is_some() {
            return Err(Error::NotPermitted);
        }
        let regs = p.load(task)?;
        let mut caps = self.initial_caps[task].clone();
        // Its interrupts come back as the deployment granted them.
        for slot in caps.slots() {
            if let super::caps::Cap::Irq { irq, .. } = slot.cap {
                p.irq_rearm(irq);
            }
        }
        // A fresh client starts out knowing its servers as they are now.
        for h in 0..caps.len() as u64 {
            if let Ok(super::caps::Cap::Client {
                channel,
                peer_generation,
            }) = caps.get_mut(h)
            {
                let server = usize::from(self.channels[usize::from(*channel)].server);
                *peer_generation = self.tasks[server].generation;
            }
        }
        let t = &mut self.tasks[task];
        t.generation = t.generation.wrapping_add(1).max(1);
        t.restarts += 1;
        t.caps = caps;
        t.regs = regs;
        t.fault = None;
        t.notifications = 0;
        t.timer = None;
        t.outbox_len = 0;
        t.dma.clear();
        t.state = State::Runnable;
        self.note(task);
        Ok(())
    }
}
