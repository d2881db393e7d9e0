//! The model's page request queue (PQH, PQT, PQA, PRS and the page request
//! event registers) and the scripted PRI device that fills it.
//!
//! All of it exists only on a unit with ECAP.PRS; on any other unit (QEMU
//! 10.0 among them) touching these registers panics. The registers:
//! - PQH: software's head, 32-byte aligned within bits 18:5. A write may
//!   advance it up to PQT (never past it), or reset it to 0.
//! - PQT: the unit's tail. Software may only write 0 (initialisation).
//! - PQA: base (4 KiB aligned, within the host address width) and size
//!   (bits 2:0, 2^size pages); bits 11:3 are reserved.
//! - PRS: PPR and PRO, write 1 to clear. PECTL: IM (set at reset) and the
//!   read-only IP; clearing IM while IP is set delivers the interrupt.
//!   PEDATA, PEADDR (bits 1:0 reserved) and PEUADDR are plain storage.
//!
//! [`Model::page_request`] is the device issuing one request, handled as
//! the spec (7.5.1) describes: refused without a queue; dropped with PRO
//! (in PRS and FSTS bit 7) when the queue is full or PRO is already set,
//! the unit then answering a dropped last-in-group request itself with
//! Success; otherwise written at PQT, PQT advanced, PPR set, and a page
//! request event raised when PPR goes from 0 to 1. Every queued request
//! that ends a group is handed to the judge (`judge` module), as is every
//! page group response the invalidation queue executes.
//!
//! Not modelled: the scalable-mode context entry's PRE bit and the PASID
//! checks QEMU 10.2 applies before queueing (fault 0x47); the device here
//! is trusted to be allowed to ask.

use alloc::string::String;
use alloc::vec::Vec;

use faultline_vtd::prq::{self, GroupId, PageGroupResponse, PageRequest};

use super::judge::Judge;
use super::{ECAP_PRS, Model, Responder, State};

const PRS_PPR: u32 = 1 << 0;
const PRS_PRO: u32 = 1 << 1;
const PECTL_IM: u32 = 1 << 31;
const PECTL_IP: u32 = 1 << 30;
const FSTS_PRO: u32 = 1 << 7;

/// One of the page request registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PrqReg {
    Pqh,
    Pqt,
    Pqa,
    Prs,
    Pectl,
    Pedata,
    Peaddr,
    Peuaddr,
}

impl PrqReg {
    pub(super) fn at(offset: usize) -> Option<Self> {
        Some(match offset {
            0xc0 => Self::Pqh,
            0xc8 => Self::Pqt,
            0xd0 => Self::Pqa,
            0xdc => Self::Prs,
            0xe0 => Self::Pectl,
            0xe4 => Self::Pedata,
            0xe8 => Self::Peaddr,
            0xec => Self::Peuaddr,
            _ => return None,
        })
    }
}

/// What became of one page request the device issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// No page request queue was set up (PQA never written): refused,
    /// nothing written, nobody answers.
    Refused,
    /// Written into the queue at this byte offset (PQT before the write).
    Queued { offset: u64 },
    /// Dropped on overflow (queue full or PRO already set); PRO is set.
    /// `answered`: the request was last in its group (not a stop marker),
    /// so the unit answered the group itself with Success.
    Dropped { answered: bool },
}

/// The page request queue's registers and counters.
pub(crate) struct PageRequests {
    pqh: u64,
    pqt: u64,
    /// PQA, once written.
    pqa: Option<u64>,
    prs: u32,
    pectl: u32,
    pedata: u32,
    peaddr: u32,
    peuaddr: u32,
    issued: usize,
    written: usize,
    dropped: usize,
    refused: usize,
    interrupts: usize,
    pub(super) judge: Judge,
}

impl PageRequests {
    pub(super) fn new() -> Self {
        Self {
            pqh: 0,
            pqt: 0,
            pqa: None,
            prs: 0,
            pectl: PECTL_IM,
            pedata: 0,
            peaddr: 0,
            peuaddr: 0,
            issued: 0,
            written: 0,
            dropped: 0,
            refused: 0,
            interrupts: 0,
            judge: Judge::default(),
        }
    }

    /// The queue's base and size in bytes, once PQA was written.
    fn queue(&self) -> Option<(u64, u64)> {
        self.pqa
            .map(|pqa| (pqa & !0xfff, prq::queue_entries((pqa & 7) as u8) * 32))
    }
}

impl State {
    fn require_page_requests(&self, what: &str) {
        assert!(
            self.config.ecap & (1 << ECAP_PRS) != 0,
            "model: {what} needs ECAP.PRS (page requests), which this unit lacks \
             (QEMU 10.0 has no page request queue)"
        );
    }

    pub(super) fn prq_read(&self, reg: PrqReg) -> u64 {
        self.require_page_requests("a page request register read");
        let p = &self.prq;
        match reg {
            PrqReg::Pqh => p.pqh,
            PrqReg::Pqt => p.pqt,
            PrqReg::Pqa => p.pqa.unwrap_or(0),
            PrqReg::Prs => u64::from(p.prs),
            PrqReg::Pectl => u64::from(p.pectl),
            PrqReg::Pedata => u64::from(p.pedata),
            PrqReg::Peaddr => u64::from(p.peaddr),
            PrqReg::Peuaddr => u64::from(p.peuaddr),
        }
    }

    pub(super) fn prq_write(&mut self, reg: PrqReg, value: u64) {
        self.require_page_requests("a page request register write");
        let host_mask = self.host_mask();
        let p = &mut self.prq;
        match reg {
            PrqReg::Pqh => {
                assert!(
                    value & !prq::OFFSET_MASK == 0,
                    "model: PQH {value:#x} sets reserved bits"
                );
                if value != 0
                    && let Some((_, size)) = p.queue()
                {
                    assert!(
                        value < size,
                        "model: PQH {value:#x} is past the end of the {size:#x}-byte queue"
                    );
                    let ahead = |to: u64| (to + size - p.pqh) % size;
                    assert!(
                        ahead(value) <= ahead(p.pqt),
                        "model: PQH {value:#x} passes PQT {:#x} (from PQH {:#x})",
                        p.pqt,
                        p.pqh
                    );
                }
                p.pqh = value;
            }
            PrqReg::Pqt => {
                assert!(
                    value == 0,
                    "model: PQT {value:#x} written; PQT belongs to the unit and software may \
                     only initialise it to 0"
                );
                p.pqt = 0;
            }
            PrqReg::Pqa => {
                assert!(
                    value & 0xff8 == 0 && value & !0xfff & !host_mask == 0,
                    "model: PQA {value:#x} sets reserved bits"
                );
                p.pqa = Some(value);
            }
            PrqReg::Prs => {
                assert!(
                    value & !u64::from(PRS_PPR | PRS_PRO) == 0,
                    "model: PRS {value:#x} sets reserved bits"
                );
                p.prs &= !(value as u32);
            }
            PrqReg::Pectl => {
                assert!(
                    value & !u64::from(PECTL_IM) == 0,
                    "model: PECTL {value:#x} (only IM is writable)"
                );
                p.pectl = (p.pectl & PECTL_IP) | value as u32;
                if p.pectl & PECTL_IM == 0 && p.pectl & PECTL_IP != 0 {
                    p.pectl &= !PECTL_IP;
                    p.interrupts += 1;
                }
            }
            PrqReg::Pedata => p.pedata = value as u32,
            PrqReg::Peaddr => {
                assert!(
                    value & 3 == 0,
                    "model: PEADDR {value:#x} sets reserved bits"
                );
                p.peaddr = value as u32;
            }
            PrqReg::Peuaddr => p.peuaddr = value as u32,
        }
    }

    fn page_request(&mut self, request: PageRequest) -> RequestOutcome {
        self.require_page_requests("a page request");
        self.prq.issued += 1;
        let Some((base, size)) = self.prq.queue() else {
            self.prq.refused += 1;
            return RequestOutcome::Refused;
        };
        let offset = self.prq.pqt;
        assert!(
            offset < size && self.prq.pqh < size,
            "model: PQT {offset:#x} or PQH {:#x} lies outside the {size:#x}-byte queue \
             (PQA shrank without PQH and PQT being reset)",
            self.prq.pqh
        );
        let full = (offset + 32) % size == self.prq.pqh;
        if full || self.prq.prs & PRS_PRO != 0 {
            self.prq.dropped += 1;
            self.prq.prs |= PRS_PRO;
            self.fsts |= FSTS_PRO;
            let answered = request.last && !request.is_stop_marker();
            if answered {
                self.prq.judge.hardware_response(request.group());
            }
            return RequestOutcome::Dropped { answered };
        }
        for (i, qword) in request.encode().into_iter().enumerate() {
            self.memory
                .device_write(base + offset + 8 * i as u64, qword, "a page request");
        }
        self.prq.pqt = (offset + 32) % size;
        self.prq.written += 1;
        if request.last && !request.is_stop_marker() {
            self.prq.judge.needs_response(request.group());
        }
        if self.prq.prs & PRS_PPR == 0 {
            self.prq.prs |= PRS_PPR;
            self.prq.pectl |= PECTL_IP;
            if self.prq.pectl & PECTL_IM == 0 {
                self.prq.pectl &= !PECTL_IP;
                self.prq.interrupts += 1;
            }
        }
        RequestOutcome::Queued { offset }
    }

    /// A page group response the invalidation queue executed (type 9).
    pub(super) fn page_group_response(&mut self, response: PageGroupResponse) {
        self.prq.judge.software_response(response);
    }
}

/// The scripted PRI device, the page request registers as a test sees
/// them, and the judge's verdicts.
impl Model {
    /// The device issues `request` (see the module doc for what follows).
    /// Panics on a unit without ECAP.PRS.
    pub fn page_request(&self, request: PageRequest) -> RequestOutcome {
        self.0.borrow_mut().page_request(request)
    }

    /// The device issues a whole page group: one request per address, in
    /// order, the last one marked last-in-group. Panics if `addresses` is
    /// empty.
    pub fn page_group(
        &self,
        rid: u16,
        pasid: Option<u32>,
        prg_index: u16,
        addresses: &[u64],
        read: bool,
        write: bool,
    ) -> Vec<RequestOutcome> {
        assert!(!addresses.is_empty(), "model: a page group needs a page");
        addresses
            .iter()
            .enumerate()
            .map(|(i, &address)| {
                self.page_request(PageRequest {
                    rid,
                    pasid,
                    exec: false,
                    privileged: false,
                    read,
                    write,
                    last: i + 1 == addresses.len(),
                    prg_index,
                    address,
                })
            })
            .collect()
    }

    /// PRS as software reads it (without counting a register read).
    pub fn page_request_status(&self) -> u32 {
        self.0.borrow().prq.prs
    }

    /// PECTL as software reads it.
    pub fn page_request_event_control(&self) -> u32 {
        self.0.borrow().prq.pectl
    }

    /// Page requests the device issued, whatever became of them.
    pub fn page_requests_issued(&self) -> usize {
        self.0.borrow().prq.issued
    }

    /// Page requests written into the queue.
    pub fn page_requests_written(&self) -> usize {
        self.0.borrow().prq.written
    }

    /// Page requests dropped on overflow.
    pub fn page_requests_dropped(&self) -> usize {
        self.0.borrow().prq.dropped
    }

    /// Page requests refused because no queue was set up.
    pub fn page_requests_refused(&self) -> usize {
        self.0.borrow().prq.refused
    }

    /// Page request events delivered as interrupts (PECTL.IM = 0).
    pub fn page_request_interrupts(&self) -> usize {
        self.0.borrow().prq.interrupts
    }

    /// What the judge found wrong with the page group responses so far.
    pub fn violations(&self) -> Vec<String> {
        self.0.borrow().prq.judge.violations()
    }

    /// Groups that still wait for a page group response, oldest first.
    pub fn unanswered(&self) -> Vec<GroupId> {
        self.0.borrow().prq.judge.unanswered()
    }

    /// Every page group response, in order, with who sent it.
    pub fn responses(&self) -> Vec<(PageGroupResponse, Responder)> {
        self.0.borrow().prq.judge.responses()
    }

    /// What a test calls when the driver claims to be idle: `Err` lists
    /// every violation and then one line per group still waiting.
    pub fn check_idle(&self) -> Result<(), Vec<String>> {
        self.0.borrow().prq.judge.check_idle()
    }
}
