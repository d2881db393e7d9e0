//! The supervisor's decisions, kept apart from its system calls so the host
//! can test them.
//!
//! The supervisor learns that a service stopped from the kernel's
//! `NOTIFY_TASK_FAULT` bit, reads every task's [`TaskStatus`], and for each
//! one that faulted or exited with a non-zero code applies the service's
//! [`RestartPolicy`]:
//!
//! - `Hold`: leave it stopped;
//! - `Restart { backoff_ms, max_restarts }`: restart it after a back-off
//!   that doubles with each consecutive restart (one that follows the
//!   previous restart within [`RESET_NS`]), capped at [`MAX_BACKOFF_MS`];
//!   once the service has been restarted `max_restarts` times, hold it.
//!
//! [`Supervisor`] tracks each task through *watching → scheduled → watching*
//! (or *held*), so a task is acted on once per stop, however many times the
//! supervisor scans.
#![cfg_attr(not(test), no_std)]

use core::fmt;
use faultline_ipc::kconfig::{MAX_SERVICES, Name, RestartPolicy, TaskState, TaskStatus};
use faultline_ipc::wire::{self, WireError};

/// A restart within this long of the previous one counts as consecutive.
pub const RESET_NS: u64 = 1_000_000_000;
/// The longest back-off.
pub const MAX_BACKOFF_MS: u64 = 60_000;

/// Why a task is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// Its policy is `Hold`.
    Policy,
    /// It has been restarted `max` times already.
    Limit { max: u32 },
    /// The kernel refused to restart it.
    Refused,
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Policy => write!(f, "restart policy is hold"),
            Self::Limit { max } => write!(f, "restarted {max} times already"),
            Self::Refused => write!(f, "the kernel refused to restart it"),
        }
    }
}

/// What to do about one task's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: it runs, exited cleanly, or is already being handled.
    Nothing,
    /// Restart it at `at_ns` (`delay_ms` from now) as restart number
    /// `restart` of `max`; it will be generation `generation`.
    Restart {
        at_ns: u64,
        delay_ms: u64,
        restart: u32,
        max: u32,
        generation: u32,
    },
    /// Leave it stopped.
    Hold(HoldReason),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Watching,
    Scheduled {
        at_ns: u64,
    },
    Held,
}

#[derive(Clone, Debug, Default)]
struct Track {
    name: Name,
    phase: Phase,
    consecutive: u32,
    last_restart_ns: Option<u64>,
}

/// Every task's restart state.
#[derive(Default)]
pub struct Supervisor {
    tracks: [Track; MAX_SERVICES],
}

/// Decodes what `task_status` wrote (postcard, no envelope), strictly.
pub fn decode_status(bytes: &[u8]) -> Result<TaskStatus, WireError> {
    wire::decode_body(bytes)
}

/// How a stopped task stopped, for the log.
pub struct Stop<'a>(pub &'a TaskStatus);

impl fmt::Display for Stop<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.state, self.0.fault) {
            (TaskState::Exited { code }, _) => write!(f, "exited with code {code}"),
            (TaskState::Faulted, Some(fault)) => {
                let what = match fault.vector {
                    0 => "divide error",
                    6 => "invalid opcode",
                    13 => "general protection fault",
                    14 => "page fault",
                    _ => "exception",
                };
                write!(f, "faulted: {what} (vector {})", fault.vector)?;
                if fault.vector == 14 {
                    write!(f, " at {:#x}", fault.address)?;
                }
                write!(f, ", rip {:#x}", fault.rip)
            }
            (TaskState::Faulted, None) => write!(f, "faulted"),
            (TaskState::Held, _) => write!(f, "held"),
            (TaskState::Running, _) => write!(f, "running"),
        }
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The name last seen for `task`.
    pub fn name(&self, task: usize) -> &str {
        self.tracks.get(task).map_or("?", |t| t.name.as_str())
    }

    /// Decides what to do about `task`, whose status is `status`, at
    /// `now_ns`.
    pub fn observe(&mut self, task: usize, status: &TaskStatus, now_ns: u64) -> Decision {
        let Some(t) = self.tracks.get_mut(task) else {
            return Decision::Nothing;
        };
        t.name.clone_from(&status.name);
        let stopped_badly = match status.state {
            TaskState::Faulted => true,
            TaskState::Exited { code } => code != 0,
            TaskState::Running | TaskState::Held => false,
        };
        if !stopped_badly {
            if status.state == TaskState::Running {
                t.phase = Phase::Watching;
            }
            return Decision::Nothing;
        }
        if t.phase != Phase::Watching {
            return Decision::Nothing;
        }
        let RestartPolicy::Restart {
            backoff_ms,
            max_restarts,
        } = status.policy
        else {
            t.phase = Phase::Held;
            return Decision::Hold(HoldReason::Policy);
        };
        if status.restarts >= max_restarts {
            t.phase = Phase::Held;
            return Decision::Hold(HoldReason::Limit { max: max_restarts });
        }
        if t.last_restart_ns
            .is_some_and(|last| now_ns.saturating_sub(last) > RESET_NS)
        {
            t.consecutive = 0;
        }
        let delay_ms = (u64::from(backoff_ms) << t.consecutive.min(16)).min(MAX_BACKOFF_MS);
        let at_ns = now_ns.saturating_add(delay_ms * 1_000_000);
        t.phase = Phase::Scheduled { at_ns };
        Decision::Restart {
            at_ns,
            delay_ms,
            restart: status.restarts + 1,
            max: max_restarts,
            generation: status.generation.wrapping_add(1),
        }
    }

    /// A task whose restart is due at `now_ns`, now counted as restarted.
    pub fn take_due(&mut self, now_ns: u64) -> Option<usize> {
        let (task, t) = self
            .tracks
            .iter_mut()
            .enumerate()
            .find(|(_, t)| matches!(t.phase, Phase::Scheduled { at_ns } if at_ns <= now_ns))?;
        t.phase = Phase::Watching;
        t.consecutive = t.consecutive.saturating_add(1);
        t.last_restart_ns = Some(now_ns);
        Some(task)
    }

    /// The kernel refused to restart `task`: hold it.
    pub fn restart_refused(&mut self, task: usize) -> Decision {
        if let Some(t) = self.tracks.get_mut(task) {
            t.phase = Phase::Held;
        }
        Decision::Hold(HoldReason::Refused)
    }

    /// When the next scheduled restart is due.
    pub fn next_deadline(&self) -> Option<u64> {
        self.tracks
            .iter()
            .filter_map(|t| match t.phase {
                Phase::Scheduled { at_ns } => Some(at_ns),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests;
