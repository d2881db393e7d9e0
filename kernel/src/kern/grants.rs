//! Checking a deployment's hardware grants against the machine at boot.
//!
//! xtask refuses dangerous grants when it builds a deployment, but the
//! kernel does not trust the build: at boot it checks every grant again
//! against what the firmware says the machine is. An MMIO grant may not
//! touch RAM (the E820 map, which holds the kernel image), the local APIC
//! window, an I/O APIC, the HPET, a PCI ECAM window (config space of every
//! device), or any VT-d unit's registers (those only through the VT-d
//! grant); a PCI grant may not name a bridge or a chipset function. A
//! service with a grant that fails is not started at all.
//!
//! Everything here is pure: the glue fills a [`MachineMap`] from ACPI and
//! the memory map, and the rules are host-tested.

use core::fmt;

/// Most reserved ranges the map holds (RAM regions, APICs, ECAM windows,
/// VT-d units, HPETs).
pub const MAX_RESERVED: usize = 64;

/// What a reserved physical range is, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    Ram,
    LocalApic,
    IoApic,
    Hpet,
    Ecam,
    VtdUnit,
    /// A PCI function's BAR: reachable only through a grant of that
    /// function (`PciBar`), never through a raw MMIO grant.
    PciBar,
}

impl Reserved {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ram => "RAM",
            Self::LocalApic => "the local APIC",
            Self::IoApic => "an I/O APIC",
            Self::Hpet => "the HPET",
            Self::Ecam => "PCI configuration space (ECAM)",
            Self::VtdUnit => "a VT-d unit's registers",
            Self::PciBar => "a PCI function's BAR (grant the function and its BAR instead)",
        }
    }
}

/// Why a grant was refused at boot, or could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The device or unit is not on this machine (the grant exists but
    /// every use fails with `NotFound`; the service still starts).
    Absent,
    /// `[base, base + len)` is empty, unaligned or wraps.
    BadRange { base: u64, len: u64 },
    /// The range overlaps something only the kernel may touch.
    Overlaps {
        base: u64,
        len: u64,
        what: Reserved,
        at: u64,
    },
    /// PCI bridges and chipset functions (host bridge, ISA/LPC bridge,
    /// SMBus) are never granted: they decide where everything else lives.
    Bridge { class: u8, subclass: u8 },
    /// The BAR is not a memory BAR (absent, I/O space, or the upper half
    /// of a 64-bit BAR).
    NotMemoryBar { bar: u8 },
    /// The device has no MSI capability for an IRQ grant.
    NoMsi,
    /// No interrupt vector is left.
    NoVector,
}

impl GrantError {
    /// Whether the service must not start (as opposed to an absent device,
    /// which only makes the grant unusable).
    pub fn refuses_start(&self) -> bool {
        !matches!(self, GrantError::Absent)
    }
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Absent => write!(f, "not present on this machine"),
            Self::BadRange { base, len } => {
                write!(f, "[{base:#x}, +{len:#x}) is empty, unaligned or wraps")
            }
            Self::Overlaps {
                base,
                len,
                what,
                at,
            } => write!(
                f,
                "[{base:#x}, +{len:#x}) overlaps {} at {at:#x}",
                what.name()
            ),
            Self::Bridge { class, subclass } => write!(
                f,
                "PCI class {class:02x}:{subclass:02x} is a bridge or chipset function; never granted"
            ),
            Self::NotMemoryBar { bar } => write!(f, "BAR {bar} is not a memory BAR"),
            Self::NoMsi => write!(f, "the device has no MSI capability"),
            Self::NoVector => write!(f, "no interrupt vector left"),
        }
    }
}

/// The physical ranges no MMIO grant may touch.
#[derive(Clone, Debug, Default)]
pub struct MachineMap {
    reserved: heapless::Vec<(u64, u64, Reserved), MAX_RESERVED>,
    /// Set when a range did not fit: the map is then incomplete, and every
    /// MMIO grant is refused rather than checked against part of it.
    overflowed: bool,
}

impl MachineMap {
    /// Records `[start, end)` as `what`.
    pub fn reserve(&mut self, start: u64, end: u64, what: Reserved) {
        if start < end && self.reserved.push((start, end, what)).is_err() {
            self.overflowed = true;
        }
    }

    /// Checks an MMIO grant of `[base, base + len)`: page-aligned,
    /// non-empty, and clear of every reserved range.
    pub fn check_mmio(&self, base: u64, len: u64) -> Result<(), GrantError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0 && base.is_multiple_of(4096) && len.is_multiple_of(4096))
            .ok_or(GrantError::BadRange { base, len })?;
        if self.overflowed {
            return Err(GrantError::Overlaps {
                base,
                len,
                what: Reserved::Ram,
                at: 0,
            });
        }
        match self.reserved.iter().find(|&&(s, e, _)| s < end && base < e) {
            Some(&(s, _, what)) => Err(GrantError::Overlaps {
                base,
                len,
                what,
                at: s,
            }),
            None => Ok(()),
        }
    }
}

/// PCI class codes that are never granted: every bridge (class 0x06:
/// host, ISA/LPC, PCI-to-PCI, ...) and the SMBus controller (0x0c:0x05).
pub fn check_pci_class(class: u8, subclass: u8, header_type: u8) -> Result<(), GrantError> {
    let bridge = class == 0x06 || header_type & 0x7f != 0;
    let chipset = class == 0x0c && subclass == 0x05;
    if bridge || chipset {
        return Err(GrantError::Bridge { class, subclass });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q35() -> MachineMap {
        let mut m = MachineMap::default();
        m.reserve(0, 0x9_fc00, Reserved::Ram);
        m.reserve(0x10_0000, 0x1000_0000, Reserved::Ram);
        m.reserve(0xb000_0000, 0xc000_0000, Reserved::Ecam);
        m.reserve(0xfec0_0000, 0xfec0_1000, Reserved::IoApic);
        m.reserve(0xfed0_0000, 0xfed0_1000, Reserved::Hpet);
        m.reserve(0xfed9_0000, 0xfed9_1000, Reserved::VtdUnit);
        m.reserve(0xfee0_0000, 0xfef0_0000, Reserved::LocalApic);
        m
    }

    #[test]
    fn device_registers_clear_of_everything_are_granted() {
        assert_eq!(q35().check_mmio(0xfea0_0000, 0x10_0000), Ok(()));
        assert_eq!(q35().check_mmio(0xfed9_1000, 0x1000), Ok(()));
    }

    #[test]
    fn every_reserved_range_refuses_an_overlapping_grant() {
        let m = q35();
        for (base, len, what) in [
            (0x20_0000, 0x1000, Reserved::Ram),
            (0x0fff_f000, 0x2000, Reserved::Ram),
            (0xbfff_f000, 0x1000, Reserved::Ecam),
            (0xfec0_0000, 0x1000, Reserved::IoApic),
            (0xfed0_0000, 0x1000, Reserved::Hpet),
            (0xfed8_f000, 0x2000, Reserved::VtdUnit),
            (0xfee0_0000, 0x1000, Reserved::LocalApic),
            (0xfeef_f000, 0x1000, Reserved::LocalApic),
        ] {
            match m.check_mmio(base, len) {
                Err(GrantError::Overlaps { what: w, .. }) => assert_eq!(w, what, "{base:#x}"),
                other => panic!("{base:#x}: {other:?}"),
            }
        }
        // Touching a range's end is not an overlap.
        assert_eq!(m.check_mmio(0xfef0_0000, 0x1000), Ok(()));
        assert_eq!(m.check_mmio(0xfebf_f000, 0x1000), Ok(()));
    }

    #[test]
    fn empty_unaligned_and_wrapping_ranges_are_refused() {
        let m = q35();
        for (base, len) in [
            (0xfea0_0000, 0),
            (0xfea0_0800, 0x1000),
            (0xfea0_0000, 0x800),
            (!0xfff, 0x2000),
        ] {
            assert_eq!(
                m.check_mmio(base, len),
                Err(GrantError::BadRange { base, len })
            );
        }
    }

    #[test]
    fn a_map_that_overflowed_refuses_everything() {
        let mut m = MachineMap::default();
        for i in 0..=MAX_RESERVED as u64 {
            m.reserve(i * 0x1000, i * 0x1000 + 0x1000, Reserved::Ram);
        }
        assert!(m.check_mmio(0xfea0_0000, 0x1000).is_err());
        // An empty range is not recorded (and cannot overflow the map).
        let mut m = MachineMap::default();
        m.reserve(5, 5, Reserved::Ram);
        assert_eq!(m.check_mmio(0, 0x1000), Ok(()));
    }

    #[test]
    fn bridges_and_smbus_are_never_granted() {
        assert!(check_pci_class(0x06, 0x00, 0).is_err()); // host bridge
        assert!(check_pci_class(0x06, 0x01, 0x80).is_err()); // ISA/LPC
        assert!(check_pci_class(0x06, 0x04, 0x01).is_err()); // PCI-to-PCI
        assert!(check_pci_class(0x0c, 0x05, 0).is_err()); // SMBus
        assert!(check_pci_class(0x00, 0xff, 0x01).is_err()); // type-1 header
        assert!(check_pci_class(0x00, 0xff, 0x02).is_err()); // CardBus
        assert_eq!(check_pci_class(0x00, 0xff, 0x00), Ok(())); // edu
        assert_eq!(check_pci_class(0x0c, 0x03, 0x80), Ok(())); // USB, multi-function
        assert_eq!(check_pci_class(0x02, 0x00, 0x00), Ok(())); // NIC
    }

    #[test]
    fn only_an_absent_device_lets_the_service_start() {
        assert!(!GrantError::Absent.refuses_start());
        assert!(GrantError::NoMsi.refuses_start());
        assert!(GrantError::NoVector.refuses_start());
        assert!(GrantError::NotMemoryBar { bar: 1 }.refuses_start());
    }
}

#[cfg(test)]
mod messages {
    use super::*;
    use std::string::ToString;

    #[test]
    fn refusals_say_what_was_hit_and_where() {
        let e = GrantError::Overlaps {
            base: 0xfee0_0000,
            len: 0x1000,
            what: Reserved::LocalApic,
            at: 0xfee0_0000,
        };
        assert_eq!(
            e.to_string(),
            "[0xfee00000, +0x1000) overlaps the local APIC at 0xfee00000"
        );
        for (what, text) in [
            (Reserved::Ram, "RAM"),
            (Reserved::IoApic, "an I/O APIC"),
            (Reserved::Hpet, "the HPET"),
            (Reserved::Ecam, "PCI configuration space (ECAM)"),
            (Reserved::VtdUnit, "a VT-d unit's registers"),
            (Reserved::PciBar, "a PCI function's BAR"),
        ] {
            assert!(what.name().starts_with(text), "{what:?}");
        }
        assert_eq!(
            GrantError::Bridge {
                class: 6,
                subclass: 1
            }
            .to_string(),
            "PCI class 06:01 is a bridge or chipset function; never granted"
        );
        assert_eq!(
            GrantError::NotMemoryBar { bar: 2 }.to_string(),
            "BAR 2 is not a memory BAR"
        );
        assert_eq!(
            GrantError::BadRange { base: 1, len: 0 }.to_string(),
            "[0x1, +0x0) is empty, unaligned or wraps"
        );
    }
}
