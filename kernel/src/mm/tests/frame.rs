//! [`FrameAllocator`] and [`plan_bitmap`].

use std::collections::HashSet;

use faultline_boot::MemoryRegion;
use proptest::prelude::*;

use super::memory_map::{EXCLUSIONS, GIB, MIB, arb_regions, live_256m, ram, reserved};
use crate::mm::frame::TableFramesBelow;
use crate::mm::{
    FrameAllocator, FrameError, FrameSource, PhysFrame, PhysMap, PhysRange, plan_bitmap,
};

const PAGE: u64 = 4096;

/// Runs `f` on an allocator over `regions` minus `exclusions`.
fn with_allocator<R>(
    regions: &[MemoryRegion],
    exclusions: &[PhysRange],
    f: impl FnOnce(&mut FrameAllocator<'_>) -> R,
) -> R {
    let map = PhysMap::new(regions, exclusions).unwrap();
    let mut storage = vec![0; FrameAllocator::bitmap_words_needed(&map)];
    f(&mut FrameAllocator::new(&map, &mut storage).unwrap())
}

fn drain(frames: &mut FrameAllocator<'_>) -> Vec<u64> {
    std::iter::from_fn(|| frames.allocate().map(PhysFrame::start)).collect()
}

#[test]
fn frames_come_from_ram_on_both_sides_of_a_reserved_hole() {
    let regions = [ram(MIB, MIB), reserved(2 * MIB, MIB), ram(3 * MIB, MIB)];
    with_allocator(&regions, &[], |frames| {
        assert_eq!((frames.total_frames(), frames.free_frames()), (512, 512));
        let got = drain(frames);
        let want: Vec<u64> = (MIB..2 * MIB)
            .chain(3 * MIB..4 * MIB)
            .step_by(4096)
            .collect();
        assert_eq!(got, want); // address order, nothing from the hole
        assert_eq!(frames.free_frames(), 0);
        assert_eq!(frames.allocate(), None);
    });
}

#[test]
fn reserved_overlapping_ram_is_never_handed_out() {
    let regions = [ram(0, 8 * MIB), reserved(2 * MIB + 100, 10)];
    with_allocator(&regions, &EXCLUSIONS, |frames| {
        let got = drain(frames);
        assert_eq!(got.len() as u64, (8 * MIB - 3 * MIB) / PAGE);
        assert!(got.iter().all(|&f| f >= 3 * MIB)); // first MiB and kernel excluded
    });
    // Without the exclusions the frame at 2 MiB is still kept back.
    with_allocator(&regions, &[], |frames| {
        assert!(!drain(frames).contains(&(2 * MIB)));
        assert_eq!(frames.is_free(PhysFrame::containing(2 * MIB)), None);
    });
}

#[test]
fn q35_with_4g_puts_half_the_ram_above_4g() {
    // -m 4G on q35: 2 GiB below the PCI hole, 2 GiB from 4 GiB up.
    let regions = [
        ram(0, 0x9fc00),
        reserved(0x9fc00, 0x400),
        reserved(0xf0000, 0x10000),
        ram(MIB, 2 * GIB - MIB),
        reserved(0xb000_0000, 256 * MIB),
        reserved(0xfeff_c000, 0x4000),
        reserved(0xfffc_0000, 0x4_0000),
        ram(4 * GIB, 2 * GIB),
    ];
    with_allocator(&regions, &EXCLUSIONS, |frames| {
        assert_eq!(frames.total_frames(), (4 * GIB - 3 * MIB) / PAGE);
        let low = frames.allocate_below(4 * GIB).unwrap();
        assert_eq!(low.start(), 3 * MIB);
        let run = frames.allocate_contiguous(1 << 19, 1).unwrap(); // 2 GiB
        assert_eq!(run.start(), 4 * GIB); // the low range cannot hold it
        assert_eq!(
            frames
                .allocate_contiguous_below(2, 1, 4 * GIB)
                .unwrap()
                .start(),
            3 * MIB + PAGE
        );
    });
}

#[test]
fn allocate_below_stops_at_the_limit() {
    let regions = [ram(MIB, 64 * 1024), ram(4 * GIB - 8192, 3 * 8192)];
    with_allocator(&regions, &[], |frames| {
        let below: Vec<_> = std::iter::from_fn(|| frames.allocate_below(4 * GIB)).collect();
        assert_eq!(below.len(), 16 + 2);
        assert!(below.iter().all(|f| f.start() + PAGE <= 4 * GIB));
        assert_eq!(frames.allocate_below(4 * GIB), None);
        assert_eq!(frames.allocate_below(0), None);
        assert_eq!(frames.allocate().unwrap().start(), 4 * GIB);
    });
}

#[test]
fn exhaustion_then_reuse_of_a_freed_frame() {
    with_allocator(&[ram(0, 200 * PAGE)], &[], |frames| {
        let all = drain(frames);
        assert_eq!(all.len(), 200);
        assert_eq!(frames.allocate_contiguous(1, 1), None);
        let freed = PhysFrame::from_start(all[130]).unwrap();
        frames.deallocate(freed).unwrap();
        assert_eq!(
            (frames.free_frames(), frames.is_free(freed)),
            (1, Some(true))
        );
        assert_eq!(frames.allocate(), Some(freed));
    });
}

#[test]
fn double_free_and_foreign_frames_are_errors() {
    let regions = [ram(MIB, MIB), reserved(2 * MIB, MIB), ram(3 * MIB, MIB)];
    with_allocator(&regions, &[], |frames| {
        let a = frames.allocate().unwrap();
        frames.deallocate(a).unwrap();
        let paddr = a.start();
        assert_eq!(frames.deallocate(a), Err(FrameError::DoubleFree { paddr }));
        let in_hole = PhysFrame::containing(2 * MIB + 5);
        let err = frames.deallocate(in_hole).unwrap_err();
        assert_eq!(err, FrameError::ForeignFrame { paddr: 2 * MIB });
        assert!(err.to_string().contains("0x200000"));
        // A run crossing the end of its range, or holding a free frame, is
        // refused as a whole.
        let run = frames.allocate_contiguous(4, 1).unwrap();
        let free_before = frames.free_frames();
        let tail = PhysFrame::containing(2 * MIB - 2 * PAGE);
        let err = frames.deallocate_contiguous(tail, 4).unwrap_err();
        assert_eq!(err, FrameError::ForeignFrame { paddr: 2 * MIB });
        let err = frames.deallocate_contiguous(run, 5).unwrap_err();
        assert_eq!(
            err,
            FrameError::DoubleFree {
                paddr: run.start() + 4 * PAGE
            }
        );
        assert_eq!(frames.free_frames(), free_before);
        frames.deallocate_contiguous(run, 4).unwrap();
        assert_eq!(frames.free_frames(), free_before + 4);
    });
}

#[test]
fn contiguous_runs_are_aligned_and_skip_used_frames() {
    with_allocator(&[ram(MIB + PAGE, 4 * MIB)], &[], |frames| {
        let single = frames.allocate().unwrap();
        assert_eq!(single.start(), MIB + PAGE);
        let run = frames.allocate_contiguous(16, 16).unwrap();
        assert_eq!(run.number() % 16, 0);
        assert_eq!(run.start(), MIB + 16 * PAGE);
        for i in 0..16 {
            assert_eq!(
                frames.is_free(PhysFrame::containing(run.start() + i * PAGE)),
                Some(false)
            );
        }
        // 2 MiB-aligned 2 MiB run (a large page for DMA).
        let big = frames.allocate_contiguous(512, 512).unwrap();
        assert_eq!(big.start(), 2 * MIB);
        assert_eq!(frames.allocate_contiguous(512, 512), None); // would end past 5 MiB+4K
        assert_eq!(frames.allocate_contiguous(0, 1), None);
        assert_eq!(frames.allocate_contiguous(2000, 0), None);
        // Alignment 0 means none: the gap before the 16-frame run is used.
        assert_eq!(
            frames.allocate_contiguous(14, 0).unwrap().start(),
            MIB + 2 * PAGE
        );
    });
}

#[test]
fn plan_bitmap_places_and_excludes_the_bitmap() {
    let mut map = PhysMap::new(&live_256m(), &EXCLUSIONS).unwrap();
    let plan = plan_bitmap(&mut map).unwrap();
    assert_eq!(plan.paddr, 3 * MIB);
    assert_eq!(plan.bytes, 2 * PAGE); // 64,736 frames: 1,012 words
    assert!(plan.words * 8 <= plan.bytes as usize);
    assert_eq!(map.allocatable()[0].start, 3 * MIB + 2 * PAGE);
    let mut storage = vec![0; plan.words];
    let mut frames = FrameAllocator::new(&map, &mut storage).unwrap();
    assert!(!drain(&mut frames).contains(&plan.paddr));

    let err = plan_bitmap(&mut PhysMap::default()).unwrap_err();
    assert_eq!(err, FrameError::NoRoomForBitmap { bytes: PAGE });
    let map = PhysMap::new(&[ram(0, 64 * MIB)], &[]).unwrap();
    let err = FrameAllocator::new(&map, &mut [0; 3]).err().unwrap();
    assert_eq!(
        err,
        FrameError::StorageTooSmall {
            needed: 256,
            provided: 3
        }
    );
}

#[test]
fn allocator_serves_page_tables() {
    with_allocator(&[ram(MIB, MIB), ram(4 * GIB, MIB)], &[], |frames| {
        assert_eq!(frames.allocate_table(), Some(MIB));
        let mut low = TableFramesBelow {
            frames,
            limit: MIB + 2 * PAGE,
        };
        assert_eq!(low.allocate_table(), Some(MIB + PAGE));
        assert_eq!(low.allocate_table(), None);
    });
}

#[derive(Clone, Debug)]
enum Op {
    Allocate,
    Below(u64),
    Contiguous(u64, u64),
    Free(usize),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Allocate),
        1 => (0u64..20 * MIB).prop_map(Op::Below),
        1 => (1u64..40, 0u64..20).prop_map(|(n, a)| Op::Contiguous(n, a)),
        3 => any::<usize>().prop_map(Op::Free),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn frames_are_unique_usable_and_counted(
        regions in arb_regions(),
        exclusions in proptest::collection::vec((0u64..16 * MIB, 0u64..2 * MIB), 0..4),
        ops in proptest::collection::vec(arb_op(), 0..400),
    ) {
        let exclusions: Vec<_> =
            exclusions.iter().map(|&(b, l)| PhysRange::from_base_len(b, l)).collect();
        // A frame may be handed out iff every 256-byte cell of it is covered
        // by usable RAM and by nothing stricter, and no exclusion touches it.
        let allowed = |frame: u64| {
            let page = PhysRange::from_base_len(frame, PAGE);
            (frame..frame + PAGE).step_by(256).all(|a| {
                let cover = || regions.iter().filter(move |r| r.base <= a && a < r.end());
                cover().count() > 0 && cover().all(|r| r.kind == faultline_boot::MemoryKind::Usable)
            }) && !exclusions.iter().any(|e| e.overlaps(&page))
        };
        let want_total = (0..20 * MIB).step_by(PAGE as usize).filter(|&f| allowed(f)).count();
        with_allocator(&regions, &exclusions, |frames| {
            prop_assert_eq!(frames.total_frames(), want_total as u64);
            let mut held: Vec<u64> = Vec::new();
            let mut seen: HashSet<u64> = HashSet::new();
            for op in ops {
                let got: Vec<u64> = match op {
                    Op::Allocate => frames.allocate().into_iter().map(PhysFrame::start).collect(),
                    Op::Below(limit) => {
                        let got = frames.allocate_below(limit).map(PhysFrame::start);
                        prop_assert!(got.is_none_or(|f| f + PAGE <= limit));
                        got.into_iter().collect()
                    }
                    Op::Contiguous(n, align) => match frames.allocate_contiguous(n, align) {
                        Some(first) => {
                            prop_assert_eq!(first.number() % align.max(1), 0);
                            (0..n).map(|i| first.start() + i * PAGE).collect()
                        }
                        None => Vec::new(),
                    },
                    Op::Free(i) if !held.is_empty() => {
                        let frame = held.swap_remove(i % held.len());
                        frames.deallocate(PhysFrame::from_start(frame).unwrap()).unwrap();
                        seen.remove(&frame);
                        Vec::new()
                    }
                    Op::Free(_) => Vec::new(),
                };
                for frame in got {
                    prop_assert!(allowed(frame), "frame {:#x} is not allocatable", frame);
                    prop_assert!(seen.insert(frame), "frame {:#x} handed out twice", frame);
                    held.push(frame);
                }
                prop_assert_eq!(frames.free_frames() + held.len() as u64, frames.total_frames());
            }
            if let Some(&frame) = held.first() {
                frames.deallocate(PhysFrame::from_start(frame).unwrap()).unwrap();
                let err = frames.deallocate(PhysFrame::from_start(frame).unwrap());
                prop_assert_eq!(err, Err(FrameError::DoubleFree { paddr: frame }));
            }
            Ok(())
        })?;
    }
}
