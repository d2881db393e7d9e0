//! Choosing who runs: the most important runnable service, round-robin
//! among equals. With at most [`MAX_SERVICES`] services a scan is cheaper
//! than maintaining queues, and blocked services cost nothing: they are
//! simply not runnable.
//!
//! [`MAX_SERVICES`]: faultline_ipc::kconfig::MAX_SERVICES

use super::Kernel;
use super::task::{Blocked, State};

/// How long every service must have been waiting, with no timer armed,
/// before a deployment with interrupt holders counts as finished.
pub const QUIET_NS: u64 = 1_000_000_000;

impl Kernel {
    /// Picks the service to run next, or `None` if nothing is runnable
    /// (the CPU idles). `rotate` moves past the current service among equal
    /// priorities (a tick or a yield).
    pub fn schedule(&mut self, rotate: bool) -> Option<usize> {
        let n = self.tasks.len();
        let best = self
            .tasks
            .iter()
            .filter(|t| t.state == State::Runnable)
            .map(|t| t.priority)
            .min()?;
        // Keep running the current service unless asked to rotate, so a
        // service that makes a syscall and stays runnable keeps the CPU.
        if !rotate
            && let Some(c) = self.current
            && self.tasks[c].state == State::Runnable
            && self.tasks[c].priority == best
        {
            return Some(c);
        }
        let start = self.last_run + 1;
        let pick = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.tasks[i].state == State::Runnable && self.tasks[i].priority == best)?;
        self.last_run = pick;
        self.current = Some(pick);
        Some(pick)
    }

    /// Whether the deployment has finished, `idle_ns` after a service
    /// last ran: nothing runnable, no armed timer, and either no live
    /// service holds an interrupt or none has run for [`QUIET_NS`]. A
    /// service that expects an interrupt (a device operation in flight)
    /// arms a timer as its deadline, so a run never ends under it; an
    /// interrupt holder that waits with no deadline is a server at rest.
    pub fn quiescent(&self, idle_ns: u64) -> bool {
        let waiting = self
            .tasks
            .iter()
            .all(|t| t.state != State::Runnable && t.timer.is_none());
        let irq_holder = self.tasks.iter().any(|t| {
            t.caps
                .slots()
                .iter()
                .any(|s| matches!(s.cap, super::caps::Cap::Irq { .. }))
                && !t.state.is_stopped()
        });
        waiting && (!irq_holder || idle_ns >= QUIET_NS)
    }

    /// Whether task `i`, when nothing can run again, ended well: exited
    /// with code 0, stopped by a fault (the supervisor's business), or
    /// waiting for something that may yet come (in `recv`, in `wait`, or
    /// in a call its server received and is answering later: a deferred
    /// reply). A call the server never received, a send never taken, or a
    /// call held by a server that is itself stuck in a call is a deadlock.
    pub fn ended_well(&self, i: usize) -> bool {
        match self.tasks[i].state {
            State::Exited { code } => code == 0,
            State::Faulted | State::Runnable => true,
            State::Blocked(Blocked::Recv { .. } | Blocked::Wait { .. }) => true,
            State::Blocked(Blocked::AwaitingReply { channel, .. }) => {
                let server = usize::from(self.channels[usize::from(channel)].server);
                matches!(
                    self.tasks[server].state,
                    State::Blocked(Blocked::Recv { .. })
                )
            }
            State::Blocked(Blocked::CallQueued { .. } | Blocked::SendQueued { .. }) => false,
        }
    }
}
