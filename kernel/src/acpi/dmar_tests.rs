//! Unit tests of [`Dmar::parse`] and device scopes, below the end-to-end
//! tests of `tests.rs`: every structure type, scope ranges into the shared
//! pool, scope path resolution, and each structural rejection.

use super::testutil::*;
use super::*;

fn dmar(structures: &[std::vec::Vec<u8>]) -> Result<Dmar, AcpiError> {
    Dmar::parse(&sdt(b"DMAR", 1, &dmar_body(0x26, 0b111, structures)))
}

#[test]
fn decodes_every_structure_type_and_scope_ranges() {
    let d = dmar(&[
        drhd(
            0,
            0,
            0xfed9_0000,
            &[scope(1, 0, 0, &[(1, 0)]), scope(4, 0, 0, &[(0x1f, 0)])],
        ),
        drhd(1, 1, 0xfed9_1000, &[scope(3, 8, 0xf0, &[(0x1f, 7)])]),
        rmrr(
            0,
            0xe0000,
            0xeffff,
            &[scope(1, 0, 0, &[(0x1d, 0)]), scope(1, 0, 0, &[(0x1a, 0)])],
        ),
        atsr(1, 0, &[scope(2, 0, 0, &[(0x1c, 0)])]),
        rhsa(0xfed9_0000, 3),
    ])
    .unwrap();
    assert_eq!(d.address_width_bits(), 0x27);
    assert_eq!(d.flags, DmarFlags::all());
    assert_eq!(d.drhds.len(), 2);
    assert_eq!(d.drhds[1].segment, 1);
    assert!(d.drhds[1].flags.contains(DrhdFlags::INCLUDE_PCI_ALL));
    assert_eq!(d.scopes(d.drhds[0].scopes).len(), 2);
    assert_eq!(d.scopes(d.drhds[0].scopes)[1].kind, ScopeKind::Hpet);
    let ioapic = &d.scopes(d.drhds[1].scopes)[0];
    assert_eq!((ioapic.kind, ioapic.enumeration_id), (ScopeKind::IoApic, 8));

    let rmrr = d.rmrrs[0];
    assert_eq!((rmrr.base, rmrr.limit), (0xe0000, 0xeffff));
    let rmrr_scopes = d.scopes(rmrr.scopes);
    assert_eq!(rmrr_scopes.len(), 2);
    assert_eq!(
        rmrr_scopes[1].target(),
        ScopeTarget::Device(Bdf {
            bus: 0,
            device: 0x1a,
            function: 0
        })
    );

    assert!(d.atsrs[0].flags.contains(AtsrFlags::ALL_PORTS));
    assert_eq!(
        d.scopes(d.atsrs[0].scopes)[0].kind,
        ScopeKind::PciSubHierarchy
    );
    assert_eq!(
        d.rhsas[0],
        Rhsa {
            register_base: 0xfed9_0000,
            proximity_domain: 3
        }
    );
    assert_eq!(d.all_scopes().len(), 6);
}

#[test]
fn multi_hop_paths_are_handed_back_or_resolved_through_bridges() {
    let d = dmar(&[drhd(
        1,
        0,
        0xfed9_0000,
        &[
            scope(1, 0, 0, &[(0x1c, 0), (0, 0), (3, 1)]),
            scope(1, 0, 0, &[]),
        ],
    )])
    .unwrap();
    let scopes = d.scopes(d.drhds[0].scopes);
    let hops = [
        PathEntry {
            device: 0x1c,
            function: 0,
        },
        PathEntry {
            device: 0,
            function: 0,
        },
        PathEntry {
            device: 3,
            function: 1,
        },
    ];
    assert_eq!(
        scopes[0].target(),
        ScopeTarget::Path {
            start_bus: 0,
            path: &hops
        }
    );
    // Root port 00:1c.0 has secondary bus 2; switch 02:00.0 has secondary bus 5.
    let bridges = |b: Bdf| match (b.bus, b.device, b.function) {
        (0, 0x1c, 0) => Some(2),
        (2, 0, 0) => Some(5),
        _ => None,
    };
    let bdf = scopes[0].resolve(bridges).unwrap();
    assert_eq!(
        bdf,
        Bdf {
            bus: 5,
            device: 3,
            function: 1
        }
    );
    assert_eq!(bdf.to_string(), "05:03.1");
    assert_eq!(bdf.rid(), 0x0519);
    assert_eq!(scopes[0].resolve(|_| None), None);
    // An empty path names nothing.
    assert_eq!(
        scopes[1].target(),
        ScopeTarget::Path {
            start_bus: 0,
            path: &[]
        }
    );
    assert_eq!(scopes[1].resolve(bridges), None);
}

#[test]
fn structure_and_scope_length_errors() {
    // Remapping structure shorter than its 4-byte header.
    let mut tiny = remapping(7, &[], &[]);
    tiny[2] = 2;
    assert!(matches!(
        dmar(&[tiny]),
        Err(AcpiError::TooShort {
            min: 4,
            length: 2,
            offset: 0x30,
            ..
        })
    ));
    // DRHD shorter than its 16-byte fixed part.
    let short = remapping(0, &[0; 8], &[]);
    assert!(matches!(
        dmar(&[short]),
        Err(AcpiError::TooShort {
            structure: Structure::Drhd,
            length: 12,
            min: 16,
            ..
        })
    ));
    // Trailing bytes too few for a structure header.
    let mut body = dmar_body(0x2f, 0, &[drhd(0, 0, 0x1000, &[])]);
    body.extend_from_slice(&[1, 0]);
    assert!(matches!(
        Dmar::parse(&sdt(b"DMAR", 1, &body)),
        Err(AcpiError::Truncated {
            structure: Structure::Rmrr,
            offset: 0x40,
            length: 4,
            end: 0x42,
            ..
        })
    ));
    // Device scope shorter than 6 bytes.
    let mut s = scope(1, 0, 0, &[]);
    s[1] = 4;
    s.truncate(4);
    assert!(matches!(
        dmar(&[drhd(0, 0, 0x1000, &[s])]),
        Err(AcpiError::TooShort {
            structure: Structure::DeviceScope,
            length: 4,
            min: 6,
            ..
        })
    ));
    // Device scope running past the end of its DRHD.
    let mut s = scope(1, 0, 0, &[(1, 0)]);
    s[1] = 10;
    let err = dmar(&[drhd(0, 0, 0x1000, &[s]), drhd(0, 0, 0x2000, &[])]).unwrap_err();
    assert_eq!(
        err,
        AcpiError::Truncated {
            sig: Signature::DMAR,
            structure: Structure::DeviceScope,
            offset: 0x40,
            length: 10,
            end: 0x48,
            within: Some(Structure::Drhd)
        }
    );
    assert_eq!(
        err.to_string(),
        "DMAR: truncated device scope at offset 0x40: length 10 exceeds DRHD end (0x48)"
    );
    // Header too short for HAW and flags.
    assert!(matches!(
        Dmar::parse(&sdt(b"DMAR", 1, &[0x2f, 0])),
        Err(AcpiError::TooShort {
            structure: Structure::Header,
            min: 48,
            ..
        })
    ));
}

#[test]
fn bad_path_entries_and_capacity_overflows() {
    assert_eq!(
        dmar(&[drhd(0, 0, 0x1000, &[scope(1, 0, 0, &[(32, 0)])])]),
        Err(AcpiError::BadScopePath {
            sig: Signature::DMAR,
            offset: 0x40,
            device: 32,
            function: 0
        })
    );
    let deep = [(0, 0); MAX_SCOPE_PATH + 1];
    assert!(matches!(
        dmar(&[drhd(0, 0, 0x1000, &[scope(1, 0, 0, &deep)])]),
        Err(AcpiError::TooMany {
            structure: Structure::ScopePath,
            capacity: MAX_SCOPE_PATH,
            ..
        })
    ));
    let many: std::vec::Vec<_> = (0..MAX_DEVICE_SCOPES + 1)
        .map(|_| scope(1, 0, 0, &[(1, 0)]))
        .collect();
    let (a, b) = many.split_at(100);
    assert!(matches!(
        dmar(&[drhd(0, 0, 0x1000, a), drhd(0, 0, 0x2000, b)]),
        Err(AcpiError::TooMany {
            structure: Structure::DeviceScope,
            capacity: MAX_DEVICE_SCOPES,
            ..
        })
    ));
    let drhds: std::vec::Vec<_> = (0..MAX_DRHDS as u64 + 1)
        .map(|i| drhd(0, 0, 0x1000 * (i + 1), &[]))
        .collect();
    assert!(matches!(
        dmar(&drhds),
        Err(AcpiError::TooMany {
            structure: Structure::Drhd,
            capacity: MAX_DRHDS,
            ..
        })
    ));
}

#[test]
fn error_messages_name_table_structure_and_offset() {
    let cases = [
        (
            AcpiError::TooShort {
                sig: Signature::MADT,
                structure: Structure::MadtEntry(1),
                offset: 0x2c,
                length: 8,
                min: 12,
            },
            "APIC: I/O APIC entry at offset 0x2c is too short: length 8, needs 12",
        ),
        (
            AcpiError::BusRange {
                sig: Signature::MCFG,
                offset: 0x2c,
                start: 8,
                end: 7,
            },
            "MCFG: ECAM allocation at offset 0x2c has end bus 0x07 below start bus 0x08",
        ),
        (
            AcpiError::BadRegisterBase {
                sig: Signature::DMAR,
                offset: 0x30,
                base: 0,
            },
            "DMAR: DRHD at offset 0x30 has register base 0x0: must be non-zero and 4 KiB aligned",
        ),
        (
            AcpiError::TooMany {
                sig: Signature::DMAR,
                structure: Structure::Drhd,
                capacity: 16,
            },
            "DMAR: DRHD count exceeds capacity 16",
        ),
        (
            AcpiError::Unreadable {
                sig: Some(Signature::DMAR),
                paddr: 0x1000,
                len: 0x70,
            },
            "DMAR: cannot read 0x70 bytes at physical address 0x1000",
        ),
        (
            AcpiError::SignatureMismatch {
                expected: Signature::XSDT,
                found: Signature(*b"\0\0\0\0"),
                paddr: 0x1000,
            },
            "XSDT: table at 0x1000 has signature \\x00\\x00\\x00\\x00",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn a_function_belongs_to_the_unit_that_lists_it_else_the_catch_all() {
    let d = dmar(&[
        drhd(
            0,
            0,
            0xfed9_0000,
            &[scope(1, 0, 0, &[(2, 0)]), scope(2, 0, 0, &[(0x1c, 0)])],
        ),
        drhd(1, 0, 0xfed9_1000, &[]),
        drhd(1, 1, 0xfed9_2000, &[]),
    ])
    .unwrap();
    let at = |bus, device, function| Bdf {
        bus,
        device,
        function,
    };
    // The root port at 00:1c.0 leads to buses 2 and 3.
    let bridge = at(0, 0x1c, 0);
    let unit = |segment, bdf| {
        d.unit_for(
            segment,
            bdf,
            |b| (b == bridge).then_some(2),
            |b| (b == bridge).then_some((2, 3)),
        )
    };
    assert_eq!(unit(0, at(0, 2, 0)), Some(0), "listed endpoint");
    assert_eq!(
        unit(0, at(0, 2, 1)),
        Some(1),
        "another function of it is not listed"
    );
    assert_eq!(unit(0, bridge), Some(0), "the listed bridge itself");
    assert_eq!(unit(0, at(2, 0, 0)), Some(0), "behind the bridge");
    assert_eq!(unit(0, at(3, 5, 1)), Some(0), "its subordinate bus");
    assert_eq!(unit(0, at(4, 0, 0)), Some(1), "past the bridge's buses");
    assert_eq!(unit(0, at(0, 3, 0)), Some(1), "the catch-all of segment 0");
    assert_eq!(unit(1, at(0, 2, 0)), Some(2), "segment 1 has its own");
    assert_eq!(unit(2, at(0, 2, 0)), None, "no unit for segment 2");
}
