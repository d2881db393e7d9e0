//! Devices, as their drivers see the pipeline: a fault mark that grows with
//! every fault recorded, a short history of settled faults, and one parked
//! question ("the first fault after mark M, once it is answered").
//!
//! A device may signal completion of a transfer that faulted (edu raises
//! its completion interrupt either way), so a driver asks after every
//! completion; the service reads the fault records before answering, so a
//! fault the hardware recorded before the completion is never missed.

use faultline_ipc::protocol::iommu::{FaultOutcome, SettledFault};
use heapless::Deque;

use crate::types::{AutoReason, Outbox, Pending};
use crate::{DEVICE_HISTORY, Pipeline};

pub(crate) struct Device<P> {
    pub bdf: u16,
    /// The handler's badge and deadline.
    pub handler: Option<(u64, u32)>,
    /// PASIDs whose page groups have a handler of their own: (PASID,
    /// badge, deadline).
    pub pasids: heapless::Vec<(u32, u64, u32), { crate::MAX_PASID_HANDLERS }>,
    /// The last mark given.
    mark: u32,
    /// Settled faults, oldest first.
    history: Deque<Entry, DEVICE_HISTORY>,
    /// A driver's parked question: the first fault after this mark.
    waiting: Option<(u32, P)>,
}

/// A settled fault in a device's history.
struct Entry {
    fault: SettledFault,
    /// The driver was told (a retry is counted once).
    told: bool,
    /// The driver reported its retry verified.
    verified: bool,
}

impl Entry {
    /// Marks the entry told; whether that told a driver to retry for the
    /// first time.
    fn tell(&mut self) -> bool {
        let first = !self.told;
        self.told = true;
        first && self.fault.outcome == FaultOutcome::Retry
    }
}

impl<P> Device<P> {
    pub fn new(bdf: u16) -> Self {
        Self {
            bdf,
            handler: None,
            pasids: heapless::Vec::new(),
            mark: 0,
            history: Deque::new(),
            waiting: None,
        }
    }
}

/// The answer to a driver's question (handing the question back when it
/// is answered now).
#[derive(Debug, PartialEq, Eq)]
pub enum Await<P> {
    /// No fault after the mark; the current mark.
    NoFault(P, u32),
    /// The first fault after the mark, settled.
    Settled(P, SettledFault),
    /// The first fault after the mark is still outstanding: the question
    /// is parked and answered through [`Outbox::settled`].
    Parked,
    /// No room to track another device; the question comes back.
    Full(P),
}

impl<P> Pipeline<P> {
    /// `bdf`'s current fault mark (0 before its first fault).
    pub fn mark(&self, bdf: u16) -> u32 {
        self.devices
            .iter()
            .find(|d| d.bdf == bdf)
            .map_or(0, |d| d.mark)
    }

    /// The driver of `bdf` asks for its first fault after mark `since`. A
    /// question already parked for the device is dropped: only the
    /// device's driver can ask, and it has one call at a time.
    pub fn await_fault(&mut self, bdf: u16, since: u32, question: P) -> Await<P> {
        let Some(slot) = self.device_slot(bdf) else {
            return Await::Full(question);
        };
        let first_open = self
            .outstanding
            .iter()
            .filter(|f| f.fault.bdf == bdf && f.mark > since)
            .map(|f| f.mark)
            .min();
        let device = &mut self.devices[slot];
        device.waiting = None;
        let first_settled = device
            .history
            .iter_mut()
            .filter(|e| e.fault.mark > since)
            .min_by_key(|e| e.fault.mark);
        if let Some(entry) = first_settled
            && first_open.is_none_or(|o| entry.fault.mark < o)
        {
            if entry.tell() {
                self.counters.retried += 1;
            }
            return Await::Settled(question, entry.fault);
        }
        if first_open.is_some() {
            device.waiting = Some((since, question));
            return Await::Parked;
        }
        Await::NoFault(question, device.mark)
    }

    /// The driver of `bdf` retried fault `mark` and verified its data.
    /// `false` if `mark` is not a fault it was told to retry, or its retry
    /// was already reported.
    pub fn verified(&mut self, bdf: u16, mark: u32) -> bool {
        let Some(device) = self.devices.iter_mut().find(|d| d.bdf == bdf) else {
            return false;
        };
        let Some(entry) = device
            .history
            .iter_mut()
            .find(|e| e.fault.mark == mark && e.told && e.fault.outcome == FaultOutcome::Retry)
        else {
            return false;
        };
        if entry.verified {
            return false;
        }
        entry.verified = true;
        self.counters.verified += 1;
        true
    }

    /// The fault records overflowed: faults were dropped without saying
    /// whose. Every device the pipeline knows (a handler registered for
    /// it, it faulted, or its driver asked) gets a fault mark for the loss,
    /// settled as [`FaultOutcome::Lost`], so a driver that asks about a
    /// transfer around this time learns it may have faulted.
    pub fn overflowed(&mut self, out: &mut impl Outbox<P>) {
        for i in 0..self.devices.len() {
            let device = &mut self.devices[i];
            device.mark = device.mark.wrapping_add(1);
            let lost = SettledFault {
                mark: device.mark,
                iova: 0,
                write: false,
                outcome: FaultOutcome::Lost,
            };
            let bdf = device.bdf;
            self.record_settled(bdf, lost, out);
        }
    }

    /// `bdf`'s current fault mark, making its device entry so that a later
    /// loss (an overflow) is recorded for it.
    pub fn mark_for_driver(&mut self, bdf: u16) -> u32 {
        match self.device_slot(bdf) {
            Some(slot) => self.devices[slot].mark,
            None => 0,
        }
    }

    /// The next mark for a fault of `bdf` (0 if no device entry fits).
    pub(crate) fn next_mark(&mut self, bdf: u16) -> u32 {
        let Some(slot) = self.device_slot(bdf) else {
            return 0;
        };
        let device = &mut self.devices[slot];
        device.mark = device.mark.wrapping_add(1);
        device.mark
    }

    /// Tells the device's driver (now, or when it asks) what became of a
    /// fault.
    pub(crate) fn tell_driver(
        &mut self,
        pending: &Pending,
        outcome: FaultOutcome,
        out: &mut impl Outbox<P>,
    ) {
        let settled = SettledFault {
            mark: pending.mark,
            iova: pending.fault.iova,
            write: pending.fault.write,
            outcome,
        };
        self.record_settled(pending.fault.bdf, settled, out);
    }

    /// Adds a settled fault to `bdf`'s history and answers its driver's
    /// parked question if this is the first fault after its mark.
    fn record_settled(&mut self, bdf: u16, settled: SettledFault, out: &mut impl Outbox<P>) {
        let earlier_open = |since: u32, outstanding: &[Pending]| {
            outstanding
                .iter()
                .any(|f| f.fault.bdf == bdf && f.mark > since && f.mark < settled.mark)
        };
        let Some(device) = self.devices.iter_mut().find(|d| d.bdf == bdf) else {
            return;
        };
        if device.history.is_full() {
            device.history.pop_front();
        }
        let mut entry = Entry {
            fault: settled,
            told: false,
            verified: false,
        };
        let wake = matches!(device.waiting, Some((since, _))
            if settled.mark > since && !earlier_open(since, &self.outstanding));
        if wake && let Some((_, question)) = device.waiting.take() {
            if entry.tell() {
                self.counters.retried += 1;
            }
            out.settled(question, settled);
        }
        // Room was made above.
        let _ = device.history.push_back(entry);
    }
}

/// What an automatic answer tells the driver.
pub(crate) fn aborted(reason: AutoReason) -> FaultOutcome {
    FaultOutcome::Aborted {
        code: reason.code(),
        automatic: true,
    }
}
