//! The pipeline's rules, one test each.

use faultline_ipc::protocol::faults::{FaultToken, FaultsError, ResponseCode};
use faultline_ipc::protocol::iommu::FaultOutcome;

use super::{EDU, Log, MS, OTHER, Reply, fault};
use crate::Await;
use crate::{AutoReason, HANDLER_QUEUE, Pipeline, Stage};

const H: u64 = 7;
const H2: u64 = 9;

fn registered() -> (Pipeline<Reply>, Log) {
    let mut p = Pipeline::new();
    let mut log = Log::default();
    p.register(H, EDU, 50, &mut log).unwrap();
    (p, log)
}

fn ok(_: &crate::Pending) -> Result<(), FaultsError> {
    Ok(())
}

#[test]
fn a_fault_goes_to_the_parked_pull_of_the_devices_handler() {
    let (mut p, mut log) = registered();
    p.next(H, 1, &mut log).unwrap();
    assert!(p.waiting(H));
    p.record(fault(EDU, 0x5000), 0, &mut log);
    assert_eq!(log.delivered.len(), 1);
    let (to, f) = log.delivered[0];
    assert_eq!(
        (to, f.bdf, f.iova, f.token),
        (1, EDU, 0x5000, FaultToken(1))
    );
    assert!(!p.waiting(H));
    assert_eq!(p.counters().delivered, 1);
    assert_eq!(p.outstanding().next().unwrap().stage, Stage::Delivered);
}

#[test]
fn faults_recorded_before_a_pull_wait_and_go_out_oldest_first() {
    let (mut p, mut log) = registered();
    for iova in [0x1000, 0x2000, 0x3000] {
        p.record(fault(EDU, iova), 0, &mut log);
    }
    assert!(log.delivered.is_empty());
    for pull in 1..=3 {
        p.next(H, pull, &mut log).unwrap();
    }
    let iovas: Vec<u64> = log.delivered.iter().map(|(_, f)| f.iova).collect();
    assert_eq!(iovas, [0x1000, 0x2000, 0x3000]);
    p.next(H, 4, &mut log).unwrap();
    assert!(p.waiting(H), "nothing left: the pull is parked");
}

#[test]
fn a_pull_without_registering_comes_back_refused() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    assert_eq!(p.next(H, 3, &mut log), Err((3, FaultsError::NotRegistered)));
}

#[test]
fn one_handler_per_device() {
    let (mut p, mut log) = registered();
    assert_eq!(
        p.register(H2, EDU, 50, &mut log),
        Err(FaultsError::AlreadyHandled)
    );
    p.register(H2, OTHER, 50, &mut log).unwrap();
}

#[test]
fn each_code_is_counted_and_success_tells_the_driver_to_retry() {
    let (mut p, mut log) = registered();
    let codes = [
        ResponseCode::Success,
        ResponseCode::Invalid,
        ResponseCode::Failure,
    ];
    for (i, code) in codes.into_iter().enumerate() {
        let since = p.mark(EDU);
        p.record(fault(EDU, 0x1000), 0, &mut log);
        p.next(H, i as u32, &mut log).unwrap();
        let token = log.delivered[i].1.token;
        p.answer(H, token, code, ok, &mut log).unwrap();
        let Await::Settled(_, s) = p.await_fault(EDU, since, 100) else {
            panic!("settled fault expected");
        };
        let expect = match code {
            ResponseCode::Success => FaultOutcome::Retry,
            code => FaultOutcome::Aborted {
                code,
                automatic: false,
            },
        };
        assert_eq!(s.outcome, expect);
    }
    let c = p.counters();
    assert_eq!((c.success, c.invalid, c.failure, c.auto), (1, 1, 1, 0));
    assert_eq!(c.retried, 1);
    assert_eq!(crate::answered(&c), c.faults);
}

#[test]
fn answers_name_what_is_wrong_with_the_token() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(H, EDU, 50, &mut log).unwrap();
    p.register(H2, OTHER, 50, &mut log).unwrap();
    p.record(fault(EDU, 0x1000), 0, &mut log); // token 1
    p.record(fault(OTHER, 0x1000), 0, &mut log); // token 2
    p.record(fault(EDU, 0x2000), 0, &mut log); // token 3, queued
    p.next(H, 1, &mut log).unwrap();
    p.next(H2, 2, &mut log).unwrap();
    let s = ResponseCode::Success;
    assert_eq!(
        p.answer(H, FaultToken(0), s, ok, &mut log),
        Err(FaultsError::UnknownToken)
    );
    assert_eq!(
        p.answer(H, FaultToken(99), s, ok, &mut log),
        Err(FaultsError::UnknownToken)
    );
    assert_eq!(
        p.answer(H, FaultToken(2), s, ok, &mut log),
        Err(FaultsError::NotYours)
    );
    assert_eq!(
        p.answer(H, FaultToken(3), s, ok, &mut log),
        Err(FaultsError::UnknownToken),
        "a queued fault's token was never delivered"
    );
    p.answer(H, FaultToken(1), s, ok, &mut log).unwrap();
    assert_eq!(
        p.answer(H, FaultToken(1), s, ok, &mut log),
        Err(FaultsError::AlreadyAnswered)
    );
    assert_eq!(
        p.answer(H2, FaultToken(1), s, ok, &mut log),
        Err(FaultsError::NotYours)
    );
    // Token 3 went out when token 1's slot freed? No: H had no pull parked.
    p.expire(100 * MS, &mut log);
    assert_eq!(
        p.answer(H2, FaultToken(2), s, ok, &mut log),
        Err(FaultsError::Stale)
    );
    assert_eq!(crate::answered(&p.counters()), 3);
}

#[test]
fn a_refused_action_leaves_the_fault_outstanding() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log);
    p.next(H, 1, &mut log).unwrap();
    let token = log.delivered[0].1.token;
    let refuse = |_: &crate::Pending| Err(FaultsError::NotBacked);
    assert_eq!(
        p.answer(H, token, ResponseCode::Success, refuse, &mut log),
        Err(FaultsError::NotBacked)
    );
    assert_eq!(p.outstanding().count(), 1);
    assert_eq!(crate::answered(&p.counters()), 0);
    p.answer(H, token, ResponseCode::Invalid, ok, &mut log)
        .unwrap();
    assert_eq!(p.counters().invalid, 1);
}

#[test]
fn the_action_sees_the_pipelines_copy_of_the_fault() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x7000), 0, &mut log);
    p.next(H, 1, &mut log).unwrap();
    let mut seen = None;
    p.answer(
        H,
        FaultToken(1),
        ResponseCode::Success,
        |f| {
            seen = Some((f.fault.bdf, f.fault.iova));
            Ok(())
        },
        &mut log,
    )
    .unwrap();
    assert_eq!(seen, Some((EDU, 0x7000)));
}

#[test]
fn a_missed_deadline_is_answered_failure_and_the_driver_told() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 10 * MS, &mut log);
    p.next(H, 1, &mut log).unwrap();
    assert_eq!(p.next_deadline(), Some(60 * MS));
    assert!(matches!(p.await_fault(EDU, 0, 50), Await::Parked));
    p.expire(60 * MS - 1, &mut log);
    assert_eq!(p.outstanding().count(), 1, "not before the deadline");
    p.expire(60 * MS, &mut log);
    assert_eq!(p.outstanding().count(), 0);
    assert_eq!(log.automatic, [(FaultToken(1), EDU, AutoReason::Deadline)]);
    let (to, s) = log.settled[0];
    assert_eq!(to, 50);
    assert_eq!(
        s.outcome,
        FaultOutcome::Aborted {
            code: ResponseCode::Failure,
            automatic: true
        }
    );
    assert_eq!(
        p.answer(H, FaultToken(1), ResponseCode::Success, ok, &mut log),
        Err(FaultsError::Stale)
    );
    assert_eq!(p.next_deadline(), None);
}

#[test]
fn a_full_handler_queue_is_answered_failure_without_stalling_another_device() {
    let (mut p, mut log) = registered();
    p.register(H2, OTHER, 50, &mut log).unwrap();
    for i in 0..HANDLER_QUEUE as u64 + 2 {
        p.record(fault(EDU, i << 12), 0, &mut log);
    }
    let c = p.counters();
    assert_eq!((c.auto, c.failure), (2, 2));
    assert!(log.automatic.iter().all(|a| a.2 == AutoReason::QueueFull));
    p.next(H2, 1, &mut log).unwrap();
    p.record(fault(OTHER, 0x1000), 0, &mut log);
    assert_eq!(
        log.delivered.len(),
        1,
        "the other device's fault went out at once"
    );
    assert_eq!(log.delivered[0].1.bdf, OTHER);
}

#[test]
fn registering_again_answers_what_the_earlier_instance_held() {
    let (mut p, mut log) = registered();
    for iova in [0x1000, 0x2000, 0x3000, 0x4000] {
        p.record(fault(EDU, iova), 0, &mut log);
    }
    for pull in 1..=3 {
        p.next(H, pull, &mut log).unwrap();
    }
    p.register(H, EDU, 50, &mut log).unwrap();
    assert_eq!(log.automatic.len(), 3);
    assert!(log.automatic.iter().all(|a| a.2 == AutoReason::Restarted));
    // The queued fault was never delivered: it goes to the new instance.
    p.next(H, 10, &mut log).unwrap();
    assert_eq!(log.delivered.last().unwrap(), &(10, log.delivered[3].1));
    assert_eq!(log.delivered[3].1.iova, 0x4000);
    assert_eq!(p.counters().delivered, 4);
}

#[test]
fn a_handler_found_gone_has_its_delivered_faults_answered_at_once() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log);
    p.record(fault(EDU, 0x2000), 0, &mut log);
    p.next(H, 1, &mut log).unwrap();
    p.next(H, 2, &mut log).unwrap();
    log.gone.insert(3);
    p.next(H, 3, &mut log).unwrap();
    p.record(fault(EDU, 0x3000), 0, &mut log);
    // Delivering 0x3000 to pull 3 failed: both delivered faults answered.
    assert_eq!(log.automatic.len(), 2);
    assert!(log.automatic.iter().all(|a| a.2 == AutoReason::HandlerDied));
    assert!(!p.waiting(H));
    // 0x3000 waits for the next instance.
    p.register(H, EDU, 50, &mut log).unwrap();
    p.next(H, 4, &mut log).unwrap();
    assert_eq!(log.delivered.last().unwrap().1.iova, 0x3000);
}

#[test]
fn a_driver_learns_its_first_fault_after_a_mark_once_it_is_settled() {
    let (mut p, mut log) = registered();
    assert_eq!(p.await_fault(EDU, 0, 1), Await::NoFault(1, 0));
    p.record(fault(EDU, 0x1000), 0, &mut log); // mark 1
    p.record(fault(EDU, 0x2000), 0, &mut log); // mark 2
    p.next(H, 1, &mut log).unwrap();
    p.next(H, 2, &mut log).unwrap();
    assert_eq!(p.await_fault(EDU, 0, 50), Await::Parked);
    // Mark 2 settles first: the driver asked about mark 1, still open.
    p.answer(H, FaultToken(2), ResponseCode::Invalid, ok, &mut log)
        .unwrap();
    assert!(log.settled.is_empty());
    p.answer(H, FaultToken(1), ResponseCode::Success, ok, &mut log)
        .unwrap();
    assert_eq!(log.settled.len(), 1);
    assert_eq!((log.settled[0].0, log.settled[0].1.mark), (50, 1));
    let Await::Settled(_, s) = p.await_fault(EDU, 1, 51) else {
        panic!("mark 2 is settled");
    };
    assert_eq!(s.mark, 2);
    assert_eq!(p.await_fault(EDU, 2, 52), Await::NoFault(52, 2));
}

#[test]
fn a_retry_is_counted_once_and_verified_once() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log);
    p.next(H, 1, &mut log).unwrap();
    assert!(!p.verified(EDU, 1), "not settled yet");
    p.answer(H, FaultToken(1), ResponseCode::Success, ok, &mut log)
        .unwrap();
    assert!(!p.verified(EDU, 1), "the driver was not told yet");
    assert!(matches!(p.await_fault(EDU, 0, 2), Await::Settled(..)));
    assert!(matches!(p.await_fault(EDU, 0, 3), Await::Settled(..)));
    assert_eq!(p.counters().retried, 1);
    assert!(!p.verified(OTHER, 1));
    assert!(!p.verified(EDU, 2));
    assert!(p.verified(EDU, 1));
    assert!(!p.verified(EDU, 1), "once");
    assert_eq!(p.counters().verified, 1);
}

#[test]
fn an_aborted_fault_cannot_be_reported_verified() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log);
    p.next(H, 1, &mut log).unwrap();
    p.answer(H, FaultToken(1), ResponseCode::Failure, ok, &mut log)
        .unwrap();
    assert!(matches!(p.await_fault(EDU, 0, 2), Await::Settled(..)));
    assert!(!p.verified(EDU, 1));
    assert_eq!(p.counters().retried, 0);
}

#[test]
fn answering_frees_a_queue_slot_for_the_parked_pull() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log);
    p.record(fault(EDU, 0x2000), 0, &mut log);
    p.next(H, 1, &mut log).unwrap();
    assert_eq!(log.delivered.len(), 1);
    p.answer(H, FaultToken(1), ResponseCode::Success, ok, &mut log)
        .unwrap();
    p.next(H, 2, &mut log).unwrap();
    assert_eq!(log.delivered.len(), 2);
}

#[test]
fn deadlines_count_from_the_fault_and_the_handlers_own_deadline() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(H, EDU, 5, &mut log).unwrap();
    p.register(H2, OTHER, 500, &mut log).unwrap();
    p.record(fault(OTHER, 0x1000), MS, &mut log);
    p.record(fault(EDU, 0x1000), 2 * MS, &mut log);
    assert_eq!(p.next_deadline(), Some(7 * MS));
    p.expire(7 * MS, &mut log);
    assert_eq!(log.automatic.len(), 1);
    assert_eq!(log.automatic[0].1, EDU);
    assert_eq!(p.next_deadline(), Some(501 * MS));
}

#[test]
fn every_handlers_full_queue_fits_the_table() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    for h in 0..crate::MAX_HANDLERS as u16 {
        p.register(u64::from(h), h, 50, &mut log).unwrap();
        for i in 0..HANDLER_QUEUE as u64 {
            p.record(fault(h, i << 12), 0, &mut log);
        }
    }
    assert!(log.automatic.is_empty(), "{:?}", log.automatic);
    assert_eq!(p.outstanding().count(), crate::MAX_OUTSTANDING);
    // One more for any of them is one too many for that handler alone.
    p.record(fault(3, 0x9000), 0, &mut log);
    assert_eq!(log.automatic.len(), 1);
    assert_eq!(log.automatic[0].2, AutoReason::QueueFull);
    assert_eq!(
        p.register(99, 0x99, 50, &mut log),
        Err(FaultsError::Full),
        "no room for a ninth handler"
    );
}

#[test]
fn a_drivers_question_is_about_its_own_device_and_strictly_after_its_mark() {
    let (mut p, mut log) = registered();
    p.register(H2, OTHER, 50, &mut log).unwrap();
    p.record(fault(OTHER, 0x1000), 0, &mut log);
    assert_eq!(
        p.await_fault(EDU, 0, 1),
        Await::NoFault(1, 0),
        "another device's open fault is not this one's"
    );
    p.record(fault(EDU, 0x1000), 0, &mut log); // EDU mark 1, open
    assert_eq!(
        p.await_fault(EDU, 1, 2),
        Await::NoFault(2, 1),
        "the fault at the mark is not after it"
    );
    assert_eq!(p.await_fault(EDU, 0, 3), Await::Parked);
}

#[test]
fn the_first_fault_after_the_mark_decides_settled_or_open() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log); // mark 1
    p.record(fault(EDU, 0x2000), 0, &mut log); // mark 2
    p.next(H, 1, &mut log).unwrap();
    p.next(H, 2, &mut log).unwrap();
    // Mark 1 settled, mark 2 open: mark 1 is the answer, now.
    p.answer(H, FaultToken(1), ResponseCode::Invalid, ok, &mut log)
        .unwrap();
    let Await::Settled(_, s) = p.await_fault(EDU, 0, 3) else {
        panic!("mark 1 is settled and comes first");
    };
    assert_eq!(s.mark, 1);
    // Marks 3 and 4: 4 settled, 3 open: wait for 3.
    p.record(fault(EDU, 0x3000), 0, &mut log); // mark 3, token 3
    p.record(fault(EDU, 0x4000), 0, &mut log); // mark 4, token 4
    p.answer(H, FaultToken(2), ResponseCode::Invalid, ok, &mut log)
        .unwrap();
    p.next(H, 4, &mut log).unwrap();
    p.next(H, 5, &mut log).unwrap();
    p.answer(H, FaultToken(4), ResponseCode::Invalid, ok, &mut log)
        .unwrap();
    assert_eq!(
        p.await_fault(EDU, 2, 6),
        Await::Parked,
        "mark 3 is still open"
    );
}

#[test]
fn lost_faults_reach_every_known_devices_driver() {
    let (mut p, mut log) = registered();
    // OTHER's driver only took a mark; EDU has a parked question.
    assert_eq!(p.mark_for_driver(OTHER), 0);
    assert_eq!(p.await_fault(EDU, 0, 1), Await::NoFault(1, 0));
    p.overflowed(&mut log);
    let lost = faultline_ipc::protocol::iommu::FaultOutcome::Lost;
    let Await::Settled(_, s) = p.await_fault(OTHER, 0, 3) else {
        panic!("OTHER's driver must learn of the loss");
    };
    assert_eq!((s.mark, s.outcome), (1, lost));
    let Await::Settled(_, s) = p.await_fault(EDU, 0, 4) else {
        panic!("EDU's driver must learn of the loss");
    };
    assert_eq!(s.outcome, lost);
    assert!(!p.verified(EDU, 1), "a loss is no retry");
    assert_eq!(p.counters().retried, 0);
    assert_eq!(p.counters().faults, 0, "a loss is no recorded fault");
}

#[test]
fn a_parked_question_is_answered_by_a_loss() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log); // mark 1, open
    p.next(H, 1, &mut log).unwrap();
    assert_eq!(p.await_fault(EDU, 0, 7), Await::Parked);
    p.answer(H, FaultToken(1), ResponseCode::Success, ok, &mut log)
        .unwrap();
    assert_eq!(log.settled.len(), 1);
    assert_eq!(p.await_fault(EDU, 1, 8), Await::NoFault(8, 1));
    p.record(fault(EDU, 0x2000), 0, &mut log); // mark 2, queued
    assert_eq!(p.await_fault(EDU, 1, 9), Await::Parked);
    p.overflowed(&mut log); // mark 3: lost, but mark 2 is still open
    assert_eq!(
        log.settled.len(),
        1,
        "the first fault after 1 is mark 2, still open"
    );
    p.expire(u64::MAX, &mut log);
    assert_eq!(log.settled.len(), 2);
    assert_eq!((log.settled[1].0, log.settled[1].1.mark), (9, 2));
}

#[test]
fn a_parked_question_wakes_on_its_first_fault_whatever_other_devices_hold() {
    let (mut p, mut log) = registered();
    p.register(H2, OTHER, 50, &mut log).unwrap();
    p.record(fault(EDU, 0x1000), 0, &mut log); // EDU mark 1, token 1
    p.next(H, 1, &mut log).unwrap();
    p.answer(H, FaultToken(1), ResponseCode::Invalid, ok, &mut log)
        .unwrap();
    p.record(fault(EDU, 0x2000), 0, &mut log); // EDU mark 2, token 2
    p.next(H, 2, &mut log).unwrap();
    assert_eq!(p.await_fault(EDU, 1, 9), Await::Parked);
    // OTHER's mark 1 is open: its marks are its own, not EDU's.
    p.record(fault(OTHER, 0x1000), 0, &mut log);
    p.answer(H, FaultToken(2), ResponseCode::Success, ok, &mut log)
        .unwrap();
    assert_eq!(
        log.settled.len(),
        1,
        "OTHER's open fault does not hold EDU's driver"
    );
    assert_eq!(log.settled[0].1.mark, 2);
    assert_eq!(
        p.counters().retried,
        1,
        "told to retry once, through the parked question"
    );
}

#[test]
fn an_open_fault_at_the_mark_does_not_hold_a_later_question() {
    let (mut p, mut log) = registered();
    p.record(fault(EDU, 0x1000), 0, &mut log); // mark 1, token 1
    p.record(fault(EDU, 0x2000), 0, &mut log); // mark 2, token 2
    p.next(H, 1, &mut log).unwrap();
    p.next(H, 2, &mut log).unwrap();
    // Asking after mark 1: mark 1 (open) is not after it, mark 2 is.
    assert_eq!(p.await_fault(EDU, 1, 9), Await::Parked);
    p.answer(H, FaultToken(2), ResponseCode::Invalid, ok, &mut log)
        .unwrap();
    assert_eq!(log.settled.len(), 1, "mark 2 answers the question at once");
    assert_eq!(log.settled[0].1.mark, 2);
}

#[test]
fn a_handler_found_gone_loses_only_its_own_pull() {
    let (mut p, mut log) = registered();
    p.register(H2, OTHER, 50, &mut log).unwrap();
    p.next(H, 1, &mut log).unwrap();
    p.next(H2, 2, &mut log).unwrap();
    p.handler_gone(H, &mut log);
    assert!(!p.waiting(H));
    assert!(p.waiting(H2), "another handler's pull stays parked");
}

#[test]
fn automatic_answers_say_why_in_words() {
    let texts = [
        (AutoReason::NoHandler, "no fault handler for the device"),
        (AutoReason::Deadline, "the handler missed its deadline"),
        (AutoReason::Restarted, "the handler restarted"),
        (AutoReason::HandlerDied, "the handler is gone"),
        (AutoReason::QueueFull, "the handler's queue is full"),
    ];
    for (reason, text) in texts {
        assert_eq!(reason.text(), text);
    }
}
