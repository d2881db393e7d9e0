//! The kernel's side of every granted PCI function: resolving grants
//! against the boot scan, programming MSI, and quiescing a device when its
//! driver stops.
//!
//! A driver never programs where its device's interrupts go: the kernel
//! writes the MSI address and data for the vector the deployment granted
//! and enables MSI, and the configuration allow-list
//! ([`crate::kern::pci_policy`]) refuses every write to the MSI and MSI-X
//! structures; a BAR holding an MSI-X table is mapped with that table left
//! out. When a driver stops, its devices stop with it (decoders and bus
//! mastering off, interrupts masked, a function-level reset where the
//! device has one) before any of its memory can be reused.

use crate::arch::apic;
use crate::kern::MmioRegion;
use crate::kern::grants::{GrantError, MachineMap, check_pci_class};
use crate::pci::{BarKind, Bdf, Function};
use crate::platform::{pci_config_read as read, pci_config_write as write, with_pci};

/// Command register: I/O space, memory space, bus master, INTx disable.
const CMD_IO: u32 = 1 << 0;
const CMD_MEM: u32 = 1 << 1;
const CMD_BUS_MASTER: u32 = 1 << 2;
const CMD_INTX_DISABLE: u32 = 1 << 10;
/// How long a function-level reset takes (PCIe base spec: 100 ms).
pub const FLR_NS: u64 = 100_000_000;
/// How long a device without FLR may still finish DMA it had issued
/// before bus mastering went off (a generous bound on outstanding reads).
pub const QUIESCE_NS: u64 = 1_000_000;

fn bdf((bus, device, function): (u8, u8, u8)) -> Bdf {
    Bdf {
        bus,
        device,
        function,
    }
}

/// The boot scan's record of a function.
fn function(at: (u8, u8, u8)) -> Option<Function> {
    let b = bdf(at);
    with_pci(|fs| fs.iter().find(|f| f.bdf == b).cloned())
}

/// The `index`-th function with this vendor:device, refused if it is a
/// bridge or chipset function.
pub fn resolve_pci(vendor: u16, device: u16, index: u8) -> Result<(u8, u8, u8), GrantError> {
    let f = with_pci(|fs| {
        fs.iter()
            .filter(|f| f.vendor_id == vendor && f.device_id == device)
            .nth(usize::from(index))
            .cloned()
    })
    .ok_or(GrantError::Absent)?;
    let header = read(f.bdf, 0x0e, 1) as u8;
    check_pci_class(f.class.base, f.class.sub, header)?;
    Ok((f.bdf.bus, f.bdf.device, f.bdf.function))
}

/// Memory BAR `bar` of `at`, checked against the machine, with the
/// function's MSI-X table and pending bits cut out if they live in it.
pub fn resolve_bar(
    machine: &MachineMap,
    at: (u8, u8, u8),
    bar: u8,
) -> Result<MmioRegion, GrantError> {
    let f = function(at).ok_or(GrantError::Absent)?;
    let b = f
        .bars
        .iter()
        .find(|b| b.index == bar && b.kind != BarKind::Io)
        .ok_or(GrantError::NotMemoryBar { bar })?;
    let len = b.size.max(4096).next_multiple_of(4096);
    machine.check_mmio(b.base, len)?;
    let hole = f.capabilities.msix.and_then(|x| {
        let parts = [x.table, x.pba]
            .into_iter()
            .filter(|l| l.bir == bar)
            .map(|l| u64::from(l.offset));
        let (mut lo, mut hi) = (u64::MAX, 0);
        for start in parts {
            lo = lo.min(start & !0xfff);
            hi = hi.max((start + 16 * u64::from(x.table_size)).next_multiple_of(4096));
        }
        (lo < hi).then(|| (lo, hi.min(len) - lo))
    });
    Ok(MmioRegion {
        base: b.base,
        len,
        hole,
    })
}

/// Every memory BAR the boot scan found, as reserved ranges: a raw MMIO
/// grant may not reach a device's registers around its PCI grant.
pub fn bar_map() -> MachineMap {
    let mut map = MachineMap::default();
    with_pci(|fs| {
        for f in fs {
            for b in f
                .bars
                .iter()
                .filter(|b| b.kind != BarKind::Io && b.base != 0)
            {
                let start = b.base & !0xfff;
                let end = (b.base + b.size.max(1)).next_multiple_of(4096);
                map.reserve(start, end, crate::kern::grants::Reserved::PciBar);
            }
        }
    });
    map
}

/// The MSI address that targets this CPU's local APIC (fixed delivery,
/// physical destination).
pub fn msi_address() -> u64 {
    0xfee0_0000 | (u64::from(apic::id() & 0xff) << 12)
}

pub use crate::kern::iommu::remappable_msi;

/// Programs `at`'s MSI to raise `vector` (fixed delivery, edge, one
/// message) and enables it. Devices with only MSI-X are not served yet.
pub fn program_msi(at: (u8, u8, u8), vector: u8) -> Result<(), GrantError> {
    program_msi_raw(at, msi_address(), u16::from(vector))
}

/// Programs `at`'s MSI address and data as given and enables it.
pub fn program_msi_raw(at: (u8, u8, u8), address: u64, data: u16) -> Result<(), GrantError> {
    let f = function(at).ok_or(GrantError::Absent)?;
    let msi = f.capabilities.msi.ok_or(GrantError::NoMsi)?;
    let (b, cap) = (f.bdf, u16::from(msi.offset));
    let control = read(b, cap + 2, 2);
    // Disabled while it is reprogrammed; one message (MME = 0).
    write(b, cap + 2, 2, control & !((7 << 4) | 1));
    write(b, cap + 4, 4, address as u32);
    let data_at = if msi.is_64bit {
        write(b, cap + 8, 4, (address >> 32) as u32);
        cap + 12
    } else {
        cap + 8
    };
    write(b, data_at, 2, u32::from(data));
    if msi.per_vector_masking {
        let mask_at = data_at + 4;
        write(b, mask_at, 4, 0);
    }
    write(b, cap + 2, 2, (control & !(7 << 4)) | 1);
    Ok(())
}

/// What [`quiesce`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quiesced {
    /// A function-level reset was started (BARs must be restored after).
    pub reset: bool,
    /// TSC-based nanoseconds from now until the device is quiet.
    pub quiet_in_ns: u64,
}

/// Stops `at` from mastering the bus, decoding and interrupting, and
/// resets it when it supports FLR.
pub fn quiesce(at: (u8, u8, u8)) -> Quiesced {
    let Some(f) = function(at) else {
        return Quiesced {
            reset: false,
            quiet_in_ns: 0,
        };
    };
    let b = f.bdf;
    let command = read(b, 0x04, 2);
    write(
        b,
        0x04,
        2,
        (command & !(CMD_IO | CMD_MEM | CMD_BUS_MASTER)) | CMD_INTX_DISABLE,
    );
    // Reading back flushes the posted write: from here the device issues
    // no new requests.
    let _ = read(b, 0x04, 2);
    if let Some(msi) = f.capabilities.msi {
        let at = u16::from(msi.offset) + 2;
        write(b, at, 2, read(b, at, 2) & !1);
    }
    if let Some(msix) = f.capabilities.msix {
        let at = u16::from(msix.offset) + 2;
        // Function mask on, enable off.
        write(b, at, 2, (read(b, at, 2) | (1 << 14)) & !(1 << 15));
    }
    let reset = f.capabilities.pcie.is_some_and(|pcie| {
        let cap = u16::from(pcie.offset);
        let flr_capable = read(b, cap + 4, 4) & (1 << 28) != 0;
        if flr_capable {
            write(b, cap + 8, 2, read(b, cap + 8, 2) | (1 << 15));
        }
        flr_capable
    });
    Quiesced {
        reset,
        quiet_in_ns: if reset { FLR_NS } else { QUIESCE_NS },
    }
}

/// Turns bus mastering off on every function no service holds (bridges
/// aside, which only forward) and says so: nobody drives them, so nothing
/// should make them master the bus, and with an IOMMU they have no domain
/// either. Called once at boot, before any service runs.
pub fn isolate_unclaimed(held: &[(u8, u8, u8)], iommu: bool) {
    let mut unclaimed: heapless::Vec<(Bdf, u16, u16), { crate::pci::MAX_FUNCTIONS }> =
        heapless::Vec::new();
    crate::platform::with_pci(|functions| {
        for f in functions {
            let at = (f.bdf.bus, f.bdf.device, f.bdf.function);
            if f.class.base != 0x06 && !held.contains(&at) {
                let _ = unclaimed.push((f.bdf, f.vendor_id, f.device_id));
            }
        }
    });
    for (b, vendor, device) in unclaimed {
        bus_master_off((b.bus, b.device, b.function));
        let why = if iommu {
            "bus mastering off and no DMA domain: isolated"
        } else {
            "bus mastering off"
        };
        crate::kprintln!("kernel: {b} {vendor:04x}:{device:04x} has no driver: {why}");
    }
}

/// Turns bus mastering off on `at` (and only that), flushing the write.
pub fn bus_master_off(at: (u8, u8, u8)) {
    let Some(f) = function(at) else {
        return;
    };
    let command = read(f.bdf, 0x04, 2);
    if command & CMD_BUS_MASTER != 0 {
        write(f.bdf, 0x04, 2, command & !CMD_BUS_MASTER);
        let _ = read(f.bdf, 0x04, 2);
    }
}

/// Puts back what a function-level reset cleared: the BARs as the boot
/// scan found them (so every grant still names the same registers). The
/// command register stays off until the next driver turns it on.
pub fn restore_after_reset(at: (u8, u8, u8)) {
    let Some(f) = function(at) else {
        return;
    };
    for bar in &f.bars {
        let at = 0x10 + 4 * u16::from(bar.index);
        let flags = read(f.bdf, at, 4) & if bar.kind == BarKind::Io { 0x3 } else { 0xf };
        write(f.bdf, at, 4, (bar.base as u32 & !0xf) | flags);
        if bar.kind == BarKind::Mem64 {
            write(f.bdf, at + 4, 4, (bar.base >> 32) as u32);
        }
    }
}
