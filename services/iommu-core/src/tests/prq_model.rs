//! The model's page request queue, its scripted PRI device and its judge
//! of page group responses, driven through the raw registers and memory
//! (no driver yet): each test states the rule the model enforces.

use faultline_vtd::prq::{self, GroupId, PageGroupResponse, PageRequest};

use super::*;
use crate::hw::{DmaMemory, Registers};
use crate::model::{Invalidation, RequestOutcome, Responder};

const GCMD: usize = 0x18;
const FSTS: usize = 0x34;
const IQT: usize = 0x88;
const IQA: usize = 0x90;
const PQH: usize = 0xc0;
const PQT: usize = 0xc8;
const PQA: usize = 0xd0;
const PRS: usize = 0xdc;
const PECTL: usize = 0xe0;
const PPR: u32 = 1 << 0;
const PRO: u32 = 1 << 1;
const IM: u32 = 1 << 31;
const IP: u32 = 1 << 30;
const FSTS_PRO: u32 = 1 << 7;
const FSTS_IQE: u32 = 1 << 4;
/// Descriptors in a one-page queue (PQA size 0).
const ENTRIES: u64 = 128;

const RID: u16 = 0x0100;
const PASID: Option<u32> = Some(5);

/// A unit with page requests whose one-page queue is set up as Linux does
/// it (PQH = PQT = 0, then PQA); returns the model and the queue's base.
fn with_queue(config: ModelConfig) -> (Model, u64) {
    let model = Model::new(config);
    let queue = model.memory().alloc_frame().unwrap();
    let mut regs = model.registers();
    regs.write64(PQH, 0);
    regs.write64(PQT, 0);
    regs.write64(PQA, prq::queue_address(queue, 0));
    (model, queue)
}

fn prq_unit() -> (Model, u64) {
    with_queue(ModelConfig::scalable_with_page_requests())
}

/// The descriptor at byte `offset` of the queue, decoded.
fn slot(model: &Model, queue: u64, offset: u64) -> Option<PageRequest> {
    let mut mem = model.memory();
    PageRequest::decode(
        mem.read_u64(queue + offset),
        mem.read_u64(queue + offset + 8),
    )
}

fn request(prg_index: u16, address: u64, last: bool) -> PageRequest {
    PageRequest {
        rid: RID,
        pasid: PASID,
        exec: false,
        privileged: false,
        read: true,
        write: true,
        last,
        prg_index,
        address,
    }
}

fn group(prg_index: u16) -> GroupId {
    GroupId {
        rid: RID,
        pasid: PASID,
        prg_index,
    }
}

/// Turns on queued invalidation and submits 128-bit descriptors one by
/// one; returns FSTS after each.
struct Iq {
    model: Model,
    base: u64,
    tail: u64,
}

impl Iq {
    fn new(model: &Model) -> Self {
        let base = model.memory().alloc_frame().unwrap();
        let mut regs = model.registers();
        regs.write64(IQA, base);
        regs.write32(GCMD, 1 << 26);
        Self {
            model: model.clone(),
            base,
            tail: 0,
        }
    }

    fn submit(&mut self, (low, high): (u64, u64)) -> u32 {
        let mut mem = self.model.memory();
        mem.write_u64(self.base + self.tail, low);
        mem.write_u64(self.base + self.tail + 8, high);
        self.tail += 16;
        let mut regs = self.model.registers();
        regs.write64(IQT, self.tail);
        regs.read32(FSTS)
    }

    fn respond(&mut self, group: GroupId, code: u8) -> u32 {
        self.submit(PageGroupResponse { group, code }.encode())
    }
}

/// Rule: without ECAP.PRS the page request registers do not exist (QEMU
/// 10.0 has none): reading one panics.
#[test]
#[should_panic(expected = "needs ECAP.PRS")]
fn registers_absent_without_prs_read() {
    Model::new(ModelConfig::qemu_scalable())
        .registers()
        .read64(PQT);
}

/// Rule: ... and so does writing one.
#[test]
#[should_panic(expected = "needs ECAP.PRS")]
fn registers_absent_without_prs_write() {
    Model::new(ModelConfig::qemu_scalable())
        .registers()
        .write32(PECTL, 0);
}

/// Rule: the device cannot issue page requests to a unit without PRS.
#[test]
#[should_panic(expected = "needs ECAP.PRS")]
fn requests_absent_without_prs() {
    Model::new(ModelConfig::qemu_scalable()).page_request(request(0, 0x1000, true));
}

/// Rule: PQT belongs to the unit; software may only initialise it to 0.
#[test]
#[should_panic(expected = "PQT 0x20 written")]
fn pqt_nonzero_write_panics() {
    let (model, _) = prq_unit();
    model.registers().write64(PQT, 0x20);
}

/// Rule: PQH is 32-byte aligned within bits 18:5.
#[test]
#[should_panic(expected = "PQH 0x10 sets reserved bits")]
fn pqh_reserved_bits_panic() {
    let (model, _) = prq_unit();
    model.registers().write64(PQH, 0x10);
}

/// Rule: software cannot consume requests the unit has not written.
#[test]
#[should_panic(expected = "passes PQT")]
fn pqh_past_pqt_panics() {
    let (model, _) = prq_unit();
    model.page_request(request(0, 0x1000, false));
    model.registers().write64(PQH, 0x40);
}

/// Rule: PQA bits 11:3 are reserved.
#[test]
#[should_panic(expected = "PQA 0x40000008 sets reserved bits")]
fn pqa_reserved_bits_panic() {
    let model = Model::new(ModelConfig::scalable_with_page_requests());
    model.registers().write64(PQA, 0x4000_0008);
}

/// Rule: PRS bits 31:2 and PECTL bits 30:0 are not writable.
#[test]
#[should_panic(expected = "PECTL")]
fn pectl_ip_write_panics() {
    let (model, _) = prq_unit();
    model.registers().write32(PECTL, IP);
}

/// Rule: the event registers reset with IM set and hold what is written.
#[test]
fn event_registers_reset_and_store() {
    let (model, _) = prq_unit();
    let mut regs = model.registers();
    assert_eq!(regs.read32(PECTL), IM);
    assert_eq!(regs.read32(PRS), 0);
    regs.write32(0xe4, 0x41);
    regs.write32(0xe8, 0xfee0_0000);
    regs.write32(0xec, 7);
    assert_eq!(
        (regs.read32(0xe4), regs.read32(0xe8), regs.read32(0xec)),
        (0x41, 0xfee0_0000, 7)
    );
}

/// Rule: without a queue (PQA never written) a request is refused:
/// nothing is written and nobody owes a response.
#[test]
fn request_without_queue_is_refused() {
    let model = Model::new(ModelConfig::scalable_with_page_requests());
    assert_eq!(
        model.page_request(request(1, 0x1000, true)),
        RequestOutcome::Refused
    );
    assert_eq!(model.page_requests_refused(), 1);
    assert_eq!(model.page_requests_written(), 0);
    assert_eq!(model.check_idle(), Ok(()));
}

/// Rule: a request lands, decoded-equal, at PQT; PQT advances by 32 and
/// wraps at the end of the queue.
#[test]
fn request_lands_at_pqt_which_advances_and_wraps() {
    let (model, queue) = prq_unit();
    let mut regs = model.registers();
    for i in 0..ENTRIES + 3 {
        let sent = PageRequest {
            exec: i % 3 == 0,
            pasid: if i % 2 == 0 { Some(i as u32) } else { None },
            ..request((i % 512) as u16, 0x7fff_0000_0000 + (i << 12), false)
        };
        let tail = regs.read64(PQT);
        assert_eq!(tail, (i % ENTRIES) * 32);
        assert_eq!(
            model.page_request(sent),
            RequestOutcome::Queued { offset: tail }
        );
        assert_eq!(slot(&model, queue, tail), Some(sent));
        let new_tail = regs.read64(PQT);
        assert_eq!(new_tail, ((i + 1) % ENTRIES) * 32);
        regs.write64(PQH, new_tail);
    }
    assert_eq!(model.page_requests_written(), ENTRIES as usize + 3);
    assert_eq!(model.page_requests_issued(), ENTRIES as usize + 3);
}

/// Rule: a queued request sets PPR; the page request event is raised only
/// when PPR goes from 0 to 1. Masked, it sets IP; clearing IM with IP set
/// delivers it.
#[test]
fn pending_request_raises_one_event_per_rising_ppr() {
    let (model, _) = prq_unit();
    let mut regs = model.registers();
    model.page_request(request(0, 0x1000, false));
    assert_eq!(regs.read32(PRS), PPR);
    assert_eq!(
        regs.read32(PECTL),
        IM | IP,
        "masked: pending, not delivered"
    );
    assert_eq!(model.page_request_interrupts(), 0);
    regs.write32(PECTL, 0);
    assert_eq!(model.page_request_interrupts(), 1, "unmasking delivers");
    assert_eq!(regs.read32(PECTL), 0);
    model.page_request(request(0, 0x2000, false));
    assert_eq!(model.page_request_interrupts(), 1, "PPR was already set");
    regs.write32(PRS, PPR);
    assert_eq!(regs.read32(PRS), 0);
    model.page_request(request(0, 0x3000, true));
    assert_eq!(model.page_request_interrupts(), 2, "PPR rose again");
    assert_eq!(regs.read32(PECTL), 0);
}

/// Fills the one-page queue (PQH = 0): 127 requests, none last.
fn fill(model: &Model) {
    for i in 0..ENTRIES - 1 {
        let outcome = model.page_request(request(0, i << 12, false));
        assert!(matches!(outcome, RequestOutcome::Queued { .. }));
    }
}

/// Rule: with the queue full (PQT + 32 == PQH) a request is dropped: PRO
/// is set in PRS and FSTS, nothing is written, and a dropped last-in-group
/// request is answered by the unit itself with Success, a dropped other
/// request by nobody.
#[test]
fn overflow_sets_pro_and_answers_dropped_last_request() {
    let (model, queue) = prq_unit();
    let mut regs = model.registers();
    fill(&model);
    let tail = regs.read64(PQT);
    assert_eq!(tail, (ENTRIES - 1) * 32);

    let outcome = model.page_request(request(3, 0x9000, false));
    assert_eq!(outcome, RequestOutcome::Dropped { answered: false });
    assert_eq!(regs.read32(PRS) & PRO, PRO);
    assert_eq!(regs.read32(FSTS) & FSTS_PRO, FSTS_PRO);
    assert_eq!(model.responses(), vec![]);

    let outcome = model.page_request(request(3, 0xa000, true));
    assert_eq!(outcome, RequestOutcome::Dropped { answered: true });
    assert_eq!(
        model.responses(),
        vec![(
            PageGroupResponse {
                group: group(3),
                code: 0
            },
            Responder::Hardware
        )]
    );
    assert_eq!(slot(&model, queue, tail), None, "nothing written");
    assert_eq!(regs.read64(PQT), tail);
    assert_eq!(model.page_requests_dropped(), 2);
    assert_eq!(
        model.unanswered(),
        vec![],
        "a dropped request is owed nothing"
    );
    assert_eq!(model.check_idle(), Ok(()));
}

/// Rule: while PRO is set every request is dropped, even with room in the
/// queue; clearing PRO (in PRS) lets requests in again. FSTS.PRO is
/// write-1-to-clear too.
#[test]
fn pro_drops_until_cleared() {
    let (model, _) = prq_unit();
    let mut regs = model.registers();
    fill(&model);
    model.page_request(request(0, 0, false));
    let tail = regs.read64(PQT);
    regs.write64(PQH, tail);
    let stop = PageRequest {
        read: false,
        write: false,
        ..request(1, 0, true)
    };
    assert_eq!(
        model.page_request(stop),
        RequestOutcome::Dropped { answered: false },
        "a dropped stop marker gets no response"
    );
    regs.write32(PRS, PRO);
    regs.write32(FSTS, FSTS_PRO);
    assert_eq!(regs.read32(FSTS) & FSTS_PRO, 0);
    assert!(matches!(
        model.page_request(request(0, 0, false)),
        RequestOutcome::Queued { .. }
    ));
    assert_eq!(model.responses(), vec![]);
}

/// Rule: a page group response (type 9) for a queued group is executed,
/// recorded and settles the group.
#[test]
fn page_group_response_is_accepted_and_judged() {
    let (model, _) = prq_unit();
    let outcomes = model.page_group(RID, PASID, 7, &[0x1000, 0x2000, 0x3000], true, false);
    assert_eq!(outcomes.len(), 3);
    assert_eq!(
        model.unanswered(),
        vec![group(7)],
        "only the last one counts"
    );
    let mut iq = Iq::new(&model);
    assert_eq!(iq.respond(group(7), 0) & FSTS_IQE, 0);
    assert!(
        model
            .invalidations()
            .contains(&Invalidation::PageGroupResponse {
                rid: RID,
                pasid: PASID,
                prg_index: 7,
                code: 0
            })
    );
    assert_eq!(model.responses()[0].1, Responder::Software);
    assert_eq!(model.check_idle(), Ok(()));
}

/// Rule: a response without a PASID answers a request without one.
#[test]
fn response_without_pasid_matches_request_without_pasid() {
    let (model, _) = prq_unit();
    model.page_group(RID, None, 2, &[0x1000], false, true);
    Iq::new(&model).respond(
        GroupId {
            rid: RID,
            pasid: None,
            prg_index: 2,
        },
        1,
    );
    assert_eq!(model.check_idle(), Ok(()));
}

/// Submits one response for `answer` after the device queued a group
/// `asked` and returns the judge's violations.
fn judge(asked: GroupId, answer: GroupId, code: u8) -> Vec<String> {
    let (model, _) = prq_unit();
    model.page_group(
        asked.rid,
        asked.pasid,
        asked.prg_index,
        &[0x1000],
        true,
        true,
    );
    Iq::new(&model).respond(answer, code);
    model.violations()
}

fn only(violations: Vec<String>, needle: &str) {
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains(needle), "{violations:?}");
}

/// Rule: a response for a group that never needed one is a violation.
#[test]
fn response_never_needed_is_flagged() {
    let unrelated = GroupId {
        rid: 0x0200,
        pasid: Some(9),
        prg_index: 4,
    };
    only(judge(group(1), unrelated, 0), "never needed one");
}

/// Rule: a group gets one response; the second is a violation, also when
/// the first came from the unit on overflow.
#[test]
fn second_response_is_flagged() {
    let (model, _) = prq_unit();
    model.page_group(RID, PASID, 1, &[0x1000], true, true);
    let mut iq = Iq::new(&model);
    iq.respond(group(1), 0);
    iq.respond(group(1), 0);
    only(model.violations(), "second response");

    let (model, _) = prq_unit();
    fill(&model);
    model.page_group(RID, PASID, 2, &[0x1000], true, true);
    Iq::new(&model).respond(group(2), 0);
    only(model.violations(), "already answered by the unit");
}

/// Rule: a response that matches a waiting group on two fields names the
/// wrong third one, and the group keeps waiting.
#[test]
fn wrong_rid_pasid_or_index_is_flagged() {
    let wrong_rid = GroupId {
        rid: RID + 1,
        ..group(1)
    };
    only(judge(group(1), wrong_rid, 0), "wrong RID");
    let wrong_pasid = GroupId {
        pasid: None,
        ..group(1)
    };
    only(judge(group(1), wrong_pasid, 0), "wrong PASID");
    only(judge(group(1), group(2), 0), "wrong PRG index");

    let (model, _) = prq_unit();
    model.page_group(RID, PASID, 1, &[0x1000], true, true);
    Iq::new(&model).respond(group(2), 0);
    assert_eq!(model.unanswered(), vec![group(1)]);
}

/// Rule: response codes other than Success, Invalid and Failure are
/// flagged; 0x0, 0x1 and 0xF are not.
#[test]
fn invalid_response_code_is_flagged() {
    only(judge(group(1), group(1), 0x2), "invalid code 0x2");
    for code in [0x0, 0x1, 0xf] {
        assert_eq!(judge(group(1), group(1), code), Vec::<String>::new());
    }
}

/// Rule: check_idle lists every group still waiting, after violations.
#[test]
fn check_idle_lists_unanswered_groups() {
    let (model, _) = prq_unit();
    model.page_group(RID, PASID, 1, &[0x1000], true, true);
    model.page_group(RID, PASID, 2, &[0x2000, 0x3000], true, true);
    model.page_request(request(3, 0x4000, false));
    assert_eq!(model.unanswered(), vec![group(1), group(2)]);
    let mut iq = Iq::new(&model);
    iq.respond(
        GroupId {
            rid: 0x0200,
            pasid: None,
            prg_index: 9,
        },
        0,
    );
    let problems = model.check_idle().unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("never needed"), "{problems:?}");
    assert!(problems[1].contains("prg index 1") && problems[1].contains("still waiting"));
    assert!(problems[2].contains("prg index 2"), "{problems:?}");
    iq.respond(group(1), 0);
    iq.respond(group(2), 0);
    assert_eq!(model.unanswered(), vec![]);
}

/// Rule: a stop marker (last, neither read nor write) needs no response.
#[test]
fn stop_marker_needs_no_response() {
    let (model, _) = prq_unit();
    let outcomes = model.page_group(RID, PASID, 4, &[0], false, false);
    assert!(matches!(outcomes[..], [RequestOutcome::Queued { .. }]));
    assert_eq!(model.unanswered(), vec![]);
    Iq::new(&model).respond(group(4), 0);
    only(model.violations(), "never needed one");
}

/// Rule: a page group response with reserved bits set (here qw1 bit 2,
/// LPIG before revision 4.0) is a malformed descriptor: FSTS.IQE.
#[test]
fn response_with_reserved_bits_sets_iqe() {
    let (model, _) = prq_unit();
    let (low, high) = PageGroupResponse {
        group: group(1),
        code: 0,
    }
    .encode();
    let fsts = Iq::new(&model).submit((low, high | 1 << 2));
    assert_eq!(fsts & FSTS_IQE, FSTS_IQE);
    assert!(model.queue_errors()[0].contains("reserved"));
    assert_eq!(model.responses(), vec![]);
}

/// Rule: a unit without PRS does not know descriptor type 9.
#[test]
fn response_without_prs_sets_iqe() {
    let model = Model::new(ModelConfig::qemu_scalable());
    let fsts = Iq::new(&model).respond(group(1), 0);
    assert_eq!(fsts & FSTS_IQE, FSTS_IQE);
    assert!(model.queue_errors()[0].contains("without ECAP.PRS"));
}

/// Rule: a wait descriptor with PD needs ECAP.PDS; with it, the drain is
/// recorded before the wait. A fence (bit 6) is accepted.
#[test]
fn page_drain_needs_pds() {
    let status = |model: &Model| model.memory().alloc_frame().unwrap();
    let wait = |at: u64| {
        (
            5 | 1 << 5 | prq::WAIT_PAGE_DRAIN | prq::WAIT_FENCE | 1 << 32,
            at,
        )
    };
    let config = ModelConfig::scalable_with_page_requests().ecap_bit(crate::model::ECAP_PDS, false);
    let (model, _) = with_queue(config);
    let at = status(&model);
    assert_eq!(Iq::new(&model).submit(wait(at)) & FSTS_IQE, FSTS_IQE);
    assert!(model.queue_errors()[0].contains("without ECAP.PDS"));

    let (model, _) = prq_unit();
    let at = status(&model);
    assert_eq!(Iq::new(&model).submit(wait(at)) & FSTS_IQE, 0);
    assert_eq!(
        model.invalidations(),
        vec![Invalidation::PageDrain, Invalidation::Wait]
    );
    assert_eq!(model.memory().read_u64(at), 1);
}

/// Rule: a queue of 2^size pages spans that many contiguous frames; the
/// device writes into the second page and wraps after 2^(size + 7)
/// descriptors.
#[test]
fn two_page_queue_spans_both_frames() {
    let model = Model::new(ModelConfig::scalable_with_page_requests());
    let mut mem = model.memory();
    let queue = mem.alloc_frame().unwrap();
    assert_eq!(mem.alloc_frame(), Some(queue + 4096), "contiguous");
    let mut regs = model.registers();
    regs.write64(PQA, prq::queue_address(queue, 1));
    let entries = prq::queue_entries(1);
    for i in 0..entries + 1 {
        let sent = request(1, i << 12, false);
        let offset = (i % entries) * 32;
        assert_eq!(model.page_request(sent), RequestOutcome::Queued { offset });
        assert_eq!(slot(&model, queue, offset), Some(sent));
        let tail = regs.read64(PQT);
        regs.write64(PQH, tail);
    }
    assert_eq!(regs.read64(PQT), 32);
}

/// Rule: a group the device asks again after it was answered (the PRG
/// index reused) is owed a new response, which is not a second response.
#[test]
fn reused_group_needs_a_new_response() {
    let (model, _) = prq_unit();
    let mut iq = Iq::new(&model);
    for _ in 0..2 {
        model.page_group(RID, PASID, 6, &[0x1000], true, false);
        assert_eq!(model.unanswered(), vec![group(6)]);
        iq.respond(group(6), 0);
    }
    assert_eq!(model.check_idle(), Ok(()));
    assert_eq!(model.responses().len(), 2);
}
