//! The page request path through the desk, on the VT-d model with its page
//! request queue and scripted PRI device: page groups reach the handler
//! over the `faults` protocol (replies decoded as the handler decodes
//! them), and the model, judging every page group response, confirms each
//! group that needs one gets exactly one, with the right requester, PASID
//! and index. The seed's two bugs are named tests here too.

use faultline_iommu_core::model::{Model, ModelConfig, Responder};
use faultline_iommu_core::prq::{GroupId, PageRequest};
use faultline_iommu_core::{Config, Unit};
use faultline_ipc::channel::ReplyToken;
use faultline_ipc::protocol::faults::{
    FaultToken, Faults, FaultsError, FaultsRequest, FaultsResponse, PageGroup, ResponseCode,
};
use faultline_vtd::TranslationMode;

use super::desk::{FakeKernelAs, Wire};
use super::{A, EDU, FakeKernel, NIC, TestService, attach, call};
use crate::desk::{Desk, IommuServer};
use crate::service::Service;

/// The handler's badge: it holds EDU's fault grant as handle 0.
const H: u64 = 11;
/// A requester nobody serves.
const STRANGER: u16 = 0x0030;
const MS: u64 = 1_000_000;

pub(super) struct Prq {
    pub model: Model,
    pub service: TestService,
    pub kernel: FakeKernel,
    pub desk: Desk,
    pub server: IommuServer<Wire>,
    /// Devices the service vouches for (NIC: known, no handler).
    pub known: Vec<u16>,
    pub now: u64,
}

impl Prq {
    /// A scalable unit with a page request queue; EDU attached by A, H
    /// registered for EDU's faults with a 50 ms deadline.
    pub fn new() -> Self {
        let model = Model::new(ModelConfig::scalable_with_page_requests());
        let config = Config {
            mode: TranslationMode::Scalable,
            ..Config::default()
        };
        let mut unit = Unit::bring_up(model.registers(), model.memory(), model.delay(), config)
            .expect("bring-up");
        unit.enable_page_requests().expect("page request queue");
        let mut service = Service::new();
        assert!(service.add_unit(0, unit).is_ok());
        let mut kernel = FakeKernel::new();
        kernel.faults.insert((H, 0), (EDU, 50));
        kernel.faults.insert((H, 1), (NIC, 50));
        assert!(matches!(
            call(&mut service, &mut kernel, A, attach(0)),
            faultline_ipc::protocol::iommu::IommuResponse::Attached(_)
        ));
        let mut p = Self {
            model,
            service,
            kernel,
            desk: Desk::new(),
            server: IommuServer::new(Wire::default()),
            known: vec![EDU, NIC],
            now: 0,
        };
        assert!(matches!(
            p.handler(1, FaultsRequest::Register { device: 0 }),
            Some(FaultsResponse::Registered { bdf: EDU, .. })
        ));
        p
    }

    /// Handler H calls with `request` under `token`; its reply, if any now.
    pub fn handler(&mut self, token: u64, request: FaultsRequest) -> Option<FaultsResponse> {
        let mut kernel = FakeKernelAs(&mut self.kernel, H);
        self.desk.handler(
            &mut self.service,
            &mut kernel,
            H,
            ReplyToken::from_raw(token),
            request,
            &mut self.server,
        );
        self.reply(token)
    }

    pub fn reply(&mut self, token: u64) -> Option<FaultsResponse> {
        let wire = self.server.transport();
        let i = wire.replies.iter().position(|(t, _)| *t == token)?;
        let (_, bytes) = wire.replies.remove(i);
        Some(faultline_ipc::channel::decode_reply::<Faults>(&bytes).expect("decodes"))
    }

    /// The service wakes and reads the queue.
    pub fn read(&mut self) {
        let known = self.known.clone();
        self.desk
            .page_requests(&mut self.service, &known, self.now, &mut self.server);
    }

    /// H pulls under `token` and gets a page group now.
    pub fn pull_group(&mut self, token: u64) -> PageGroup {
        match self.handler(token, FaultsRequest::Next) {
            Some(FaultsResponse::PageGroup(g)) => g,
            other => panic!("expected a page group, got {other:?}"),
        }
    }

    pub fn answer(&mut self, token: u64, group: FaultToken, code: ResponseCode) -> FaultsResponse {
        let answer = FaultsRequest::Answer {
            token: group,
            code,
            map: false,
        };
        self.handler(token, answer).expect("answered at once")
    }

    /// Software responses the model received: (group, code).
    pub fn responses(&self) -> Vec<(GroupId, u8)> {
        self.model
            .responses()
            .into_iter()
            .filter(|(_, by)| *by == Responder::Software)
            .map(|(r, _)| (r.group, r.code))
            .collect()
    }

    pub fn idle(&self) {
        if let Err(problems) = self.model.check_idle() {
            panic!("the model's judge: {problems:#?}");
        }
    }
}

pub(super) fn request(
    rid: u16,
    pasid: Option<u32>,
    prg: u16,
    page: u64,
    last: bool,
) -> PageRequest {
    PageRequest {
        rid,
        pasid,
        exec: false,
        privileged: false,
        read: true,
        write: true,
        last,
        prg_index: prg,
        address: 0x7000_0000 + (page << 12),
    }
}

fn group_id(rid: u16, pasid: Option<u32>, prg: u16) -> GroupId {
    GroupId {
        rid,
        pasid,
        prg_index: prg,
    }
}

#[test]
fn a_page_group_reaches_its_handler_whole_and_gets_one_response() {
    let mut p = Prq::new();
    p.model.page_group(
        EDU,
        Some(5),
        0x1a,
        &[0x7000_1000, 0x7000_2000, 0x7000_3000],
        true,
        true,
    );
    p.read();
    let g = p.pull_group(3);
    assert_eq!((g.bdf, g.pasid, g.prg_index), (EDU, Some(5), 0x1a));
    let pages: Vec<u64> = g.pages.iter().map(|r| r.address).collect();
    assert_eq!(pages, [0x7000_1000, 0x7000_2000, 0x7000_3000]);
    assert!(p.responses().is_empty(), "no response before the answer");
    assert_eq!(
        p.answer(4, g.token, ResponseCode::Success),
        FaultsResponse::Answered
    );
    assert_eq!(p.responses(), [(group_id(EDU, Some(5), 0x1a), 0x0)]);
    p.idle();
}

#[test]
fn seed_bug_1_a_page_request_from_a_device_with_no_handler_is_answered() {
    let mut p = Prq::new();
    p.model
        .page_group(NIC, Some(1), 3, &[0x7000_0000], true, false);
    p.model
        .page_group(STRANGER, None, 4, &[0x7000_0000], true, false);
    p.read();
    assert_eq!(
        p.responses(),
        [
            (group_id(NIC, Some(1), 3), 0x1),
            (group_id(STRANGER, None, 4), 0x1)
        ],
        "Invalid, at once, for the device with no handler and the unknown one"
    );
    p.idle();
    assert_eq!(p.desk.counters().auto, 2);
}

#[test]
fn seed_bug_2_no_page_group_is_reported_twice() {
    let mut p = Prq::new();
    p.model
        .page_group(EDU, None, 1, &[0x7000_0000, 0x7000_1000], true, false);
    p.read();
    // The queue read again, and pulls repeated: one delivery.
    p.read();
    let g = p.pull_group(3);
    for token in 4..8 {
        assert_eq!(
            p.handler(token, FaultsRequest::Next),
            None,
            "parked: nothing else"
        );
    }
    assert_eq!(
        p.answer(9, g.token, ResponseCode::Success),
        FaultsResponse::Answered
    );
    assert_eq!(
        p.answer(10, g.token, ResponseCode::Failure),
        FaultsResponse::Refused(FaultsError::AlreadyAnswered)
    );
    assert_eq!(p.responses().len(), 1);
    assert!(p.model.violations().is_empty());
    assert_eq!(p.desk.counters().delivered, 1);
    p.idle();
}

#[test]
fn malformed_requests_get_invalid_only_when_they_end_a_group_and_stop_markers_nothing() {
    let mut p = Prq::new();
    let privileged = PageRequest {
        privileged: true,
        ..request(EDU, Some(1), 1, 0, false)
    };
    let exec_read = PageRequest {
        exec: true,
        ..request(EDU, Some(1), 2, 0, true)
    };
    let non_canonical = PageRequest {
        address: 0x0000_8000_0000_0000,
        ..request(EDU, Some(1), 3, 0, true)
    };
    let stop = PageRequest {
        read: false,
        write: false,
        ..request(EDU, Some(1), 4, 0, true)
    };
    for r in [privileged, exec_read, non_canonical, stop] {
        p.model.page_request(r);
    }
    p.read();
    assert_eq!(
        p.responses(),
        [
            (group_id(EDU, Some(1), 2), 0x1),
            (group_id(EDU, Some(1), 3), 0x1)
        ]
    );
    assert_eq!(
        p.handler(3, FaultsRequest::Next),
        None,
        "nothing reached the handler"
    );
    let c = p.desk.page_counters();
    assert_eq!((c.requests, c.refused, c.stop_markers), (4, 3, 1));
    p.idle();
}

#[test]
fn overflow_in_the_middle_of_a_group_discards_it_and_loses_no_response() {
    let mut p = Prq::new();
    p.model.page_request(request(EDU, None, 7, 0, false));
    // 127 more fill the 128-entry queue; the rest are dropped, the last
    // of the group among them (the unit answers that one itself).
    for page in 1..200 {
        p.model
            .page_request(request(EDU, None, 8 + (page % 2) as u16, page, page == 199));
    }
    p.model.page_request(request(EDU, None, 7, 300, true));
    assert!(p.model.page_requests_dropped() > 0);
    p.read();
    let c = p.desk.page_counters();
    assert_eq!(c.overflows, 1);
    assert!(c.partials_discarded >= 1);
    // Nothing the device still waits for was left unanswered.
    assert_eq!(p.handler(3, FaultsRequest::Next), None);
    p.idle();
    // After the overflow the device asks again, and is served.
    p.model
        .page_group(EDU, None, 7, &[0x7000_0000], true, false);
    p.read();
    let Some(FaultsResponse::PageGroup(g)) = p.reply(3) else {
        panic!("the parked pull gets the group");
    };
    p.answer(5, g.token, ResponseCode::Success);
    p.idle();
}

#[test]
fn a_group_past_its_deadline_is_answered_failure_once() {
    let mut p = Prq::new();
    p.model
        .page_group(EDU, Some(2), 6, &[0x7000_0000], true, true);
    p.read();
    let g = p.pull_group(3);
    p.desk.expire(&mut p.service, 50 * MS, &mut p.server);
    assert_eq!(p.responses(), [(group_id(EDU, Some(2), 6), 0xf)]);
    assert_eq!(
        p.answer(4, g.token, ResponseCode::Success),
        FaultsResponse::Refused(FaultsError::Stale)
    );
    assert_eq!(p.responses().len(), 1);
    p.idle();
}

#[test]
fn a_detaching_device_is_drained_and_its_groups_answered_invalid() {
    let mut p = Prq::new();
    p.model
        .page_group(EDU, Some(1), 1, &[0x7000_0000], true, false);
    p.read();
    let g = p.pull_group(3);
    // Still in the queue when the device goes: a partial and a whole group.
    p.model.page_request(request(EDU, Some(1), 2, 0, false));
    p.model.page_request(request(EDU, Some(1), 3, 0, true));
    let a = p.service.attachments()[0];
    let known = p.known.clone();
    p.desk.device_gone(
        &mut p.service,
        a.slot,
        a.bdf,
        a.domain,
        &known,
        0,
        &mut p.server,
    );
    let mut got = p.responses();
    got.sort();
    assert_eq!(
        got,
        [
            (group_id(EDU, Some(1), 1), 0x1),
            (group_id(EDU, Some(1), 3), 0x1)
        ]
    );
    assert!(
        p.model
            .invalidations()
            .contains(&faultline_iommu_core::model::Invalidation::PageDrain),
        "a drain went through the invalidation queue"
    );
    assert_eq!(
        p.answer(4, g.token, ResponseCode::Success),
        FaultsResponse::Refused(FaultsError::Stale)
    );
    p.idle();
}

#[test]
fn a_pasid_handler_gets_its_groups_and_page_groups_are_never_mapped() {
    let mut p = Prq::new();
    // H also handles NIC's PASID 9 only.
    assert!(matches!(
        p.handler(
            1,
            FaultsRequest::RegisterPasid {
                device: 1,
                pasid: 9
            }
        ),
        Some(FaultsResponse::Registered { bdf: NIC, .. })
    ));
    p.model
        .page_group(NIC, Some(9), 2, &[0x7000_0000], true, false);
    p.model
        .page_group(NIC, Some(8), 2, &[0x7000_0000], true, false);
    p.read();
    let g = p.pull_group(3);
    assert_eq!((g.bdf, g.pasid), (NIC, Some(9)));
    assert_eq!(
        p.responses(),
        [(group_id(NIC, Some(8), 2), 0x1)],
        "PASID 8: nobody"
    );
    let map = FaultsRequest::Answer {
        token: g.token,
        code: ResponseCode::Success,
        map: true,
    };
    assert_eq!(
        p.handler(4, map),
        Some(FaultsResponse::Refused(FaultsError::NotBacked))
    );
    p.answer(5, g.token, ResponseCode::Success);
    p.idle();
}

#[test]
fn too_large_a_group_is_answered_failure() {
    let mut p = Prq::new();
    let pages: Vec<u64> = (0..17).map(|i| 0x7000_0000 + (i << 12)).collect();
    p.model.page_group(EDU, None, 9, &pages, true, false);
    p.read();
    assert_eq!(p.responses(), [(group_id(EDU, None, 9), 0xf)]);
    assert_eq!(p.handler(3, FaultsRequest::Next), None);
    p.idle();
}
