//! The page request path against the model's page request queue, scripted
//! PRI device and judge: enable, read (order, wrap, PPR first, PQH = tail,
//! overflow), page group responses, and the drain. A recording register
//! wrapper (`prq_hooks`) shows the order of register accesses and lets the
//! device act while the driver is between two of them.

use faultline_vtd::prq::GroupId;

use super::prq_hooks::{Access, recorded_unit};
use super::*;
use crate::error::{Error, Unsupported};
use crate::model::{Event, Invalidation, RequestOutcome};
use crate::prq::{self, Overflow, PageGroupResponse, PageRequest, PrqBatch};

const PQH: usize = 0xc0;
const PQT: usize = 0xc8;
const PRS: usize = 0xdc;
const PPR: u32 = 1;
const PRO: u32 = 1 << 1;
const IM: u32 = 1 << 31;
/// Descriptors in the driver's one-page queue.
const ENTRIES: usize = 128;

fn request(rid: u16, prg_index: u16, address: u64, last: bool) -> PageRequest {
    PageRequest {
        rid,
        pasid: Some(7),
        exec: false,
        privileged: false,
        read: true,
        write: false,
        last,
        prg_index,
        address,
    }
}

/// A unit with page requests whose queue is enabled.
fn enabled(config: ModelConfig) -> (Model, TestUnit) {
    let (model, mut unit) = up(config.with_page_requests());
    unit.enable_page_requests().unwrap();
    (model, unit)
}

fn read(unit: &mut TestUnit) -> (Vec<PageRequest>, PrqBatch) {
    let mut seen = Vec::new();
    let batch = unit.read_page_requests(&mut |r| seen.push(r)).unwrap();
    (seen, batch)
}

fn register(model: &Model, offset: usize) -> u64 {
    use crate::hw::Registers;
    model.registers().read64(offset)
}

/// Rule: enabling writes PQH = 0 and PQT = 0 before PQA (a one-page queue,
/// PQS = 0), keeps the event masked, and a second call changes nothing.
#[test]
fn enable_programs_head_and_tail_before_pqa() {
    let (model, mut unit) = up(ModelConfig::qemu().with_page_requests());
    assert!(unit.page_requests_supported() && unit.page_drain_supported());
    model.clear_events();
    let frames = model.frames_in_use();
    unit.enable_page_requests().unwrap();
    let base = unit.page_request_queue().unwrap();
    let writes: Vec<_> = model.events();
    assert_eq!(
        writes,
        [
            Event::Write("PECTL", u64::from(IM)),
            Event::Write("PQH", 0),
            Event::Write("PQT", 0),
            Event::Write("PQA", base),
        ]
    );
    assert_eq!(model.frames_in_use(), frames + 1);
    assert_ne!(model.page_request_event_control() & IM, 0, "still masked");
    model.clear_events();
    unit.enable_page_requests().unwrap();
    assert_eq!(model.events(), []);
    assert_eq!(model.frames_in_use(), frames + 1);
}

/// Rule: the page request event stays masked until its message is
/// programmed; unmasking delivers the event that was held pending, and a
/// read re-arms it (PPR cleared) so the next request interrupts again.
#[test]
fn event_is_masked_until_programmed_and_rearmed_by_a_read() {
    let (model, mut unit) = enabled(ModelConfig::qemu());
    let r = request(EDU.0, 1, 0x1000, true);
    assert!(matches!(
        model.page_request(r),
        RequestOutcome::Queued { .. }
    ));
    assert_eq!(model.page_request_interrupts(), 0);
    model.clear_events();
    unit.enable_page_request_interrupt(0xfee0_0000, 0x51)
        .unwrap();
    assert_eq!(
        model.events(),
        [
            Event::Write("PEDATA", 0x51),
            Event::Write("PEADDR", 0xfee0_0000),
            Event::Write("PEUADDR", 0),
            Event::Write("PECTL", 0),
        ]
    );
    assert_eq!(model.page_request_interrupts(), 1);
    assert_eq!(read(&mut unit).0, [r]);
    unit.page_group_response(PageGroupResponse {
        group: r.group(),
        code: prq::RESPONSE_SUCCESS,
    })
    .unwrap();
    model.page_request(request(EDU.0, 2, 0x2000, true));
    assert_eq!(model.page_request_interrupts(), 2, "PPR was cleared");
}

/// Rule: requests come back decoded, in queue order, across the wrap from
/// the last slot to the first; after each batch PQH equals PQT.
#[test]
fn requests_come_back_in_order_across_wrap() {
    let (model, mut unit) = enabled(ModelConfig::qemu_scalable());
    let mut issued = Vec::new();
    for round in 0..3u64 {
        let batch: Vec<_> = (0..100u64)
            .map(|i| {
                let n = round * 100 + i;
                request(
                    if n % 2 == 0 { EDU.0 } else { OTHER.0 },
                    (n % 0x200) as u16,
                    0x10_0000 + n * 0x1000,
                    false,
                )
            })
            .collect();
        for &r in &batch {
            assert!(matches!(
                model.page_request(r),
                RequestOutcome::Queued { .. }
            ));
        }
        let (seen, summary) = read(&mut unit);
        assert_eq!(seen, batch, "round {round}");
        assert_eq!(
            summary,
            PrqBatch {
                requests: 100,
                garbage: 0,
                overflow: None
            }
        );
        assert_eq!(register(&model, PQH), register(&model, PQT), "PQH = tail");
        issued.extend(batch);
    }
    // 300 requests through 128 slots: the ring wrapped twice.
    assert_eq!(register(&model, PQH), (300 % ENTRIES as u64) * 32);
    assert_eq!(model.page_requests_written(), issued.len());
}

/// Rule (Linux `prq_event_thread`): PRS.PPR is cleared before PQT and PQH
/// are read, PQH is written once per batch (with the tail), and PRO is
/// never written when it was not set.
#[test]
fn ppr_is_cleared_before_head_and_tail_are_read() {
    let model = Model::new(ModelConfig::qemu().with_page_requests());
    let (mut unit, log, _) = recorded_unit(&model);
    unit.enable_page_requests().unwrap();
    for i in 0..3 {
        model.page_request(request(EDU.0, i, 0x1000 * u64::from(i), false));
    }
    log.borrow_mut().clear();
    model.clear_events();
    let mut seen = 0;
    let batch = unit.read_page_requests(&mut |_| seen += 1).unwrap();
    assert_eq!((seen, batch.requests), (3, 3));
    let accesses = log.borrow().clone();
    let tail = 3 * 32;
    assert_eq!(
        accesses,
        [
            Access::Write(PRS, u64::from(PPR)),
            Access::Read(PQT),
            Access::Read(PQH),
            Access::Write(PQH, tail),
            Access::Read(PRS),
        ]
    );
    assert_eq!(
        model.events(),
        [
            Event::Write("PRS", u64::from(PPR)),
            Event::Write("PQH", tail)
        ]
    );
    assert_eq!(model.page_request_status() & PPR, 0);
}

/// Fills the queue until the device's next request is dropped (PRO set);
/// returns the requests that were queued.
fn overflow(model: &Model, rid: u16) -> Vec<PageRequest> {
    let mut queued = Vec::new();
    for i in 0.. {
        let r = request(rid, (i % 0x200) as u16, 0x4000_0000 + i * 0x1000, false);
        match model.page_request(r) {
            RequestOutcome::Queued { .. } => queued.push(r),
            RequestOutcome::Dropped { .. } => break,
            RequestOutcome::Refused => panic!("no queue"),
        }
    }
    assert_ne!(model.page_request_status() & PRO, 0);
    queued
}

/// Rule: after an overflow, a read that empties the queue clears PRO and
/// reports `Overflow::Cleared` (partial groups must go); the device's
/// requests are accepted again afterwards.
#[test]
fn overflow_is_cleared_when_the_queue_is_empty() {
    let (model, mut unit) = enabled(ModelConfig::qemu());
    let queued = overflow(&model, EDU.0);
    assert_eq!(queued.len(), ENTRIES - 1, "one slot stays free");
    model.clear_events();
    let (seen, batch) = read(&mut unit);
    assert_eq!(seen, queued);
    assert_eq!(batch.overflow, Some(Overflow::Cleared));
    assert_eq!(model.page_request_status() & PRO, 0);
    assert_eq!(
        model.events().last(),
        Some(&Event::Write("PRS", u64::from(PRO)))
    );
    let again = request(EDU.0, 9, 0x9000, true);
    assert!(matches!(
        model.page_request(again),
        RequestOutcome::Queued { .. }
    ));
    assert_eq!(read(&mut unit).0, [again]);
}

/// Rule: when requests arrived while a batch was read (the queue is not
/// empty after PQH = tail), PRO stays set and the read reports
/// `Overflow::Pending`; the next read consumes the rest and clears it.
#[test]
fn overflow_stays_pending_while_requests_remain() {
    let (model, mut unit) = enabled(ModelConfig::qemu());
    let first = request(EDU.0, 1, 0x1000, false);
    model.page_request(first);
    let device = model.clone();
    let mut late = Vec::new();
    let mut seen = Vec::new();
    // The device fills the queue while the driver is handling `first`.
    let batch = unit
        .read_page_requests(&mut |r| {
            seen.push(r);
            if late.is_empty() {
                late = overflow(&device, OTHER.0);
            }
        })
        .unwrap();
    assert_eq!(seen, [first]);
    assert_eq!(batch.overflow, Some(Overflow::Pending));
    assert_ne!(model.page_request_status() & PRO, 0, "PRO left set");
    assert!(
        !model
            .events()
            .contains(&Event::Write("PRS", u64::from(PRO))),
        "PRO never written while requests remain"
    );
    let (rest, batch) = read(&mut unit);
    assert_eq!(rest, late);
    assert_eq!(batch.overflow, Some(Overflow::Cleared));
    assert_eq!(model.page_request_status() & PRO, 0);
}

/// Rule: a descriptor in the queue whose type is not a page request is
/// counted as garbage and skipped; the requests around it still come back
/// and the whole batch is consumed.
#[test]
fn garbage_descriptor_is_counted_not_fatal() {
    use crate::hw::DmaMemory;
    let (model, mut unit) = enabled(ModelConfig::qemu());
    let rs: Vec<_> = (0..3)
        .map(|i| request(EDU.0, i, 0x1000 * u64::from(i), false))
        .collect();
    for &r in &rs {
        model.page_request(r);
    }
    let base = unit.page_request_queue().unwrap();
    model.memory().write_u64(base + 32, 0x0000_0100_0000_0002);
    let (seen, batch) = read(&mut unit);
    assert_eq!(seen, [rs[0], rs[2]]);
    assert_eq!(
        batch,
        PrqBatch {
            requests: 2,
            garbage: 1,
            overflow: None
        }
    );
    assert_eq!(register(&model, PQH), register(&model, PQT));
}

/// Rule: a page group response reaches the unit as a type-9 descriptor
/// echoing the group; `check_idle` is Ok once every group was answered and
/// names the group still waiting otherwise.
#[test]
fn responses_settle_groups_and_the_judge_sees_the_rest() {
    let (model, mut unit) = enabled(ModelConfig::scalable_with_page_requests());
    model.page_group(EDU.0, Some(3), 4, &[0x1000, 0x2000], true, false);
    model.page_group(OTHER.0, None, 5, &[0x8000], false, true);
    let (seen, _) = read(&mut unit);
    let lasts: Vec<GroupId> = seen.iter().filter(|r| r.last).map(|r| r.group()).collect();
    assert_eq!(lasts.len(), 2);
    model.clear_events();
    unit.page_group_response(PageGroupResponse {
        group: lasts[0],
        code: prq::RESPONSE_SUCCESS,
    })
    .unwrap();
    assert_eq!(
        model.invalidations(),
        [
            Invalidation::PageGroupResponse {
                rid: EDU.0,
                pasid: Some(3),
                prg_index: 4,
                code: 0
            },
            Invalidation::Wait
        ]
    );
    assert_eq!(model.unanswered(), [lasts[1]]);
    let problems = model.check_idle().unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("0x0310"), "{problems:?}");
    unit.page_group_response(PageGroupResponse {
        group: lasts[1],
        code: prq::RESPONSE_INVALID,
    })
    .unwrap();
    assert_eq!(model.check_idle(), Ok(()));
    assert_eq!(model.violations(), Vec::<String>::new());
}

/// Rule: a drain needs ECAP.PDS: without it the drain is refused before
/// any register is touched, and nothing is read or submitted.
#[test]
fn drain_without_pds_is_refused() {
    let config = ModelConfig::qemu().with_page_requests().ecap_bit(42, false);
    let (model, mut unit) = up(config);
    unit.enable_page_requests().unwrap();
    model.page_request(request(EDU.0, 1, 0x1000, true));
    model.clear_events();
    let mut seen = Vec::new();
    assert_eq!(
        unit.drain_page_requests(1, &mut |r| seen.push(r)),
        Err(Error::Unsupported(Unsupported::PageRequestDrain))
    );
    assert!(seen.is_empty());
    assert_eq!(model.events(), []);
    assert!(!unit.page_drain_supported());
}

mod drain;
