//! Domains, map and unmap: what the device can reach afterwards, and the
//! typed errors.

use super::*;
use crate::error::Error;
use crate::fault::FaultReason;
use crate::{Access, Leaves};

const RW: Access = Access::READ.union(Access::WRITE);

/// Rule: after `map` returns, the device reaches exactly the physical
/// addresses asked for, with exactly the rights asked for.
#[test]
fn map_then_translate() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0x10_0000, 0x7_6543_2000, 0x3000, Access::READ)
        .unwrap();
    unit.map(EDU, 0x20_0000, 0x8000, 0x1000, Access::WRITE)
        .unwrap();
    unit.map(EDU, 0x30_0000, 0xa000, 0x1000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0x10_0123, false), Ok(0x7_6543_2123));
    assert_eq!(model.translate(EDU, 0x10_2ff8, false), Ok(0x7_6543_4ff8));
    assert_eq!(
        model.translate(EDU, 0x10_0000, true),
        Err(FaultReason::WriteDenied)
    );
    assert_eq!(model.translate(EDU, 0x20_0010, true), Ok(0x8010));
    assert_eq!(
        model.translate(EDU, 0x20_0010, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(model.translate(EDU, 0x30_0000, true), Ok(0xa000));
    assert_eq!(model.translate(EDU, 0x30_0000, false), Ok(0xa000));
    assert_eq!(
        model.translate(EDU, 0x10_3000, false),
        Err(FaultReason::ReadDenied)
    );
    // Same level-1 table, another cache line: never written, still empty.
    assert_eq!(
        model.translate(EDU, 0x1f_f000, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(
        unit.lookup(EDU, 0x10_1008),
        Ok(Some((0x7_6543_3008, Access::READ)))
    );
}

/// Rule: after `unmap` returns, the device's DMA there faults, even though
/// it was just translated (and so cached) before.
#[test]
fn unmap_then_fault() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0x4000, 0x9000, 0x2000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0x4000, true), Ok(0x9000));
    assert_eq!(model.translate(EDU, 0x5000, false), Ok(0xa000));
    unit.unmap(EDU, 0x4000, 0x1000).unwrap();
    assert_eq!(
        model.translate(EDU, 0x4000, true),
        Err(FaultReason::WriteDenied)
    );
    assert_eq!(model.translate(EDU, 0x5000, false), Ok(0xa000));
    assert_eq!(unit.lookup(EDU, 0x4000), Ok(None));
}

/// Rule: 2 MiB-aligned ranges use 2 MiB leaves where CAP.SLLPS allows (no
/// level-1 table is allocated), and translate across the whole page.
#[test]
fn two_mib_pages() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    let before = model.frames_in_use();
    unit.map(EDU, 0x4000_0000, 0x1_0000_0000, 4 * MIB, RW)
        .unwrap();
    // Level-3 and level-2 tables only: two frames for two 2 MiB leaves.
    assert_eq!(model.frames_in_use() - before, 2);
    assert_eq!(
        model.translate(EDU, 0x4000_0000 + 0x3f_fff8, true),
        Ok(0x1_0000_0000 + 0x3f_fff8)
    );
    assert_eq!(
        unit.unmap(EDU, 0x4000_0000, MIB),
        Err(Error::SplitsLargePage { iova: 0x4000_0000 })
    );
    unit.unmap(EDU, 0x4020_0000, 2 * MIB).unwrap();
    assert_eq!(
        model.translate(EDU, 0x4020_0000, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(model.translate(EDU, 0x401f_f000, false), Ok(0x1_001f_f000));
}

/// Rule: without SLLPS 2 MiB, or when the physical address is not 2 MiB
/// aligned, the same range is mapped with 4 KiB leaves.
#[test]
fn four_kib_pages_when_large_pages_cannot_be_used() {
    let (model, mut unit) = up(with_sllps(ModelConfig::qemu(), 0));
    unit.attach(EDU).unwrap();
    let before = model.frames_in_use();
    unit.map(EDU, 0, 0x20_0000, 2 * MIB, RW).unwrap();
    assert_eq!(model.frames_in_use() - before, 3);
    assert_eq!(model.translate(EDU, 0x1f_f000, false), Ok(0x3f_f000));
    unit.unmap(EDU, 0, 0x1000).unwrap();

    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    let before = model.frames_in_use();
    unit.map(EDU, 0, 0x20_1000, 2 * MIB, RW).unwrap();
    assert_eq!(model.frames_in_use() - before, 3);
    assert_eq!(model.translate(EDU, 0x1f_f000, false), Ok(0x40_0000));
}

/// Rule: map errors are typed and leave nothing mapped.
#[test]
fn map_errors() {
    let (model, mut unit) = qemu();
    assert_eq!(
        unit.map(EDU, 0, 0x1000, 0x1000, RW),
        Err(Error::NotAttached)
    );
    unit.attach(EDU).unwrap();
    assert_eq!(unit.attach(EDU), Err(Error::AlreadyAttached));
    unit.map(EDU, 0x3000, 0x1000, 0x1000, RW).unwrap();
    assert_eq!(
        unit.map(EDU, 0x1000, 0x5000, 0x4000, RW),
        Err(Error::Overlap { iova: 0x3000 })
    );
    // Nothing of the failed map is visible.
    assert_eq!(
        model.translate(EDU, 0x1000, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(unit.lookup(EDU, 0x1000), Ok(None));
    let top = 1u64 << 48;
    assert_eq!(
        unit.map(EDU, top - 0x1000, 0x1000, 0x2000, RW),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        unit.map(EDU, 0x10_0000, 1 << 48, 0x1000, RW),
        Err(Error::OutOfRange)
    );
    assert_eq!(
        unit.map(EDU, 0x10_0800, 0x1000, 0x1000, RW),
        Err(Error::Misaligned)
    );
    assert_eq!(
        unit.map(EDU, 0x10_0000, 0x1800, 0x1000, RW),
        Err(Error::Misaligned)
    );
    assert_eq!(
        unit.map(EDU, 0x10_0000, 0x1000, 0x1800, RW),
        Err(Error::Misaligned)
    );
    assert_eq!(
        unit.map(EDU, 0x10_0000, 0x1000, 0, RW),
        Err(Error::Misaligned)
    );
    assert_eq!(
        unit.map(EDU, 0x10_0000, 0x1000, 0x1000, Access::empty()),
        Err(Error::NoAccess)
    );
    assert_eq!(
        unit.unmap(EDU, 0x2000, 0x2000),
        Err(Error::NotMapped { iova: 0x2000 })
    );
    assert_eq!(model.translate(EDU, 0x3000, false), Ok(0x1000));
}

/// Rule: running out of table memory mid-map is a typed error and undoes
/// the part already mapped.
#[test]
fn out_of_table_memory_rolls_back() {
    let (model, mut unit) = up(with_sllps(ModelConfig::qemu(), 0));
    unit.attach(EDU).unwrap();
    // Level 3 + level 2 + one level-1 table fit; the second level-1 does not.
    model.set_frame_budget(Some(3));
    assert_eq!(
        unit.map(EDU, 0x1f_f000, 0x1000, 0x2000, RW),
        Err(Error::OutOfTableMemory)
    );
    assert_eq!(
        model.translate(EDU, 0x1f_f000, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(unit.lookup(EDU, 0x1f_f000), Ok(None));
    model.set_frame_budget(None);
    unit.map(EDU, 0x1f_f000, 0x1000, 0x2000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0x20_0000, false), Ok(0x2000));
}

/// Rule: one device's domain is its own: another device reaches nothing of
/// it, and detaching a device denies its DMA and frees its tables.
#[test]
fn domains_are_separate_and_detach_frees() {
    let (model, mut unit) = qemu();
    let frames = model.frames_in_use();
    let a = unit.attach(EDU).unwrap();
    let b = unit.attach(OTHER).unwrap();
    assert_ne!(a, b);
    unit.map(EDU, 0x1000, 0x5000, 0x1000, RW).unwrap();
    unit.map(OTHER, 0x2000, 0x6000, 0x1000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0x1000, false), Ok(0x5000));
    assert_eq!(
        model.translate(OTHER, 0x1000, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(model.translate(OTHER, 0x2000, false), Ok(0x6000));
    unit.detach(OTHER).unwrap();
    assert_eq!(
        model.translate(OTHER, 0x2000, false),
        Err(FaultReason::ContextNotPresent)
    );
    assert_eq!(model.translate(EDU, 0x1000, false), Ok(0x5000));
    unit.detach(EDU).unwrap();
    assert_eq!(unit.detach(EDU), Err(Error::NotAttached));
    // The two context tables stay; every page-table frame is back.
    assert_eq!(model.frames_in_use() - frames, 2);
    assert_eq!(unit.domain_of(EDU), None);
}

/// Rule: with a snooping unit (ECAP.C = 1) nothing needs flushing and the
/// same mappings work.
#[test]
fn coherent_unit() {
    let (model, mut unit) = up(ModelConfig::qemu().ecap_bit(0, true));
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0x1000, 0x5000, 0x1000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0x1000, true), Ok(0x5000));
}

/// Rule: `Leaves::Small` maps 4 KiB leaves even where 2 MiB would fit, so
/// any 4 KiB piece can later be unmapped alone.
#[test]
fn small_leaves_only_when_asked() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    unit.map_leaves(EDU, 0x4000_0000, 0x1_0000_0000, 2 * MIB, RW, Leaves::Small)
        .unwrap();
    assert_eq!(
        model.translate(EDU, 0x4000_0000 + 0x1f_f008, true),
        Ok(0x1_001f_f008)
    );
    unit.unmap(EDU, 0x4000_1000, 0x1000).unwrap();
    assert_eq!(
        model.translate(EDU, 0x4000_1000, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(model.translate(EDU, 0x4000_2000, false), Ok(0x1_0000_2000));
}

/// Rule: `Leaves::Large` maps only 2 MiB leaves: every address and the
/// length 2 MiB-aligned, and a unit without SLLPS 2M refuses it as
/// unsupported, mapping nothing.
#[test]
fn large_leaves_need_alignment_and_support() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    let before = model.frames_in_use();
    unit.map_leaves(EDU, 0x4000_0000, 0x1_0000_0000, 2 * MIB, RW, Leaves::Large)
        .unwrap();
    assert_eq!(model.frames_in_use() - before, 2);
    for (iova, paddr, len) in [
        (0x4020_1000, 0x1_0020_0000, 2 * MIB),
        (0x4040_0000, 0x1_0040_1000, 2 * MIB),
        (0x4060_0000, 0x1_0060_0000, 4096),
    ] {
        assert_eq!(
            unit.map_leaves(EDU, iova, paddr, len, RW, Leaves::Large),
            Err(Error::Misaligned)
        );
    }
    let (model, mut unit) = up(with_sllps(ModelConfig::qemu(), 0));
    unit.attach(EDU).unwrap();
    assert_eq!(
        unit.map_leaves(EDU, 0, 0x20_0000, 2 * MIB, RW, Leaves::Large),
        Err(Error::Unsupported(crate::Unsupported::LargePages))
    );
    assert_eq!(model.translate(EDU, 0, false), Err(FaultReason::ReadDenied));
}
