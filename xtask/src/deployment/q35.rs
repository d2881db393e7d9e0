//! The machine Faultline deployments boot on, QEMU's q35, as far as grants
//! need to know it: where guest RAM lies for a given `memory-mib`, which
//! physical ranges are the platform's own registers, and which PCI
//! functions are bridges or chipset functions.
//!
//! The build refuses a deployment whose `mmio` grant touches any of these
//! ranges, or whose `pci` grant names one of these functions, so that a
//! mistake (or a hostile manifest) is caught before anything boots. This
//! is a first line only: the kernel checks every grant again at boot
//! against what the firmware reports (E820 for RAM, MCFG for the ECAM
//! window, MADT for the local APIC and IOAPICs, DMAR for the VT-d units,
//! the header type and class of each PCI function) and refuses to start a
//! service whose grant fails.

use std::ops::Range;

/// The first MiB: real-mode memory, the VGA window, option and BIOS ROM
/// shadows. Not all of it is RAM, none of it is a device's to grant.
pub const FIRST_MIB: Range<u64> = 0..0x10_0000;
/// The PCI Express ECAM window (MCFG base on q35, 256 buses).
pub const ECAM: Range<u64> = 0xb000_0000..0xc000_0000;
/// IOAPIC 0's registers.
pub const IOAPIC: Range<u64> = 0xfec0_0000..0xfec0_1000;
/// The HPET's registers (1 KiB, one page).
pub const HPET: Range<u64> = 0xfed0_0000..0xfed0_1000;
/// The ICH9 root complex register block (RCBA, 16 KiB), where the
/// firmware places it and reserves it in E820.
pub const RCBA: Range<u64> = 0xfed1_c000..0xfed2_0000;
/// VT-d unit 0's register page (`Q35_HOST_BRIDGE_IOMMU_ADDR`); only
/// `vtd = true` grants it.
pub const VTD_REGS: Range<u64> = 0xfed9_0000..0xfed9_1000;
/// The register pages of the machine's VT-d units, in DMAR order: QEMU's
/// `intel-iommu` is one unit, at [`VTD_REGS`], when the machine has it
/// (`[machine.iommu]`), and none otherwise.
pub fn vtd_units(iommu: bool) -> Vec<Range<u64>> {
    if iommu { vec![VTD_REGS] } else { Vec::new() }
}

/// The local APICs' registers and the MSI address window: the whole MiB,
/// since a write anywhere in it is an interrupt message.
pub const LAPIC: Range<u64> = 0xfee0_0000..0xfef0_0000;
/// The firmware ROM (BIOS or flash) just below 4 GiB; 16 MiB, more than
/// any q35 firmware uses.
pub const FIRMWARE: Range<u64> = 0xff00_0000..FOUR_GIB;

const FOUR_GIB: u64 = 1 << 32;
/// Guest RAM of this size or more is split around the PCI hole.
const SPLIT_AT: u64 = 0xb000_0000;
/// Where RAM below 4 GiB ends when it is split.
const SPLIT_LOW_END: u64 = 0x8000_0000;

/// A physical range no `mmio` grant may overlap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub range: Range<u64>,
    pub name: &'static str,
    /// How to get at it instead, if there is a way.
    pub instead: &'static str,
}

/// The platform's registers, in address order. RAM depends on
/// `memory-mib` and comes from [`ram`].
const PLATFORM: &[(Range<u64>, &str, &str)] = &[
    (FIRST_MIB, "the first MiB (real-mode memory, VGA, ROMs)", ""),
    (ECAM, "the PCI Express ECAM window", ""),
    (IOAPIC, "the IOAPIC's registers", ""),
    (HPET, "the HPET's registers", ""),
    (RCBA, "the ICH9 root complex register block", ""),
    (
        VTD_REGS,
        "VT-d unit 0's registers",
        "only `vtd = true` grants them",
    ),
    (LAPIC, "the local APIC and MSI window", ""),
    (FIRMWARE, "the firmware ROM", ""),
];

/// Guest RAM for `memory_mib` MiB, as QEMU's q35 lays it out: all of it
/// from 0 when it is less than 0xb0000000 bytes (2.75 GiB); otherwise
/// 2 GiB from 0 and the rest from 4 GiB. The second range is empty when
/// nothing lies above 4 GiB.
pub fn ram(memory_mib: u64) -> [Range<u64>; 2] {
    let bytes = memory_mib << 20;
    if bytes < SPLIT_AT {
        [0..bytes, FOUR_GIB..FOUR_GIB]
    } else {
        [
            0..SPLIT_LOW_END,
            FOUR_GIB..FOUR_GIB + (bytes - SPLIT_LOW_END),
        ]
    }
}

/// Every range an `mmio` grant may not overlap on a machine with
/// `memory_mib` MiB of RAM, in address order (the first MiB before the
/// RAM that follows it).
pub fn reserved(memory_mib: u64) -> Vec<Region> {
    let [low, high] = ram(memory_mib);
    let mut v: Vec<Region> = PLATFORM
        .iter()
        .map(|(range, name, instead)| Region {
            range: range.clone(),
            name,
            instead,
        })
        .collect();
    let ram = "guest RAM (the kernel image, from 1 MiB, and the frames it allocates)";
    v.push(Region {
        range: FIRST_MIB.end..low.end,
        name: ram,
        instead: "",
    });
    if !high.is_empty() {
        v.push(Region {
            range: high,
            name: "guest RAM above 4 GiB",
            instead: "",
        });
    }
    v.sort_by_key(|r| r.range.start);
    v
}

/// The first reserved region that `range` overlaps, if any.
pub fn conflict(range: &Range<u64>, memory_mib: u64) -> Option<Region> {
    reserved(memory_mib)
        .into_iter()
        .find(|r| r.range.start < range.end && range.start < r.range.end)
}

/// PCI functions no service may hold, whatever their `index`: their
/// registers decide where memory, ECAM and other devices appear, which
/// bus numbers exist, and what the chipset does on reset or SMI. The
/// kernel keeps them, and at boot also refuses any function whose header
/// type is a bridge.
pub const REFUSED_FUNCTIONS: &[(u16, u16, &str)] = &[
    // The q35 chipset: host bridge (PCIEXBAR moves ECAM; PAM, SMRAM and
    // TSEG registers), the ICH9 LPC/ISA bridge (RCBA, ACPI PM base, SMI
    // control), the ICH9 SMBus controller.
    (0x8086, 0x29c0, "the q35 host bridge"),
    (0x8086, 0x2918, "the ICH9 LPC/ISA bridge"),
    (0x8086, 0x2930, "the ICH9 SMBus controller"),
    // Bridges QEMU can add on q35: their windows, bus numbers and
    // secondary bus reset are the kernel's.
    (0x8086, 0x244e, "a DMI-to-PCI bridge (i82801b11-bridge)"),
    (0x8086, 0x3420, "a PCI Express root port (ioh3420)"),
    (
        0x104c,
        0x8232,
        "a PCI Express switch upstream port (x3130-upstream)",
    ),
    (
        0x104c,
        0x8233,
        "a PCI Express switch downstream port (xio3130-downstream)",
    ),
    (0x1b36, 0x0001, "a PCI-to-PCI bridge (pci-bridge)"),
    (0x1b36, 0x0009, "a PCI expander bridge (pxb)"),
    (0x1b36, 0x000a, "a multiseat PCI bridge (pci-bridge-seat)"),
    (0x1b36, 0x000b, "a PCI Express expander bridge (pxb-pcie)"),
    (0x1b36, 0x000c, "a PCI Express root port (pcie-root-port)"),
    (
        0x1b36,
        0x000e,
        "a PCI Express-to-PCI bridge (pcie-pci-bridge)",
    ),
];

/// What a refused function is, if `vendor:device` is one.
pub fn refused_function(vendor: u16, device: u16) -> Option<&'static str> {
    REFUSED_FUNCTIONS
        .iter()
        .find(|(v, d, _)| (*v, *d) == (vendor, device))
        .map(|(_, _, what)| *what)
}
