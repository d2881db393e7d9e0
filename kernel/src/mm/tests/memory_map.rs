//! [`PhysMap`]: normalisation, allocatable ranges and exclusions.

use faultline_boot::{MemoryKind, MemoryRegion};
use proptest::prelude::*;

use crate::mm::{MAX_PHYS_REGIONS, PhysMap, PhysMapError, PhysRange};

pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;

pub(super) fn region(base: u64, len: u64, kind: MemoryKind) -> MemoryRegion {
    MemoryRegion { base, len, kind }
}

pub(super) fn ram(base: u64, len: u64) -> MemoryRegion {
    region(base, len, MemoryKind::Usable)
}

pub(super) fn reserved(base: u64, len: u64) -> MemoryRegion {
    region(base, len, MemoryKind::Reserved)
}

/// The live E820 of a 256 MiB q35 guest under QEMU 10 (reference §6).
pub(super) fn live_256m() -> Vec<MemoryRegion> {
    vec![
        ram(0, 0x9fc00),
        reserved(0x9fc00, 0x400),
        reserved(0xf0000, 0x10000),
        ram(0x10_0000, 0xffe_0000 - 0x10_0000),
        reserved(0xffe_0000, 0x2_0000),
        reserved(0xb000_0000, 256 * MIB),
        reserved(0xfed1_c000, 0x4000),
        reserved(0xfffc_0000, 0x4_0000),
        reserved(0xfd_0000_0000, 12 * GIB),
    ]
}

/// First MiB and a 2 MiB kernel image at 1 MiB.
pub(super) const EXCLUSIONS: [PhysRange; 2] =
    [PhysRange::new(0, MIB), PhysRange::new(MIB, 3 * MIB)];

#[test]
fn live_qemu_map_is_kept_and_allocatable_starts_after_the_kernel() {
    let map = PhysMap::new(&live_256m(), &EXCLUSIONS).unwrap();
    assert_eq!(map.regions(), live_256m().as_slice());
    assert_eq!(map.usable_bytes(), 0x9fc00 + 0xffe_0000 - MIB);
    assert_eq!(map.highest_usable_end(), Some(0xffe_0000));
    assert_eq!(map.highest_end(), Some(0xfd_0000_0000 + 12 * GIB));
    assert_eq!(map.allocatable(), &[PhysRange::new(3 * MIB, 0xffe_0000)]);
    assert_eq!(map.allocatable_bytes(), 0xffe_0000 - 3 * MIB);
    assert_eq!(map.kind_at(0x9fc00), Some(MemoryKind::Reserved));
    assert_eq!(map.kind_at(0xa0000), None); // the VGA hole
    assert_eq!(map.kind_at(0x20_0000), Some(MemoryKind::Usable));
    assert!(map.is_allocatable(PhysRange::new(3 * MIB, 4 * MIB)));
    assert!(!map.is_allocatable(PhysRange::new(2 * MIB, 4 * MIB)));
}

#[test]
fn unsorted_overlapping_input_is_normalised() {
    let input = [
        ram(5 * MIB, 11 * MIB),
        reserved(4 * MIB, MIB),
        ram(0, 6 * MIB), // overlaps both
        ram(16 * MIB, MIB),
        ram(16 * MIB + MIB / 2, MIB), // overlapping usable merges
        region(0, 0, MemoryKind::Unusable),
    ];
    let map = PhysMap::new(&input, &[]).unwrap();
    let want = [
        ram(0, 4 * MIB),
        reserved(4 * MIB, MIB),
        ram(5 * MIB, 12 * MIB + MIB / 2),
    ];
    assert_eq!(map.regions(), &want);
    assert_eq!(map.usable_bytes(), 16 * MIB + MIB / 2);
}

#[test]
fn the_more_restrictive_kind_wins_in_either_order() {
    use MemoryKind::*;
    let order = [
        Usable,
        AcpiReclaimable,
        AcpiNvs,
        Persistent,
        Reserved,
        Other(9),
        Other(12),
        Disabled,
        Unusable,
    ];
    for (i, &weak) in order.iter().enumerate() {
        for &strong in &order[i..] {
            for input in [
                [region(0, 2 * MIB, weak), region(MIB, 2 * MIB, strong)],
                [region(MIB, 2 * MIB, strong), region(0, 2 * MIB, weak)],
            ] {
                let map = PhysMap::new(&input, &[]).unwrap();
                assert_eq!(map.kind_at(MIB + 1), Some(strong), "{weak:?} vs {strong:?}");
                assert_eq!(map.kind_at(0), Some(weak));
            }
        }
    }
}

#[test]
fn usable_ranges_shrink_to_whole_pages_and_exclusions_grow() {
    let map = PhysMap::new(&[ram(0x1234, 0x8000), ram(0x10_0800, 0x800)], &[]).unwrap();
    assert_eq!(map.allocatable(), &[PhysRange::new(0x2000, 0x9000)]);
    let mut map = map;
    map.exclude(PhysRange::new(0x4100, 0x4200)).unwrap();
    let want = [
        PhysRange::new(0x2000, 0x4000),
        PhysRange::new(0x5000, 0x9000),
    ];
    assert_eq!(map.allocatable(), &want);
    map.exclude(PhysRange::new(0x50_0000, 0x60_0000)).unwrap(); // in a hole
    map.exclude(PhysRange::new(7, 3)).unwrap(); // empty
    assert_eq!(map.allocatable(), &want);
    map.exclude(PhysRange::new(0, u64::MAX)).unwrap();
    assert!(map.allocatable().is_empty());
    assert_eq!(map.usable_bytes(), 0x8000 + 0x800); // the map itself is unchanged
}

#[test]
fn a_region_reaching_the_top_of_memory_ends_there() {
    let map = PhysMap::new(&[ram(u64::MAX - 0x2fff, 0x8000)], &[]).unwrap();
    assert_eq!(map.highest_usable_end(), Some(u64::MAX));
    assert_eq!(
        map.allocatable(),
        &[PhysRange::new(u64::MAX - 0x2fff, !0xfff)]
    );
}

#[test]
fn capacity_overflows_are_errors() {
    let many: Vec<_> = (0..=MAX_PHYS_REGIONS as u64)
        .map(|i| ram(i * 2 * MIB, MIB))
        .collect();
    let err = PhysMap::new(&many, &[]).unwrap_err();
    assert_eq!(
        err,
        PhysMapError::TooManyRegions {
            count: MAX_PHYS_REGIONS + 1
        }
    );
    // 65 reserved islands in one usable range: 131 normalised regions.
    let mut islands = vec![ram(0, GIB)];
    islands.extend((1..=65).map(|i| reserved(i * 4 * MIB, MIB)));
    assert!(matches!(
        PhysMap::new(&islands, &[]),
        Err(PhysMapError::TooManyRegions { .. })
    ));
    // Splitting one range 128 times.
    let mut map = PhysMap::new(&[ram(0, GIB)], &[]).unwrap();
    for i in 1..MAX_PHYS_REGIONS as u64 {
        map.exclude(PhysRange::from_base_len(i * 4 * MIB, MIB))
            .unwrap();
    }
    let before = map.allocatable().to_vec();
    let err = map
        .exclude(PhysRange::from_base_len(2 * MIB, 4096))
        .unwrap_err();
    assert_eq!(err, PhysMapError::TooManyRanges);
    assert_eq!(map.allocatable(), before.as_slice());
    assert!(err.to_string().contains("128"));
}

fn rank(kind: MemoryKind) -> (u8, u32) {
    use MemoryKind::*;
    match kind {
        Usable => (0, 0),
        AcpiReclaimable => (1, 0),
        AcpiNvs => (2, 0),
        Persistent => (3, 0),
        Reserved => (4, 0),
        Other(n) => (5, n),
        Disabled => (6, 0),
        Unusable => (7, 0),
    }
}

pub(super) fn arb_regions() -> impl Strategy<Value = Vec<MemoryRegion>> {
    let kind = prop_oneof![
        4 => Just(MemoryKind::Usable),
        1 => (1u32..9).prop_map(MemoryKind::from_e820),
    ];
    // 256-byte granular bases and lengths in 16 MiB: edges are rarely
    // page-aligned, yet a page can be checked exactly in 16 probes.
    let one = (0u64..1 << 16, 0u64..1 << 14, kind).prop_map(|(b, l, k)| region(b << 8, l << 8, k));
    proptest::collection::vec(one, 0..12)
}

proptest! {
    #[test]
    fn normalised_regions_are_sorted_disjoint_and_agree_with_the_input(
        input in arb_regions(),
        probes in proptest::collection::vec(0u64..20 * MIB, 64),
    ) {
        let map = PhysMap::new(&input, &[]).unwrap();
        for pair in map.regions().windows(2) {
            prop_assert!(pair[0].end() <= pair[1].base);
            prop_assert!(pair[0].end() < pair[1].base || pair[0].kind != pair[1].kind);
        }
        prop_assert!(map.regions().iter().all(|r| r.len > 0));
        for pair in map.allocatable().windows(2) {
            prop_assert!(pair[0].end < pair[1].start);
        }
        for paddr in probes {
            let covering = input.iter().filter(|r| r.base <= paddr && paddr < r.end());
            let want = covering.map(|r| r.kind).max_by_key(|&k| rank(k));
            prop_assert_eq!(map.kind_at(paddr), want, "at {:#x}", paddr);
            let page = PhysRange::from_base_len(paddr & !0xfff, 4096);
            let whole_page_usable = (page.start..page.end).step_by(256).all(|a| {
                input.iter().filter(|r| r.base <= a && a < r.end()).map(|r| r.kind)
                    .max_by_key(|&k| rank(k)) == Some(MemoryKind::Usable)
            });
            prop_assert_eq!(map.is_allocatable(page), whole_page_usable);
        }
    }
}
