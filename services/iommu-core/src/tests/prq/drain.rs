//! Draining the page request path for a device that goes away: what is
//! queued goes to the caller, the VT-d 7.10 descriptors (fenced PD wait,
//! the domain's IOTLB invalidation, PD wait) are submitted, what the drain
//! flushed is read, and the round repeats (boundedly) while PRO is set.

use super::*;
use crate::error::Operation;
use crate::unit::MAX_DRAIN_ROUNDS;

/// The unit's invalidations that are page drains.
fn drains(model: &Model) -> usize {
    model
        .invalidations()
        .iter()
        .filter(|i| **i == Invalidation::PageDrain)
        .count()
}

/// Rule: after the device is detached (entry cleared, IOTLB invalidated),
/// a drain hands every queued request, whichever device sent it, to the
/// caller, then submits a fenced PD wait, the domain-selective IOTLB
/// invalidation of the device's domain and a PD wait, and leaves the queue
/// empty; once the caller answers, nothing is owed.
#[test]
fn drain_hands_queued_requests_to_out_and_issues_pd_waits() {
    let (model, mut unit) = enabled(ModelConfig::qemu());
    let did = unit.attach(EDU).unwrap();
    let mine = request(EDU.0, 1, 0x1000, true);
    let theirs = request(OTHER.0, 2, 0x2000, true);
    model.page_request(mine);
    model.page_request(theirs);
    unit.detach(EDU).unwrap();
    model.clear_events();
    let mut seen = Vec::new();
    let batch = unit
        .drain_page_requests(did, &mut |r| seen.push(r))
        .unwrap();
    assert_eq!(seen, [mine, theirs]);
    assert_eq!(batch.requests, 2);
    assert_eq!(batch.overflow, None);
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::PageDrain,
            Invalidation::Wait,
            Invalidation::IotlbDomain { domain: did },
            Invalidation::PageDrain,
            Invalidation::Wait,
        ]
    );
    assert_eq!(model.queue_errors(), Vec::<String>::new());
    assert_eq!(register(&model, PQH), register(&model, PQT));
    for r in seen {
        unit.page_group_response(PageGroupResponse {
            group: r.group(),
            code: prq::RESPONSE_INVALID,
        })
        .unwrap();
    }
    assert_eq!(model.check_idle(), Ok(()));
}

/// Rule: a request still in flight when the drain starts (the unit queues
/// it before the PD wait completes) is read by the same drain call.
#[test]
fn drain_reads_what_the_drain_flushed() {
    let model = Model::new(ModelConfig::qemu().with_page_requests());
    let (mut unit, _, hook) = recorded_unit(&model);
    unit.enable_page_requests().unwrap();
    let early = request(EDU.0, 1, 0x1000, false);
    let late = request(EDU.0, 1, 0x2000, true);
    model.page_request(early);
    let device = model.clone();
    let mut sent = false;
    *hook.borrow_mut() = Some(Box::new(move || {
        if !std::mem::replace(&mut sent, true) {
            device.page_request(late);
        }
    }));
    let mut seen = Vec::new();
    let batch = unit.drain_page_requests(3, &mut |r| seen.push(r)).unwrap();
    assert_eq!(seen, [early, late]);
    assert_eq!(batch.requests, 2);
    assert_eq!(model.unanswered(), [late.group()]);
}

/// Rule: if PRO is set once the drain wait completed (requests were
/// dropped during the drain), the drain reads (clearing PRO) and submits
/// the drain again; the cleared overflow is reported.
#[test]
fn drain_repeats_while_pro_is_set() {
    let model = Model::new(ModelConfig::qemu().with_page_requests());
    let (mut unit, _, hook) = recorded_unit(&model);
    unit.enable_page_requests().unwrap();
    model.clear_events();
    let device = model.clone();
    let flood = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = flood.clone();
    *hook.borrow_mut() = Some(Box::new(move || {
        if sink.borrow().is_empty() {
            *sink.borrow_mut() = overflow(&device, OTHER.0);
        }
    }));
    let mut seen = Vec::new();
    let batch = unit.drain_page_requests(3, &mut |r| seen.push(r)).unwrap();
    assert_eq!(seen, *flood.borrow());
    assert_eq!(batch.requests, ENTRIES - 1);
    assert_eq!(batch.overflow, Some(Overflow::Cleared));
    assert_eq!(drains(&model), 4, "two rounds of two PD waits");
    assert_eq!(model.page_request_status() & PRO, 0);
}

/// Rule: the repetition is bounded: a unit whose queue overflows during
/// every drain ends in a timeout after `MAX_DRAIN_ROUNDS` rounds, with
/// every request read handed out.
#[test]
fn drain_is_bounded() {
    let model = Model::new(ModelConfig::qemu().with_page_requests());
    let (mut unit, _, hook) = recorded_unit(&model);
    unit.enable_page_requests().unwrap();
    model.clear_events();
    let device = model.clone();
    *hook.borrow_mut() = Some(Box::new(move || {
        overflow(&device, OTHER.0);
    }));
    let mut seen = 0;
    assert_eq!(
        unit.drain_page_requests(3, &mut |_| seen += 1),
        Err(Error::Timeout(Operation::PageRequestDrain))
    );
    assert_eq!(drains(&model), 2 * MAX_DRAIN_ROUNDS);
    assert_eq!(seen, MAX_DRAIN_ROUNDS * (ENTRIES - 1));
}
