//! The driver core for one remapping unit, in legacy or scalable mode.
//!
//! [`Unit::bring_up`] takes a unit with translation off to: root table set
//! (GCMD.SRTP), queued invalidation on (GCMD.QIE), context cache (PASID
//! cache in scalable mode) and IOTLB globally invalidated, translation on
//! (GCMD.TE). Every root entry starts not present, so every device faults
//! until it is attached (default deny). A unit an earlier instance left
//! translating ([`Config::take_over`]) never has TE cleared: its queue is
//! drained and re-pointed (QIE off, IQA, QIE on), then the new root table
//! is set with SRTP while TE stays on, followed by the same global
//! invalidations; from then on every device faults as after a fresh
//! bring-up.
//! GCMD is write-only and every write replaces all enable bits, so each
//! command is written as GSTS's persistent bits plus the one being changed,
//! and each is followed by a bounded wait for GSTS to acknowledge it.
//!
//! [`Unit::attach`] gives a device its own domain (id and second-level
//! tables; the mode-specific context structures are in `context`);
//! [`Unit::map`] and [`Unit::unmap`] edit those tables. The rules
//! the hardware imposes on when to invalidate are all here:
//! - not present → present (attach, map): nothing needs invalidating unless
//!   CAP.CM says not-present entries may be cached; then the context cache
//!   (domain id 0) or the mapped pages are invalidated. Otherwise CAP.RWBF
//!   asks for a write-buffer flush.
//! - present → not present (unmap, detach): the IOTLB (page-selective where
//!   CAP.PSI allows, else domain-selective) and, for detach, the context
//!   cache (and in scalable mode the PASID cache) are invalidated and
//!   waited for before the call returns.
//! - ECAP.C = 0: every table write is flushed from the CPU caches.
//!
//! [`Unit::enable_interrupt_remapping`] (in `interrupts`) adds the
//! interrupt remapping table: IRTA, GCMD.SIRTP, a global interrupt entry
//! cache invalidation, then GCMD.IRE, with GCMD.CFI left clear.
//!
//! [`Unit::enable_page_requests`] (in `prq`) adds the page request queue
//! (PQH/PQT/PQA, PRS, the page request event), which
//! [`Unit::read_page_requests`] reads, [`Unit::page_group_response`]
//! answers through the invalidation queue, and
//! [`Unit::drain_page_requests`] drains when a device goes away.

use embedded_hal::delay::DelayNs;
use faultline_vtd::regs::{self, GlobalCommand, GlobalStatus};
use faultline_vtd::{AddressWidth, Capability, ExtendedCapability, TranslationMode, Version};

use crate::entry::{self, ENTRY_BYTES};
use crate::error::{Error, Operation, Unsupported};
use crate::hw::{DmaMemory, Mmio, Registers};
use crate::pagetable::PAGE_SIZE;
use crate::queue::{self, Descriptor, Queue};
use crate::source::SourceId;

mod context;
mod domains;
mod faults;
mod interrupts;
mod prq;

pub use domains::Leaves;
pub use prq::MAX_DRAIN_ROUNDS;

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
    /// Legacy or scalable mode (second-level tables either way).
    pub mode: TranslationMode,
    /// A unit found translating (GSTS.TES: an earlier instance of the
    /// IOMMU service set it up and stopped) is taken over instead of
    /// refused with [`Error::TranslationAlreadyOn`]: translation stays on
    /// while this instance's queue, empty root table and (see
    /// `enable_interrupt_remapping`) interrupt remapping table replace the
    /// earlier ones, so every device is blocked from the SRTP on. Its old
    /// tables are never read. The spec lets software replace the root
    /// table while translation is on provided in-flight DMA is remapped
    /// deterministically; Faultline's kernel turned bus mastering off on
    /// every function the stopped service had vouched for, so there is none.
    pub take_over: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host_address_width: 48,
            handshake_timeout_us: 10_000,
            invalidation_timeout_us: 10_000,
            mode: TranslationMode::Legacy,
            take_over: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Domain {
    source: SourceId,
    id: DomainId,
    tables: u64,
    /// Scalable mode: the device's PASID directory and PASID table.
    pasid: Option<(u64, u64)>,
}

/// One VT-d unit driven in legacy or scalable mode.
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
    /// The interrupt remapping table and its mode, once remapping is on.
    interrupts: Option<(u64, crate::interrupt::InterruptMode)>,
    /// The page request queue's frame, once enabled (`prq`).
    page_requests: Option<u64>,
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
        if config.mode == TranslationMode::Scalable && !ecap.scalable_second_level_supported() {
            return Err(Error::Unsupported(Unsupported::ScalableMode));
        }
        let widths = cap.supported_address_widths();
        let width = [AddressWidth::Bits48, AddressWidth::Bits39]
            .into_iter()
            .find(|w| widths.contains(w.flag()))
            .ok_or(Error::Unsupported(Unsupported::AddressWidth))?;
        let status = GlobalStatus::from_bits_retain(mmio.read32(regs::GSTS));
        if status.contains(GlobalStatus::TES) && !config.take_over {
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
            interrupts: None,
            page_requests: None,
        };
        let ttm = match config.mode {
            TranslationMode::Legacy => 0,
            TranslationMode::Scalable => entry::RTADDR_SCALABLE,
        };
        unit.stop_queue(status)?;
        if status.contains(GlobalStatus::TES) {
            // Take-over: translation stays on. The queue comes first so the
            // invalidations the new root table needs follow SRTP at once.
            unit.start_queue()?;
            unit.mmio.write(regs::RTADDR, root | ttm);
            unit.command(GlobalCommand::SRTP, Operation::SetRootTable)?;
            unit.invalidate_root_caches()?;
        } else {
            unit.mmio.write(regs::RTADDR, root | ttm);
            unit.command(GlobalCommand::SRTP, Operation::SetRootTable)?;
            unit.start_queue()?;
            unit.invalidate_root_caches()?;
            unit.command(GlobalCommand::TE, Operation::EnableTranslation)?;
        }
        Ok(unit)
    }

    /// The mode the unit was brought up in.
    pub fn mode(&self) -> TranslationMode {
        self.config.mode
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

    /// Turns off queued invalidation where an earlier instance left it on,
    /// once its queue has run dry (software may not disable it with work
    /// pending, and the queue address it latched can only be replaced by
    /// enabling it again). Translation is left as it is.
    fn stop_queue(&mut self, status: GlobalStatus) -> Result<(), Error> {
        if !status.contains(GlobalStatus::QIES) {
            return Ok(());
        }
        let mut drained = false;
        for _ in 0..=self.config.invalidation_timeout_us {
            if self.mmio.read(regs::IQH) == self.mmio.read(regs::IQT) {
                drained = true;
                break;
            }
            self.delay.delay_us(1);
        }
        if !drained {
            return Err(Error::Timeout(Operation::DisableQueuedInvalidation));
        }
        self.disable(GlobalCommand::QIE, Operation::DisableQueuedInvalidation)
    }

    /// Points IQA at this instance's queue (with IQT = 0, as enabling
    /// needs) and turns queued invalidation on.
    fn start_queue(&mut self) -> Result<(), Error> {
        self.mmio.write(regs::IQT, 0);
        self.mmio.write(regs::IQA, self.queue.address_register());
        self.command(GlobalCommand::QIE, Operation::EnableQueuedInvalidation)
    }

    /// What the spec asks after every SRTP: global context-cache, then (in
    /// scalable mode) PASID-cache, then IOTLB invalidation, waited for, so
    /// nothing cached from an earlier root table is used again.
    fn invalidate_root_caches(&mut self) -> Result<(), Error> {
        let drain = self.drain_bits();
        if self.config.mode == TranslationMode::Scalable {
            self.invalidate(&[
                Descriptor::context_global(),
                Descriptor::pasid_global(),
                Descriptor::iotlb_global(drain),
            ])
        } else {
            self.invalidate(&[
                Descriptor::context_global(),
                Descriptor::iotlb_global(drain),
            ])
        }
    }

    /// Writes GCMD = persistent enables without `enable` and waits for GSTS
    /// to show it off.
    fn disable(&mut self, enable: GlobalCommand, op: Operation) -> Result<(), Error> {
        let status = GlobalStatus::from_bits_retain(self.mmio.read32(regs::GSTS));
        let value = status.persistent_command().difference(enable);
        self.mmio.write(regs::GCMD, u64::from(value.bits()));
        for _ in 0..=self.config.handshake_timeout_us {
            let now = GlobalStatus::from_bits_retain(self.mmio.read32(regs::GSTS));
            if !now.contains(enable.status()) {
                return Ok(());
            }
            self.delay.delay_us(1);
        }
        Err(Error::Timeout(op))
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
}
