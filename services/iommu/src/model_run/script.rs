//! The scripted PRI device of the model run: each step issues page
//! requests into the model's queue as a device would, has the desk read
//! them (the service's wake-up), and serves the handler until every group
//! the step owes a response is answered. Each step logs what it issues and
//! the responses the model received for it.
//!
//! Steps: a single-request group; a 16-request group; two PASIDs' groups
//! interleaved; a stop marker (no response); a group asking to execute
//! (the handler refuses it); a malformed request ending a group (Invalid,
//! automatically); a group from a requester nobody handles (Invalid,
//! automatically: the seed's first bug); a queue overflow in the middle of
//! a group (partials discarded, the unit answering the dropped last
//! requests itself, the device asking again and served).
//!
//! A handler answering a group twice (the seed's second bug) is not played
//! here, since the handler answers once by design: the host tests show the
//! desk refusing the second answer (`services/iommu/src/tests/pages.rs`).

use alloc::vec::Vec;

use faultline_iommu_core::model::{RequestOutcome, Responder};
use faultline_iommu_core::prq::PageRequest;
use faultline_ipc::protocol::iommu::Bdf;
use userlib::log;

use super::Run;

/// A requester no handler registered for and no driver attached
/// (00:1e.0).
const STRANGER: u16 = 0x00f0;
/// Where the device's pages are, in each PASID's address space.
const BASE: u64 = 0x7000_0000;
/// Steps in the script.
const STEPS: u32 = 8;

/// A user read/write request for page `page` of group `prg`.
fn request(rid: u16, pasid: Option<u32>, prg: u16, page: u64, last: bool) -> PageRequest {
    PageRequest {
        rid,
        pasid,
        exec: false,
        privileged: false,
        read: true,
        write: true,
        last,
        prg_index: prg,
        address: BASE + (page << 12),
    }
}

/// Issues a whole group of `pages` pages; the outcomes.
fn group(run: &Run, rid: u16, pasid: Option<u32>, prg: u16, pages: u64) -> Vec<RequestOutcome> {
    (0..pages)
        .map(|p| {
            run.model
                .page_request(request(rid, pasid, prg, p, p + 1 == pages))
        })
        .collect()
}

/// Reads the queue, serves the handler until the step is settled, and
/// logs the responses the model received since `before` of them.
fn settle(run: &mut Run, step: u32, before: usize) {
    run.read();
    run.settle();
    let responses = run.model.responses();
    let new = &responses[before.min(responses.len())..];
    log!(
        "iommu: model run: step {step} settled: {} response(s)",
        new.len()
    );
    for (r, by) in new {
        let code = match r.code {
            0x0 => "Success",
            0x1 => "Invalid",
            0xf => "Failure",
            _ => "a reserved code",
        };
        let by = match by {
            Responder::Software => "the service (page group response descriptor)",
            Responder::Hardware => "the unit itself (its last request was dropped)",
        };
        log!(
            "iommu: model run:   {} pasid {:?} prg {:#x}: {code} from {by}",
            Bdf(r.group.rid),
            r.group.pasid,
            r.group.prg_index
        );
    }
    run.model.clear_events();
    run.pause(super::LOG_PAUSE_NS);
}

/// Plays every step with the handler's device as requester `rid`.
pub fn run(run: &mut Run, rid: u16) {
    let dev = Bdf(rid);
    let pasid = |p: u32| Some(p);

    let step = 1;
    let before = run.model.responses().len();
    log!(
        "iommu: model run: step {step}/{STEPS}: a single-request group from {dev} pasid 1 prg 0x1"
    );
    group(run, rid, pasid(1), 0x1, 1);
    settle(run, step, before);

    let step = 2;
    let before = run.model.responses().len();
    log!("iommu: model run: step {step}/{STEPS}: a 16-request group from {dev} pasid 1 prg 0x2");
    group(run, rid, pasid(1), 0x2, 16);
    settle(run, step, before);

    let step = 3;
    let before = run.model.responses().len();
    log!(
        "iommu: model run: step {step}/{STEPS}: two groups interleaved, pasid 1 and pasid 2 (prg \
         0x3 each, 4 requests each)"
    );
    for p in 0..4 {
        for id in [1, 2] {
            run.model
                .page_request(request(rid, pasid(id), 0x3, p + 16 * u64::from(id), p == 3));
        }
    }
    settle(run, step, before);

    let step = 4;
    let before = run.model.responses().len();
    log!("iommu: model run: step {step}/{STEPS}: a stop marker for pasid 2 (needs no response)");
    let stops = run.desk.page_counters().stop_markers;
    run.model.page_request(PageRequest {
        read: false,
        write: false,
        ..request(rid, pasid(2), 0x4, 0, true)
    });
    settle(run, step, before);
    log!(
        "iommu: model run: step {step}: stop markers seen {}",
        run.desk.page_counters().stop_markers - stops
    );

    let step = 5;
    let before = run.model.responses().len();
    log!(
        "iommu: model run: step {step}/{STEPS}: a group asking to execute a page, pasid 1 prg 0x5 \
         (the handler's policy refuses it)"
    );
    run.model.page_request(PageRequest {
        exec: true,
        read: false,
        write: false,
        ..request(rid, pasid(1), 0x5, 0x40, false)
    });
    run.model
        .page_request(request(rid, pasid(1), 0x5, 0x41, true));
    settle(run, step, before);

    let step = 6;
    let before = run.model.responses().len();
    log!(
        "iommu: model run: step {step}/{STEPS}: a malformed request (privileged read) ending a \
         group, pasid 1 prg 0x6"
    );
    run.model
        .page_request(request(rid, pasid(1), 0x6, 0x50, false));
    run.model
        .page_request(request(rid, pasid(1), 0x6, 0x51, false));
    run.model.page_request(PageRequest {
        privileged: true,
        ..request(rid, pasid(1), 0x6, 0x52, true)
    });
    settle(run, step, before);

    let step = 7;
    let before = run.model.responses().len();
    log!(
        "iommu: model run: step {step}/{STEPS}: a group from {}, a requester nobody handles \
         (the seed's first bug: it must still be answered)",
        Bdf(STRANGER)
    );
    group(run, STRANGER, None, 0x7, 2);
    settle(run, step, before);

    overflow(run, rid, 8, STEPS);
}

/// Step `step`: 129 requests without a read overflow the 128-entry queue
/// (127 fit) in the middle of a group; the desk discards the partial
/// group, the unit has answered the dropped last requests itself, and the
/// device asks again and is served.
fn overflow(run: &mut Run, rid: u16, step: u32, steps: u32) {
    let before = run.model.responses().len();
    log!(
        "iommu: model run: step {step}/{steps}: queue overflow in the middle of a group: 7 groups \
         of 16 (pasid 3), then pasid 1 prg 0x20 (16 requests) and prg 0x21 (1), 129 requests \
         without a read"
    );
    let mut outcomes = Vec::new();
    for prg in 0x10..0x17 {
        outcomes.extend(group(run, rid, Some(3), prg, 16));
    }
    outcomes.extend(group(run, rid, Some(1), 0x20, 16));
    outcomes.extend(group(run, rid, Some(1), 0x21, 1));
    let queued = outcomes
        .iter()
        .filter(|o| matches!(o, RequestOutcome::Queued { .. }))
        .count();
    let answered = outcomes
        .iter()
        .filter(|o| matches!(o, RequestOutcome::Dropped { answered: true }))
        .count();
    log!(
        "iommu: model run: step {step}: {} requests, {queued} queued, {} dropped ({answered} of \
         them last in their group, answered by the unit itself)",
        outcomes.len(),
        outcomes.len() - queued
    );
    let discarded = run.desk.page_counters().partials_discarded;
    settle(run, step, before);
    log!(
        "iommu: model run: step {step}: partial groups discarded {}; the device asks again",
        run.desk.page_counters().partials_discarded - discarded
    );
    let before = run.model.responses().len();
    group(run, rid, Some(1), 0x20, 16);
    group(run, rid, Some(1), 0x21, 1);
    settle(run, step, before);
}
