//! Interrupt remapping against the model: the enable sequence, and what a
//! write into the interrupt range can raise once it is on.

use super::model::{IQE, submit_raw};
use super::*;
use crate::error::{Error, Unsupported};
use crate::interrupt::{InterruptMode, Irte};
use crate::model::{Event, Interrupt, InterruptFault, Invalidation};
use crate::queue::Descriptor;

const SIRTP: u32 = 1 << 24;
const IRE: u32 = 1 << 25;
const CFI: u32 = 1 << 23;

/// The remappable-format MSI address naming entry `handle` (SHV = 0), as
/// Faultline's kernel programs it.
fn remappable(handle: u16) -> u64 {
    let h = u64::from(handle);
    0xfee0_0000 | (h & 0x7fff) << 5 | 1 << 4 | (h >> 15 & 1) << 2
}

const EDU_VECTOR: u8 = 0x51;
const OTHER_VECTOR: u8 = 0x52;

/// EDU's line at entry 1, OTHER's at entry 2, in xAPIC mode.
fn remapping() -> (Model, TestUnit) {
    let (model, mut unit) = qemu();
    let entries = [
        (
            1,
            Irte {
                vector: EDU_VECTOR,
                apic_id: 0,
                source: EDU,
            },
        ),
        (
            2,
            Irte {
                vector: OTHER_VECTOR,
                apic_id: 0,
                source: OTHER,
            },
        ),
    ];
    unit.enable_interrupt_remapping(InterruptMode::XApic, &entries)
        .expect("interrupt remapping on");
    (model, unit)
}

/// The fault reason code and index of the pending record.
fn recorded(model: &Model) -> (u8, u16) {
    let (low, high) = model.record(0);
    assert!(high >> 63 != 0, "no fault recorded");
    ((high >> 32) as u8, (low >> 48) as u16)
}

/// Rule: IRTA, then SIRTP, then a global interrupt entry cache
/// invalidation (waited for), then IRE; CFI is never set.
#[test]
fn enable_order() {
    let (model, mut unit) = qemu();
    model.clear_events();
    unit.enable_interrupt_remapping(InterruptMode::XApic, &[])
        .unwrap();
    let steps: Vec<String> = model
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Write("IRTA", v) => Some(format!("IRTA {:#x}", v & 0xfff)),
            Event::Command(SIRTP) => Some("SIRTP".into()),
            Event::Command(IRE) => Some("IRE".into()),
            Event::Command(CFI) => Some("CFI".into()),
            Event::Invalidation(i) => Some(format!("{i:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        ["IRTA 0x7", "SIRTP", "InterruptEntriesGlobal", "Wait", "IRE"]
    );
    assert!(model.interrupt_remapping_enabled());
    assert!(unit.interrupt_table().is_some());
}

/// Rule: a function's MSI through its own entry yields the granted vector
/// at the granted APIC.
#[test]
fn right_source_yields_its_vector() {
    let (model, _unit) = remapping();
    assert_eq!(
        model.deliver_msi(EDU, remappable(1), 0),
        Ok(Interrupt {
            vector: EDU_VECTOR,
            destination: 0
        })
    );
    assert_eq!(
        model.deliver_msi(OTHER, remappable(2), 0),
        Ok(Interrupt {
            vector: OTHER_VECTOR,
            destination: 0
        })
    );
    assert_eq!(model.interrupts_blocked(), 0);
}

/// Rule: a function naming another function's entry is blocked (source-id
/// verification, fault 0x26), whatever data it writes.
#[test]
fn wrong_source_is_blocked() {
    let (model, _unit) = remapping();
    assert_eq!(
        model.deliver_msi(EDU, remappable(2), u32::from(OTHER_VECTOR)),
        Err(InterruptFault::SourceRejected)
    );
    assert_eq!(recorded(&model), (0x26, 2));
}

/// Rule: with remapping on and CFI clear, a compatibility-format write (a
/// DMA write of 0xFEE00000 naming a vector in its data) raises nothing and
/// is recorded as fault 0x25. Before remapping it would have been delivered.
#[test]
fn compatibility_format_is_blocked() {
    let (model, mut unit) = qemu();
    assert_eq!(
        model.deliver_msi(EDU, 0xfee0_0000, 0x30),
        Ok(Interrupt {
            vector: 0x30,
            destination: 0
        })
    );
    unit.enable_interrupt_remapping(InterruptMode::XApic, &[])
        .unwrap();
    for data in [0x30, u32::from(EDU_VECTOR), 0x4030] {
        assert_eq!(
            model.deliver_msi(EDU, 0xfee0_0000, data),
            Err(InterruptFault::CompatibilityBlocked)
        );
    }
    assert_eq!(recorded(&model).0, 0x25);
    assert_eq!(model.interrupts_blocked(), 3);
}

/// Rule: a handle past the table (256 entries) is fault 0x21, and an entry
/// that was never written is not present (0x22).
#[test]
fn unknown_entries_are_blocked() {
    let (model, _unit) = remapping();
    assert_eq!(
        model.deliver_msi(EDU, remappable(256), 0),
        Err(InterruptFault::IndexBeyondTable)
    );
    assert_eq!(recorded(&model), (0x21, 256));
    assert_eq!(
        model.deliver_msi(OTHER, remappable(5), 0),
        Err(InterruptFault::EntryNotPresent)
    );
    assert_eq!(
        model.deliver_msi(EDU, remappable(0x8001), 0),
        Err(InterruptFault::IndexBeyondTable)
    );
}

/// Rule: the entries the core writes are what the spec calls well formed:
/// no reserved bit, and in xAPIC mode the APIC id in destination bits 15:8.
#[test]
fn entries_are_well_formed() {
    let irte = Irte {
        vector: 0x5f,
        apic_id: 3,
        source: OTHER,
    };
    let (low, high) = irte.encode(InterruptMode::XApic).unwrap();
    assert_eq!(low, 1 | 0x5f << 16 | 0x300 << 32);
    assert_eq!(high, 0x0310 | 1 << 18);
    let (low, _) = irte.encode(InterruptMode::X2Apic).unwrap();
    assert_eq!(low >> 32, 3);
    let wide = Irte {
        apic_id: 0x1_00,
        ..irte
    };
    assert_eq!(wide.encode(InterruptMode::XApic), None);
    assert_eq!(InterruptMode::for_apic_id(0xff), InterruptMode::XApic);
    assert_eq!(InterruptMode::for_apic_id(0x100), InterruptMode::X2Apic);
}

/// Rule: x2APIC destinations need ECAP.EIM; with it, the full 32-bit id
/// is delivered.
#[test]
fn x2apic_mode_needs_eim() {
    let irte = Irte {
        vector: EDU_VECTOR,
        apic_id: 0x1234,
        source: EDU,
    };
    let (_, mut unit) = qemu();
    assert_eq!(
        unit.enable_interrupt_remapping(InterruptMode::X2Apic, &[(0, irte)]),
        Err(Error::Unsupported(Unsupported::ExtendedInterruptMode))
    );
    let (model, mut unit) = up(ModelConfig::qemu().ecap_bit(4, true));
    unit.enable_interrupt_remapping(InterruptMode::X2Apic, &[(0, irte)])
        .unwrap();
    assert_eq!(
        model.deliver_msi(EDU, remappable(0), 0),
        Ok(Interrupt {
            vector: EDU_VECTOR,
            destination: 0x1234
        })
    );
}

/// Rule: without ECAP.IR the core refuses instead of touching IRTA.
#[test]
fn needs_ecap_ir() {
    let (_, mut unit) = up(ModelConfig::qemu().ecap_bit(3, false));
    assert_eq!(
        unit.enable_interrupt_remapping(InterruptMode::XApic, &[]),
        Err(Error::Unsupported(Unsupported::InterruptRemapping))
    );
}

/// Rule: a second enable (a restarted IOMMU service) swaps the table in
/// one SIRTP with remapping left on, and the old entries are forgotten
/// because the entry cache is invalidated.
#[test]
fn re_enable_replaces_the_table() {
    let (model, mut unit) = remapping();
    assert!(model.deliver_msi(EDU, remappable(1), 0).is_ok());
    let moved = Irte {
        vector: 0x60,
        apic_id: 0,
        source: EDU,
    };
    unit.enable_interrupt_remapping(InterruptMode::XApic, &[(7, moved)])
        .unwrap();
    assert!(model.interrupt_remapping_enabled());
    assert_eq!(
        model.deliver_msi(EDU, remappable(1), 0),
        Err(InterruptFault::EntryNotPresent)
    );
    assert_eq!(
        model.deliver_msi(EDU, remappable(7), 0).unwrap().vector,
        0x60
    );
}

/// Rule: the interrupt entry cache descriptor is checked like the others:
/// reserved bits in either qword set FSTS.IQE; a well-formed one does not.
#[test]
fn malformed_iec_descriptor_is_rejected() {
    let global = Descriptor::interrupt_entries_global();
    let (model, fsts) = submit_raw(global);
    assert_eq!(fsts & IQE, 0);
    assert_eq!(
        model.invalidations(),
        [Invalidation::InterruptEntriesGlobal]
    );
    for bad in [
        Descriptor {
            low: global.low | 1 << 5,
            high: 0,
        },
        Descriptor {
            low: global.low | 1 << 50,
            high: 0,
        },
        Descriptor {
            low: global.low,
            high: 1,
        },
    ] {
        let (model, fsts) = submit_raw(bad);
        assert_ne!(fsts & IQE, 0, "{bad:?} accepted");
        assert!(model.queue_errors()[0].contains("reserved"));
    }
}
