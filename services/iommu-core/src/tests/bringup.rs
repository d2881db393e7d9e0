//! Bring-up: order, handshakes, refusals and timeouts.

use super::*;
use crate::error::{Error, Operation, Unsupported};
use crate::fault::FaultReason;
use crate::model::Event;
use faultline_vtd::AddressWidth;

const TE: u32 = 1 << 31;
const SRTP: u32 = 1 << 30;
const QIE: u32 = 1 << 26;

/// Rule: root table pointer, then queued invalidation, then a global
/// context-cache and IOTLB invalidation with a wait, then translation on;
/// each GCMD write changes exactly one thing (the model panics otherwise).
#[test]
fn bring_up_order() {
    let (model, unit) = qemu();
    let steps: Vec<String> = model
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Write(name @ ("RTADDR" | "IQA" | "IQT"), _) => Some(name.to_string()),
            Event::Command(SRTP) => Some("SRTP".into()),
            Event::Command(QIE) => Some("QIE".into()),
            Event::Command(TE) => Some("TE".into()),
            Event::Command(other) => Some(format!("GCMD {other:#x}")),
            Event::Invalidation(i) => Some(format!("{i:?}")),
            Event::Write(..) => None,
        })
        .collect();
    assert_eq!(
        steps,
        [
            "RTADDR",
            "SRTP",
            "IQT",
            "IQA",
            "QIE",
            "IQT",
            "ContextGlobal",
            "IotlbGlobal",
            "Wait",
            "TE"
        ]
    );
    assert!(model.translation_enabled());
    assert_eq!(unit.address_width(), AddressWidth::Bits48);
    assert_eq!(unit.domain_address_bits(), 48);
}

/// Rule: default deny. With translation on and nothing attached, every
/// device's DMA faults (root entry not present); before bring-up the
/// hardware passes DMA through, which is why the kernel gates bus mastering.
#[test]
fn unattached_device_is_denied_after_bring_up() {
    let model = Model::qemu();
    assert_eq!(model.translate(EDU, 0x1000, true), Ok(0x1000));
    let mut unit = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config::default(),
    )
    .unwrap();
    assert_eq!(
        model.translate(EDU, 0x1000, true),
        Err(FaultReason::RootNotPresent)
    );
    unit.drain_faults(|_| ());
    // Far corners of the root and context tables read as not present too
    // (the new tables were flushed, not just zeroed in the CPU cache).
    assert_eq!(
        model.translate(SourceId(0xff00), 0, false),
        Err(FaultReason::RootNotPresent)
    );
    unit.attach(EDU).unwrap();
    assert_eq!(
        model.translate(SourceId(0x00ff), 0, false),
        Err(FaultReason::ContextNotPresent)
    );
}

/// Rule: a GSTS that never acknowledges ends in a typed timeout, after
/// roughly the configured bound (not forever, not at once).
#[test]
fn stuck_gsts_times_out() {
    let model = Model::qemu();
    model.set_gsts_stuck(true);
    let config = Config {
        handshake_timeout_us: 500,
        ..Config::default()
    };
    let result = Unit::bring_up(model.registers(), model.memory(), model.delay(), config);
    assert!(matches!(
        result,
        Err(Error::Timeout(Operation::SetRootTable))
    ));
    let waited = model.elapsed_ns();
    assert!((500_000..=501_000).contains(&waited), "{waited}");
}

/// Rule: an invalidation queue that never completes the wait descriptor
/// ends in a typed timeout.
#[test]
fn stuck_queue_times_out() {
    let model = Model::qemu();
    model.set_queue_stuck(true);
    let result = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config::default(),
    );
    assert!(matches!(
        result,
        Err(Error::Timeout(Operation::InvalidationWait))
    ));
    assert!(!model.translation_enabled());
}

/// Rule: a unit without queued invalidation or without a 39/48-bit AGAW is
/// refused, and one already translating is not adopted.
#[test]
fn refuses_what_it_cannot_drive() {
    let no_qi = Model::new(ModelConfig::qemu().ecap_bit(1, false));
    let r = Unit::bring_up(
        no_qi.registers(),
        no_qi.memory(),
        no_qi.delay(),
        Config::default(),
    );
    assert!(matches!(
        r,
        Err(Error::Unsupported(Unsupported::QueuedInvalidation))
    ));

    let only_57 = Model::new(with_sagaw(ModelConfig::qemu(), 0b1000));
    let r = Unit::bring_up(
        only_57.registers(),
        only_57.memory(),
        only_57.delay(),
        Config::default(),
    );
    assert!(matches!(
        r,
        Err(Error::Unsupported(Unsupported::AddressWidth))
    ));

    let (model, _unit) = qemu();
    let again = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config::default(),
    );
    assert!(matches!(again, Err(Error::TranslationAlreadyOn)));
}

/// Rule: AGAW comes from CAP.SAGAW: 48-bit (4-level) when offered, else
/// 39-bit (3-level); the model walks the depth the context entry names.
#[test]
fn picks_39_bit_when_48_is_missing() {
    let (model, mut unit) = up(with_sagaw(ModelConfig::qemu(), 0b10));
    assert_eq!(unit.address_width(), AddressWidth::Bits39);
    unit.attach(EDU).unwrap();
    let top = (1 << 39) - 0x1000;
    unit.map(EDU, top, 0x5000, 0x1000, crate::Access::READ)
        .unwrap();
    assert_eq!(model.translate(EDU, top + 8, false), Ok(0x5008));
    assert_eq!(
        unit.map(EDU, 1 << 39, 0x5000, 0x1000, crate::Access::READ),
        Err(Error::OutOfRange)
    );
}

/// Rule: later GCMD writes repeat the enables; a write-buffer flush after
/// bring-up leaves translation and queued invalidation on.
#[test]
fn later_commands_keep_translation_on() {
    let (model, mut unit) = up(ModelConfig::qemu().cap_bit(4, true));
    model.clear_events();
    unit.attach(EDU).unwrap();
    assert!(model.events().contains(&Event::Command(1 << 27)));
    assert!(model.translation_enabled());
    unit.map(EDU, 0, 0x9000, 0x1000, crate::Access::READ)
        .unwrap();
    assert_eq!(model.translate(EDU, 0, false), Ok(0x9000));
}
