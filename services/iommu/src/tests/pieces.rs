//! The frame pool, the bounded delay and the fault log.

use std::cell::Cell;

use embedded_hal::delay::DelayNs;
use faultline_iommu_core::{FaultAccess, FaultReason, FaultRecord, FaultSummary, SourceId};

use crate::delay::ClockDelay;
use crate::faults::{FaultLog, LOGGED_FAULTS};
use crate::frames::{AddError, FRAME, FramePool, MAX_CHUNKS};

/// Rule: the pool hands out each frame once, takes back only frames it
/// handed out (once), and translates any address inside its chunks.
#[test]
fn frame_pool_hands_out_each_frame_once() {
    let mut pool = FramePool::new();
    assert_eq!(pool.take(), None);
    pool.add(0x80_0000, 0x1234_5000, 2).unwrap();
    pool.add(0x90_0000, 0x7000_0000, 1).unwrap();
    let a = pool.take().unwrap();
    let b = pool.take().unwrap();
    let c = pool.take().unwrap();
    assert_eq!(pool.take(), None);
    let mut all = [a, b, c];
    all.sort();
    assert_eq!(all, [0x1234_5000, 0x1234_6000, 0x7000_0000]);
    assert_eq!(pool.in_use(), 3);
    assert_eq!(pool.vaddr(0x1234_6008), Some(0x80_1008));
    assert_eq!(pool.vaddr(0x7000_0ff8), Some(0x90_0ff8));
    assert_eq!(pool.vaddr(0x1234_7000), None);
    assert!(pool.give_back(b));
    assert!(!pool.give_back(b), "double free");
    assert!(!pool.give_back(0x5000), "not ours");
    assert!(!pool.give_back(a + 8), "not a frame");
    assert_eq!(pool.take(), Some(b));
    assert_eq!(pool.add(0, 0x1000, 0), Err(AddError::Malformed));
    assert_eq!(pool.add(0, 0x1000, 65), Err(AddError::Malformed));
    assert_eq!(pool.add(0x10, 0x1000, 1), Err(AddError::Malformed));
    let mut full = FramePool::new();
    for i in 0..MAX_CHUNKS as u64 {
        full.add(i * FRAME * 64, i * FRAME * 64, 64).unwrap();
    }
    assert!(!full.can_grow());
    assert_eq!(full.add(0, 1 << 40, 1), Err(AddError::Full));
    for _ in 0..MAX_CHUNKS * 64 {
        assert!(full.take().is_some());
    }
    assert_eq!(full.take(), None);
}

/// Rule: the delay waits until the clock has advanced by the time asked
/// for, and returns even when the clock stands still.
#[test]
fn delay_follows_the_clock_and_is_bounded() {
    let clock = Cell::new(0u64);
    let mut d = ClockDelay::new(|| {
        clock.set(clock.get() + 100);
        clock.get()
    });
    d.delay_ns(10_000);
    assert!(clock.get() >= 10_100, "{}", clock.get());
    assert!(clock.get() <= 10_300, "{}", clock.get());
    let polls = Cell::new(0u64);
    let mut stuck = ClockDelay::new(|| {
        polls.set(polls.get() + 1);
        0
    });
    stuck.delay_us(1);
    assert!(polls.get() > 1);
    assert!(polls.get() <= 1 + 1 + 1000 / 50, "{}", polls.get());
}

fn fault(n: u64) -> FaultRecord {
    FaultRecord {
        source: SourceId(0x0018),
        address: 0x5000 + n * 0x1000,
        access: FaultAccess::Write,
        reason: FaultReason::WriteDenied,
        pasid: None,
    }
}

/// Rule: the first LOGGED_FAULTS faults are logged one by one in the
/// documented shape; later ones are counted, in one line each time the
/// total doubles; overflows are reported at their 1st, 2nd, 4th, ...
#[test]
fn fault_log_is_rate_limited() {
    let mut log = FaultLog::new();
    let mut lines = Vec::new();
    let overflow = FaultSummary {
        records: 1,
        overflow: true,
    };
    let quiet = FaultSummary::default();
    // One fault per drain, as QEMU's single record gives them.
    for i in 0..u64::from(LOGGED_FAULTS) * 8 {
        log.note(&fault(i), |a| lines.push(a.to_string()));
        log.drained(0, quiet, |a| lines.push(a.to_string()));
    }
    assert_eq!(
        lines[0],
        "iommu: DMA fault from 00:03.0 at iova 0x5000 (write): not mapped for writing (reason 0x5)"
    );
    let counted: Vec<&String> = lines[LOGGED_FAULTS as usize..].iter().collect();
    assert_eq!(
        counted,
        [
            "iommu: 16 more DMA fault(s) not logged (32 in all)",
            "iommu: 32 more DMA fault(s) not logged (64 in all)",
            "iommu: 64 more DMA fault(s) not logged (128 in all)",
        ]
    );
    lines.clear();
    log.drained(0, quiet, |a| lines.push(a.to_string()));
    assert!(lines.is_empty(), "nothing new, nothing said");
    for _ in 0..5 {
        log.drained(0, overflow, |a| lines.push(a.to_string()));
    }
    assert_eq!(lines.len(), 3, "overflows 1, 2 and 4: {lines:?}");
    assert!(lines[2].contains("FSTS.PFO") && lines[2].contains("(4 overflow(s) in all)"));
    assert_eq!(log.overflows, 5);
    let with_pasid = FaultRecord {
        pasid: Some(5),
        access: FaultAccess::Read,
        reason: FaultReason::ContextNotPresent,
        ..fault(0)
    };
    assert_eq!(
        crate::faults::FaultLine(&with_pasid).to_string(),
        "DMA fault from 00:03.0 at iova 0x5000 (read, PASID 5): no domain (context entry not \
         present) (reason 0x2)"
    );
}
