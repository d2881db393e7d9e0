//! End-to-end tests of [`parse`]: the q35 layout of reference/qemu-vtd.md
//! section 5, its XSDT variant, and corrupted variants showing which problems
//! reject one table and which fail the whole parse.

use super::testutil::*;
use super::*;

fn rejected_sigs(t: &AcpiTables) -> std::vec::Vec<Signature> {
    t.rejected.iter().map(|(s, _)| *s).collect()
}

#[test]
fn q35_layout_matches_the_reference() {
    let t = parse(&q35(), RSDP).unwrap();
    assert_eq!(t.rsdp_revision, 0);
    assert_eq!(t.oem_id.trimmed(), b"BOCHS");
    assert_eq!(t.root.signature, Signature::RSDT);
    assert_eq!(t.root.paddr, 0x0ffe_232d);
    assert!(t.rejected.is_empty(), "{:?}", t.rejected);
    let sigs: std::vec::Vec<_> = t.tables.iter().map(|i| i.signature.to_string()).collect();
    assert_eq!(sigs, ["FACP", "APIC", "HPET", "MCFG", "WAET", "DMAR"]);

    let dmar_info = t.find(Signature::DMAR).unwrap();
    assert_eq!((dmar_info.length, dmar_info.revision), (0x70, 1));
    assert_eq!(dmar_info.paddr, table_addr(5));
    let dmar = t.dmar.as_ref().unwrap();
    assert_eq!(dmar.host_address_width, 0x2f);
    assert_eq!(dmar.address_width_bits(), 48);
    assert_eq!(dmar.flags, DmarFlags::INTR_REMAP);
    assert_eq!(dmar.drhds.len(), 1);
    assert!(dmar.rmrrs.is_empty() && dmar.atsrs.is_empty() && dmar.rhsas.is_empty());
    assert_eq!(dmar.skipped, 0);

    let drhd = dmar.drhds[0];
    assert_eq!(drhd.register_base, 0xfed9_0000);
    assert_eq!(drhd.segment, 0);
    assert_eq!(drhd.flags, DrhdFlags::empty());
    assert!(!drhd.flags.contains(DrhdFlags::INCLUDE_PCI_ALL));
    let scopes = dmar.scopes(drhd.scopes);
    assert_eq!(scopes.len(), 6);
    assert_eq!(scopes[0].kind, ScopeKind::IoApic);
    assert_eq!((scopes[0].enumeration_id, scopes[0].start_bus), (0, 0xff));
    assert_eq!(
        scopes[0].target(),
        ScopeTarget::Device(Bdf {
            bus: 0xff,
            device: 0,
            function: 0
        })
    );
    let endpoints: std::vec::Vec<_> = scopes[1..]
        .iter()
        .map(|s| {
            assert_eq!(s.kind, ScopeKind::PciEndpoint);
            match s.target() {
                ScopeTarget::Device(bdf) => bdf.to_string(),
                other => panic!("unresolved {other:?}"),
            }
        })
        .collect();
    assert_eq!(
        endpoints,
        ["00:00.0", "00:01.0", "00:1f.0", "00:1f.2", "00:1f.3"]
    );

    let mcfg = t.mcfg.as_ref().unwrap();
    assert_eq!(
        mcfg.regions[..],
        [EcamRegion {
            base: 0xb000_0000,
            segment: 0,
            start_bus: 0,
            end_bus: 255
        }]
    );

    let madt = t.madt.as_ref().unwrap();
    assert_eq!(madt.local_apic_address, 0xfee0_0000);
    assert!(madt.flags.contains(MadtFlags::PCAT_COMPAT));
    assert_eq!(madt.local_apics.len(), 1);
    assert!(madt.local_apics[0].enabled());
    assert_eq!(madt.io_apics.len(), 1);
    assert_eq!(madt.io_apics[0].address, 0xfec0_0000);
    assert_eq!(madt.overrides.len(), 2);
    assert_eq!(madt.other_entries, 1);
}

#[test]
fn xsdt_is_used_when_the_rsdp_is_acpi_2() {
    let t = parse(&layout(q35_tables(), true), RSDP).unwrap();
    assert_eq!(t.rsdp_revision, 2);
    assert_eq!(t.root.signature, Signature::XSDT);
    assert_eq!(t.tables.len(), 6);
    assert!(t.madt.is_some() && t.mcfg.is_some() && t.dmar.is_some());

    // 64-bit table pointers reach above 4 GiB.
    let mem = TestMem::new()
        .with(0xe0000, rsdp_v2(0, 0x1_0000_0000))
        .with(0x1_0000_0000, xsdt(&[0, 0x2_0000_1000]))
        .with(0x2_0000_1000, q35_dmar());
    let t = parse(&mem, 0xe0000).unwrap();
    assert_eq!(t.tables[0].paddr, 0x2_0000_1000);
    assert_eq!(t.dmar.unwrap().drhds[0].register_base, 0xfed9_0000);
}

#[test]
fn a_bad_checksum_rejects_only_that_table() {
    for (i, sig) in [(0, "FACP"), (1, "APIC"), (3, "MCFG"), (5, "DMAR")] {
        let mut mem = q35();
        let table = mem.chunk_mut(table_addr(i));
        let last = table.len() - 1;
        table[last] = table[last].wrapping_add(0x3c);
        let t = parse(&mem, RSDP).unwrap();
        assert_eq!(t.rejected.len(), 1, "{sig}");
        let (rejected, error) = t.rejected[0];
        assert_eq!(rejected.to_string(), sig);
        assert_eq!(
            error,
            AcpiError::Checksum {
                sig: rejected,
                sum: 0x3c
            }
        );
        assert_eq!(
            error.to_string(),
            format!("{sig}: checksum mismatch (sum 0x3c)")
        );
        // Still listed, and every other table is still decoded.
        assert_eq!(t.tables.len(), 6);
        assert_eq!(t.madt.is_some(), sig != "APIC");
        assert_eq!(t.mcfg.is_some(), sig != "MCFG");
        assert_eq!(t.dmar.is_some(), sig != "DMAR");
    }
}

#[test]
fn bad_rsdp_or_root_table_fails_the_parse() {
    let mut mem = q35();
    let rsdp = mem.chunk_mut(RSDP);
    rsdp[8] = rsdp[8].wrapping_add(0x3c);
    assert_eq!(
        parse(&mem, RSDP),
        Err(AcpiError::RsdpChecksum { sum: 0x3c })
    );
    assert_eq!(
        AcpiError::RsdpChecksum { sum: 0x3c }.to_string(),
        "RSDP: checksum mismatch (sum 0x3c)"
    );
    assert!(matches!(
        parse(&q35(), RSDP + 16),
        Err(AcpiError::RsdpSignature { .. } | AcpiError::Unreadable { .. })
    ));

    let mut mem = q35();
    mem.chunk_mut(ROOT)[40] ^= 1;
    assert_eq!(
        parse(&mem, RSDP),
        Err(AcpiError::Checksum {
            sig: Signature::RSDT,
            sum: 1
        })
    );

    // The RSDP points at something that is not an RSDT.
    let mem = TestMem::new()
        .with(RSDP, rsdp_v1(0x1000))
        .with(0x1000, q35_mcfg());
    assert_eq!(
        parse(&mem, RSDP),
        Err(AcpiError::SignatureMismatch {
            expected: Signature::RSDT,
            found: Signature::MCFG,
            paddr: 0x1000
        })
    );

    // An RSDT that is not whole 4-byte entries, and one that is unreadable.
    let mut root = rsdt(&[0x2000]);
    root.extend_from_slice(&[0, 0]);
    root[4] += 2;
    fix_checksum(&mut root, 9);
    let mem = TestMem::new()
        .with(RSDP, rsdp_v1(0x1000))
        .with(0x1000, root);
    assert!(matches!(
        parse(&mem, RSDP),
        Err(AcpiError::Truncated {
            structure: Structure::TablePointer,
            offset: 40,
            ..
        })
    ));
    let mem = TestMem::new().with(RSDP, rsdp_v1(0x1000));
    assert_eq!(
        parse(&mem, RSDP),
        Err(AcpiError::Unreadable {
            sig: Some(Signature::RSDT),
            paddr: 0x1000,
            len: 36
        })
    );
}

#[test]
fn dmar_longer_than_readable_memory_is_rejected() {
    let mut tables = q35_tables();
    tables[5][4] = 0x00;
    tables[5][5] = 0x10; // length 0x1000, only 0x70 bytes there
    fix_checksum(&mut tables[5], 9);
    let t = parse(&layout(tables, false), RSDP).unwrap();
    assert_eq!(rejected_sigs(&t), [Signature::DMAR]);
    assert_eq!(
        t.rejected[0].1,
        AcpiError::Unreadable {
            sig: Some(Signature::DMAR),
            paddr: table_addr(5),
            len: 0x1000
        }
    );
    assert!(t.dmar.is_none() && t.madt.is_some() && t.mcfg.is_some());
}

/// Parses a layout whose DMAR has `structures`, returning the DMAR's fate.
fn parse_dmar(structures: &[std::vec::Vec<u8>]) -> Result<Dmar, AcpiError> {
    let mut tables = q35_tables();
    tables[5] = sdt(b"DMAR", 1, &dmar_body(0x2f, 1, structures));
    let t = parse(&layout(tables, false), RSDP).unwrap();
    assert!(t.madt.is_some() && t.mcfg.is_some());
    match (t.dmar, t.rejected.first()) {
        (Some(dmar), None) => Ok(dmar),
        (None, Some(&(Signature::DMAR, error))) => Err(error),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn drhd_running_past_the_table_is_rejected() {
    let mut s = drhd(0, 0, 0xfed9_0000, &[]);
    s.truncate(8); // length field still says 16
    let err = parse_dmar(&[s]).unwrap_err();
    assert_eq!(
        err,
        AcpiError::Truncated {
            sig: Signature::DMAR,
            structure: Structure::Drhd,
            offset: 0x30,
            length: 16,
            end: 0x38,
            within: None
        }
    );
    assert_eq!(
        err.to_string(),
        "DMAR: truncated DRHD at offset 0x30: length 16 exceeds table end (0x38)"
    );
}

#[test]
fn device_scope_with_odd_path_length_is_rejected() {
    let mut bad = scope(1, 0, 0, &[(1, 0)]);
    bad.push(0);
    bad[1] = 9;
    let err = parse_dmar(&[drhd(0, 0, 0xfed9_0000, &[bad])]).unwrap_err();
    assert_eq!(
        err,
        AcpiError::OddScopePath {
            sig: Signature::DMAR,
            offset: 0x40,
            length: 9
        }
    );
    assert_eq!(
        err.to_string(),
        "DMAR: device scope at offset 0x40 has length 9: path is not whole (device, function) pairs"
    );
}

#[test]
fn drhd_with_zero_or_unaligned_register_base_is_rejected() {
    for base in [0, 0xfed9_0800] {
        assert_eq!(
            parse_dmar(&[drhd(0, 0, base, &[])]),
            Err(AcpiError::BadRegisterBase {
                sig: Signature::DMAR,
                offset: 0x30,
                base
            })
        );
    }
}

#[test]
fn rmrr_with_limit_below_base_is_rejected() {
    let err = parse_dmar(&[
        drhd(1, 0, 0xfed9_0000, &[]),
        rmrr(0, 0x000e_0000, 0x000d_ffff, &[scope(1, 0, 0, &[(0x1d, 0)])]),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        AcpiError::RmrrLimitBelowBase {
            sig: Signature::DMAR,
            offset: 0x40,
            base: 0xe0000,
            limit: 0xdffff
        }
    );
    assert_eq!(
        err.to_string(),
        "DMAR: RMRR at offset 0x40 has limit 0xdffff below base 0xe0000"
    );
}

#[test]
fn unknown_remapping_types_are_skipped_and_counted() {
    let dmar = parse_dmar(&[
        remapping(0x77, &[1, 2, 3, 4], &[]),
        remapping(4, &[0, 0, 0, 1, b'\\', b'_', b'S', b'B', 0], &[]), // ANDD
        drhd(1, 0, 0xfed9_0000, &[scope(3, 2, 0xf0, &[(0x1f, 0)])]),
        remapping(0x1234, &[], &[]),
    ])
    .unwrap();
    assert_eq!(dmar.skipped, 3);
    assert_eq!(dmar.drhds.len(), 1);
    assert!(dmar.drhds[0].flags.contains(DrhdFlags::INCLUDE_PCI_ALL));
}

#[test]
fn unreadable_and_null_table_pointers() {
    let addrs = [0, table_addr(1) as u32, 0xdead_0000];
    let mem = TestMem::new()
        .with(RSDP, rsdp_v1(ROOT as u32))
        .with(ROOT, rsdt(&addrs))
        .with(table_addr(1), q35_madt());
    let t = parse(&mem, RSDP).unwrap();
    assert_eq!(t.tables.len(), 1);
    assert!(t.madt.is_some());
    assert_eq!(
        t.rejected[..],
        [(Signature::UNKNOWN, AcpiError::unreadable(0xdead_0000, 36))]
    );
}

#[test]
fn duplicate_tables_keep_the_first() {
    let mut tables = q35_tables();
    let mut second = q35_madt();
    second[36] = 0x10; // different local APIC address
    fix_checksum(&mut second, 9);
    tables.push(second);
    let t = parse(&layout(tables, false), RSDP).unwrap();
    assert_eq!(t.madt.unwrap().local_apic_address, 0xfee0_0000);
    assert_eq!(
        t.rejected[..],
        [(
            Signature::MADT,
            AcpiError::Duplicate {
                sig: Signature::MADT,
                paddr: table_addr(6)
            }
        )]
    );
}

#[test]
fn table_list_overflow_is_recorded_not_a_panic() {
    let mut tables: std::vec::Vec<_> = (0..MAX_TABLES + 4)
        .map(|_| sdt(b"SSDT", 1, &[0; 8]))
        .collect();
    tables.push(q35_dmar());
    let t = parse(&layout(tables, true), RSDP).unwrap();
    assert_eq!(t.tables.len(), MAX_TABLES);
    assert_eq!(
        t.rejected[..],
        [(
            Signature(*b"SSDT"),
            AcpiError::TableListFull {
                sig: Signature(*b"SSDT"),
                capacity: MAX_TABLES
            }
        )]
    );
    // Tables past the list's end are still decoded.
    assert!(t.dmar.is_some());
}

#[test]
fn rejection_overflow_is_counted() {
    let bad = |sig: &[u8; 4]| {
        let mut t = sdt(sig, 1, &[0; 4]);
        t[9] ^= 0xff;
        t
    };
    let tables: std::vec::Vec<_> = (0..MAX_REJECTED + 3).map(|_| bad(b"SSDT")).collect();
    let t = parse(&layout(tables, false), RSDP).unwrap();
    assert_eq!(t.rejected.len(), MAX_REJECTED);
    assert_eq!(t.rejected_overflow, 3);
}
