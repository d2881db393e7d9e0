//! Fault records: decoded, cleared, and QEMU's single-record behaviour.

use super::*;
use crate::Access;
use crate::fault::{FaultAccess, FaultReason, FaultRecord};
use crate::model::Event;

fn drain(unit: &mut TestUnit) -> (Vec<FaultRecord>, crate::FaultSummary) {
    let mut records = Vec::new();
    let summary = unit.drain_faults(|r| records.push(r));
    (records, summary)
}

/// Rule: a fault is decoded (source, page address, access, reason) and
/// cleared with a 32-bit write-1-to-clear of the record's high dword;
/// afterwards FSTS shows nothing pending and a new fault is recorded.
#[test]
fn fault_records_are_decoded_and_cleared() {
    let (model, mut unit) = qemu();
    unit.attach(EDU).unwrap();
    unit.map(EDU, 0x1000, 0x5000, 0x1000, Access::READ).unwrap();
    assert_eq!(
        model.translate(EDU, 0x1234, true),
        Err(FaultReason::WriteDenied)
    );
    assert_eq!(model.fault_status() & 0b10, 0b10, "PPF");
    model.clear_events();
    let (records, summary) = drain(&mut unit);
    assert_eq!(
        records,
        [FaultRecord {
            source: EDU,
            address: 0x1000,
            access: FaultAccess::Write,
            reason: FaultReason::WriteDenied,
            pasid: None,
        }]
    );
    assert_eq!(summary.records, 1);
    assert!(!summary.overflow);
    assert_eq!(model.record(0).1 >> 63, 0, "F cleared");
    assert_eq!(model.fault_status(), 0);
    assert!(model.events().contains(&Event::Write("FRCD.dw3", 1 << 31)));
    // A read of an unattached device now records again.
    assert_eq!(
        model.translate(OTHER, 0x7000, false),
        Err(FaultReason::RootNotPresent)
    );
    let (records, _) = drain(&mut unit);
    assert_eq!(records[0].source, OTHER);
    assert_eq!(records[0].access, FaultAccess::Read);
    assert_eq!(records[0].reason.code(), 1);
}

/// Rule (QEMU): with one record pending, a second fault from the same
/// source is dropped without overflow; one from another source overflows
/// (PFO), and the drain reports and clears PFO.
#[test]
fn single_record_compression_and_overflow() {
    let (model, mut unit) = qemu();
    assert!(model.translate(EDU, 0x1000, true).is_err());
    assert!(model.translate(EDU, 0x2000, true).is_err());
    assert_eq!(model.dropped_faults(), 1);
    assert_eq!(model.fault_status() & 1, 0, "no PFO for the same source");
    assert!(model.translate(OTHER, 0x3000, true).is_err());
    assert_eq!(model.fault_status() & 1, 1, "PFO");
    let (records, summary) = drain(&mut unit);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].address, 0x1000);
    assert!(summary.overflow);
    assert_eq!(model.fault_status(), 0, "PFO and PPF clear");
    assert!(model.translate(OTHER, 0x3000, true).is_err());
    assert_eq!(drain(&mut unit).0[0].source, OTHER);
}

/// Rule: with several records, the drain starts at FRI and reads every
/// pending record once.
#[test]
fn several_records_read_from_fri() {
    let config = ModelConfig {
        cap: ModelConfig::qemu().cap | 3 << 40,
        ..ModelConfig::qemu()
    };
    let (model, mut unit) = up(config);
    assert!(model.translate(EDU, 0x1000, false).is_err());
    let (first, _) = drain(&mut unit);
    assert_eq!(first.len(), 1);
    // The next record written is index 1, so FRI is 1 now.
    for (i, source) in [EDU, OTHER, SourceId(0x20)].into_iter().enumerate() {
        assert!(
            model
                .translate(source, 0x1000 * (i as u64 + 1), true)
                .is_err()
        );
    }
    assert_eq!(model.fault_status() >> 8 & 0xff, 1, "FRI");
    let (records, summary) = drain(&mut unit);
    let sources: Vec<_> = records.iter().map(|r| r.source).collect();
    assert_eq!(sources, [EDU, OTHER, SourceId(0x20)]);
    assert_eq!(summary.records, 3);
    assert_eq!(model.fault_status(), 0);
}

/// Rule: the fault event interrupt fires once programmed and unmasked.
#[test]
fn fault_interrupt_after_enable() {
    let (model, mut unit) = qemu();
    assert!(model.translate(EDU, 0, false).is_err());
    assert_eq!(model.fault_interrupts(), 0, "masked at reset");
    unit.enable_fault_interrupt(0xfee0_0000, 0x41);
    assert_eq!(
        model.fault_interrupts(),
        1,
        "pending event delivered on unmask"
    );
    drain(&mut unit);
    assert!(model.translate(EDU, 0, false).is_err());
    assert_eq!(model.fault_interrupts(), 2);
}

/// Rule: the record decoder reads the spec's fields, including PASID.
#[test]
fn decode_raw_records() {
    let high = 1u64 << 63 | 1 << 62 | 5 << 40 | 1 << 31 | 0x0c << 32 | 0x0108;
    let record = FaultRecord::decode(0xdead_b123, high).unwrap();
    assert_eq!(record.source, SourceId::new(1, 1, 0).unwrap());
    assert_eq!(record.address, 0xdead_b000);
    assert_eq!(record.access, FaultAccess::Read);
    assert_eq!(record.reason, FaultReason::PageTableReserved);
    assert_eq!(record.pasid, Some(5));
    assert_eq!(FaultRecord::decode(0, high & !(1 << 63)), None);
    assert_eq!(FaultReason::from_code(0x42), FaultReason::Other(0x42));
    for code in 0..=255u8 {
        assert_eq!(FaultReason::from_code(code).code(), code);
    }
    assert_eq!(record.source.to_string(), "01:01.0");
    assert_eq!(SourceId::new(0, 32, 0), None);
    assert_eq!(SourceId::new(0, 0, 8), None);
    assert_eq!(SourceId::new(0xff, 31, 7), Some(SourceId(0xffff)));
}
