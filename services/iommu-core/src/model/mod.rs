//! An in-memory VT-d remapping unit, written from the spec, that the driver
//! core is tested against.
//!
//! It is strict on purpose: whatever real hardware or QEMU rejects, it
//! rejects, so a driver bug fails a test instead of passing silently.
//! - Registers have their architectural width; a wrong-width access, a read
//!   of write-only GCMD, a write to a read-only register, or a GCMD write
//!   that changes more than one thing panics (QEMU aborts the VM).
//! - GCMD/GSTS: SRTP latches RTADDR, QIE needs IQT = 0, TE needs a root
//!   table; knobs make GSTS never acknowledge or the queue never run. SRTP
//!   (and SIRTP) with translation (remapping) on latch the new table as
//!   the spec allows, leaving every cache as it was until invalidated;
//!   GSTS after each GCMD write is kept ([`Model::gsts_history`]), so a
//!   test can show translation never dropped.
//! - [`Model::translate`] walks exactly the root, context and second-level
//!   entries in memory (not in the CPU cache: see the `memory` module), through a
//!   context cache and an IOTLB that only invalidation descriptors empty, so
//!   a missing invalidation leaves a stale translation that tests see. With
//!   CAP.CM = 1 it also caches not-present entries. In scalable mode
//!   (RTADDR.TTM = 01) the walk goes root half → 32-byte context entry →
//!   PASID directory → PASID table entry (PGTT = 2) → second level, and a
//!   PASID cache that only PASID-cache invalidations empty sits in between.
//! - Faults go to the fault recording registers with QEMU's behaviour: one
//!   record per pending source, PFO when the next record is full.
//! - Interrupt remapping: IRTA (reserved bits, EIME only with ECAP.EIM),
//!   SIRTP latching it, IRE only after a table was set, an interrupt entry
//!   cache that only IEC descriptors empty, and [`Model::deliver_msi`],
//!   which checks a request the way the spec says (remappable format → an
//!   entry that must be present, well formed and name the requester;
//!   compatibility format blocked unless CFI is on and EIME off).
//! - The invalidation queue runs on each IQT write and sets FSTS.IQE on a
//!   malformed descriptor (reserved bits, SW with IF, unknown type, PSI the
//!   unit lacks, AM above MAMV or a misaligned address; a page group
//!   response (type 9) on a unit without ECAP.PRS or with reserved bits
//!   set; a wait descriptor asking for a page-request drain (PD) without
//!   ECAP.PDS).
//! - Page requests (only with ECAP.PRS; see the `prq` module): PQH, PQT,
//!   PQA, PRS and the page request event registers, a scripted PRI device
//!   ([`Model::page_request`], [`Model::page_group`]) that writes 32-byte
//!   descriptors into the driver's queue at PQT, sets PPR, raises the page
//!   request event, and on overflow sets PRO and answers a dropped
//!   last-in-group request itself. A judge (the `judge` module) keeps the
//!   groups the driver owes a page group response and checks each type-9
//!   descriptor against them: [`Model::violations`],
//!   [`Model::unanswered`], [`Model::check_idle`], [`Model::responses`].
//!
//! The model is `core` + `alloc` only, so it also builds for
//! `x86_64-unknown-none` inside a service that has a heap.

mod fault;
mod interrupts;
mod judge;
pub(crate) mod memory;
mod prq;
mod queue;
mod registers;
mod walk;

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use embedded_hal::delay::DelayNs;

use crate::fault::FaultReason;
use crate::hw::{DmaMemory, Registers};
use crate::source::SourceId;
use memory::Memory;

pub use interrupts::{Interrupt, InterruptFault};
pub use judge::Responder;
pub use prq::RequestOutcome;

/// ECAP of QEMU 10.0.2 with `x-scalable-mode=on`.
pub const QEMU_ECAP_SCALABLE: u64 = 0x4800_80f0_0f4a;

/// ECAP.PRS: page requests (a page request queue).
pub const ECAP_PRS: u32 = 29;
/// ECAP.PDS: page-request drain in invalidation wait descriptors.
pub const ECAP_PDS: u32 = 42;

/// [`QEMU_ECAP_SCALABLE`] plus page requests and page-request drain (PRS,
/// PDS): a scalable unit with a page request queue, as QEMU 10.2 can be.
pub const ECAP_SCALABLE_PAGE_REQUESTS: u64 = QEMU_ECAP_SCALABLE | 1 << ECAP_PRS | 1 << ECAP_PDS;

/// CAP of QEMU 10.0.2's default `intel-iommu`.
pub const QEMU_CAP: u64 = 0x00d2_008c_222f_0606;
/// ECAP of QEMU 10.0.2's default `intel-iommu`.
pub const QEMU_ECAP: u64 = 0x0000_0000_00f0_0f4a;

/// What the modelled unit reports and how wide host addresses are.
#[derive(Clone, Copy, Debug)]
pub struct ModelConfig {
    pub cap: u64,
    pub ecap: u64,
    pub host_address_width: u8,
}

impl ModelConfig {
    pub const fn qemu() -> Self {
        Self {
            cap: QEMU_CAP,
            ecap: QEMU_ECAP,
            host_address_width: 48,
        }
    }

    /// QEMU with `x-scalable-mode=on`.
    pub const fn qemu_scalable() -> Self {
        Self {
            ecap: QEMU_ECAP_SCALABLE,
            ..Self::qemu()
        }
    }

    /// A scalable unit with page requests: [`ModelConfig::qemu_scalable`]
    /// with ECAP [`ECAP_SCALABLE_PAGE_REQUESTS`].
    pub const fn scalable_with_page_requests() -> Self {
        Self::qemu_scalable().with_page_requests()
    }

    /// Adds page requests (ECAP.PRS) and page-request drain (ECAP.PDS);
    /// [`ModelConfig::ecap_bit`] sets or clears either alone.
    pub const fn with_page_requests(self) -> Self {
        self.ecap_bit(ECAP_PRS, true).ecap_bit(ECAP_PDS, true)
    }

    /// Sets (`on`) or clears bit `bit` of CAP.
    pub const fn cap_bit(mut self, bit: u32, on: bool) -> Self {
        self.cap = if on {
            self.cap | 1 << bit
        } else {
            self.cap & !(1 << bit)
        };
        self
    }

    /// Sets (`on`) or clears bit `bit` of ECAP.
    pub const fn ecap_bit(mut self, bit: u32, on: bool) -> Self {
        self.ecap = if on {
            self.ecap | 1 << bit
        } else {
            self.ecap & !(1 << bit)
        };
        self
    }
}

/// One invalidation the queue executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    ContextGlobal,
    ContextDomain {
        domain: u16,
    },
    ContextDevice {
        domain: u16,
        source: u16,
    },
    IotlbGlobal,
    IotlbDomain {
        domain: u16,
    },
    IotlbPages {
        domain: u16,
        iova: u64,
        mask: u8,
    },
    PasidCache {
        domain: u16,
    },
    PasidCacheGlobal,
    InterruptEntriesGlobal,
    InterruptEntries {
        index: u16,
        mask: u8,
    },
    /// A page group response (type 9), as decoded.
    PageGroupResponse {
        rid: u16,
        pasid: Option<u32>,
        prg_index: u16,
        code: u8,
    },
    /// An invalidation wait descriptor with PD (page-request drain): every
    /// page request issued before it is in the queue. Recorded just before
    /// that descriptor's [`Invalidation::Wait`]. The model issues requests
    /// synchronously, so the drain has nothing left to wait for.
    PageDrain,
    Wait,
}

/// Something the driver did to the unit, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A register write (name, value).
    Write(&'static str, u64),
    /// A GCMD write; the bit it changed or fired (TE, SRTP, QIE, WBF ...).
    Command(u32),
    Invalidation(Invalidation),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct CachedContext {
    source: u16,
    /// `Err` for a cached not-present entry (CAP.CM = 1 only).
    context: Result<walk::Context, (u8, bool)>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct IotlbEntry {
    domain: u16,
    base: u64,
    size: u64,
    paddr: u64,
    read: bool,
    write: bool,
}

pub(crate) struct State {
    config: ModelConfig,
    pub(crate) memory: Memory,
    events: Vec<Event>,
    gsts_stuck: bool,
    queue_stuck: bool,
    reject_next_descriptor: bool,
    elapsed_ns: u64,
    /// GSTS after every GCMD write, in order.
    gsts_history: Vec<u32>,
    register_reads: usize,
    gsts: u32,
    rtaddr: u64,
    root: Option<u64>,
    fsts: u32,
    fectl: u32,
    fedata: u32,
    feaddr: u32,
    fault_interrupts: usize,
    iqa: u64,
    iqh: u64,
    iqt: u64,
    queue_base: u64,
    queue_entries: u64,
    queue_errors: Vec<String>,
    records: Vec<(u64, u64)>,
    next_record: usize,
    fri: usize,
    dropped_faults: usize,
    context_cache: Vec<CachedContext>,
    /// Scalable mode: PASID entries (RID_PASID) resolved per source.
    pasid_cache: Vec<(u16, walk::Context)>,
    /// RTADDR.TTM = 01 when the root table was last set.
    scalable: bool,
    iotlb: Vec<IotlbEntry>,
    irta: u64,
    /// The interrupt remapping table latched by SIRTP: base, entries, EIME.
    irt: Option<(u64, u32, bool)>,
    /// Interrupt entries the unit has read, until an IEC invalidation.
    irte_cache: Vec<(u16, (u64, u64))>,
    interrupts_blocked: usize,
    /// The page request queue (ECAP.PRS) and the judge of its responses.
    prq: prq::PageRequests,
}

impl State {
    fn record_count(&self) -> usize {
        ((self.config.cap >> 40) & 0xff) as usize + 1
    }

    fn caching_mode(&self) -> bool {
        self.config.cap & (1 << 7) != 0
    }

    fn host_mask(&self) -> u64 {
        (1u64 << self.config.host_address_width) - 1
    }
}

/// A modelled unit; clone it to keep a handle while the driver owns the
/// [`ModelRegisters`], [`ModelMemory`] and [`ModelDelay`] views.
#[derive(Clone)]
pub struct Model(pub(crate) Rc<RefCell<State>>);

impl Model {
    pub fn new(config: ModelConfig) -> Self {
        let coherent = config.ecap & 1 != 0;
        Self(Rc::new(RefCell::new(State {
            config,
            memory: Memory::new(coherent),
            events: Vec::new(),
            gsts_stuck: false,
            queue_stuck: false,
            reject_next_descriptor: false,
            elapsed_ns: 0,
            gsts_history: Vec::new(),
            register_reads: 0,
            gsts: 0,
            rtaddr: 0,
            root: None,
            fsts: 0,
            fectl: 1 << 31,
            fedata: 0,
            feaddr: 0,
            fault_interrupts: 0,
            iqa: 0,
            iqh: 0,
            iqt: 0,
            queue_base: 0,
            queue_entries: 0,
            queue_errors: Vec::new(),
            records: vec![(0, 0); ((config.cap >> 40) & 0xff) as usize + 1],
            next_record: 0,
            fri: 0,
            dropped_faults: 0,
            context_cache: Vec::new(),
            pasid_cache: Vec::new(),
            scalable: false,
            iotlb: Vec::new(),
            irta: 0,
            irt: None,
            irte_cache: Vec::new(),
            interrupts_blocked: 0,
            prq: prq::PageRequests::new(),
        })))
    }

    pub fn qemu() -> Self {
        Self::new(ModelConfig::qemu())
    }

    pub fn registers(&self) -> ModelRegisters {
        ModelRegisters(self.clone())
    }

    pub fn memory(&self) -> ModelMemory {
        ModelMemory(self.clone())
    }

    pub fn delay(&self) -> ModelDelay {
        ModelDelay(self.clone())
    }

    /// A DMA request from `source` to `iova`: the physical address it
    /// reaches, or the fault it raises (recorded like QEMU records it).
    /// With translation off, DMA passes through untranslated.
    pub fn translate(&self, source: SourceId, iova: u64, write: bool) -> Result<u64, FaultReason> {
        self.0.borrow_mut().translate(source.0, iova, write)
    }

    /// A write of `data` to `address` in the interrupt range (0xFEEx_xxxx)
    /// by `source`: an MSI, or any DMA write there. The interrupt it raises,
    /// or why the unit blocked it (recorded as a fault like QEMU records
    /// DMA faults, with the entry index in the record's bits 63:48).
    pub fn deliver_msi(
        &self,
        source: SourceId,
        address: u64,
        data: u32,
    ) -> Result<Interrupt, InterruptFault> {
        self.0.borrow_mut().deliver_msi(source.0, address, data)
    }

    /// Interrupt requests the unit blocked.
    pub fn interrupts_blocked(&self) -> usize {
        self.0.borrow().interrupts_blocked
    }

    /// Whether interrupt remapping is on (GSTS.IRES).
    pub fn interrupt_remapping_enabled(&self) -> bool {
        self.0.borrow().gsts & (1 << 25) != 0
    }

    /// Everything the driver did, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.borrow().events.clone()
    }

    /// The invalidations executed, in order.
    pub fn invalidations(&self) -> Vec<Invalidation> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Invalidation(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    /// Forgets the events and the GSTS history so far.
    pub fn clear_events(&self) {
        let mut state = self.0.borrow_mut();
        state.events.clear();
        state.gsts_history.clear();
    }

    /// GSTS stops acknowledging GCMD (SRTP clears RTPS and never sets it).
    pub fn set_gsts_stuck(&self, stuck: bool) {
        self.0.borrow_mut().gsts_stuck = stuck;
    }

    /// The invalidation queue stops fetching descriptors.
    pub fn set_queue_stuck(&self, stuck: bool) {
        self.0.borrow_mut().queue_stuck = stuck;
    }

    /// The next descriptor fetched is rejected (FSTS.IQE), as hardware
    /// rejects one it finds malformed.
    pub fn reject_next_descriptor(&self) {
        self.0.borrow_mut().reject_next_descriptor = true;
    }

    /// At most `frames` more frames can be allocated (`None`: unlimited).
    pub fn set_frame_budget(&self, frames: Option<usize>) {
        self.0.borrow_mut().memory.budget = frames;
    }

    pub fn frames_in_use(&self) -> usize {
        self.0.borrow().memory.frames_in_use()
    }

    /// Total time the driver spent in [`ModelDelay`].
    pub fn elapsed_ns(&self) -> u64 {
        self.0.borrow().elapsed_ns
    }

    /// Register reads so far (writes are in [`Model::events`]).
    pub fn register_reads(&self) -> usize {
        self.0.borrow().register_reads
    }

    /// Why the queue set FSTS.IQE, one line per rejected descriptor.
    pub fn queue_errors(&self) -> Vec<String> {
        self.0.borrow().queue_errors.clone()
    }

    /// Fault events delivered as interrupts (FECTL.IM = 0).
    pub fn fault_interrupts(&self) -> usize {
        self.0.borrow().fault_interrupts
    }

    /// Faults dropped by compression or overflow.
    pub fn dropped_faults(&self) -> usize {
        self.0.borrow().dropped_faults
    }

    /// Raw fault recording register `index`: `(low, high)`.
    pub fn record(&self, index: usize) -> (u64, u64) {
        self.0.borrow().records[index]
    }

    /// FSTS as software reads it.
    pub fn fault_status(&self) -> u32 {
        self.0.borrow().read_fsts()
    }

    /// GSTS as it stood after each GCMD write so far, in order.
    pub fn gsts_history(&self) -> Vec<u32> {
        self.0.borrow().gsts_history.clone()
    }

    /// Whether translation is on (GSTS.TES).
    pub fn translation_enabled(&self) -> bool {
        self.0.borrow().gsts & (1 << 31) != 0
    }
}

/// The unit's register page.
pub struct ModelRegisters(Model);

impl Registers for ModelRegisters {
    fn read32(&mut self, offset: usize) -> u32 {
        self.0.0.borrow_mut().read(offset, 4) as u32
    }
    fn write32(&mut self, offset: usize, value: u32) {
        self.0.0.borrow_mut().write(offset, 4, u64::from(value));
    }
    fn read64(&mut self, offset: usize) -> u64 {
        self.0.0.borrow_mut().read(offset, 8)
    }
    fn write64(&mut self, offset: usize, value: u64) {
        self.0.0.borrow_mut().write(offset, 8, value);
    }
}

/// DMA memory shared with the unit.
pub struct ModelMemory(Model);

impl DmaMemory for ModelMemory {
    fn alloc_frame(&mut self) -> Option<u64> {
        self.0.0.borrow_mut().memory.alloc()
    }
    fn free_frame(&mut self, paddr: u64) {
        self.0.0.borrow_mut().memory.free(paddr);
    }
    fn read_u64(&mut self, paddr: u64) -> u64 {
        self.0.0.borrow().memory.cpu_read(paddr)
    }
    fn write_u64(&mut self, paddr: u64, value: u64) {
        self.0.0.borrow_mut().memory.cpu_write(paddr, value);
    }
    fn flush(&mut self, paddr: u64, len: usize) {
        self.0.0.borrow_mut().memory.flush(paddr, len);
    }
}

/// A delay that only counts the time asked for.
pub struct ModelDelay(Model);

impl DelayNs for ModelDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.0.borrow_mut().elapsed_ns += u64::from(ns);
    }
}
