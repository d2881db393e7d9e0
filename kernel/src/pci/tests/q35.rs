//! The q35-like topology: identity, BARs, capabilities, scan order, and
//! that probing leaves config space exactly as firmware left it.

use super::{bdf, find};
use crate::pci::capability::id;
use crate::pci::extended;
use crate::pci::fake::{FakeConfigSpace, FakeFunction};
use crate::pci::*;

/// MSI message control: 64-bit address capable.
const MSI_64BIT: u16 = 1 << 7;

/// The functions QEMU's q35 shows with `-device intel-iommu -device edu`,
/// plus a PCIe root port leading to an IOMMU-aware endpoint on bus 1.
fn q35() -> FakeConfigSpace {
    let host = FakeFunction::new(0x8086, 0x29c0).class(0x06, 0x00, 0x00, 0x00);
    let edu = FakeFunction::new(0x1234, 0x11e8)
        .class(0x00, 0xff, 0x00, 0x10)
        .mem32_bar(0, 0xfea0_0000, 1 << 20, false)
        .interrupt(1, 11)
        .capability(0x40, id::MSI, 0, MSI_64BIT, &[0, 0, 0]);
    let root_port = FakeFunction::new(0x1b36, 0x000c)
        .class(0x06, 0x04, 0x00, 0x00)
        .bridge(0, 1, 1)
        .mem32_bar(0, 0xfeb0_0000, 0x1000, false)
        .capability(0x40, id::PCI_EXPRESS, 0, 0x0042, &[]);
    let endpoint = FakeFunction::new(0x1b36, 0x0010)
        .class(0x01, 0x08, 0x02, 0x02)
        .mem64_bar(0, 0x8_0000_0000, 0x1_0000_0000, true)
        .mem32_bar(2, 0xfe80_0000, 0x4000, false)
        .capability(0x40, id::PCI_EXPRESS, 0x60, 0x0002, &[])
        .capability(0x60, id::MSI_X, 0x70, 15, &[0x2002, 0x3002])
        .capability(0x70, id::POWER_MANAGEMENT, 0, 0x0003, &[])
        .extended(0x100, extended::id::ATS, 0x110, &[0x20])
        .extended(0x110, extended::id::PASID, 0x120, &[0x1406])
        .extended(0x120, extended::id::PRI, 0, &[0, 0x100]);
    let lpc = FakeFunction::new(0x8086, 0x2918)
        .class(0x06, 0x01, 0x00, 0x02)
        .header_type(0x80);
    let ahci = FakeFunction::new(0x8086, 0x2922)
        .class(0x01, 0x06, 0x01, 0x02)
        .io_bar(4, 0xc040, 0x20)
        .mem32_bar(5, 0xfebd_1000, 0x1000, false)
        .capability(0x80, id::MSI, 0xa8, 0, &[0, 0])
        .capability(0xa8, id::SATA, 0, 0x0010, &[0x48]);
    let smbus = FakeFunction::new(0x8086, 0x2930)
        .class(0x0c, 0x05, 0x00, 0x02)
        .io_bar(4, 0x0700, 0x40);
    FakeConfigSpace::default()
        .with(0, 0, 0, host)
        .with(0, 1, 0, edu)
        .with(0, 0x1c, 0, root_port)
        .with(1, 0, 0, endpoint)
        .with(0, 0x1f, 0, lpc)
        .with(0, 0x1f, 2, ahci)
        .with(0, 0x1f, 3, smbus)
}

#[test]
fn bdf_formats_and_round_trips_requester_ids() {
    assert_eq!(bdf(0, 1, 0).to_string(), "00:01.0");
    assert_eq!(bdf(0xab, 0x1f, 7).to_string(), "ab:1f.7");
    assert_eq!(bdf(0, 0x1f, 2).rid(), 0x00fa);
    assert_eq!(Bdf::from_rid(0x0108), bdf(1, 1, 0));
    assert_eq!(Bdf::new(0, 32, 0), None);
    assert_eq!(Bdf::new(0, 31, 8), None);
}

#[test]
fn q35_enumerates_depth_first() {
    let functions = enumerate(&mut q35(), 0..=255).unwrap();
    let order: Vec<String> = functions.iter().map(|f| f.bdf.to_string()).collect();
    assert_eq!(
        order,
        [
            "00:00.0", "00:01.0", "00:1c.0", "01:00.0", "00:1f.0", "00:1f.2", "00:1f.3"
        ]
    );
    assert!(
        functions
            .iter()
            .all(|f| f.cap_error.is_none() && f.bar_error.is_none())
    );
}

#[test]
fn edu_identity_bar_and_msi() {
    let functions = enumerate(&mut q35(), 0..=255).unwrap();
    let edu = find(&functions, bdf(0, 1, 0));
    assert_eq!(
        (edu.vendor_id, edu.device_id, edu.revision),
        (0x1234, 0x11e8, 0x10)
    );
    assert_eq!(
        edu.class,
        ClassCode {
            base: 0x00,
            sub: 0xff,
            prog_if: 0
        }
    );
    assert_eq!(edu.class.name(), "unclassified device");
    assert_eq!(
        (edu.header_type, edu.multi_function, edu.is_bridge()),
        (HeaderType::Endpoint, false, false)
    );
    assert_eq!((edu.interrupt_pin, edu.interrupt_line), (1, 11));
    let bar = Bar {
        index: 0,
        kind: BarKind::Mem32,
        prefetchable: false,
        base: 0xfea0_0000,
        size: 1 << 20,
    };
    assert_eq!(edu.bars.as_slice(), [bar]);
    let msi = Msi {
        offset: 0x40,
        is_64bit: true,
        per_vector_masking: false,
        multiple_message_capable: 0,
    };
    assert_eq!(edu.capabilities.msi, Some(msi));
    assert_eq!(msi.max_vectors(), 1);
    assert_eq!(edu.capabilities.pcie, None);
    assert_eq!(
        edu.to_string(),
        "00:01.0 1234:11e8 rev 10 [00ff.00] unclassified device"
    );
    assert_eq!(
        edu.bars[0].to_string(),
        "BAR0 mem32 0xfea00000 size 0x100000"
    );
}

#[test]
fn host_bridge_has_no_bars_and_keeps_decode_on() {
    let mut cfg = q35();
    let functions = enumerate(&mut cfg, 0..=255).unwrap();
    let host = find(&functions, bdf(0, 0, 0));
    assert_eq!(host.class.name(), "host bridge");
    assert!(host.bars.is_empty());
    assert!(
        !cfg.writes
            .iter()
            .any(|&(at, offset, _)| at == bdf(0, 0, 0) && offset == 0x04)
    );
}

#[test]
fn multi_function_device_lists_every_function() {
    let functions = enumerate(&mut q35(), 0..=255).unwrap();
    let lpc = find(&functions, bdf(0, 0x1f, 0));
    assert!(lpc.multi_function);
    assert_eq!(lpc.class.name(), "ISA bridge");
    let ahci = find(&functions, bdf(0, 0x1f, 2));
    assert_eq!(ahci.class.to_string(), "[0106.01] SATA controller");
    let bars: Vec<_> = ahci
        .bars
        .iter()
        .map(|b| (b.index, b.kind, b.base, b.size))
        .collect();
    assert_eq!(
        bars,
        [
            (4, BarKind::Io, 0xc040, 0x20),
            (5, BarKind::Mem32, 0xfebd_1000, 0x1000)
        ]
    );
    let ids: Vec<_> = ahci
        .capabilities
        .all
        .iter()
        .map(|c| (c.id.name(), c.offset))
        .collect();
    assert_eq!(ids, [("MSI", 0x80), ("SATA", 0xa8)]);
    let smbus = find(&functions, bdf(0, 0x1f, 3));
    assert_eq!(smbus.class.name(), "SMBus");
    let bar = Bar {
        index: 4,
        kind: BarKind::Io,
        prefetchable: false,
        base: 0x700,
        size: 0x40,
    };
    assert_eq!(smbus.bars.as_slice(), [bar]);
}

#[test]
fn single_function_device_hides_functions_1_to_7() {
    // Some devices ignore the function number; without the multi-function
    // bit, what answers at function 1 is an alias of function 0.
    let device = FakeFunction::new(0x1234, 0x5678);
    let mut cfg = FakeConfigSpace::default()
        .with(0, 2, 0, device.clone())
        .with(0, 2, 1, device);
    let functions = enumerate(&mut cfg, 0..=0).unwrap();
    assert_eq!(functions.len(), 1);
}

#[test]
fn root_port_leads_to_endpoint_with_iommu_capabilities() {
    let functions = enumerate(&mut q35(), 0..=255).unwrap();
    let port = find(&functions, bdf(0, 0x1c, 0));
    assert_eq!(
        port.bridge,
        Some(BridgeBuses {
            primary: 0,
            secondary: 1,
            subordinate: 1
        })
    );
    assert_eq!(
        port.capabilities.pcie.unwrap().port_type,
        PciePortType::RootPort
    );
    assert_eq!(port.bars.len(), 1);
    assert_eq!(
        port.to_string(),
        "00:1c.0 1b36:000c rev 00 [0604.00] PCI bridge buses 01..=01"
    );

    let endpoint = find(&functions, bdf(1, 0, 0));
    let bar = Bar {
        index: 0,
        kind: BarKind::Mem64,
        prefetchable: true,
        base: 0x8_0000_0000,
        size: 0x1_0000_0000,
    };
    assert_eq!(endpoint.bars[0], bar);
    assert_eq!((endpoint.bars[1].index, endpoint.bars[1].size), (2, 0x4000));
    let caps = &endpoint.capabilities;
    assert_eq!(
        caps.pcie,
        Some(Pcie {
            offset: 0x40,
            version: 2,
            port_type: PciePortType::Endpoint
        })
    );
    let msix = caps.msix.unwrap();
    assert_eq!(msix.table_size, 16);
    assert_eq!(
        (msix.table, msix.pba),
        (
            BarLocation {
                bir: 2,
                offset: 0x2000
            },
            BarLocation {
                bir: 2,
                offset: 0x3000
            }
        )
    );
    assert_eq!(caps.power_management, Some(0x70));
    let ats = Ats {
        offset: 0x100,
        invalidate_queue_depth: 32,
        page_aligned_request: true,
    };
    assert_eq!(caps.ats, Some(ats));
    let pasid = Pasid {
        offset: 0x110,
        max_width: 20,
        execute_permission: true,
        privileged_mode: true,
    };
    assert_eq!(caps.pasid, Some(pasid));
    assert_eq!(
        caps.pri,
        Some(Pri {
            offset: 0x120,
            outstanding_capacity: 0x100
        })
    );
    let names: Vec<_> = caps.all.iter().map(|c| c.id.name()).collect();
    assert_eq!(names, ["PCIe", "MSI-X", "PM", "ATS", "PASID", "PRI"]);
}

#[test]
fn bar_sizing_leaves_config_space_as_it_was() {
    let mut cfg = q35().with(
        0,
        3,
        0,
        FakeFunction::new(0x1234, 0x0001)
            .status(1 << 13)
            .mem32_bar(1, 0xfe00_0000, 0x100, false),
    );
    let before = cfg.snapshot();
    enumerate(&mut cfg, 0..=255).unwrap();
    // BARs and COMMAND restored, STATUS error bits (RW1C) not cleared.
    assert_eq!(cfg.snapshot(), before);
    assert_eq!(cfg.sized_with_decode_on, []);
    // Decode was actually turned off around the probe of edu's BAR0.
    let edu_writes: Vec<_> = cfg
        .writes
        .iter()
        .filter(|w| w.0 == bdf(0, 1, 0))
        .map(|w| (w.1, w.2))
        .collect();
    assert_eq!(
        &edu_writes[..4],
        [
            (0x04, 0x0004),
            (0x10, u32::MAX),
            (0x10, 0xfea0_0000),
            (0x04, 0x0007)
        ]
    );
}

#[test]
fn bridge_sizes_two_bars_and_never_writes_bus_numbers() {
    let mut cfg = q35();
    enumerate(&mut cfg, 0..=255).unwrap();
    let port_offsets: Vec<u16> = cfg
        .writes
        .iter()
        .filter(|w| w.0 == bdf(0, 0x1c, 0))
        .map(|w| w.1)
        .collect();
    assert!(
        port_offsets
            .iter()
            .all(|&o| o == 0x04 || o == 0x10 || o == 0x14),
        "{port_offsets:x?}"
    );
}
