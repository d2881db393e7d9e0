//! Discovering the machine: ACPI, time, interrupts, PCI and the VT-d units.
//!
//! Nothing about the machine is assumed: the LAPIC comes from the MADT (or
//! x2APIC), the ECAM windows from the MCFG, the VT-d register bases from the
//! DMAR, and the devices from a PCI scan through ECAM. The result is a
//! [`Machine`], which the boot report prints.

use crate::acpi::{self, AcpiTables, PhysMemory};
use crate::arch::{apic, cpu, interrupts, tsc};
use crate::cmdline::Options;
use crate::memory::{self, MemorySummary};
use crate::pci::{self, Bdf, ConfigSpace};
use core::fmt;
use faultline_boot::BootInfo;
use faultline_ipc::harness::ExitCode;
use hermit_sync::{InterruptSpinMutex, OnceCell};

/// Most VT-d units the kernel keeps track of.
pub const MAX_VTD_UNITS: usize = 8;
/// The LAPIC timer's rate while the boot report checks it.
pub const TIMER_HZ: u32 = 1000;
/// LAPIC timer counts per millisecond, once calibrated.
static TIMER_COUNTS_PER_MS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Reprograms the periodic timer to fire every `ms` milliseconds.
pub fn set_timer_period_ms(ms: u32) {
    let per_ms = TIMER_COUNTS_PER_MS.load(core::sync::atomic::Ordering::Relaxed);
    apic::start_periodic(per_ms.saturating_mul(ms));
}
/// Timer ticks counted to check the timer against the TSC.
const TIMER_CHECK_TICKS: u64 = 3;
/// How long the LAPIC timer is measured against the TSC when no CPUID
/// leaf gives its rate.
const TIMER_WINDOW_NS: u32 = 1_000_000;

static ACPI: OnceCell<AcpiTables> = OnceCell::new();
/// The PCI functions found at boot. Kept in a static: the list is ~23 KiB.
static PCI_FUNCTIONS: InterruptSpinMutex<PciList> = InterruptSpinMutex::new(heapless::Vec::new());

/// Every PCI function the boot scan found.
pub type PciList = heapless::Vec<pci::Function, { pci::MAX_FUNCTIONS }>;

/// One VT-d remapping hardware unit, as the DMAR describes it. The kernel
/// only finds units and grants their registers; reading and driving them
/// is the IOMMU service's.
#[derive(Clone, Copy, Debug)]
pub struct VtdUnit {
    pub index: usize,
    pub drhd: acpi::Drhd,
}

/// The timers, as calibrated.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub tsc_hz: u64,
    /// What gave the TSC frequency.
    pub tsc_source: crate::tscfreq::Source,
    /// Whether the LAPIC timer's rate came from CPUID (else: measured).
    pub timer_rate_from_cpuid: bool,
    pub lapic_mode: apic::Mode,
    pub lapic_id: u32,
    pub lapic_version: u32,
    /// LAPIC timer counts (divide-by-16) per millisecond.
    pub timer_counts_per_ms: u32,
    /// TSC cycles that [`TIMER_CHECK_TICKS`] timer ticks took.
    pub check_cycles: u64,
    pub check_ticks: u64,
}

/// Everything discovery found.
pub struct Machine {
    pub features: cpu::Features,
    pub acpi: &'static AcpiTables,
    pub timing: Timing,
    pub memory: MemorySummary,
    /// The scan's outcome; the functions are in [`with_pci`].
    pub pci: Result<usize, pci::PciError>,
    pub vtd: heapless::Vec<VtdUnit, MAX_VTD_UNITS>,
    /// VT-d units past [`MAX_VTD_UNITS`] or whose registers could not be mapped.
    pub vtd_errors: heapless::Vec<(u64, memory_error::MapErrorText), MAX_VTD_UNITS>,
}

mod memory_error {
    /// A map error, kept as text for the report.
    pub type MapErrorText = heapless::String<96>;
}

impl Machine {
    /// Whether the machine has an IOMMU Faultline can drive; if not, why.
    pub fn iommu_verdict(&self) -> Result<(), NoIommu> {
        if !self.vtd.is_empty() {
            return Ok(());
        }
        let rejected = self
            .acpi
            .rejected
            .iter()
            .find(|(s, _)| *s == acpi::Signature::DMAR);
        Err(match (&self.acpi.dmar, rejected) {
            (_, Some((_, e))) => NoIommu::DmarRejected(*e),
            (None, None) => NoIommu::NoDmar,
            (Some(_), None) => NoIommu::NoUsableUnit,
        })
    }
}

/// Why the machine has no usable IOMMU.
#[derive(Clone, Copy, Debug)]
pub enum NoIommu {
    NoDmar,
    DmarRejected(acpi::AcpiError),
    NoUsableUnit,
}

impl fmt::Display for NoIommu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDmar => write!(f, "no IOMMU: the firmware has no DMAR table"),
            Self::DmarRejected(e) => write!(f, "no IOMMU: the DMAR table was rejected: {e}"),
            Self::NoUsableUnit => write!(f, "no IOMMU: the DMAR lists no usable DRHD unit"),
        }
    }
}

/// Why discovery could not finish.
#[derive(Debug)]
pub enum PlatformError {
    NoRsdp,
    Acpi(acpi::AcpiError),
    Tsc,
    LapicMap(crate::mm::MapError),
}

impl PlatformError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::BootFailure
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRsdp => write!(f, "the boot loader passed no ACPI RSDP address"),
            Self::Acpi(e) => write!(f, "ACPI: {e}"),
            Self::Tsc => write!(f, "the TSC frequency is unknown (calibration did not run)"),
            Self::LapicMap(e) => write!(f, "mapping the xAPIC registers: {e}"),
        }
    }
}

/// ACPI tables reached through read-only firmware mappings.
struct Firmware;

impl PhysMemory for Firmware {
    fn read(&self, paddr: u64, len: usize) -> Result<&[u8], acpi::AcpiError> {
        let virt = memory::map_firmware(paddr, len as u64)
            .map_err(|_| acpi::AcpiError::unreadable(paddr, len))?;
        // SAFETY: `map_firmware` mapped every page of [paddr, paddr + len)
        // readable at `virt`, permanently; firmware tables are never written
        // by Faultline, so a shared slice of them stays valid.
        Ok(unsafe { core::slice::from_raw_parts(virt as *const u8, len) })
    }
}

/// Finds out what the machine is.
pub fn discover(info: &BootInfo, options: &Options) -> Result<Machine, PlatformError> {
    let features = cpu::features();
    let rsdp = info.rsdp_paddr.ok_or(PlatformError::NoRsdp)?;
    log::debug!("acpi: RSDP at {rsdp:#x}");
    let tables = acpi::parse(&Firmware, rsdp).map_err(PlatformError::Acpi)?;
    log::debug!("acpi: {} tables", tables.tables.len());
    let tables = ACPI.get_or_init(|| tables);
    for (sig, e) in &tables.rejected {
        log::error!("ACPI: rejected {sig}: {e}");
    }
    if options.acpi_dump {
        dump_acpi(rsdp, tables);
    }

    let timing = calibrate_time(&features, tables, options)?;
    let pci = scan_pci(tables, &mut PCI_FUNCTIONS.lock());
    let mut vtd = heapless::Vec::new();
    let mut vtd_errors = heapless::Vec::new();
    if let Some(dmar) = &tables.dmar {
        for (index, drhd) in dmar.drhds.iter().enumerate() {
            match read_vtd_unit(index, drhd) {
                Ok(unit) => {
                    if vtd.push(unit).is_err() {
                        let _ = vtd_errors.push((
                            drhd.register_base,
                            "too many units".try_into().unwrap_or_default(),
                        ));
                    }
                }
                Err(e) => {
                    let mut text = heapless::String::new();
                    let _ = fmt::write(&mut text, format_args!("{e}"));
                    let _ = vtd_errors.push((drhd.register_base, text));
                }
            }
        }
    }
    let _ = VTD_UNITS.set(
        vtd.iter()
            .map(|u: &VtdUnit| (u.drhd.register_base, (1u64 << u.drhd.size.min(4)) * 4096))
            .collect(),
    );
    Ok(Machine {
        features,
        acpi: tables,
        timing,
        memory: memory::summary(),
        pci,
        vtd,
        vtd_errors,
    })
}

fn calibrate_time(
    features: &cpu::Features,
    tables: &AcpiTables,
    options: &Options,
) -> Result<Timing, PlatformError> {
    let freq = tsc::frequency().ok_or(PlatformError::Tsc)?;
    let tsc_hz = freq.tsc_hz;
    log::debug!(
        "time: TSC {tsc_hz} Hz ({}); {:x?}",
        freq.source,
        tsc::cpuid_clock()
    );
    let x2apic = features.x2apic && !options.force_xapic;
    let xapic_phys = tables
        .madt
        .as_ref()
        .map(|m| m.local_apic_address)
        .unwrap_or_else(apic::xapic_phys_base);
    let xapic_virt = if x2apic {
        0
    } else {
        memory::map_mmio(xapic_phys, 4096).map_err(PlatformError::LapicMap)?
    };
    let lapic_mode = apic::init(x2apic, xapic_virt);
    log::debug!("time: LAPIC {lapic_mode:?}");
    // The timer counts its input clock divided by 16.
    let per_ms = match freq.lapic_hz {
        Some(hz) => (hz / 16 / 1000).clamp(1, u64::from(u32::MAX)) as u32,
        None => {
            let counts = apic::measure_timer(|| {
                use embedded_hal::delay::DelayNs;
                tsc::TscDelay.delay_ns(TIMER_WINDOW_NS);
            });
            log::debug!("time: LAPIC timer {counts} counts in {TIMER_WINDOW_NS} ns");
            (u64::from(counts) * 1_000_000 / u64::from(TIMER_WINDOW_NS)).max(1) as u32
        }
    };
    TIMER_COUNTS_PER_MS.store(per_ms, core::sync::atomic::Ordering::Relaxed);
    apic::start_periodic(per_ms * 1000 / TIMER_HZ);

    // Let the timer tick with interrupts on, halting in between: the idle
    // loop's shape. The kernel otherwise runs with interrupts disabled.
    let first = interrupts::ticks();
    let start = tsc::read();
    let deadline = start + tsc_hz; // one second is far beyond 10 ticks
    // SAFETY: the IDT handles every vector and the LAPIC timer is the only
    // interrupt source enabled; interrupts are disabled again below.
    unsafe { x86::irq::enable() };
    while interrupts::ticks() - first < TIMER_CHECK_TICKS && tsc::read() < deadline {
        // SAFETY: halting with interrupts enabled waits for the next tick.
        unsafe { x86::halt() };
    }
    // SAFETY: back to the kernel's interrupts-off discipline.
    unsafe { x86::irq::disable() };
    Ok(Timing {
        tsc_hz,
        tsc_source: freq.source,
        timer_rate_from_cpuid: freq.lapic_hz.is_some(),
        lapic_mode,
        lapic_id: apic::id(),
        lapic_version: apic::version(),
        timer_counts_per_ms: per_ms,
        check_cycles: tsc::read() - start,
        check_ticks: interrupts::ticks() - first,
    })
}

/// PCI configuration space through one ECAM window.
struct Ecam {
    virt: u64,
    start_bus: u8,
    end_bus: u8,
}

impl Ecam {
    fn address(&self, bdf: Bdf, offset: u16) -> Option<u64> {
        if bdf.bus < self.start_bus
            || bdf.bus > self.end_bus
            || offset >= 4096
            || !offset.is_multiple_of(4)
        {
            return None;
        }
        let bus = u64::from(bdf.bus - self.start_bus);
        Some(
            self.virt
                + (bus << 20)
                + (u64::from(bdf.device) << 15)
                + (u64::from(bdf.function) << 12)
                + u64::from(offset),
        )
    }
}

impl ConfigSpace for Ecam {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match self.address(bdf, offset) {
            // SAFETY: the whole ECAM window was mapped uncached at `virt`,
            // and `address` keeps the access inside it, dword-aligned.
            Some(a) => unsafe { core::ptr::read_volatile(a as *const u32) },
            None => u32::MAX,
        }
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(a) = self.address(bdf, offset) {
            // SAFETY: as for `read32`; config writes go only where the PCI
            // code decides (BAR sizing, which restores what it changes).
            unsafe { core::ptr::write_volatile(a as *mut u32, value) }
        }
    }
}

impl Ecam {
    /// A 1- or 2-byte write at its own width (ECAM allows it), so that
    /// neighbouring write-1-to-clear bits are never written back.
    fn write_narrow(&self, bdf: Bdf, offset: u16, width: u8, value: u32) {
        let Some(a) = self.address(bdf, offset & !3) else {
            return;
        };
        let a = a + u64::from(offset & 3);
        match width {
            // SAFETY: inside the mapped window as for `read32`, naturally
            // aligned (the caller checked `offset % width == 0`).
            1 => unsafe { core::ptr::write_volatile(a as *mut u8, value as u8) },
            // SAFETY: as above.
            _ => unsafe { core::ptr::write_volatile(a as *mut u16, value as u16) },
        }
    }
}

/// Runs `f` over the PCI functions found at boot.
pub fn with_pci<R>(f: impl FnOnce(&PciList) -> R) -> R {
    f(&PCI_FUNCTIONS.lock())
}

fn scan_pci(tables: &AcpiTables, out: &mut PciList) -> Result<usize, pci::PciError> {
    let Some(region) = tables
        .mcfg
        .as_ref()
        .and_then(|m| m.regions.iter().find(|r| r.segment == 0))
    else {
        log::warn!("pci: no MCFG ECAM window for segment 0; not scanning");
        return Ok(0);
    };
    let buses = u64::from(region.end_bus - region.start_bus) + 1;
    let first = region.base + (u64::from(region.start_bus) << 20);
    let virt = match memory::map_mmio_window(first, buses << 20) {
        Ok(v) => v,
        Err(e) => {
            log::error!("pci: cannot map ECAM at {first:#x}: {e}");
            return Ok(0);
        }
    };
    let mut ecam = Ecam {
        virt,
        start_bus: region.start_bus,
        end_bus: region.end_bus,
    };
    let result =
        pci::enumerate_into(&mut ecam, region.start_bus..=region.end_bus, out).map(|()| out.len());
    let _ = ECAM.set(ecam);
    result
}

/// Segment 0's ECAM window, once mapped.
static ECAM: OnceCell<Ecam> = OnceCell::new();

/// Reads `width` (1, 2 or 4) bytes of a function's config space; all-ones
/// if there is no ECAM or no such function.
pub fn pci_config_read(bdf: Bdf, offset: u16, width: u8) -> u32 {
    let Some(ecam) = ECAM.get() else {
        return u32::MAX;
    };
    let dword = ecam.read32(bdf, offset & !3);
    let shift = u32::from(offset & 3) * 8;
    match width {
        1 => (dword >> shift) & 0xff,
        2 => (dword >> shift) & 0xffff,
        _ => dword,
    }
}

/// Writes `width` (1, 2 or 4) bytes of a function's config space at that
/// width; `offset` must be a multiple of `width`.
pub fn pci_config_write(bdf: Bdf, offset: u16, width: u8, value: u32) {
    let Some(ecam) = ECAM.get() else {
        return;
    };
    if !offset.is_multiple_of(u16::from(width.max(1))) {
        return;
    }
    match width {
        1 | 2 => ecam.write_narrow(bdf, offset, width, value),
        _ => Ecam {
            virt: ecam.virt,
            start_bus: ecam.start_bus,
            end_bus: ecam.end_bus,
        }
        .write32(bdf, offset, value),
    }
}

/// The VT-d units found at boot: `(register base, register bytes)`.
static VTD_UNITS: OnceCell<heapless::Vec<(u64, u64), MAX_VTD_UNITS>> = OnceCell::new();

/// The register window of VT-d unit `unit`, if it exists.
pub fn vtd_unit(unit: u8) -> Option<(u64, u64)> {
    VTD_UNITS.get()?.get(usize::from(unit)).copied()
}

/// The DMAR entry (DRHD) of VT-d unit `unit` (its number in grants).
fn vtd_drhd(unit: u8) -> Option<&'static acpi::Drhd> {
    let (base, _) = vtd_unit(unit)?;
    ACPI.get()?
        .dmar
        .as_ref()?
        .drhds
        .iter()
        .find(|d| d.register_base == base)
}

/// What the DMAR says of unit `unit`: host address width in bits,
/// segment, INCLUDE_PCI_ALL.
pub fn vtd_info(unit: u8) -> Option<(u8, u16, bool)> {
    let drhd = vtd_drhd(unit)?;
    let haw = ACPI.get()?.dmar.as_ref()?.address_width_bits();
    Some((
        u8::try_from(haw).unwrap_or(u8::MAX),
        drhd.segment,
        drhd.flags.contains(acpi::DrhdFlags::INCLUDE_PCI_ALL),
    ))
}

/// The VT-d unit (its number in grants) whose scope covers function `bdf`
/// of segment 0 (the only segment Faultline scans).
pub fn vtd_unit_of(bdf: Bdf) -> Option<u8> {
    let dmar = ACPI.get()?.dmar.as_ref()?;
    let bridge =
        |b: Bdf| with_pci(|functions| functions.iter().find(|f| f.bdf == b).and_then(|f| f.bridge));
    let index = dmar.unit_for(
        0,
        bdf,
        |b| bridge(b).map(|buses| buses.secondary),
        |b| bridge(b).map(|buses| (buses.secondary, buses.subordinate)),
    )?;
    let base = dmar.drhds.get(index)?.register_base;
    let units = VTD_UNITS.get()?;
    units
        .iter()
        .position(|(b, _)| *b == base)
        .and_then(|i| u8::try_from(i).ok())
}

fn read_vtd_unit(index: usize, drhd: &acpi::Drhd) -> Result<VtdUnit, &'static str> {
    if drhd.register_base == 0 || !drhd.register_base.is_multiple_of(4096) {
        return Err("register base is not page-aligned");
    }
    Ok(VtdUnit { index, drhd: *drhd })
}

/// Prints the RSDP, the root table and every table as hex, one line each,
/// for `cargo xtask capture-acpi`.
fn dump_acpi(rsdp: u64, tables: &AcpiTables) {
    let rsdp_len = if tables.rsdp_revision >= 2 { 36 } else { 20 };
    dump_one("RSD PTR ", rsdp, rsdp_len);
    dump_one(
        &signature_text(tables.root.signature),
        tables.root.paddr,
        tables.root.length as usize,
    );
    for t in &tables.tables {
        dump_one(&signature_text(t.signature), t.paddr, t.length as usize);
    }
}

fn signature_text(sig: acpi::Signature) -> heapless::String<16> {
    let mut s = heapless::String::new();
    let _ = fmt::write(&mut s, format_args!("{sig}"));
    s
}

fn dump_one(sig: &str, paddr: u64, len: usize) {
    let Ok(bytes) = Firmware.read(paddr, len) else {
        log::warn!("acpi.dump: cannot read {sig} at {paddr:#x}");
        return;
    };
    crate::console::report(|out| {
        let _ = write!(out, "ACPI-DUMP ");
        for c in sig.chars() {
            let _ = out.write_char(if c == ' ' { '_' } else { c });
        }
        let _ = write!(out, " {paddr:#x} ");
        for b in bytes {
            let _ = write!(out, "{b:02x}");
        }
        let _ = writeln!(out);
    });
}

/// The physical ranges no MMIO grant may touch, as the firmware describes
/// the machine: RAM from the memory map (which holds the kernel image), the
/// local APIC's 1 MiB interrupt window, the I/O APICs (MADT), the HPET, the
/// ECAM windows (MCFG) and every VT-d unit (DMAR).
pub fn machine_map() -> crate::kern::grants::MachineMap {
    use crate::kern::grants::{MachineMap, Reserved};
    use faultline_boot::MemoryKind;
    let mut map = MachineMap::default();
    memory::with(|m| {
        for r in m.map.regions() {
            if !matches!(r.kind, MemoryKind::Reserved | MemoryKind::Disabled) {
                map.reserve(r.base, r.end(), Reserved::Ram);
            }
        }
    });
    let Some(tables) = ACPI.get() else {
        return map;
    };
    let lapic = tables
        .madt
        .as_ref()
        .map_or(apic::xapic_phys_base(), |m| m.local_apic_address);
    let window = lapic & !0xf_ffff;
    map.reserve(window, window + 0x10_0000, Reserved::LocalApic);
    for io in tables.madt.iter().flat_map(|m| m.io_apics.iter()) {
        let base = u64::from(io.address) & !0xfff;
        map.reserve(base, base + 0x1000, Reserved::IoApic);
    }
    for r in tables.mcfg.iter().flat_map(|m| m.regions.iter()) {
        let start = r.base + (u64::from(r.start_bus) << 20);
        let end = r.base + ((u64::from(r.end_bus) + 1) << 20);
        map.reserve(start, end, Reserved::Ecam);
    }
    for d in tables.dmar.iter().flat_map(|d| d.drhds.iter()) {
        let pages = 1u64 << d.size.min(4);
        map.reserve(
            d.register_base,
            d.register_base + pages * 4096,
            Reserved::VtdUnit,
        );
    }
    if let Some(hpet) = tables.find(acpi::Signature(*b"HPET"))
        && let Ok(bytes) = Firmware.read(hpet.paddr, hpet.length as usize)
        && let Some(base) = acpi::hpet_base(bytes)
    {
        let base = base & !0xfff;
        map.reserve(base, base + 0x1000, Reserved::Hpet);
    }
    map
}
