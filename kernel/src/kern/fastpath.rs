//! The IPC fast path: the common cases of `Call`, `ReplyRecv`,
//! `NotifyWait` and `NotifyRecv`, handled without the general path's
//! outbox copy, queue scan or scheduler pass (seL4's fastpath is the model).
//!
//! Each case applies only when its outcome is certain: the caller blocks,
//! exactly one service is woken, nothing else waits to be delivered to
//! anyone involved, and the woken service is the one the scheduler would
//! pick next (no other runnable service is as important). Then the fast
//! path does what the general path would do, with the same checks, and
//! names the service to resume. In every other case — a refusal of any
//! kind, truncation, a queue, a tie for the CPU — it changes nothing and
//! returns `None`, and the general path runs as before. So the fast path is
//! an optimisation with no semantics of its own: the host tests run every
//! case both ways and compare the whole kernel state.
//!
//! Messages go from the sender's memory straight into the receiver's buffer
//! ([`Platform::copy_between`]) instead of through the sender's outbox.

use super::caps::Cap;
use super::task::{Blocked, State};
use super::{Kernel, Platform};
use faultline_ipc::abi::{MAX_MESSAGE, RecvKind, Sysnum};

/// Where the fast path's time goes, stage by stage, as the instrumented
/// build measures it ([`Platform::stage`] marks each stage's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// From the first instruction of the kernel's Rust code to holding the
    /// kernel lock.
    Lock = 0,
    /// Capability, rights, state, priority and pointer checks.
    Checks = 1,
    /// The message copy.
    Copy = 2,
    /// The state changes and the choice of the next service.
    Schedule = 3,
    /// Address space (CR3) and floating point of the next service.
    Switch = 4,
    /// Releasing the lock and returning to the entry stub.
    Exit = 5,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Lock,
        Stage::Checks,
        Stage::Copy,
        Stage::Schedule,
        Stage::Switch,
        Stage::Exit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Lock => "lock",
            Stage::Checks => "checks",
            Stage::Copy => "copy",
            Stage::Schedule => "schedule",
            Stage::Switch => "switch",
            Stage::Exit => "exit",
        }
    }
}

impl Kernel {
    /// Handles the system call in `caller`'s saved registers if it is a
    /// fast-path case, and returns the service to run next (made current).
    /// `None`: nothing changed; handle it with [`Kernel::syscall`].
    ///
    /// `caller` must be the current, running service.
    #[inline(always)]
    pub fn fastpath(&mut self, p: &mut impl Platform, caller: usize) -> Option<usize> {
        let nr = self.tasks[caller].regs.rax;
        self.fastpath_for(p, caller, nr)
    }

    /// [`Kernel::fastpath`] for a caller whose system call number (`rax`)
    /// is `nr`: the entry passes it as a constant, so that each system
    /// call's copy holds its own case only.
    #[inline(always)]
    pub fn fastpath_for(&mut self, p: &mut impl Platform, caller: usize, nr: u64) -> Option<usize> {
        let args = self.tasks[caller].regs.args();
        if nr == Sysnum::Call as u64 {
            self.fast_call(p, caller, args)
        } else if nr == Sysnum::ReplyRecv as u64 {
            self.fast_reply_recv(p, caller, args)
        } else if nr == Sysnum::NotifyWait as u64 {
            self.fast_notify(p, caller, args[0], None, args[1])
        } else if nr == Sysnum::NotifyRecv as u64 {
            self.fast_notify(p, caller, args[0], Some((args[1], args[2])), args[3])
        } else {
            None
        }
    }

    /// A call to a server waiting in `recv`, at least as important as
    /// anything else runnable: the request goes straight into its buffer.
    #[inline(always)]
    fn fast_call(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, req, len, reply_buf, reply_cap, _]: [u64; 6],
    ) -> Option<usize> {
        let c = &self.tasks[caller];
        let &Cap::Client {
            channel,
            peer_generation,
        } = c.caps.slot(handle)?
        else {
            return None;
        };
        let server = usize::from(self.channels[usize::from(channel)].server);
        let s = &self.tasks[server];
        let State::Blocked(Blocked::Recv {
            buf,
            cap,
            hint: buf_hint,
            ..
        }) = s.state
        else {
            return None;
        };
        // Truncation, a restarted server and calls to oneself are the
        // general path's business.
        if server == caller || s.generation != peer_generation || len > cap {
            return None;
        }
        if !self.sole_choice(caller, server, Some(server)) {
            return None;
        }
        let reply_cap = reply_cap.min(MAX_MESSAGE as u64);
        let hint = p.writable(caller, reply_buf, reply_cap).ok()?;
        p.stage(Stage::Checks);
        p.copy_between(caller, req, server, buf, buf_hint, len as usize)
            .ok()?;
        p.stage(Stage::Copy);
        // Committed: from here on, exactly what `call` + `try_deliver` do.
        self.next_stamp();
        let badge = self.channels[usize::from(channel)].badge;
        let c = &mut self.tasks[caller];
        c.outbox_len = len as usize;
        let token = c.call_received(caller, channel, reply_buf, reply_cap, hint);
        let s = &mut self.tasks[server];
        s.regs
            .set_result(0, [RecvKind::Call as u64, len, badge, token]);
        s.state = State::Runnable;
        let next = self.run(caller, server);
        p.stage(Stage::Schedule);
        Some(next)
    }

    /// A server answering a call and waiting for the next message, when
    /// none is queued and its client is the one to run next: the reply
    /// goes straight into the client's buffer.
    #[inline(always)]
    fn fast_reply_recv(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [raw, ptr, len, buf, cap, mask]: [u64; 6],
    ) -> Option<usize> {
        let (client, reply_buf, reply_cap, reply_hint) = self.pending_call(caller, raw).ok()?;
        if len > reply_cap || self.tasks[caller].notifications & mask as u32 != 0 {
            return None;
        }
        if !self.sole_choice(caller, client, Some(caller)) {
            return None;
        }
        let cap = cap.min(MAX_MESSAGE as u64);
        let hint = p.writable(caller, buf, cap).ok()?;
        p.stage(Stage::Checks);
        p.copy_between(caller, ptr, client, reply_buf, reply_hint, len as usize)
            .ok()?;
        p.stage(Stage::Copy);
        let c = &mut self.tasks[client];
        c.regs.set_result(0, [len, 0, 0, 0]);
        c.state = State::Runnable;
        self.tasks[caller].state = State::Blocked(Blocked::Recv {
            buf,
            cap,
            hint,
            mask: mask as u32,
        });
        let next = self.run(caller, client);
        p.stage(Stage::Schedule);
        Some(next)
    }

    /// A notification that wakes its target, the caller then waiting
    /// (`recv = None`) or receiving into `recv = Some((buf, cap))`, with
    /// nothing pending for it and the target the one to run next.
    #[inline(always)]
    fn fast_notify(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        handle: u64,
        recv: Option<(u64, u64)>,
        mask: u64,
    ) -> Option<usize> {
        let c = &self.tasks[caller];
        let &Cap::Notification { target, bits } = c.caps.slot(handle)? else {
            return None;
        };
        let mask = mask as u32;
        let target = usize::from(target);
        if target == caller || c.notifications & mask != 0 {
            return None;
        }
        // One copy of the rest per state of the target, each knowing which.
        match self.tasks[target].state {
            State::Blocked(Blocked::Wait { mask: waits_for }) => {
                self.notify_wakes(p, caller, target, bits, waits_for, false, recv, mask)
            }
            State::Blocked(Blocked::Recv {
                mask: waits_for, ..
            }) => self.notify_wakes(p, caller, target, bits, waits_for, true, recv, mask),
            _ => None,
        }
    }

    /// [`Kernel::fast_notify`] once `target` is known to wait (in `recv` if
    /// `in_recv`) for `waits_for`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn notify_wakes(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        target: usize,
        bits: u32,
        waits_for: u32,
        in_recv: bool,
        recv: Option<(u64, u64)>,
        mask: u32,
    ) -> Option<usize> {
        let pending = self.tasks[target].notifications | bits;
        let ready = pending & waits_for;
        if ready == 0 {
            return None;
        }
        let queue = recv.map(|_| caller);
        if !self.sole_choice(caller, target, queue) {
            return None;
        }
        let blocked = match recv {
            Some((buf, cap)) => {
                let cap = cap.min(MAX_MESSAGE as u64);
                let hint = p.writable(caller, buf, cap).ok()?;
                Blocked::Recv {
                    buf,
                    cap,
                    hint,
                    mask,
                }
            }
            None => Blocked::Wait { mask },
        };
        p.stage(Stage::Checks);
        p.stage(Stage::Copy);
        // What `post` does to a waiting target it wakes.
        let t = &mut self.tasks[target];
        t.notifications = pending & !ready;
        let ready = u64::from(ready);
        let result = if in_recv {
            [RecvKind::Notification as u64, ready, 0, 0]
        } else {
            [ready, 0, 0, 0]
        };
        t.regs.set_result(0, result);
        t.state = State::Runnable;
        self.tasks[caller].state = State::Blocked(blocked);
        let next = self.run(caller, target);
        p.stage(Stage::Schedule);
        Some(next)
    }

    /// Whether `next`, once woken, is the only choice for the CPU when
    /// `caller` blocks: no other runnable service is as important, and no
    /// message is queued for `queue` (a server about to receive, whose
    /// queue the general path would serve first).
    #[inline(always)]
    fn sole_choice(&self, caller: usize, next: usize, queue: Option<usize>) -> bool {
        // `caller` runs (it is runnable, not queued); `next` waits (it is
        // neither): only `caller` needs leaving out.
        let others = !(1u32 << caller);
        let priority = self.tasks[next].priority;
        let mut runnable = self.runnable & others;
        while runnable != 0 {
            let i = runnable.trailing_zeros() as usize;
            if self.tasks[i].priority <= priority {
                return false;
            }
            runnable &= runnable - 1;
        }
        let Some(server) = queue else { return true };
        let mut queued = self.queued & others;
        while queued != 0 {
            let i = queued.trailing_zeros() as usize;
            if let State::Blocked(
                Blocked::CallQueued { channel, .. } | Blocked::SendQueued { channel, .. },
            ) = self.tasks[i].state
                && usize::from(self.channels[usize::from(channel)].server) == server
            {
                return false;
            }
            queued &= queued - 1;
        }
        true
    }

    /// Makes `next` current, as [`Kernel::schedule`] does when it picks
    /// it, now that `caller` blocked (neither queued) and `next` is
    /// runnable: what [`Kernel::note`] would record for both.
    #[inline(always)]
    fn run(&mut self, caller: usize, next: usize) -> usize {
        self.runnable = (self.runnable & !(1 << caller)) | (1 << next);
        self.current = Some(next);
        self.last_run = next;
        next
    }
}
