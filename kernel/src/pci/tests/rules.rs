//! One focused topology per enumeration rule, and the property tests.

use core::ops::RangeInclusive;

use proptest::prelude::*;

use super::bdf;
use crate::pci::capability::id;
use crate::pci::extended;
use crate::pci::fake::{FakeConfigSpace, FakeFunction};
use crate::pci::*;

#[test]
fn bridge_outside_bus_range_is_not_followed() {
    let bridge = FakeFunction::new(0x1b36, 0x000c)
        .class(0x06, 0x04, 0, 0)
        .bridge(0, 5, 5);
    let mut cfg = FakeConfigSpace::default().with(0, 1, 0, bridge).with(
        5,
        0,
        0,
        FakeFunction::new(0x1234, 0x0001),
    );
    let functions = enumerate(&mut cfg, 0..=3).unwrap();
    assert_eq!(functions.len(), 1);
    assert_eq!(
        cfg.buses_read.borrow().iter().copied().collect::<Vec<_>>(),
        [0]
    );
}

#[test]
fn bus_is_never_scanned_twice() {
    let bridge = |secondary| {
        FakeFunction::new(0x1b36, 0x000c)
            .class(0x06, 0x04, 0, 0)
            .bridge(0, secondary, secondary)
    };
    let mut cfg = FakeConfigSpace::default()
        .with(0, 2, 0, bridge(1))
        .with(0, 3, 0, bridge(1))
        .with(0, 4, 0, bridge(0))
        .with(1, 0, 0, bridge(0));
    let functions = enumerate(&mut cfg, 0..=255).unwrap();
    let order: Vec<String> = functions.iter().map(|f| f.bdf.to_string()).collect();
    assert_eq!(order, ["00:02.0", "01:00.0", "00:03.0", "00:04.0"]);
}

#[test]
fn scan_starts_at_first_bus_of_range() {
    let mut cfg = FakeConfigSpace::default()
        .with(0, 0, 0, FakeFunction::new(0x8086, 0x29c0))
        .with(0x80, 3, 0, FakeFunction::new(0x1234, 0x11e8));
    let functions = enumerate(&mut cfg, 0x80..=0xff).unwrap();
    assert_eq!(
        functions.iter().map(|f| f.bdf).collect::<Vec<_>>(),
        [bdf(0x80, 3, 0)]
    );
    assert!(!cfg.buses_read.borrow().contains(&0));
}

#[test]
fn too_many_functions_is_an_error() {
    let mut cfg = FakeConfigSpace::default();
    for device in 0..9 {
        for function in 0..8 {
            cfg = cfg.with(
                0,
                device,
                function,
                FakeFunction::new(0x1234, 0x0001).header_type(0x80),
            );
        }
    }
    let error = enumerate(&mut cfg, 0..=0).unwrap_err();
    assert_eq!(
        error,
        PciError::TooManyFunctions {
            capacity: MAX_FUNCTIONS
        }
    );
    assert_eq!(error.to_string(), "more than 64 PCI functions");
    assert_eq!(
        enumerate(&mut cfg, RangeInclusive::new(3, 2)).unwrap_err(),
        PciError::EmptyBusRange { start: 3, end: 2 }
    );
}

#[test]
fn self_referencing_capability_is_recorded_and_enumeration_goes_on() {
    let looping = FakeFunction::new(0x1234, 0x0001).capability(0x40, id::MSI, 0x40, 0, &[]);
    let mut cfg = FakeConfigSpace::default().with(0, 1, 0, looping).with(
        0,
        2,
        0,
        FakeFunction::new(0x1234, 0x0002),
    );
    let functions = enumerate(&mut cfg, 0..=0).unwrap();
    assert_eq!(functions.len(), 2);
    let error = functions[0].cap_error.unwrap();
    assert_eq!(error, CapError::Loop { offset: 0x40 });
    assert_eq!(error.to_string(), "capability list loops back to 0x40");
    assert!(functions[0].capabilities.msi.is_some());
}

#[test]
fn pointer_into_header_is_recorded() {
    let chained =
        FakeFunction::new(0x1234, 0x0001).capability(0x40, id::POWER_MANAGEMENT, 0x3c, 0, &[]);
    let headless = FakeFunction::new(0x1234, 0x0002)
        .status(1 << 4)
        .set32(0x34, 0x10);
    let mut cfg = FakeConfigSpace::default()
        .with(0, 1, 0, chained)
        .with(0, 2, 0, headless);
    let functions = enumerate(&mut cfg, 0..=0).unwrap();
    assert_eq!(
        functions[0].cap_error,
        Some(CapError::PointerIntoHeader {
            from: 0x40,
            pointer: 0x3c
        })
    );
    assert_eq!(functions[0].capabilities.power_management, Some(0x40));
    assert_eq!(
        functions[1].cap_error,
        Some(CapError::PointerIntoHeader {
            from: 0x34,
            pointer: 0x10
        })
    );
}

#[test]
fn broken_extended_lists_are_recorded() {
    let pcie = |device| {
        FakeFunction::new(0x1234, device).capability(0x40, id::PCI_EXPRESS, 0, 0x0002, &[])
    };
    let looping = pcie(1)
        .extended(0x100, extended::id::AER, 0x140, &[])
        .extended(0x140, extended::id::ACS, 0x100, &[]);
    let short = pcie(2).extended(0x100, extended::id::SR_IOV, 0x80, &[]);
    let mut cfg = FakeConfigSpace::default()
        .with(0, 1, 0, looping)
        .with(0, 2, 0, short);
    let functions = enumerate(&mut cfg, 0..=0).unwrap();
    assert_eq!(
        functions[0].cap_error,
        Some(CapError::ExtendedLoop { offset: 0x100 })
    );
    assert_eq!(
        (functions[0].capabilities.aer, functions[0].capabilities.acs),
        (Some(0x100), Some(0x140))
    );
    let error = CapError::ExtendedPointerOutOfRange {
        from: 0x100,
        pointer: 0x80,
    };
    assert_eq!(functions[1].cap_error, Some(error));
    assert_eq!(functions[1].capabilities.sriov, Some(0x100));
}

#[test]
fn conventional_function_extended_space_is_not_walked() {
    // Without a PCIe capability, 0x100 is not an extended list even if it reads non-zero.
    let conventional = FakeFunction::new(0x1234, 0x0001).extended(0x100, extended::id::ATS, 0, &[]);
    let functions = enumerate(
        &mut FakeConfigSpace::default().with(0, 1, 0, conventional),
        0..=0,
    )
    .unwrap();
    assert_eq!(functions[0].capabilities, Capabilities::default());
}

#[test]
fn undecodable_bars_are_recorded() {
    let last = FakeFunction::new(0x1234, 0x0001).set32(0x24, 0b100);
    let reserved = FakeFunction::new(0x1234, 0x0002)
        .set32(0x10, 0b110)
        .mem32_bar(1, 0xfe00_0000, 0x1000, false);
    let mut cfg = FakeConfigSpace::default()
        .with(0, 1, 0, last)
        .with(0, 2, 0, reserved);
    let functions = enumerate(&mut cfg, 0..=0).unwrap();
    assert_eq!(
        functions[0].bar_error,
        Some(BarError::Mem64InLastSlot { index: 5 })
    );
    assert_eq!(
        functions[1].bar_error,
        Some(BarError::ReservedMemoryType { index: 0 })
    );
    assert_eq!(functions[1].bars.len(), 1);
}

#[test]
fn class_names_cover_common_devices() {
    assert_eq!(class_name(0x02, 0x00), "Ethernet controller");
    assert_eq!(class_name(0x03, 0x00), "VGA compatible controller");
    assert_eq!(class_name(0x06, 0x04), "PCI bridge");
    assert_eq!(class_name(0x0c, 0x03), "USB controller");
    assert_eq!(class_name(0xff, 0x00), "unassigned class");
    assert_eq!(class_name(0x77, 0x00), "unknown class");
}

proptest! {
    #[test]
    fn rid_round_trips(rid in any::<u16>()) {
        prop_assert_eq!(Bdf::from_rid(rid).rid(), rid);
    }

    #[test]
    fn random_config_space_enumerates_and_is_left_unchanged(
        value in prop::collection::vec(any::<u32>(), 1024),
        mut writable in prop::collection::vec(any::<u32>(), 1024),
        pcie_header in any::<bool>(),
    ) {
        let mut value = value;
        // STATUS has no read-write bits on real hardware.
        writable[1] &= 0xffff;
        if pcie_header {
            // An endpoint whose valid legacy list holds only a PCIe capability, so the
            // extended walk runs over the random bytes from 0x100.
            value[0x0c / 4] &= !(0x7f << 16); // header type 0
            value[1] |= 1 << 20;
            value[0x34 / 4] = (value[0x34 / 4] & !0xff) | 0x40;
            value[0x40 / 4] = (value[0x40 / 4] & !0xffff) | 0x10;
        }
        let mut cfg = FakeConfigSpace::default().with(0, 0, 0, FakeFunction::raw(value, writable));
        let before = cfg.snapshot();
        let functions = enumerate(&mut cfg, 0..=255).unwrap();
        prop_assert!(functions.len() <= 1);
        if let (true, Some(function)) = (pcie_header, functions.first()) {
            prop_assert!(function.capabilities.pcie.is_some());
        }
        prop_assert_eq!(cfg.snapshot(), before);
    }
}
