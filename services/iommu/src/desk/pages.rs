//! The desk's page request side: reading each unit's page request queue,
//! turning requests into page groups for the fault pipeline, and sending
//! the one page group response each group gets.
//!
//! Per request, in Linux's order (`prq_event_thread`) but for stop
//! markers: a stop marker (last in group, neither read nor write) is
//! dropped without a response, before any other check (PCIe never wants
//! one answered; Linux checks the address first and would answer a
//! non-canonical stop marker); a malformed request
//! ([`faultline_iommu_core::prq::check`]) or one from a requester the
//! service does not know is refused, with an Invalid response if it ends
//! its group; anything else
//! joins its group, and the group goes to the pipeline when its last
//! request arrives. When the queue overflowed and is empty again, partial
//! groups are discarded (their last request may be lost: the device asks
//! again). A device that detaches has its requests drained and its groups
//! answered Invalid before its domain id can be reused.
//!
//! The pipeline settles each fault exactly once and calls
//! [`Outbox::respond`](faultline_fault_pipeline::Outbox::respond) then;
//! for a page group the response is built there from the stored group
//! (requester, PASID, index) with the code, queued in the desk, and sent
//! to the unit the group came from by [`Desk::flush`].

use embedded_hal::delay::DelayNs;
use faultline_fault_pipeline::groups::{Assembler, Collected, page};
use faultline_fault_pipeline::{AutoReason, Group};
use faultline_iommu_core::prq::{Overflow, PageGroupResponse, PageRequest, check};
use faultline_iommu_core::{DmaMemory, DomainId, Registers};
use faultline_ipc::channel::Transport;
use faultline_ipc::protocol::iommu::Bdf;
use heapless::Vec;
use userlib::log;

use super::{Desk, IommuServer, Replies};
use crate::service::{MAX_UNITS, Service};

/// Descriptors one queue read hands out at most (the queue's size).
pub const MAX_READ: usize = 128;
/// Reads of one queue per wake-up while PRO stays set.
const MAX_ROUNDS: usize = 4;
/// Page request events logged one by one (refusals, overflows).
const LOGGED: u64 = 16;
/// Requesters whose unit the desk remembers (to send responses to).
const MAX_REQUESTERS: usize = 256;

/// What the page request path has seen, beside the pipeline's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCounters {
    /// Descriptors read from the queues.
    pub requests: u64,
    /// Groups complete and handed to the pipeline.
    pub groups: u64,
    pub stop_markers: u64,
    /// Requests refused as malformed or from an unknown requester.
    pub refused: u64,
    /// Descriptors that were not page requests.
    pub garbage: u64,
    /// Times a queue overflowed and partial groups were discarded.
    pub overflows: u64,
    pub partials_discarded: u64,
    /// Page group responses sent, and those the unit refused.
    pub responses: u64,
    pub response_errors: u64,
}

/// The page request state of the desk: per unit slot, its partial groups.
pub(super) struct Pages {
    pub assemblers: [Assembler; MAX_UNITS],
    /// Requester → unit slot, learned from the requests read.
    pub requesters: Vec<(u16, u8), MAX_REQUESTERS>,
    /// Responses waiting for [`Desk::flush`].
    pub responses: Vec<PageGroupResponse, { super::RESPONSE_BUFFER }>,
    pub counters: PageCounters,
}

impl Pages {
    pub const fn new() -> Self {
        Self {
            assemblers: [const { Assembler::new() }; MAX_UNITS],
            requesters: Vec::new(),
            responses: Vec::new(),
            counters: PageCounters {
                requests: 0,
                groups: 0,
                stop_markers: 0,
                refused: 0,
                garbage: 0,
                overflows: 0,
                partials_discarded: 0,
                responses: 0,
                response_errors: 0,
            },
        }
    }

    fn learn(&mut self, rid: u16, slot: u8) {
        if self.requesters.iter().any(|r| r.0 == rid) {
            return;
        }
        if self.requesters.is_full() {
            // More requesters than any unit serves at once: start over.
            self.requesters.clear();
        }
        let _ = self.requesters.push((rid, slot));
    }
}

/// A lone request as a group of one (for a refusal).
fn lone(r: &PageRequest) -> faultline_fault_pipeline::NewFault {
    // One page always fits.
    let group = Group::new(r.prg_index, &[page(r)]).unwrap_or_else(|| unreachable!());
    group.fault(r.rid, r.pasid)
}

impl Desk {
    /// Reads every unit's page request queue and routes what is there.
    /// A requester is known if it is in `known` (the devices the caller
    /// serves: attached ones) or has a fault handler.
    pub fn page_requests<R: Registers, M: DmaMemory, D: DelayNs, T: Transport>(
        &mut self,
        service: &mut Service<R, M, D>,
        known: &[u16],
        now_ns: u64,
        server: &mut IommuServer<T>,
    ) {
        for slot in 0..MAX_UNITS {
            for _ in 0..MAX_ROUNDS {
                let mut read: Vec<PageRequest, MAX_READ> = Vec::new();
                let Some(unit) = service.units().nth(slot).filter(|s| !s.failed) else {
                    break;
                };
                if unit.unit.page_request_queue().is_none() {
                    break;
                }
                let batch = match unit.unit.read_page_requests(&mut |r| {
                    let _ = read.push(r);
                }) {
                    Ok(batch) => batch,
                    Err(e) => {
                        log!(
                            "iommu: unit {}: reading page requests failed: {e}",
                            unit.index
                        );
                        break;
                    }
                };
                self.pages.counters.garbage += batch.garbage as u64;
                for r in &read {
                    self.page_request(slot as u8, r, None, known, now_ns, server);
                }
                let again = match batch.overflow {
                    None => false,
                    Some(Overflow::Cleared) => {
                        self.page_overflow(slot);
                        false
                    }
                    Some(Overflow::Pending) => true,
                };
                self.flush(service);
                if !again {
                    break;
                }
            }
        }
    }

    /// One request read from unit slot `slot`'s queue. `gone`: the
    /// device that is detaching, whose groups are answered Invalid.
    pub(super) fn page_request<T: Transport>(
        &mut self,
        slot: u8,
        r: &PageRequest,
        gone: Option<u16>,
        known: &[u16],
        now_ns: u64,
        server: &mut IommuServer<T>,
    ) {
        self.pages.counters.requests += 1;
        self.pages.learn(r.rid, slot);
        if r.is_stop_marker() {
            // A stop marker is never answered (PCIe PRI), whatever else is
            // wrong with it; Linux checks the address first and would
            // answer a non-canonical one.
            self.pages.counters.stop_markers += 1;
            return;
        }
        let refusal = match check(r) {
            Err(m) => Some((AutoReason::Malformed, m.text())),
            Ok(()) if gone == Some(r.rid) => Some((AutoReason::DeviceGone, "device detached")),
            Ok(()) if !(known.contains(&r.rid) || self.pipeline.handled(r.rid)) => {
                Some((AutoReason::UnknownRequester, "unknown requester"))
            }
            Ok(()) => None,
        };
        if let Some((reason, why)) = refusal {
            if reason != AutoReason::DeviceGone {
                self.pages.counters.refused += 1;
                if self.pages.counters.refused <= LOGGED {
                    log!(
                        "iommu: page request from {} pasid {:?} at {:#x}: {why}{}",
                        Bdf(r.rid),
                        r.pasid,
                        r.address,
                        if r.last {
                            ""
                        } else {
                            " (not last in its group: dropped)"
                        }
                    );
                }
            }
            if r.last {
                self.pages.assemblers[usize::from(slot)].abandon(r.group());
                let mut out = Replies::new(
                    self.pipeline.counters().auto,
                    server,
                    &mut self.pages.responses,
                );
                self.pipeline.refuse(lone(r), reason, &mut out);
            }
            return;
        }
        match self.pages.assemblers[usize::from(slot)].push(r) {
            Collected::Partial | Collected::Dropped => {}
            Collected::Complete(fault) => {
                self.pages.counters.groups += 1;
                let mut out = Replies::new(
                    self.pipeline.counters().auto,
                    server,
                    &mut self.pages.responses,
                );
                self.pipeline.record(fault, now_ns, &mut out);
            }
            Collected::TooLarge(fault) => {
                self.pages.counters.groups += 1;
                let mut out = Replies::new(
                    self.pipeline.counters().auto,
                    server,
                    &mut self.pages.responses,
                );
                self.pipeline
                    .refuse(fault, AutoReason::GroupTooLarge, &mut out);
            }
        }
    }

    /// Unit slot `slot`'s queue overflowed and is empty again: partial
    /// groups are discarded (the devices ask again).
    fn page_overflow(&mut self, slot: usize) {
        self.pages.counters.overflows += 1;
        let discarded = self.pages.assemblers[slot].discard_partial();
        self.pages.counters.partials_discarded += discarded as u64;
        let n = self.pages.counters.overflows;
        if n.is_power_of_two() {
            log!(
                "iommu: page request queue overflowed ({n} time(s)): {discarded} partial group(s) \
                 discarded, cleared"
            );
        }
    }

    /// Device `bdf` of unit slot `slot`, tagged `domain`, detached: its
    /// partial groups are forgotten, its outstanding groups answered
    /// Invalid, and the queue drained (requests of other devices found
    /// there are served as usual; the device's own last requests are
    /// answered Invalid).
    #[allow(clippy::too_many_arguments)]
    pub fn device_gone<R: Registers, M: DmaMemory, D: DelayNs, T: Transport>(
        &mut self,
        service: &mut Service<R, M, D>,
        slot: usize,
        bdf: u16,
        domain: DomainId,
        known: &[u16],
        now_ns: u64,
        server: &mut IommuServer<T>,
    ) {
        let Some(unit) = service.units().nth(slot).filter(|s| !s.failed) else {
            return;
        };
        if unit.unit.page_request_queue().is_none() {
            return;
        }
        let mut read: Vec<PageRequest, MAX_READ> = Vec::new();
        let drained = unit.unit.drain_page_requests(domain, &mut |r| {
            let _ = read.push(r);
        });
        if let Err(e) = drained {
            log!(
                "iommu: unit {}: draining page requests of {} failed: {e}",
                unit.index,
                Bdf(bdf)
            );
        }
        self.pages.assemblers[slot].forget(bdf, None);
        for r in &read {
            self.page_request(slot as u8, r, Some(bdf), known, now_ns, server);
        }
        let mut out = Replies::new(
            self.pipeline.counters().auto,
            server,
            &mut self.pages.responses,
        );
        self.pipeline.groups_gone(bdf, None, &mut out);
        self.flush(service);
    }

    /// Sends every page group response waiting, each to the unit its
    /// requester's requests came from.
    pub fn flush<R: Registers, M: DmaMemory, D: DelayNs>(
        &mut self,
        service: &mut Service<R, M, D>,
    ) {
        // Called after every handler call and deadline check, DMA faults
        // included: nothing to do unless a page group was settled, and the
        // buffer is read in place rather than moved (it is 192 entries).
        for i in 0..self.pages.responses.len() {
            let response = self.pages.responses[i];
            let rid = response.group.rid;
            let slot = self
                .pages
                .requesters
                .iter()
                .find(|r| r.0 == rid)
                .map(|r| r.1);
            let Some(unit) = slot.and_then(|s| service.units().nth(usize::from(s))) else {
                self.pages.counters.response_errors += 1;
                log!(
                    "iommu: no unit known for {}: page group response not sent",
                    Bdf(rid)
                );
                continue;
            };
            match unit.unit.page_group_response(response) {
                Ok(()) => self.pages.counters.responses += 1,
                Err(e) => {
                    self.pages.counters.response_errors += 1;
                    log!(
                        "iommu: unit {}: page group response for {} failed: {e}",
                        unit.index,
                        Bdf(rid)
                    );
                }
            }
        }
        self.pages.responses.clear();
    }

    /// What the page request path has seen.
    pub fn page_counters(&self) -> PageCounters {
        self.pages.counters
    }
}
