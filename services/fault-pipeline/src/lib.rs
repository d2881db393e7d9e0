//! The IOMMU service's fault pipeline: every DMA remapping fault the
//! hardware records, and every page group a PRI device requests (collected
//! by [`groups`]), is delivered once, to the one handler registered for
//! its device (or, for a page group, its device and PASID), and answered
//! exactly once: by that handler, or by the
//! pipeline itself when there is no handler, the handler missed its
//! deadline, restarted, died, or has too many faults outstanding. The
//! device's driver then learns what became of the fault (retry or abort).
//!
//! This is the logic of Faultline's fault pipeline invariants (DESIGN.md),
//! with nothing of VT-d registers or IPC in it, so it is tested on the host
//! against random fault streams and random handler behaviour:
//!
//! - [`Pipeline::record`] takes a decoded fault, gives it a mark (per
//!   device, increasing) and a [`FaultToken`] (global, increasing, never
//!   reused), and routes it: to the handler's waiting pull, into the
//!   handler's queue, or to an automatic answer.
//! - [`Pipeline::next`] is a handler's pull: the oldest queued fault at
//!   once, or the pull is parked (a deferred reply: the service never
//!   waits for a handler).
//! - [`Pipeline::answer`] checks a handler's answer against the pipeline's
//!   own copy of the fault (typed refusals for unknown, foreign, duplicate
//!   and stale tokens), lets the caller act on it (map the page), then
//!   settles the fault.
//! - [`Pipeline::expire`] answers every fault past its deadline;
//!   [`Pipeline::handler_gone`] and a repeated [`Pipeline::register`]
//!   answer every fault a dead or restarted handler held.
//! - [`Pipeline::await_fault`] is a driver's question "did my device fault
//!   after this mark, and what became of it?", answered at once or parked
//!   until the fault settles.
//!
//! - [`Pipeline::refuse`] answers a fault that never reaches a handler (a
//!   malformed page request ending its group); [`Pipeline::groups_gone`]
//!   answers the page groups of a device going away. Every settled fault
//!   passes through [`Outbox::respond`] exactly once: for a page group,
//!   that is where its one page group response is sent.
//!
//! Replies go out through an [`Outbox`]: the service implements it with
//! deferred IPC replies, the tests with logs they check. The pipeline is
//! generic over the parked reply type `P` (the service's reply token).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod answer;
mod devices;
pub mod groups;
mod handlers;
mod types;

pub use devices::Await;
pub use types::{AutoReason, Counters, Gone, Group, NewFault, Outbox, Pending, Stage, answered};

use faultline_ipc::protocol::faults::FaultToken;
use heapless::{Deque, Vec};

/// Handlers (channels) the pipeline knows at once.
pub const MAX_HANDLERS: usize = 8;
/// Devices with a handler or a driver's interest at once.
pub const MAX_DEVICES: usize = 16;
/// Faults one handler may hold (queued or delivered, unanswered); one
/// more is answered automatically ([`AutoReason::QueueFull`]).
pub const HANDLER_QUEUE: usize = 8;
/// Faults outstanding in all (every handler's queue fits).
pub const MAX_OUTSTANDING: usize = MAX_HANDLERS * HANDLER_QUEUE;
/// Settled faults each device remembers for its driver.
pub const DEVICE_HISTORY: usize = 16;
/// PASIDs of one device with a handler of their own.
pub const MAX_PASID_HANDLERS: usize = 4;
/// Settled tokens remembered, to tell a duplicate answer from a stale one.
pub const RECENT_TOKENS: usize = 64;

/// The pipeline; `P` is a parked pull's reply.
pub struct Pipeline<P> {
    next_token: u64,
    handlers: Vec<handlers::Handler<P>, MAX_HANDLERS>,
    devices: Vec<devices::Device<P>, MAX_DEVICES>,
    outstanding: Vec<Pending, MAX_OUTSTANDING>,
    recent: Deque<answer::Settled, RECENT_TOKENS>,
    counters: Counters,
}

impl<P> Default for Pipeline<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Pipeline<P> {
    pub const fn new() -> Self {
        Self {
            next_token: 1,
            handlers: Vec::new(),
            devices: Vec::new(),
            outstanding: Vec::new(),
            recent: Deque::new(),
            counters: Counters {
                faults: 0,
                delivered: 0,
                success: 0,
                invalid: 0,
                failure: 0,
                auto: 0,
                retried: 0,
                verified: 0,
                overflows: 0,
                register_accesses: 0,
            },
        }
    }

    /// What the pipeline has done so far (`overflows` and
    /// `register_accesses` are the caller's to count).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Faults recorded and not yet answered.
    pub fn outstanding(&self) -> impl Iterator<Item = &Pending> {
        self.outstanding.iter()
    }

    /// The earliest deadline of an outstanding fault, to set a timer for.
    pub fn next_deadline(&self) -> Option<u64> {
        self.outstanding.iter().map(|f| f.deadline_ns).min()
    }

    /// Takes one fault the hardware recorded at `now_ns` and routes it.
    pub fn record(&mut self, fault: NewFault, now_ns: u64, out: &mut impl Outbox<P>) {
        self.counters.faults += 1;
        let token = FaultToken(self.next_token);
        self.next_token += 1;
        let mark = self.next_mark(fault.bdf);
        let route = self.route(&fault);
        let mut pending = Pending {
            token,
            fault,
            mark,
            handler: None,
            stage: Stage::Queued,
            deadline_ns: now_ns,
        };
        let (badge, deadline_ms) = match route {
            handlers::Route::Handler { badge, deadline_ms } => (badge, deadline_ms),
            handlers::Route::None => {
                return self.settle_auto(pending, AutoReason::NoHandler, out);
            }
        };
        pending.handler = Some(badge);
        pending.deadline_ns = now_ns.saturating_add(u64::from(deadline_ms) * 1_000_000);
        let held = self
            .outstanding
            .iter()
            .filter(|f| f.handler == Some(badge))
            .count();
        if held >= HANDLER_QUEUE {
            return self.settle_auto(pending, AutoReason::QueueFull, out);
        }
        if let Err(pending) = self.outstanding.push(pending) {
            // Cannot happen while every handler's queue fits the table;
            // answered all the same rather than lost.
            return self.settle_auto(pending, AutoReason::QueueFull, out);
        }
        self.pump(badge, out);
    }

    /// Takes one fault that is answered at once, for `reason`, without
    /// reaching a handler (a malformed page request ending its group, one
    /// from an unknown requester, a group too large to deliver): counted,
    /// given a token and a mark, and settled like any other.
    pub fn refuse(&mut self, fault: NewFault, reason: AutoReason, out: &mut impl Outbox<P>) {
        self.counters.faults += 1;
        let token = FaultToken(self.next_token);
        self.next_token += 1;
        let mark = self.next_mark(fault.bdf);
        let pending = Pending {
            token,
            fault,
            mark,
            handler: None,
            stage: Stage::Queued,
            deadline_ns: 0,
        };
        self.settle_auto(pending, reason, out);
    }

    /// Device `bdf` (only its PASID `pasid`, if given) is going away:
    /// every page group it has outstanding is answered
    /// ([`AutoReason::DeviceGone`]) before its requests are drained.
    pub fn groups_gone(&mut self, bdf: u16, pasid: Option<u32>, out: &mut impl Outbox<P>) {
        while let Some(i) = self.outstanding.iter().position(|f| {
            f.fault.bdf == bdf
                && f.fault.group.is_some()
                && pasid.is_none_or(|p| f.fault.pasid == Some(p))
        }) {
            let pending = self.outstanding.swap_remove(i);
            self.settle_auto(pending, AutoReason::DeviceGone, out);
        }
    }

    /// Answers every fault whose deadline is at or before `now_ns`.
    pub fn expire(&mut self, now_ns: u64, out: &mut impl Outbox<P>) {
        while let Some(i) = self
            .outstanding
            .iter()
            .position(|f| f.deadline_ns <= now_ns)
        {
            let pending = self.outstanding.swap_remove(i);
            self.settle_auto(pending, AutoReason::Deadline, out);
        }
    }
}

#[cfg(test)]
mod tests;
