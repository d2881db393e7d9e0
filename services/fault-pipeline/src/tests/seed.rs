//! The two bugs the review that started Faultline found, as regression
//! tests: a request from a device with no handler was silently ignored,
//! and a request was reported twice.

use faultline_ipc::protocol::faults::{FaultToken, FaultsError, ResponseCode};
use faultline_ipc::protocol::iommu::FaultOutcome;

use super::{EDU, Log, OTHER, Reply, fault};
use crate::Await;
use crate::{AutoReason, Pipeline};

#[test]
fn seed_bug_1_a_fault_from_a_device_with_no_handler_is_answered() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, OTHER, 50, &mut log).unwrap();
    p.record(fault(EDU, 0x1000), 0, &mut log);
    assert_eq!(log.automatic, [(FaultToken(1), EDU, AutoReason::NoHandler)]);
    assert_eq!(p.outstanding().count(), 0);
    let c = p.counters();
    assert_eq!((c.faults, c.invalid, c.auto, c.delivered), (1, 1, 1, 0));
    let Await::Settled(_, s) = p.await_fault(EDU, 0, 9) else {
        panic!("the driver must learn the fault was answered");
    };
    assert_eq!(
        s.outcome,
        FaultOutcome::Aborted {
            code: ResponseCode::Invalid,
            automatic: true
        }
    );
}

#[test]
fn seed_bug_2_no_fault_is_reported_twice() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, EDU, 50, &mut log).unwrap();
    p.record(fault(EDU, 0x1000), 0, &mut log);
    // Pulls keep coming (a handler restarting, a pull replaced): the one
    // fault goes out once.
    for pull in 0..5 {
        p.next(1, pull, &mut log).unwrap();
    }
    assert_eq!(log.delivered.len(), 1);
    p.answer(
        1,
        FaultToken(1),
        ResponseCode::Success,
        |_| Ok(()),
        &mut log,
    )
    .unwrap();
    assert_eq!(
        p.answer(
            1,
            FaultToken(1),
            ResponseCode::Success,
            |_| Ok(()),
            &mut log
        ),
        Err(FaultsError::AlreadyAnswered)
    );
    assert_eq!(p.counters().delivered, 1);
    assert_eq!(crate::answered(&p.counters()), 1);
}
