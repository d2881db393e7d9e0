//! The parser against ACPI tables captured from real QEMU machines.
//!
//! The fixtures under `kernel/tests/fixtures/acpi/` were written by
//! `cargo xtask capture-acpi` from what the kernel read on a running q35
//! machine (one `ACPI-DUMP <signature> <paddr> <hex>` line per table), so
//! these tests pin the parser to bytes QEMU really produces, not to our
//! reading of the spec. Corrupted variants check that damage to one table
//! rejects that table alone, with a precise error.

use super::testutil::TestMem;
use super::*;
use std::vec::Vec;

const DEFAULT: &str = include_str!("../../tests/fixtures/acpi/default.acpi");
const NO_IOMMU: &str = include_str!("../../tests/fixtures/acpi/no-iommu.acpi");
const IOTLB: &str = include_str!("../../tests/fixtures/acpi/iotlb.acpi");

/// A parsed fixture: the RSDP address and each table's (signature, address,
/// bytes).
struct Fixture {
    rsdp: u64,
    tables: Vec<(String, u64, Vec<u8>)>,
}

impl Fixture {
    fn load(text: &str) -> Self {
        let mut rsdp = None;
        let mut tables = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let mut words = line.split_whitespace();
            assert_eq!(words.next(), Some("ACPI-DUMP"), "{line}");
            let sig = words.next().expect("signature").to_string();
            let paddr =
                u64::from_str_radix(words.next().expect("address").trim_start_matches("0x"), 16)
                    .expect("hex address");
            let hex = words.next().expect("bytes");
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex byte"))
                .collect();
            if sig == "RSD_PTR_" {
                rsdp = Some(paddr);
            }
            tables.push((sig, paddr, bytes));
        }
        Fixture {
            rsdp: rsdp.expect("fixture has an RSDP"),
            tables,
        }
    }

    fn memory(&self) -> TestMem {
        self.tables
            .iter()
            .fold(TestMem::new(), |m, (_, paddr, bytes)| {
                m.with(*paddr, bytes.clone())
            })
    }

    fn table_mut<'a>(&self, mem: &'a mut TestMem, sig: &str) -> &'a mut Vec<u8> {
        let paddr = self
            .tables
            .iter()
            .find(|t| t.0 == sig)
            .expect("table in fixture")
            .1;
        mem.chunk_mut(paddr)
    }
}

fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
    Bdf {
        bus,
        device,
        function,
    }
}

#[test]
fn default_q35_machine_parses_as_qemu_built_it() {
    let fx = Fixture::load(DEFAULT);
    let acpi = parse(&fx.memory(), fx.rsdp).expect("parse");
    assert!(acpi.rejected.is_empty(), "{:?}", acpi.rejected);
    assert_eq!(acpi.root.signature, Signature::RSDT);
    let sigs: Vec<String> = acpi
        .tables
        .iter()
        .map(|t| t.signature.to_string())
        .collect();
    assert_eq!(sigs, ["FACP", "APIC", "HPET", "MCFG", "DMAR", "WAET"]);

    let madt = acpi.madt.as_ref().expect("MADT");
    assert_eq!(madt.local_apic_address, 0xfee0_0000);
    assert_eq!(madt.local_apics.iter().filter(|l| l.enabled()).count(), 1);
    assert_eq!(madt.io_apics[0].address, 0xfec0_0000);

    let mcfg = acpi.mcfg.as_ref().expect("MCFG");
    assert_eq!(mcfg.regions.len(), 1);
    let ecam = mcfg.regions[0];
    assert_eq!(
        (ecam.base, ecam.segment, ecam.start_bus, ecam.end_bus),
        (0xb000_0000, 0, 0, 0xff)
    );

    let dmar = acpi.dmar.as_ref().expect("DMAR");
    assert_eq!(dmar.address_width_bits(), 48);
    assert!(dmar.flags.contains(DmarFlags::INTR_REMAP));
    assert_eq!(dmar.drhds.len(), 1);
    assert!(dmar.rmrrs.is_empty() && dmar.atsrs.is_empty());
    let drhd = dmar.drhds[0];
    assert_eq!(drhd.register_base, 0xfed9_0000);
    assert!(!drhd.flags.contains(DrhdFlags::INCLUDE_PCI_ALL));
    let scopes = dmar.scopes(drhd.scopes);
    assert_eq!(scopes[0].kind, ScopeKind::IoApic);
    assert_eq!(scopes[0].target(), ScopeTarget::Device(bdf(0xff, 0, 0)));
    let endpoints: Vec<Bdf> = scopes[1..]
        .iter()
        .map(|s| match s.target() {
            ScopeTarget::Device(b) if s.kind == ScopeKind::PciEndpoint => b,
            other => panic!("unexpected scope {other:?}"),
        })
        .collect();
    // 00:01.0 is the edu device.
    assert_eq!(
        endpoints,
        [
            bdf(0, 0, 0),
            bdf(0, 1, 0),
            bdf(0, 0x1f, 0),
            bdf(0, 0x1f, 2),
            bdf(0, 0x1f, 3)
        ]
    );
}

#[test]
fn machine_without_intel_iommu_has_no_dmar() {
    let fx = Fixture::load(NO_IOMMU);
    let acpi = parse(&fx.memory(), fx.rsdp).expect("parse");
    assert!(acpi.rejected.is_empty());
    assert!(acpi.dmar.is_none());
    assert!(acpi.find(Signature::DMAR).is_none());
    assert!(acpi.madt.is_some() && acpi.mcfg.is_some());
}

#[test]
fn device_iotlb_machine_adds_an_all_ports_atsr() {
    let fx = Fixture::load(IOTLB);
    let acpi = parse(&fx.memory(), fx.rsdp).expect("parse");
    let dmar = acpi.dmar.as_ref().expect("DMAR");
    assert_eq!(dmar.drhds.len(), 1);
    assert_eq!(dmar.atsrs.len(), 1);
    assert!(dmar.atsrs[0].flags.contains(AtsrFlags::ALL_PORTS));
    assert_eq!(dmar.atsrs[0].segment, 0);
}

#[test]
fn bad_dmar_checksum_rejects_the_dmar_alone() {
    let fx = Fixture::load(DEFAULT);
    let mut mem = fx.memory();
    fx.table_mut(&mut mem, "DMAR")[40] ^= 0x01;
    let acpi = parse(&mem, fx.rsdp).expect("parse");
    assert!(acpi.dmar.is_none());
    assert!(acpi.madt.is_some() && acpi.mcfg.is_some());
    assert_eq!(acpi.rejected.len(), 1);
    let (sig, err) = acpi.rejected[0];
    assert_eq!(sig, Signature::DMAR);
    assert!(matches!(err, AcpiError::Checksum { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("DMAR: checksum mismatch"),
        "{err}"
    );
}

#[test]
fn dmar_claiming_more_bytes_than_exist_is_rejected() {
    let fx = Fixture::load(DEFAULT);
    let mut mem = fx.memory();
    let dmar = fx.table_mut(&mut mem, "DMAR");
    let len = dmar.len() as u32 + 64;
    dmar[4..8].copy_from_slice(&len.to_le_bytes());
    let acpi = parse(&mem, fx.rsdp).expect("parse");
    assert!(acpi.dmar.is_none());
    assert!(
        matches!(acpi.rejected[0].1, AcpiError::Unreadable { .. }),
        "{:?}",
        acpi.rejected
    );
}

#[test]
fn truncated_drhd_is_rejected_with_its_offset() {
    let fx = Fixture::load(DEFAULT);
    let mut mem = fx.memory();
    let dmar = fx.table_mut(&mut mem, "DMAR");
    // The DRHD starts right after the 48-byte DMAR header; make it claim
    // more than the table holds, then fix the checksum so only the
    // structure is wrong.
    let drhd_len = u16::from_le_bytes([dmar[50], dmar[51]]) + 8;
    dmar[50..52].copy_from_slice(&drhd_len.to_le_bytes());
    dmar[9] = 0;
    dmar[9] = 0u8.wrapping_sub(checksum(dmar));
    let acpi = parse(&mem, fx.rsdp).expect("parse");
    assert!(acpi.dmar.is_none());
    let (sig, err) = acpi.rejected[0];
    assert_eq!(sig, Signature::DMAR);
    assert!(
        matches!(err, AcpiError::Truncated { offset: 0x30, .. }),
        "{err:?}"
    );
}

#[test]
fn bad_mcfg_or_madt_checksum_leaves_the_dmar() {
    for sig in ["MCFG", "APIC"] {
        let fx = Fixture::load(DEFAULT);
        let mut mem = fx.memory();
        fx.table_mut(&mut mem, sig)[36] ^= 0x80;
        let acpi = parse(&mem, fx.rsdp).expect("parse");
        assert!(acpi.dmar.is_some(), "{sig}");
        assert_eq!(acpi.rejected.len(), 1, "{sig}");
        assert_eq!(acpi.rejected[0].0.to_string(), sig);
    }
}

#[test]
fn bad_rsdp_checksum_fails_the_whole_parse() {
    let fx = Fixture::load(DEFAULT);
    let mut mem = fx.memory();
    fx.table_mut(&mut mem, "RSD_PTR_")[10] ^= 0xff;
    assert!(matches!(
        parse(&mem, fx.rsdp),
        Err(AcpiError::RsdpChecksum { .. })
    ));
}
