//! The driver core for one remapping unit in legacy mode.
//!
//! [`Unit::bring_up`] takes a unit with translation off to: root table set
//! (GCMD.SRTP), queued invalidation on (GCMD.QIE), context cache and IOTLB
//! globally invalidated, translation on (GCMD.TE). Every root entry starts
//! not present, so every device faults until it is attached (default deny).
//! GCMD is write-only and every write replaces all enable bits, so each
//! command is written as GSTS's persistent bits plus the one being changed,
//! and each is followed by a bounded wait for GSTS to acknowledge it.
//!
//! [`Unit::attach`] gives a device its own domain (id and second-level
//! tables); [`Unit::map`] and [`Unit::unmap`] edit those tables. The rules
//! the hardware imposes on when to invalidate are all here:
//! - not present → present (attach, map): nothing needs invalidating unless
//!   CAP.CM says not-present entries may be cached; then the context cache
//!   (domain id 0) or the mapped pages are invalidated. Otherwise CAP.RWBF
//!   asks for a write-buffer flush.
//! - present → not present (unmap, detach): the IOTLB (page-selective where
//!   CAP.PSI allows, else domain-selective) and, for detach, the context
//!   cache are invalidated and waited for before the call returns.
//! - ECAP.C = 0: every table write is flushed from the CPU caches.

use embedded_hal::delay::DelayNs;
use faultline_vtd::regs::{self, FaultStatus, GlobalCommand, GlobalStatus};
use faultline_vtd::{AddressWidth, Capability, ExtendedCapability, Version};

use crate::entry::{self, ENTRY_BYTES};
use crate::error::{Error, Operation, Unsupported};
use crate::fault::{FaultRecord, FaultSummary, RECORD_FAULT};
use crate::hw::{DmaMemory, Mmio, Registers};
use crate::pagetable::{Access, LARGE_PAGE_SIZE, PAGE_SIZE, Probe, Tables};
use crate::queue::{self, Descriptor, MAX_BATCH, Queue};
use crate::source::SourceId;

/// Most devices one unit can have attached at a time.
pub const MAX_DOMAINS: usize = 64;
/// Above this many page-selective invalidations, one domain-selective
/// invalidation is cheaper.
const MAX_PAGE_INVALIDATIONS: usize = 16;

/// A domain id as the hardware tags context entries and IOTLB entries.
pub type DomainId = u16;

/// Bounds and machine facts the core cannot read from the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Host address width from the DMAR (HAW + 1): the highest physical
    /// address a PTE may name.
    pub host_address_width: u8,
    /// Bound on each GCMD→GSTS handshake, in microseconds.
    pub handshake_timeout_us: u32,
    /// Bound on each invalidation wait, in microseconds.
    pub invalidation_timeout_us: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host_address_width: 48,
            handshake_timeout_us: 10_000,
            invalidation_timeout_us: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Domain {
    source: SourceId,
    id: DomainId,
    tables: u64,
}

/// One VT-d unit driven in legacy mode.
pub struct Unit<R, M, D> {
    mmio: Mmio<R>,
    mem: M,
    delay: D,
    config: Config,
    version: Version,
    cap: Capability,
    ecap: ExtendedCapability,
    width: AddressWidth,
    root: u64,
    queue: Queue,
    domains: [Option<Domain>; MAX_DOMAINS],
}

impl<R: Registers, M: DmaMemory, D: DelayNs> Unit<R, M, D> {
    /// Brings the unit up with translation on and no device attached.
    pub fn bring_up(raw: R, mut mem: M, delay: D, config: Config) -> Result<Self, Error> {
        let mut mmio = Mmio::new(raw);
        let version = Version::from_register(mmio.read32(regs::VER));
        let cap = Capability(mmio.read(regs::CAP));
        let ecap = ExtendedCapability(mmio.read(regs::ECAP));
        if !ecap.queued_invalidation() {
            return Err(Error::Unsupported(Unsupported::QueuedInvalidation));
        }
        let widths = cap.supported_address_widths();
        let width = [AddressWidth::Bits48, AddressWidth::Bits39]
            .into_iter()
            .find(|w| widths.contains(w.flag()))
            .ok_or(Error::Unsupported(Unsupported::AddressWidth))?;
        let status = GlobalStatus::from_bits_retain(mmio.read32(regs::GSTS));
        if status.contains(GlobalStatus::TES) {
            return Err(Error::TranslationAlreadyOn);
        }
        let root = mem.alloc_frame().ok_or(Error::OutOfTableMemory)?;
        if !ecap.coherency() {
            mem.flush(root, PAGE_SIZE as usize);
        }
        let queue = Queue::new(&mut mem)?;
        let mut unit = Self {
            mmio,
            mem,
            delay,
            config,
            version,
            cap,
            ecap,
            width,
            root,
            queue,
            domains: [None; MAX_DOMAINS],
        };
        unit.mmio.write(regs::RTADDR, root);
        unit.command(GlobalCommand::SRTP, Operation::SetRootTable)?;
        unit.mmio.write(regs::IQT, 0);
        unit.mmio.write(regs::IQA, unit.queue.address_register());
        unit.command(GlobalCommand::QIE, Operation::EnableQueuedInvalidation)?;
        let drain = unit.drain_bits();
        unit.invalidate(&[
            Descriptor::context_global(),
            Descriptor::iotlb_global(drain),
        ])?;
        unit.command(GlobalCommand::TE, Operation::EnableTranslation)?;
        Ok(unit)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn capability(&self) -> Capability {
        self.cap
    }

    pub fn extended_capability(&self) -> ExtendedCapability {
        self.ecap
    }

    /// The second-level table depth every domain uses.
    pub fn address_width(&self) -> AddressWidth {
        self.width
    }

    /// IOVAs below `1 << domain_address_bits()` can be mapped.
    pub fn domain_address_bits(&self) -> u8 {
        self.width
            .address_bits()
            .min(self.cap.max_guest_address_width())
    }

    /// The DMA memory, for callers that share it with other users.
    pub fn memory(&mut self) -> &mut M {
        &mut self.mem
    }

    /// Writes GCMD = persistent enables + `cmd` and waits for GSTS to show it.
    fn command(&mut self, cmd: GlobalCommand, op: Operation) -> Result<(), Error> {
        let status = GlobalStatus::from_bits_retain(self.mmio.read32(regs::GSTS));
        let value = status.persistent_command() | cmd;
        self.mmio.write(regs::GCMD, u64::from(value.bits()));
        let done = |s: GlobalStatus| {
            if cmd == GlobalCommand::WBF {
                !s.contains(GlobalStatus::WBFS)
            } else {
                s.contains(cmd.status())
            }
        };
        for _ in 0..=self.config.handshake_timeout_us {
            if done(GlobalStatus::from_bits_retain(self.mmio.read32(regs::GSTS))) {
                return Ok(());
            }
            self.delay.delay_us(1);
        }
        Err(Error::Timeout(op))
    }

    fn invalidate(&mut self, batch: &[Descriptor]) -> Result<(), Error> {
        self.queue.submit(
            &mut self.mmio,
            &mut self.mem,
            &mut self.delay,
            self.config.invalidation_timeout_us,
            batch,
        )
    }

    fn drain_bits(&self) -> u64 {
        let mut bits = 0;
        if self.cap.read_draining() {
            bits |= queue::IOTLB_DRAIN_READS;
        }
        if self.cap.write_draining() {
            bits |= queue::IOTLB_DRAIN_WRITES;
        }
        bits
    }

    /// After a not-present → present edit with CAP.CM = 0: flush the write
    /// buffer if CAP.RWBF asks for it.
    fn flush_write_buffer(&mut self) -> Result<(), Error> {
        if self.cap.required_write_buffer_flush() {
            self.command(GlobalCommand::WBF, Operation::WriteBufferFlush)?;
        }
        Ok(())
    }

    fn write_entry(&mut self, paddr: u64, low: u64, high: u64) {
        // High first, so the present bit in the low qword appears last.
        self.mem.write_u64(paddr + 8, high);
        self.mem.write_u64(paddr, low);
        if !self.ecap.coherency() {
            self.mem.flush(paddr, ENTRY_BYTES as usize);
        }
    }

    fn slot_of(&self, source: SourceId) -> Option<usize> {
        self.domains
            .iter()
            .position(|d| d.is_some_and(|d| d.source == source))
    }

    fn domain(&self, source: SourceId) -> Result<Domain, Error> {
        self.slot_of(source)
            .and_then(|i| self.domains[i])
            .ok_or(Error::NotAttached)
    }

    /// The domain id `source` is attached with, if any.
    pub fn domain_of(&self, source: SourceId) -> Option<DomainId> {
        self.domain(source).ok().map(|d| d.id)
    }

    fn free_domain_id(&self) -> Option<DomainId> {
        // Id 0 is reserved when CAP.CM = 1 (it tags cached not-present
        // entries); never using it keeps one rule for both.
        let count = self.cap.domain_count().min(u32::from(u16::MAX) + 1);
        (1..count)
            .map(|id| id as DomainId)
            .find(|id| !self.domains.iter().flatten().any(|d| d.id == *id))
    }

    fn tables(&mut self, domain: &Domain) -> Tables<'_, M> {
        Tables {
            mem: &mut self.mem,
            root: domain.tables,
            levels: self.width.levels(),
            coherent: self.ecap.coherency(),
        }
    }

    /// Gives `source` a new domain with empty tables: from here on its DMA
    /// is translated (and faults until something is mapped).
    pub fn attach(&mut self, source: SourceId) -> Result<DomainId, Error> {
        if self.slot_of(source).is_some() {
            return Err(Error::AlreadyAttached);
        }
        let slot = self
            .domains
            .iter()
            .position(Option::is_none)
            .ok_or(Error::TooManyDomains)?;
        let id = self.free_domain_id().ok_or(Error::TooManyDomains)?;
        let root_slot = self.root + ENTRY_BYTES * u64::from(source.bus());
        let mut root_low = self.mem.read_u64(root_slot);
        let new_context_table = root_low & entry::PRESENT == 0;
        if new_context_table {
            let table = self.mem.alloc_frame().ok_or(Error::OutOfTableMemory)?;
            root_low = entry::root_entry(table).0;
        }
        let Some(tables) = self.mem.alloc_frame() else {
            if new_context_table {
                self.mem.free_frame(root_low & entry::POINTER_MASK);
            }
            return Err(Error::OutOfTableMemory);
        };
        let coherent = self.ecap.coherency();
        if !coherent {
            self.mem.flush(tables, PAGE_SIZE as usize);
        }
        if new_context_table {
            let table = root_low & entry::POINTER_MASK;
            if !coherent {
                self.mem.flush(table, PAGE_SIZE as usize);
            }
            self.write_entry(root_slot, root_low, 0);
        }
        let context = (root_low & entry::POINTER_MASK) + ENTRY_BYTES * u64::from(source.devfn());
        let (low, high) = entry::context_entry(tables, self.width.levels(), id);
        self.write_entry(context, low, high);
        self.domains[slot] = Some(Domain { source, id, tables });
        if self.cap.caching_mode() {
            let drain = self.drain_bits();
            self.invalidate(&[
                Descriptor::context_device(0, source.0),
                Descriptor::iotlb_domain(id, drain),
            ])?;
        } else {
            self.flush_write_buffer()?;
        }
        Ok(id)
    }

    /// Takes `source`'s domain away: its DMA faults again (context not
    /// present), the caches are invalidated before this returns, and the
    /// domain's tables are freed.
    pub fn detach(&mut self, source: SourceId) -> Result<(), Error> {
        let slot = self.slot_of(source).ok_or(Error::NotAttached)?;
        let Some(domain) = self.domains[slot] else {
            return Err(Error::NotAttached);
        };
        let root_low = self
            .mem
            .read_u64(self.root + ENTRY_BYTES * u64::from(source.bus()));
        let context = (root_low & entry::POINTER_MASK) + ENTRY_BYTES * u64::from(source.devfn());
        self.mem.write_u64(context, 0);
        self.mem.write_u64(context + 8, 0);
        if !self.ecap.coherency() {
            self.mem.flush(context, ENTRY_BYTES as usize);
        }
        let drain = self.drain_bits();
        self.invalidate(&[
            Descriptor::context_device(domain.id, source.0),
            Descriptor::iotlb_domain(domain.id, drain),
        ])?;
        self.domains[slot] = None;
        self.tables(&domain).free_all();
        Ok(())
    }

    fn check_range(&self, iova: u64, len: u64) -> Result<u64, Error> {
        if len == 0 || !iova.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Misaligned);
        }
        let end = iova.checked_add(len).ok_or(Error::OutOfRange)?;
        if end > 1u64 << self.domain_address_bits() {
            return Err(Error::OutOfRange);
        }
        Ok(end)
    }

    /// Maps `iova..iova + len` of `source`'s domain to `paddr..paddr + len`
    /// with `access`, using 2 MiB pages where both addresses are aligned and
    /// CAP.SLLPS allows. All or nothing: on error nothing is mapped. When it
    /// returns `Ok`, the device can DMA there.
    pub fn map(
        &mut self,
        source: SourceId,
        iova: u64,
        paddr: u64,
        len: u64,
        access: Access,
    ) -> Result<(), Error> {
        let domain = self.domain(source)?;
        let end = self.check_range(iova, len)?;
        if !paddr.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Misaligned);
        }
        let paddr_end = paddr.checked_add(len).ok_or(Error::OutOfRange)?;
        if paddr_end > 1u64 << self.config.host_address_width {
            return Err(Error::OutOfRange);
        }
        if access.is_empty() {
            return Err(Error::NoAccess);
        }
        let large = self
            .cap
            .second_level_large_pages()
            .contains(faultline_vtd::LargePageSizes::SIZE_2M);
        let mut tables = self.tables(&domain);
        let mut at = iova;
        while at < end {
            match tables.probe(at) {
                Probe::Leaf { base, .. } => {
                    return Err(Error::Overlap {
                        iova: base.max(iova),
                    });
                }
                Probe::Hole { base, size } => at = base + size,
            }
        }
        let mut at = iova;
        let mut result = Ok(());
        while at < end {
            let target = paddr + (at - iova);
            let use_large = large
                && at.is_multiple_of(LARGE_PAGE_SIZE)
                && target.is_multiple_of(LARGE_PAGE_SIZE)
                && end - at >= LARGE_PAGE_SIZE
                && matches!(tables.probe(at), Probe::Hole { size, .. } if size >= LARGE_PAGE_SIZE);
            let (level, size) = if use_large {
                (2, LARGE_PAGE_SIZE)
            } else {
                (1, PAGE_SIZE)
            };
            if let Err(e) = tables.set_leaf(at, target, level, access) {
                result = Err(e);
                break;
            }
            at += size;
        }
        if let Err(e) = result {
            if at > iova {
                tables.clear(iova, at);
                self.invalidate_pages(domain.id, iova, at)?;
            }
            return Err(e);
        }
        if self.cap.caching_mode() {
            self.invalidate_pages(domain.id, iova, end)
        } else {
            self.flush_write_buffer()
        }
    }

    /// Unmaps `iova..iova + len` of `source`'s domain. Every page in the
    /// range must be mapped, and the range must not end inside a 2 MiB
    /// page. All or nothing; when it returns `Ok`, the IOTLB no longer
    /// holds the range and the device's DMA there faults. If the
    /// invalidation itself fails (`Timeout`, `InvalidationQueueError`) the
    /// tables no longer map the range but the IOTLB may: the frames must
    /// not be reused, and the service treats the unit as failed.
    pub fn unmap(&mut self, source: SourceId, iova: u64, len: u64) -> Result<(), Error> {
        let domain = self.domain(source)?;
        let end = self.check_range(iova, len)?;
        let mut tables = self.tables(&domain);
        let mut at = iova;
        while at < end {
            match tables.probe(at) {
                Probe::Hole { .. } => return Err(Error::NotMapped { iova: at }),
                Probe::Leaf { base, size, .. } => {
                    if base < iova || base + size > end {
                        return Err(Error::SplitsLargePage { iova: base });
                    }
                    at = base + size;
                }
            }
        }
        tables.clear(iova, end);
        self.invalidate_pages(domain.id, iova, end)
    }

    /// What `source`'s tables map `iova` to, as the driver wrote them.
    pub fn lookup(&mut self, source: SourceId, iova: u64) -> Result<Option<(u64, Access)>, Error> {
        let domain = self.domain(source)?;
        Ok(match self.tables(&domain).probe(iova) {
            Probe::Leaf {
                base,
                paddr,
                access,
                ..
            } => Some((paddr + (iova - base), access)),
            Probe::Hole { .. } => None,
        })
    }

    /// Invalidates `domain`'s IOTLB entries for `start..end`: page-selective
    /// blocks when CAP.PSI allows and there are few, else domain-selective.
    fn invalidate_pages(&mut self, domain: DomainId, start: u64, end: u64) -> Result<(), Error> {
        let drain = self.drain_bits();
        let mut batch = [Descriptor::iotlb_domain(domain, drain); MAX_PAGE_INVALIDATIONS];
        let mut count = 0;
        if self.cap.page_selective_invalidation() {
            let blocks =
                queue::page_blocks(start, end, self.cap.max_address_mask(), |iova, mask| {
                    if count < MAX_PAGE_INVALIDATIONS {
                        batch[count] = Descriptor::iotlb_pages(domain, iova, mask, drain);
                    }
                    count += 1;
                });
            if blocks > MAX_PAGE_INVALIDATIONS {
                count = 0;
            }
        }
        if count == 0 {
            batch[0] = Descriptor::iotlb_domain(domain, drain);
            count = 1;
        }
        const _: () = assert!(MAX_PAGE_INVALIDATIONS <= MAX_BATCH);
        self.invalidate(&batch[..count])
    }

    /// Reads, clears and hands to `sink` every pending fault record, from
    /// FSTS.FRI on, then clears FSTS.PFO if it was set.
    pub fn drain_faults(&mut self, mut sink: impl FnMut(FaultRecord)) -> FaultSummary {
        let mut summary = FaultSummary::default();
        let status = FaultStatus::from_bits_retain(self.mmio.read32(regs::FSTS));
        let count = usize::from(self.cap.fault_recording_count());
        if status.contains(FaultStatus::PPF) {
            let first = usize::from(status.fault_record_index()) % count;
            for i in 0..count {
                let record =
                    regs::fault_record(self.cap.fault_recording_offset(), (first + i) % count);
                let high = self.mmio.read(record.high);
                if high & RECORD_FAULT == 0 {
                    break;
                }
                let low = self.mmio.read(record.low);
                self.mmio.write(record.status, 1 << 31);
                if let Some(fault) = FaultRecord::decode(low, high) {
                    summary.records += 1;
                    sink(fault);
                }
            }
        }
        if status.contains(FaultStatus::PFO) {
            self.mmio
                .write(regs::FSTS, u64::from(FaultStatus::PFO.bits()));
            summary.overflow = true;
        }
        summary
    }

    /// Programs the fault event interrupt (the MSI address and data the
    /// kernel granted) and unmasks it.
    pub fn enable_fault_interrupt(&mut self, address: u32, data: u16) {
        self.mmio.write(regs::FEDATA, u64::from(data));
        self.mmio.write(regs::FEADDR, u64::from(address & !3));
        self.mmio.write(regs::FEUADDR, 0);
        self.mmio.write(regs::FECTL, 0);
    }
}
