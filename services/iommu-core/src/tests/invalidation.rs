//! Invalidations are issued exactly when the hardware needs them: the
//! model counts them, and its caches make a missing one visible.

use super::*;
use crate::Access;
use crate::error::Error;
use crate::fault::FaultReason;
use crate::model::{Event, Invalidation};
use crate::queue::page_blocks;

const RW: Access = Access::READ.union(Access::WRITE);
const WBF: u32 = 1 << 27;

/// Rule: with CAP.CM = 0 and CAP.RWBF = 0, attach and map (not present →
/// present) need no invalidation and no write-buffer flush.
#[test]
fn map_needs_nothing_without_caching_mode() {
    let (model, mut unit) = qemu();
    model.clear_events();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0, 0x1000, 0x4000, RW).unwrap();
    assert_eq!(model.invalidations(), []);
    assert!(!model.events().contains(&Event::Command(WBF)));
}

/// Rule: `unmap` invalidates the IOTLB page-selectively (one naturally
/// aligned block per power of two, with the address mask hint) and waits
/// for it before returning.
#[test]
fn unmap_invalidates_pages_before_returning() {
    let (model, mut unit) = qemu();
    let did = unit.attach(EDU).unwrap();
    unit.map(EDU, 0x1000, 0x1000, 0x7000, RW).unwrap();
    model.clear_events();
    unit.unmap(EDU, 0x1000, 0x7000).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::IotlbPages {
                domain: did,
                iova: 0x1000,
                mask: 0
            },
            Invalidation::IotlbPages {
                domain: did,
                iova: 0x2000,
                mask: 1
            },
            Invalidation::IotlbPages {
                domain: did,
                iova: 0x4000,
                mask: 2
            },
            Invalidation::Wait,
        ]
    );
}

/// Rule: a 2 MiB leaf is invalidated with one descriptor of mask 9.
#[test]
fn large_page_unmap_uses_mask_nine() {
    let (model, mut unit) = qemu();
    let did = unit.attach(EDU).unwrap();
    unit.map(EDU, 0x20_0000, 0x40_0000, 2 * MIB, RW).unwrap();
    model.clear_events();
    unit.unmap(EDU, 0x20_0000, 2 * MIB).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::IotlbPages {
                domain: did,
                iova: 0x20_0000,
                mask: 9
            },
            Invalidation::Wait
        ]
    );
}

/// Rule: without CAP.PSI, or when a range needs too many blocks, unmap
/// invalidates the domain's IOTLB entries instead.
#[test]
fn domain_selective_when_pages_cannot_be_named() {
    let (model, mut unit) = up(ModelConfig::qemu().cap_bit(39, false));
    let did = unit.attach(EDU).unwrap();
    unit.map(EDU, 0, 0x1000, 0x1000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0, false), Ok(0x1000));
    model.clear_events();
    unit.unmap(EDU, 0, 0x1000).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::IotlbDomain { domain: did },
            Invalidation::Wait
        ]
    );
    assert_eq!(model.translate(EDU, 0, false), Err(FaultReason::ReadDenied));

    let (model, mut unit) = qemu();
    let did = unit.attach(EDU).unwrap();
    // 0x1000..0x3f_f000 splits into 18 blocks.
    let (start, end) = (0x1000, 0x3f_f000);
    assert!(page_blocks(start, end, 18, |_, _| ()) > 16);
    unit.map(EDU, start, 0, end - start, RW).unwrap();
    model.clear_events();
    unit.unmap(EDU, start, end - start).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::IotlbDomain { domain: did },
            Invalidation::Wait
        ]
    );
}

/// Rule: page-selective blocks cover the range exactly, are naturally
/// aligned, and respect CAP.MAMV.
#[test]
fn page_blocks_cover_exactly() {
    for (start, end, mamv) in [
        (0x1000u64, 0x8000u64, 18u8),
        (0, 0x4000_0000, 18),
        (0, 0x4000_0000, 3),
        (0x3000, 0x20_5000, 18),
    ] {
        let mut at = start;
        page_blocks(start, end, mamv, |iova, mask| {
            assert_eq!(iova, at);
            assert!(mask <= mamv);
            assert_eq!(iova % (0x1000 << mask), 0);
            at += 0x1000 << mask;
        });
        assert_eq!(at, end);
    }
}

/// Rule: with CAP.CM = 1 the unit may cache not-present entries, so attach
/// invalidates the context cache (domain id 0) and map invalidates the
/// mapped pages; without that the device would keep faulting.
#[test]
fn caching_mode_invalidates_on_not_present_to_present() {
    let (model, mut unit) = up(ModelConfig::qemu().cap_bit(7, true));
    // Cached as not present before attach and before map.
    assert_eq!(
        model.translate(EDU, 0x1000, false),
        Err(FaultReason::RootNotPresent)
    );
    model.clear_events();
    let did = unit.attach(EDU).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::ContextDevice {
                domain: 0,
                source: EDU.0
            },
            Invalidation::IotlbDomain { domain: did },
            Invalidation::Wait
        ]
    );
    assert_eq!(
        model.translate(EDU, 0x1000, false),
        Err(FaultReason::ReadDenied)
    );
    model.clear_events();
    unit.map(EDU, 0x1000, 0x8000, 0x1000, RW).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::IotlbPages {
                domain: did,
                iova: 0x1000,
                mask: 0
            },
            Invalidation::Wait
        ]
    );
    assert_eq!(model.translate(EDU, 0x1000, false), Ok(0x8000));
}

/// Rule: with CAP.RWBF = 1 (and CM = 0) attach and map flush the write
/// buffer through GCMD.WBF; a WBF that never completes is a timeout.
#[test]
fn write_buffer_flush_when_required() {
    let (model, mut unit) = up(ModelConfig::qemu().cap_bit(4, true));
    model.clear_events();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0, 0x1000, 0x1000, RW).unwrap();
    let flushes = model
        .events()
        .iter()
        .filter(|e| **e == Event::Command(WBF))
        .count();
    assert_eq!(flushes, 2);
    assert_eq!(model.invalidations(), []);
    model.set_gsts_stuck(true);
    assert_eq!(
        unit.map(EDU, 0x1000, 0x1000, 0x1000, RW),
        Err(Error::Timeout(crate::Operation::WriteBufferFlush))
    );
}

/// Rule: detach invalidates the device's context entry and its domain's
/// IOTLB entries before it returns.
#[test]
fn detach_invalidates_context_and_domain() {
    let (model, mut unit) = qemu();
    let did = unit.attach(EDU).unwrap();
    unit.map(EDU, 0, 0x1000, 0x1000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0, false), Ok(0x1000));
    model.clear_events();
    unit.detach(EDU).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::ContextDevice {
                domain: did,
                source: EDU.0
            },
            Invalidation::IotlbDomain { domain: did },
            Invalidation::Wait
        ]
    );
    assert_eq!(
        model.translate(EDU, 0, false),
        Err(FaultReason::ContextNotPresent)
    );
}

/// Rule: a queue stuck after bring-up makes unmap fail with a timeout,
/// not hang.
#[test]
fn unmap_wait_is_bounded() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0, 0x1000, 0x1000, RW).unwrap();
    model.set_queue_stuck(true);
    assert_eq!(
        unit.unmap(EDU, 0, 0x1000),
        Err(Error::Timeout(crate::Operation::InvalidationWait))
    );
}

/// Rule: a descriptor the unit rejects (FSTS.IQE) is a typed error, and the
/// queue works again afterwards (IQE cleared, the batch dropped).
#[test]
fn rejected_descriptor_is_an_error_and_the_queue_recovers() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0, 0x1000, 0x2000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0x1000, false), Ok(0x2000));
    model.reject_next_descriptor();
    model.clear_events();
    assert_eq!(
        unit.unmap(EDU, 0, 0x1000),
        Err(Error::InvalidationQueueError)
    );
    assert_eq!(model.fault_status() & (1 << 4), 0, "IQE cleared");
    assert_eq!(model.invalidations(), [], "the rejected batch is dropped");
    model.clear_events();
    unit.unmap(EDU, 0x1000, 0x1000).unwrap();
    assert_eq!(model.invalidations().len(), 2);
    assert_eq!(
        model.translate(EDU, 0x1000, false),
        Err(FaultReason::ReadDenied)
    );
}

/// Rule (cost): on a unit that completes invalidations at once, as QEMU
/// does, a 4 KiB map costs no register access and its unmap exactly one
/// (the IQT write); the wait is observed in memory, not by polling FSTS.
#[test]
fn map_unmap_pair_costs_one_register_access() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0x1000, 0x1000, 0x1000, RW).unwrap();
    unit.unmap(EDU, 0x1000, 0x1000).unwrap();
    let reads = model.register_reads();
    model.clear_events();
    unit.map(EDU, 0x1000, 0x1000, 0x1000, RW).unwrap();
    unit.unmap(EDU, 0x1000, 0x1000).unwrap();
    assert_eq!(model.register_reads(), reads);
    let writes: Vec<_> = model
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Write(..)))
        .collect();
    // Bring-up queued 3 descriptors and each unmap 2 (page + wait): tail 7.
    assert_eq!(writes, [Event::Write("IQT", 7 << 4)]);
}
