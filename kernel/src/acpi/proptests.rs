//! Property tests: whatever bytes a table body holds, decoding returns `Ok`
//! or `Err` and never panics, and a decoded DMAR only hands out scope paths
//! that lie inside the table. Arbitrary bytes rarely get past the first
//! structure header, so the DMAR is also fuzzed with well-formed-looking
//! structures whose lengths and contents are perturbed.

use proptest::prelude::*;

use super::testutil::*;
use super::*;

/// Checks the invariants a decoded DMAR promises for a table of `len` bytes.
fn check_dmar(d: &Dmar, len: usize) {
    let ranges = d
        .drhds
        .iter()
        .map(|x| x.scopes)
        .chain(d.rmrrs.iter().map(|x| x.scopes))
        .chain(d.atsrs.iter().map(|x| x.scopes));
    let mut total = 0;
    for range in ranges {
        let scopes = d.scopes(range);
        assert_eq!(scopes.len(), range.len());
        total += scopes.len();
    }
    assert_eq!(total, d.all_scopes().len());
    // Everything decoded came out of the table: the fixed parts of the
    // header and of each structure, plus each scope's header and path.
    let mut decoded = 48 + 16 * d.drhds.len() + 24 * d.rmrrs.len() + 8 * d.atsrs.len();
    for s in d.all_scopes() {
        assert!(s.path.len() <= MAX_SCOPE_PATH);
        assert!(s.path.iter().all(|p| p.device < 32 && p.function < 8));
        decoded += 6 + 2 * s.path.len();
        let _ = s.target();
        let _ = s.resolve(|b| Some(b.bus.wrapping_add(1)));
    }
    assert!(
        decoded <= len,
        "decoded {decoded} bytes of a {len}-byte table"
    );
    for drhd in &d.drhds {
        assert!(drhd.register_base != 0 && drhd.register_base & 0xfff == 0);
    }
    for rmrr in &d.rmrrs {
        assert!(rmrr.limit >= rmrr.base);
    }
}

/// A remapping structure: a type biased towards the known ones, a body of
/// plausible scopes or raw bytes, and sometimes a wrong length field.
fn structure() -> impl Strategy<Value = std::vec::Vec<u8>> {
    let scope = (
        0u8..7,
        any::<u8>(),
        prop::collection::vec((0u8..34, 0u8..9), 0..4),
        any::<Option<u8>>(),
    )
        .prop_map(|(kind, bus, path, bad_len)| {
            let mut s = scope(kind, 0, bus, &path);
            if let Some(l) = bad_len {
                s[1] = l % 16;
            }
            s
        });
    let fixed = prop_oneof![
        Just(std::vec![0u8; 4]),
        (any::<u8>(), any::<u64>()).prop_map(|(f, base)| {
            let mut v = std::vec![f, 0, 0, 0];
            v.extend_from_slice(&(base & 0xffff_f000 | base & 1).to_le_bytes());
            v
        }),
        (any::<u32>(), any::<u32>()).prop_map(|(b, l)| {
            let mut v = std::vec![0, 0, 0, 0];
            v.extend_from_slice(&u64::from(b).to_le_bytes());
            v.extend_from_slice(&u64::from(l).to_le_bytes());
            v
        }),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    (
        0u16..8,
        fixed,
        prop::collection::vec(scope, 0..5),
        any::<Option<u16>>(),
    )
        .prop_map(|(kind, fixed, scopes, bad_len)| {
            let mut s = remapping(kind, &fixed, &scopes);
            if let Some(l) = bad_len {
                s[2..4].copy_from_slice(&(l % 128).to_le_bytes());
            }
            s
        })
}

proptest! {
    #[test]
    fn arbitrary_dmar_body_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let table = sdt(b"DMAR", 1, &body);
        if let Ok(d) = Dmar::parse(&table) {
            check_dmar(&d, table.len());
        }
    }

    #[test]
    fn structured_dmar_never_panics(structures in prop::collection::vec(structure(), 0..6)) {
        let table = sdt(b"DMAR", 1, &dmar_body(0x2f, 1, &structures));
        if let Ok(d) = Dmar::parse(&table) {
            check_dmar(&d, table.len());
        }
    }

    #[test]
    fn arbitrary_madt_body_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(m) = Madt::parse(&sdt(b"APIC", 3, &body)) {
            prop_assert!(m.local_apics.len() <= MAX_LOCAL_APICS);
        }
    }

    #[test]
    fn arbitrary_mcfg_body_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(m) = Mcfg::parse(&sdt(b"MCFG", 1, &body)) {
            prop_assert!(m.regions.iter().all(|r| r.start_bus <= r.end_bus));
            for r in &m.regions {
                let _ = r.mapped_range();
                let _ = r.config_address(r.end_bus, 31, 7);
            }
        }
    }

    /// The whole pipeline, with the tables' bytes (header fields included)
    /// overwritten at random places, checksums fixed or not.
    #[test]
    fn corrupted_firmware_never_panics(
        patches in prop::collection::vec((0usize..6, any::<usize>(), any::<u8>()), 0..8),
        fix in any::<bool>(),
    ) {
        let mut tables = q35_tables();
        for (t, at, byte) in patches {
            let table = &mut tables[t];
            let at = at % table.len();
            table[at] = byte;
        }
        if fix {
            tables.iter_mut().for_each(|t| fix_checksum(t, 9));
        }
        let lens: std::vec::Vec<usize> = tables.iter().map(|t| t.len()).collect();
        let t = parse(&layout(tables, false), RSDP).unwrap();
        if let Some(d) = &t.dmar {
            check_dmar(d, lens[5]);
        }
        prop_assert!(t.tables.len() <= 6);
        prop_assert_eq!(t.rejected.len() + t.rejected_overflow <= 6, true);
    }
}
