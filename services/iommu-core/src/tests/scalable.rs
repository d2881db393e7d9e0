//! Scalable mode (second-level tables through PASID entries, PGTT = 2):
//! bring-up, both halves of a root entry, detach and re-attach.

use faultline_vtd::TranslationMode;

use super::*;
use crate::Access;
use crate::error::{Error, Unsupported};
use crate::fault::FaultReason;
use crate::model::{Event, Invalidation};

const RW: Access = Access::READ.union(Access::WRITE);
/// 00:10.0: devfn 0x80, served by the root entry's upper half.
const HIGH_DEVFN: SourceId = SourceId(0x0080);

/// Rule: scalable mode is refused unless ECAP offers SMTS with SLTS
/// (QEMU's default has neither; `x-flts=on` has SMTS without SLTS).
#[test]
fn scalable_mode_needs_smts_and_slts() {
    let config = Config {
        mode: TranslationMode::Scalable,
        ..Config::default()
    };
    for ecap in [crate::model::QEMU_ECAP, 0x8800_00f0_0f4a] {
        let model = Model::new(ModelConfig {
            ecap,
            ..ModelConfig::qemu()
        });
        let r = Unit::bring_up(model.registers(), model.memory(), model.delay(), config);
        assert!(
            matches!(r, Err(Error::Unsupported(Unsupported::ScalableMode))),
            "{ecap:#x}"
        );
    }
}

/// Rule: the root table is set with RTADDR.TTM = 01 and devices start
/// denied, as in legacy mode.
#[test]
fn scalable_bring_up() {
    let (model, unit) = up_scalable(ModelConfig::qemu_scalable());
    assert_eq!(unit.mode(), TranslationMode::Scalable);
    let rtaddr = model.events().into_iter().find_map(|e| match e {
        Event::Write("RTADDR", v) => Some(v),
        _ => None,
    });
    assert_eq!(rtaddr.map(|v| v & 0xc00), Some(0x400));
    assert_eq!(
        model.translate(EDU, 0, false),
        Err(FaultReason::RootNotPresent)
    );
}

/// Rule: devices in both halves of a bus's root entry get their own
/// context tables, PASID entries and domains; mappings translate exactly.
#[test]
fn scalable_map_translate_unmap() {
    let (model, mut unit) = up_scalable(ModelConfig::qemu_scalable());
    let a = unit.attach(EDU).unwrap();
    let b = unit.attach(HIGH_DEVFN).unwrap();
    assert_ne!(a, b);
    unit.map(EDU, 0x1000, 0x5000, 0x1000, Access::READ).unwrap();
    unit.map(HIGH_DEVFN, 0x20_0000, 0x40_0000, 2 * MIB, RW)
        .unwrap();
    assert_eq!(model.translate(EDU, 0x1008, false), Ok(0x5008));
    assert_eq!(
        model.translate(EDU, 0x1008, true),
        Err(FaultReason::WriteDenied)
    );
    assert_eq!(model.translate(HIGH_DEVFN, 0x3f_fff0, true), Ok(0x5f_fff0));
    assert_eq!(
        model.translate(HIGH_DEVFN, 0x1000, false),
        Err(FaultReason::ReadDenied)
    );
    unit.unmap(HIGH_DEVFN, 0x20_0000, 2 * MIB).unwrap();
    assert_eq!(
        model.translate(HIGH_DEVFN, 0x3f_fff0, true),
        Err(FaultReason::WriteDenied)
    );
    // Another function in the lower half is still denied.
    assert_eq!(
        model.translate(SourceId(0x0009), 0, false),
        Err(FaultReason::ContextNotPresent)
    );
}

/// Rule: detach invalidates the context cache, the PASID cache and the
/// IOTLB, so a later attach of the same device (new PASID table, new
/// domain) is what the hardware uses.
#[test]
fn scalable_detach_and_reattach() {
    let (model, mut unit) = up_scalable(ModelConfig::qemu_scalable());
    let frames = model.frames_in_use();
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
            Invalidation::PasidCache { domain: did },
            Invalidation::IotlbDomain { domain: did },
            Invalidation::Wait
        ]
    );
    assert_eq!(
        model.translate(EDU, 0, false),
        Err(FaultReason::ContextNotPresent)
    );
    // Only the context table stays.
    assert_eq!(model.frames_in_use() - frames, 1);
    unit.attach(OTHER).unwrap();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0, 0x7000, 0x1000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0, true), Ok(0x7000));
}

/// Rule: with CAP.CM = 1, scalable attach also invalidates the PASID cache.
#[test]
fn scalable_caching_mode_attach() {
    let (model, mut unit) = up_scalable(ModelConfig::qemu_scalable().cap_bit(7, true));
    assert!(model.translate(EDU, 0, false).is_err());
    model.clear_events();
    let did = unit.attach(EDU).unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::ContextDevice {
                domain: 0,
                source: EDU.0
            },
            Invalidation::PasidCache { domain: did },
            Invalidation::IotlbDomain { domain: did },
            Invalidation::Wait
        ]
    );
    unit.map(EDU, 0, 0x3000, 0x1000, RW).unwrap();
    assert_eq!(model.translate(EDU, 0, false), Ok(0x3000));
}
