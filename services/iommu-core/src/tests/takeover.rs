//! Taking over a unit an earlier IOMMU service instance left translating:
//! translation (and interrupt remapping) never turn off, the earlier
//! instance's mappings and interrupt entries stop working the moment the
//! new tables are set, and new attachments translate through them.

use super::*;
use crate::error::{Error, Operation};
use crate::fault::FaultReason;
use crate::interrupt::{InterruptMode, Irte};
use crate::model::{Event, Interrupt, InterruptFault, Invalidation};
use faultline_vtd::TranslationMode;

const TES: u32 = 1 << 31;
const IRES: u32 = 1 << 25;
const SRTP: u32 = 1 << 30;
const QIE: u32 = 1 << 26;
const SIRTP: u32 = 1 << 24;

fn take_over(model: &Model, mode: TranslationMode) -> TestUnit {
    let config = Config {
        take_over: true,
        mode,
        ..Config::default()
    };
    Unit::bring_up(model.registers(), model.memory(), model.delay(), config).expect("take-over")
}

/// An earlier instance in `mode` with EDU mapped at 0x1000 → 0x9000 (read)
/// and that translation cached (context, PASID cache, IOTLB), then gone.
fn earlier_instance(mode: TranslationMode) -> Model {
    let (model, mut old) = match mode {
        TranslationMode::Legacy => qemu(),
        TranslationMode::Scalable => up_scalable(crate::model::ModelConfig::qemu_scalable()),
    };
    old.attach(EDU).unwrap();
    old.map(EDU, 0x1000, 0x9000, 0x1000, crate::Access::READ)
        .unwrap();
    assert_eq!(model.translate(EDU, 0x1000, false), Ok(0x9000));
    drop(old);
    model.clear_events();
    model
}

fn commands(model: &Model) -> Vec<u32> {
    model
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Command(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Rule: a take-over never clears TE: GSTS.TES is set after every GCMD
/// write; the queue is drained and re-pointed (QIE off, QIE on), then
/// SRTP, then the global context-cache (PASID-cache in scalable mode) and
/// IOTLB invalidations the spec asks after SRTP. The earlier mapping
/// faults right after, and the fault event interrupt works.
fn keeps_translation_on(mode: TranslationMode, expected: &[Invalidation]) {
    let model = earlier_instance(mode);
    let mut unit = take_over(&model, mode);
    let history = model.gsts_history();
    assert!(!history.is_empty());
    assert!(
        history.iter().all(|gsts| gsts & TES != 0),
        "translation dropped during take-over: {history:x?}"
    );
    assert_eq!(commands(&model), [QIE, QIE, SRTP]);
    assert_eq!(model.invalidations(), expected);
    assert!(model.translation_enabled());

    unit.enable_fault_interrupt(0xfee0_0000, 0x30);
    let before = model.fault_interrupts();
    assert_eq!(
        model.translate(EDU, 0x1000, false),
        Err(FaultReason::RootNotPresent)
    );
    assert_eq!(model.fault_interrupts(), before + 1);
    let mut records = Vec::new();
    unit.drain_faults(|r| records.push(r));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].source, EDU);
}

#[test]
fn take_over_keeps_translation_on() {
    keeps_translation_on(
        TranslationMode::Legacy,
        &[
            Invalidation::ContextGlobal,
            Invalidation::IotlbGlobal,
            Invalidation::Wait,
        ],
    );
}

#[test]
fn take_over_keeps_translation_on_in_scalable_mode() {
    keeps_translation_on(
        TranslationMode::Scalable,
        &[
            Invalidation::ContextGlobal,
            Invalidation::PasidCacheGlobal,
            Invalidation::IotlbGlobal,
            Invalidation::Wait,
        ],
    );
}

/// Rule: after a take-over a device attached afresh (it gets the same
/// domain id the earlier instance used) translates through the new tables
/// only: its new mapping works, and the earlier instance's mapping at
/// another IOVA faults instead of hitting a stale IOTLB, context or PASID
/// cache entry.
fn new_attachment_translates(mode: TranslationMode) {
    let model = earlier_instance(mode);
    let mut unit = take_over(&model, mode);
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0x2000, 0xa000, 0x1000, crate::Access::WRITE)
        .unwrap();
    assert_eq!(model.translate(EDU, 0x2000, true), Ok(0xa000));
    assert_eq!(
        model.translate(EDU, 0x1000, false),
        Err(FaultReason::ReadDenied)
    );
    assert_eq!(
        model.translate(OTHER, 0x1000, false),
        Err(FaultReason::RootNotPresent)
    );
    assert!(model.gsts_history().iter().all(|gsts| gsts & TES != 0));
}

#[test]
fn newly_attached_device_translates_through_the_new_tables() {
    new_attachment_translates(TranslationMode::Legacy);
}

#[test]
fn newly_attached_device_translates_through_the_new_tables_in_scalable_mode() {
    new_attachment_translates(TranslationMode::Scalable);
}

/// Rule: with interrupt remapping on, the new table is installed with
/// SIRTP while IRE stays set, then a global interrupt entry cache
/// invalidation; the earlier instance's entry is blocked from then on and
/// the new one delivers.
#[test]
fn take_over_replaces_the_interrupt_table_with_remapping_on() {
    let (model, mut old) = qemu();
    let old_entry = Irte {
        vector: 0x51,
        apic_id: 0,
        source: EDU,
    };
    old.enable_interrupt_remapping(InterruptMode::XApic, &[(1, old_entry)])
        .unwrap();
    let msi = |index: u64| 0xfee0_0000 | index << 5 | 1 << 4;
    assert_eq!(
        model.deliver_msi(EDU, msi(1), 0),
        Ok(Interrupt {
            vector: 0x51,
            destination: 0
        })
    );
    drop(old);
    model.clear_events();
    let mut unit = take_over(&model, TranslationMode::Legacy);
    let new_entry = Irte {
        vector: 0x61,
        ..old_entry
    };
    unit.enable_interrupt_remapping(InterruptMode::XApic, &[(2, new_entry)])
        .unwrap();
    let history = model.gsts_history();
    assert!(
        history
            .iter()
            .all(|gsts| gsts & TES != 0 && gsts & IRES != 0),
        "translation or interrupt remapping dropped: {history:x?}"
    );
    assert_eq!(commands(&model), [QIE, QIE, SRTP, SIRTP]);
    assert_eq!(
        model.invalidations()[3..],
        [Invalidation::InterruptEntriesGlobal, Invalidation::Wait]
    );
    assert_eq!(
        model.deliver_msi(EDU, msi(1), 0),
        Err(InterruptFault::EntryNotPresent)
    );
    unit.drain_faults(|_| ());
    assert_eq!(
        model.deliver_msi(EDU, msi(2), 0),
        Ok(Interrupt {
            vector: 0x61,
            destination: 0
        })
    );
}

/// Rule: a unit whose GSTS never acknowledges ends the take-over in a
/// typed timeout, with translation still on (never half torn down).
#[test]
fn take_over_times_out_with_translation_still_on() {
    let (model, _old) = qemu();
    model.set_gsts_stuck(true);
    let config = Config {
        take_over: true,
        handshake_timeout_us: 100,
        ..Config::default()
    };
    let r = Unit::bring_up(model.registers(), model.memory(), model.delay(), config);
    assert!(matches!(
        r,
        Err(Error::Timeout(Operation::DisableQueuedInvalidation))
    ));
    assert!(model.translation_enabled());
}

/// Rule: without `take_over`, a translating unit is refused and left as
/// it is (no GCMD write at all).
#[test]
fn translating_unit_is_refused_without_take_over() {
    let (model, _old) = qemu();
    model.clear_events();
    let r = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config::default(),
    );
    assert!(matches!(r, Err(Error::TranslationAlreadyOn)));
    assert!(commands(&model).is_empty());
}
