//! [`AddressSpace`]: mapping, translating and unmapping over tables kept in a
//! hash map at arbitrary physical addresses (no identity mapping anywhere).

use std::collections::HashMap;

use proptest::prelude::*;

use crate::mm::paging::bits::{
    ADDR_MASK, GLOBAL, HUGE, NO_EXECUTE, OWNED, PCD, PRESENT, PWT, USER, WRITABLE,
};
use crate::mm::{
    AddressSpace, Cache, FrameSource, KERNEL_BASE, MapAttrs, MapError, PHYS_MAP_BASE, PageSize,
    TableMemory,
};

const K4: u64 = 4096;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;

/// Page tables by physical address. A table never written reads as garbage,
/// so a builder that forgets to zero a new table fails the tests.
#[derive(Default)]
struct Tables(HashMap<u64, Box<[u64; 512]>>);

impl TableMemory for Tables {
    fn table(&mut self, paddr: u64) -> &mut [u64; 512] {
        self.0
            .entry(paddr)
            .or_insert_with(|| Box::new([0xdead_beef_dead_beef; 512]))
    }
}

/// Hands out table frames from a made-up region, up to `limit` of them.
struct Counter {
    given: u64,
    limit: u64,
}

impl FrameSource for Counter {
    fn allocate_table(&mut self) -> Option<u64> {
        self.given += 1;
        (self.given <= self.limit).then_some(0x7654_0000 + self.given * K4)
    }
}

struct Fixture {
    tables: Tables,
    frames: Counter,
    space: AddressSpace,
}

impl Fixture {
    fn new(limit: u64) -> Self {
        let mut tables = Tables::default();
        tables.table(0x1234_5000).fill(0); // the root
        let frames = Counter { given: 0, limit };
        let space = AddressSpace::new(0x1234_5000).with_gigabyte_pages(true);
        Self {
            tables,
            frames,
            space,
        }
    }

    fn map(&mut self, virt: u64, phys: u64, len: u64, attrs: MapAttrs) -> Result<(), MapError> {
        self.space
            .map(&mut self.tables, &mut self.frames, virt, phys, len, attrs)
    }

    fn unmap(&mut self, virt: u64, len: u64) -> Result<u64, MapError> {
        self.space.unmap(&mut self.tables, virt, len)
    }

    fn phys(&mut self, virt: u64) -> Option<(u64, PageSize)> {
        self.space
            .translate(&mut self.tables, virt)
            .map(|t| (t.phys, t.size))
    }

    /// The raw leaf entry for `virt`, found by walking the tables by hand.
    fn leaf(&mut self, virt: u64) -> u64 {
        let (mut table, mut level) = (self.space.root_paddr(), 4);
        loop {
            let entry = self.tables.table(table)[((virt >> (3 + 9 * level)) & 511) as usize];
            if level == 1 || entry & HUGE != 0 {
                return entry;
            }
            (table, level) = (entry & ADDR_MASK, level - 1);
        }
    }

    /// The PML4 entry above `virt`.
    fn top(&mut self, virt: u64) -> u64 {
        self.tables.table(self.space.root_paddr())[((virt >> 39) & 511) as usize]
    }
}

#[test]
fn kernel_data_page_bits() {
    let mut f = Fixture::new(16);
    let virt = PHYS_MAP_BASE + 0x5000;
    f.map(virt, 0x5000, K4, MapAttrs::KERNEL_DATA).unwrap();
    assert_eq!(f.phys(virt + 0x123), Some((0x5123, PageSize::Size4K)));
    assert_eq!(
        f.leaf(virt),
        0x5000 | PRESENT | WRITABLE | GLOBAL | NO_EXECUTE
    );
    assert_eq!(f.top(virt) & !ADDR_MASK, PRESENT | WRITABLE); // no US, no NX
    assert_eq!(f.frames.given, 3); // PDPT, PD, PT
    let t = f.space.translate(&mut f.tables, virt).unwrap();
    assert_eq!(
        t.attrs,
        MapAttrs::KERNEL_DATA.with_largest_page(PageSize::Size4K)
    );
    assert_eq!(f.phys(virt + K4), None);
}

#[test]
fn text_mmio_and_user_bits() {
    let mut f = Fixture::new(32);
    f.map(
        KERNEL_BASE + 0x20_0000,
        0x20_0000,
        K4,
        MapAttrs::KERNEL_TEXT,
    )
    .unwrap();
    assert_eq!(
        f.leaf(KERNEL_BASE + 0x20_0000),
        0x20_0000 | PRESENT | GLOBAL
    );
    let mmio = PHYS_MAP_BASE + 0xfed9_0000;
    f.map(mmio, 0xfed9_0000, 4 * K4, MapAttrs::KERNEL_MMIO)
        .unwrap();
    let bits = PRESENT | WRITABLE | GLOBAL | NO_EXECUTE | PCD | PWT;
    assert_eq!(f.leaf(mmio + 3 * K4), 0xfed9_3000 | bits);
    assert_eq!(
        f.space.translate(&mut f.tables, mmio).unwrap().attrs.cache,
        Cache::Uncached
    );
    f.map(0x40_0000, 0x90_0000, K4, MapAttrs::USER_TEXT)
        .unwrap();
    // Service memory is marked as owned by the space; MMIO never is.
    assert_eq!(f.leaf(0x40_0000), 0x90_0000 | PRESENT | USER | OWNED);
    assert_eq!(f.leaf(mmio) & OWNED, 0);
    let user_mmio = MapAttrs {
        user: true,
        ..MapAttrs::KERNEL_MMIO
    };
    assert!(!user_mmio.owned);
    let t = f.space.translate(&mut f.tables, 0x40_0000).unwrap();
    assert!(t.attrs.owned, "decoded back from the entry");
    // The kernel copies through owned user RAM only, writes only where
    // writable, and never through MMIO or kernel mappings.
    assert!(MapAttrs::USER_DATA.kernel_may_copy(true));
    assert!(MapAttrs::USER_RODATA.kernel_may_copy(false));
    assert!(!MapAttrs::USER_RODATA.kernel_may_copy(true));
    assert!(!user_mmio.kernel_may_copy(false));
    assert!(!MapAttrs::KERNEL_DATA.kernel_may_copy(false));
    let borrowed = MapAttrs {
        owned: false,
        ..MapAttrs::USER_DATA
    };
    assert!(!borrowed.kernel_may_copy(false));
    assert_eq!(f.top(0x40_0000) & 0xfff, PRESENT | WRITABLE | USER);
    assert_eq!(f.top(mmio) & USER, 0); // kernel intermediates stay supervisor
}

#[test]
fn large_pages_follow_alignment_length_and_permission() {
    let mut f = Fixture::new(64);
    // 1 GiB - 8 KiB .. 2 GiB + 2 MiB + 12 KiB, same offset on both sides.
    let (virt, phys, len) = (G1 - 2 * K4, 5 * G1 - 2 * K4, G1 + M2 + 5 * K4);
    f.map(virt, phys, len, MapAttrs::KERNEL_DATA).unwrap();
    let at = |off: u64| (virt + off, phys + off);
    for (off, size) in [
        (0, PageSize::Size4K),
        (K4, PageSize::Size4K),
        (2 * K4, PageSize::Size1G),
        (2 * K4 + G1 - 1, PageSize::Size1G),
        (2 * K4 + G1, PageSize::Size2M),
        (2 * K4 + G1 + M2, PageSize::Size4K),
        (len - K4, PageSize::Size4K),
    ] {
        let (v, p) = at(off);
        assert_eq!(f.phys(v), Some((p, size)), "offset {off:#x}");
    }
    assert_eq!(f.phys(virt + len), None);
    assert_eq!(f.leaf(G1) & HUGE, HUGE);
    // Without CPU support, or with a smaller limit, no 1 GiB pages.
    let mut g = Fixture::new(64);
    g.space = g.space.with_gigabyte_pages(false);
    g.map(G1, G1, G1, MapAttrs::KERNEL_DATA).unwrap();
    assert_eq!(g.phys(G1 + 5), Some((G1 + 5, PageSize::Size2M)));
    let attrs = MapAttrs::KERNEL_DATA.with_largest_page(PageSize::Size4K);
    g.map(4 * G1, 0, M2, attrs).unwrap();
    assert_eq!(g.phys(4 * G1), Some((0, PageSize::Size4K)));
    // Misaligned physical address: 4 KiB pages even where virt is aligned.
    g.map(8 * G1, K4, M2, MapAttrs::KERNEL_DATA).unwrap();
    assert_eq!(g.phys(8 * G1), Some((K4, PageSize::Size4K)));
}

#[test]
fn overlaps_are_refused_and_identical_remaps_are_no_ops() {
    let mut f = Fixture::new(64);
    f.map(0x20_0000, 0x20_0000, M2, MapAttrs::KERNEL_DATA)
        .unwrap();
    f.map(0x10_0000, 0x10_0000, 16 * K4, MapAttrs::KERNEL_RODATA)
        .unwrap();
    let given = f.frames.given;
    // The same again, as a whole or in 4 KiB pieces inside the 2 MiB page.
    f.map(0x20_0000, 0x20_0000, M2, MapAttrs::KERNEL_DATA)
        .unwrap();
    f.map(0x30_0000, 0x30_0000, 8 * K4, MapAttrs::KERNEL_DATA)
        .unwrap();
    f.map(0x10_0000, 0x10_0000, 16 * K4, MapAttrs::KERNEL_RODATA)
        .unwrap();
    assert_eq!(f.frames.given, given);
    // Different target, different attributes, or straddling: refused, and
    // nothing of the request is mapped.
    let err = f
        .map(0x1f_e000, 0x50_0000, 4 * K4, MapAttrs::KERNEL_DATA)
        .unwrap_err();
    assert_eq!(err, MapError::AlreadyMapped { virt: 0x20_0000 });
    assert_eq!(f.phys(0x1f_e000), None);
    let err = f
        .map(0x10_0000, 0x10_0000, K4, MapAttrs::KERNEL_DATA)
        .unwrap_err();
    assert_eq!(err, MapError::AlreadyMapped { virt: 0x10_0000 });
    let err = f
        .map(0x21_0000, 0x31_0000, K4, MapAttrs::KERNEL_DATA)
        .unwrap_err();
    assert_eq!(err, MapError::AlreadyMapped { virt: 0x21_0000 });
    // A 2 MiB request over a region that already has a page table: 4 KiB
    // pages fill the gaps and the existing pages are left alone.
    f.map(0, 0, M2, MapAttrs::KERNEL_RODATA).unwrap();
    assert_eq!(f.phys(0x5000), Some((0x5000, PageSize::Size4K)));
}

#[test]
fn unmap_removes_pages_and_refuses_to_split() {
    let mut f = Fixture::new(64);
    f.map(
        0x40_0000,
        0x40_0000,
        M2 + 4 * K4,
        MapAttrs::USER_DATA.with_largest_page(PageSize::Size2M),
    )
    .unwrap();
    assert_eq!(f.phys(0x40_0000).unwrap().1, PageSize::Size2M);
    let err = f.unmap(0x40_0000, K4).unwrap_err();
    assert_eq!(
        err,
        MapError::WouldSplitLargePage {
            virt: 0x40_0000,
            size: PageSize::Size2M
        }
    );
    let err = f.unmap(0x3f_f000, 2 * K4).unwrap_err();
    assert!(matches!(err, MapError::WouldSplitLargePage { .. }));
    assert_eq!(f.unmap(0x60_1000, K4), Ok(K4));
    assert_eq!(f.phys(0x60_1000), None);
    assert_eq!(f.phys(0x60_2000), Some((0x60_2000, PageSize::Size4K)));
    // Holes (including whole missing PML4 entries) are skipped.
    assert_eq!(f.unmap(0, 1 << 40), Ok(M2 + 3 * K4));
    assert_eq!(f.phys(0x40_0000), None);
    // Unmapped space can be mapped again, differently.
    f.map(0x40_0000, 0x80_0000, K4, MapAttrs::USER_RODATA)
        .unwrap();
    assert_eq!(f.phys(0x40_0000), Some((0x80_0000, PageSize::Size4K)));
    assert_eq!(f.unmap(0xffff_ffff_ffff_f000, K4), Ok(0)); // top page of memory
}

#[test]
fn running_out_of_tables_is_an_error() {
    let mut f = Fixture::new(2);
    let err = f
        .map(0x1000, 0x1000, K4, MapAttrs::KERNEL_DATA)
        .unwrap_err();
    assert_eq!(err, MapError::OutOfTables { virt: 0x1000 });
    let mut f = Fixture::new(3);
    let err = f
        .map(M2 - K4, 0, 2 * K4, MapAttrs::KERNEL_DATA)
        .unwrap_err();
    assert_eq!(err, MapError::OutOfTables { virt: M2 });
    assert!(f.phys(M2 - K4).is_some()); // the part before stays mapped
}

#[test]
fn bad_requests_are_typed_errors() {
    let mut f = Fixture::new(16);
    let d = MapAttrs::KERNEL_DATA;
    let cases = [
        (
            0x0000_8000_0000_0000,
            0,
            K4,
            d,
            MapError::NonCanonical {
                virt: 0x0000_8000_0000_0000,
            },
        ),
        (0x1001, 0, K4, d, MapError::Unaligned { value: 0x1001 }),
        (0x1000, 0x10, K4, d, MapError::Unaligned { value: 0x10 }),
        (0x1000, 0, 100, d, MapError::Unaligned { value: 100 }),
        (
            0x7fff_ffff_f000,
            0,
            2 * K4,
            d,
            MapError::RangeOutsideHalf {
                virt: 0x7fff_ffff_f000,
                len: 2 * K4,
            },
        ),
        (
            0xffff_ffff_ffff_f000,
            0,
            2 * K4,
            d,
            MapError::RangeOutsideHalf {
                virt: 0xffff_ffff_ffff_f000,
                len: 2 * K4,
            },
        ),
        (
            0x1000,
            1 << 52,
            K4,
            d,
            MapError::PhysOutOfRange {
                phys: (1 << 52) + K4 - 1,
            },
        ),
        (
            KERNEL_BASE,
            0,
            K4,
            MapAttrs::USER_DATA,
            MapError::UserInKernelHalf { virt: KERNEL_BASE },
        ),
        (
            0x1000,
            0,
            K4,
            MapAttrs {
                executable: true,
                ..d
            },
            MapError::WritableAndExecutable { virt: 0x1000 },
        ),
    ];
    for (virt, phys, len, attrs, want) in cases {
        assert_eq!(f.map(virt, phys, len, attrs), Err(want));
        assert!(!want.to_string().is_empty());
    }
    assert_eq!(f.frames.given, 0);
    assert_eq!(f.map(0x1000, 0, 0, d), Ok(()));
    assert_eq!(f.unmap(0x1000, 7), Err(MapError::Unaligned { value: 7 }));
    assert_eq!(
        f.space.translate(&mut f.tables, 0x0000_8000_0000_0000),
        None
    );
    // The very top page of the kernel half can be mapped.
    f.map(0xffff_ffff_ffff_f000, 0x3000, K4, d).unwrap();
    assert_eq!(f.phys(u64::MAX), Some((0x3fff, PageSize::Size4K)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Random non-overlapping mappings, mixed sizes and attributes, all
    /// translate back page by page; then unmapping them leaves nothing.
    #[test]
    fn mappings_translate_back(
        pieces in proptest::collection::vec((0u64..3, 1u64..1100, 0u64..1 << 20, 0u64..4), 1..8),
        kernel in any::<bool>(),
    ) {
        let mut f = Fixture::new(10_000);
        let base = if kernel { PHYS_MAP_BASE } else { 0x10_0000_0000 };
        let mut cursor = base;
        let mut placed = Vec::new();
        for (gap, pages, phys_page, kind) in pieces {
            // Adjacent, a gap, or the next 2 MiB boundary (so large pages occur).
            let virt = [cursor, cursor + M2 / 2, (cursor + K4).next_multiple_of(M2)][gap as usize];
            let attrs = [
                MapAttrs::KERNEL_DATA,
                MapAttrs::KERNEL_RODATA,
                MapAttrs::KERNEL_MMIO,
                MapAttrs::KERNEL_TEXT,
            ][kind as usize];
            let attrs = MapAttrs { user: !kernel, global: kernel, ..attrs };
            // Often 2 MiB-congruent with virt, so large pages occur.
            let phys = match phys_page % 2 {
                0 => (phys_page / 2) * M2 + virt % M2,
                _ => phys_page * K4,
            };
            f.map(virt, phys, pages * K4, attrs).unwrap();
            placed.push((virt, phys, pages, attrs));
            cursor = virt + pages * K4;
        }
        for &(virt, phys, pages, attrs) in &placed {
            for i in 0..pages {
                let t = f.space.translate(&mut f.tables, virt + i * K4 + 8).unwrap();
                prop_assert_eq!(t.phys, phys + i * K4 + 8);
                prop_assert_eq!(t.attrs, attrs.with_largest_page(t.size));
            }
        }
        prop_assert_eq!(f.phys(cursor), None);
        let total: u64 = placed.iter().map(|p| p.2 * K4).sum();
        prop_assert_eq!(f.unmap(base, cursor - base).unwrap(), total);
        for &(virt, _, pages, _) in &placed {
            prop_assert_eq!(f.phys(virt), None);
            prop_assert_eq!(f.phys(virt + (pages - 1) * K4), None);
        }
    }
}
