//! Random page request streams through the whole path (the scripted PRI
//! device and page request queue of the VT-d model, the driver core, the
//! desk and the pipeline, the handler's replies decoded as it decodes
//! them) against random handler behaviour. Streams mix groups split and
//! interleaved across three requesters (one handled, one known with no
//! handler, one unknown) and two PASIDs and none, stop markers, malformed
//! requests, bursts that overflow the queue in the middle of groups,
//! devices detaching (their requests drained) and coming back, handler
//! restarts, deadlines passing, answers repeated and made up.
//!
//! The model judges every page group response as it arrives: a response
//! for a group that never needed one, a second one, or one with the wrong
//! requester, PASID or index fails the case at once. At the end, when the
//! handler has answered what it holds and every deadline has passed:
//! every group that needed a response got exactly one, no group was
//! delivered twice, and the counters add up (every fault answered once;
//! every response the desk sent reached the unit).
//!
//! `PAGE_REQUEST_CASES` sets the number of cases (10,000 by default;
//! `cargo xtask soak` runs more).

use std::collections::HashSet;

use faultline_iommu_core::model::Responder;
use faultline_iommu_core::prq::PageRequest;
use faultline_ipc::protocol::faults::{FaultToken, FaultsRequest, FaultsResponse, ResponseCode};
use proptest::prelude::*;

use super::pages::{Prq, request};
use super::{A, EDU, NIC, attach, call};

const STRANGER: u16 = 0x0030;
const REQUESTERS: [u16; 3] = [EDU, NIC, STRANGER];
const PASIDS: [Option<u32>; 3] = [None, Some(1), Some(2)];
const MS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug)]
enum Shape {
    Normal,
    Stop,
    Privileged,
    ExecRead,
    NonCanonical,
}

#[derive(Clone, Debug)]
enum Op {
    Issue {
        requester: usize,
        pasid: usize,
        prg: u16,
        last: bool,
        shape: Shape,
    },
    /// Many requests without a read: the queue (128) overflows.
    Burst(u16),
    Read,
    Pull,
    Answer {
        pick: usize,
        code: u8,
    },
    /// A token nobody was given.
    Forge(u64),
    Wait(u64),
    Detach,
    Attach,
    Restart,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        12 => Just(Shape::Normal),
        1 => Just(Shape::Stop),
        1 => Just(Shape::Privileged),
        1 => Just(Shape::ExecRead),
        1 => Just(Shape::NonCanonical),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (prop_oneof![4 => Just(0usize), 1 => Just(1), 1 => Just(2)], 0..3usize, 0..4u16,
               prop::bool::weighted(0.4), shape())
            .prop_map(|(requester, pasid, prg, last, shape)| Op::Issue { requester, pasid, prg, last, shape }),
        1 => (100..160u16).prop_map(Op::Burst),
        4 => Just(Op::Read),
        3 => Just(Op::Pull),
        4 => (any::<usize>(), 0..3u8).prop_map(|(pick, code)| Op::Answer { pick, code }),
        1 => (0..64u64).prop_map(Op::Forge),
        1 => (0..60u64).prop_map(Op::Wait),
        1 => Just(Op::Detach),
        1 => Just(Op::Attach),
        1 => Just(Op::Restart),
    ]
}

fn shaped(r: PageRequest, shape: Shape) -> PageRequest {
    match shape {
        Shape::Normal => r,
        Shape::Stop => PageRequest {
            read: false,
            write: false,
            last: true,
            ..r
        },
        Shape::Privileged => PageRequest {
            privileged: true,
            ..r
        },
        Shape::ExecRead => PageRequest { exec: true, ..r },
        Shape::NonCanonical => PageRequest {
            address: 0x00f0_0000_0000_0000,
            ..r
        },
    }
}

struct Run {
    p: Prq,
    next_token: u64,
    /// The handler's parked pull, if any.
    parked: Option<u64>,
    /// Groups delivered (token), in order, and those answered.
    delivered: Vec<FaultToken>,
    seen: HashSet<FaultToken>,
    page: u64,
}

impl Run {
    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Collects what reached the handler's parked pull.
    fn collect(&mut self) {
        if let Some(t) = self.parked
            && let Some(reply) = self.p.reply(t)
        {
            self.parked = None;
            match reply {
                FaultsResponse::PageGroup(g) => {
                    assert!(self.seen.insert(g.token), "{:?} delivered twice", g.token);
                    assert!(!g.pages.is_empty());
                    self.delivered.push(g.token);
                }
                other => panic!("a pull answered with {other:?}"),
            }
        }
        let violations = self.p.model.violations();
        assert!(violations.is_empty(), "the model's judge: {violations:#?}");
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Issue {
                requester,
                pasid,
                prg,
                last,
                shape,
            } => {
                self.page += 1;
                let r = request(
                    REQUESTERS[requester],
                    PASIDS[pasid],
                    prg,
                    self.page % 64,
                    last,
                );
                self.p.model.page_request(shaped(r, shape));
            }
            Op::Burst(n) => {
                for i in 0..n {
                    self.page += 1;
                    let prg = 4 + i % 3;
                    let last = i % 5 == 4 || i + 1 == n;
                    self.p.model.page_request(request(
                        EDU,
                        PASIDS[usize::from(i % 3)],
                        prg,
                        self.page % 64,
                        last,
                    ));
                }
            }
            Op::Read => self.p.read(),
            Op::Pull => {
                let t = self.token();
                match self.p.handler(t, FaultsRequest::Next) {
                    None => self.parked = Some(t),
                    Some(FaultsResponse::PageGroup(g)) => {
                        self.parked = None;
                        assert!(self.seen.insert(g.token), "{:?} delivered twice", g.token);
                        self.delivered.push(g.token);
                    }
                    Some(other) => panic!("a pull answered with {other:?}"),
                }
            }
            Op::Answer { pick, code } => {
                if self.delivered.is_empty() {
                    return;
                }
                let token = self.delivered[pick % self.delivered.len()];
                let code = [
                    ResponseCode::Success,
                    ResponseCode::Invalid,
                    ResponseCode::Failure,
                ][usize::from(code)];
                let t = self.token();
                let before = self.p.model.responses().len();
                match self.p.answer(t, token, code) {
                    FaultsResponse::Answered => {
                        let after = self.p.model.responses();
                        assert_eq!(after.len(), before + 1, "an answer sends one response");
                        assert_eq!(after.last().unwrap().0.code, code.code());
                    }
                    FaultsResponse::Refused(_) => {
                        assert_eq!(
                            self.p.model.responses().len(),
                            before,
                            "a refusal sends none"
                        );
                    }
                    other => panic!("{other:?}"),
                }
            }
            Op::Forge(n) => {
                let t = self.token();
                let before = self.p.model.responses().len();
                let forged = FaultToken(n + 1_000);
                if !self.seen.contains(&forged) {
                    assert!(matches!(
                        self.p.answer(t, forged, ResponseCode::Success),
                        FaultsResponse::Refused(_)
                    ));
                    assert_eq!(self.p.model.responses().len(), before);
                }
            }
            Op::Wait(ms) => {
                self.p.now += ms * MS;
                let now = self.p.now;
                self.p
                    .desk
                    .expire(&mut self.p.service, now, &mut self.p.server);
            }
            Op::Detach => {
                let Some(a) = self.p.service.attachments().first().copied() else {
                    return;
                };
                let detach = faultline_ipc::protocol::iommu::IommuRequest::Detach { pci: 0 };
                call(&mut self.p.service, &mut self.p.kernel, A, detach);
                let known = self.p.known.clone();
                let now = self.p.now;
                self.p.desk.device_gone(
                    &mut self.p.service,
                    a.slot,
                    a.bdf,
                    a.domain,
                    &known,
                    now,
                    &mut self.p.server,
                );
            }
            Op::Attach => {
                if self.p.service.attachments().is_empty() {
                    call(&mut self.p.service, &mut self.p.kernel, A, attach(0));
                }
            }
            Op::Restart => {
                let t = self.token();
                self.parked = None;
                assert!(matches!(
                    self.p.handler(t, FaultsRequest::Register { device: 0 }),
                    Some(FaultsResponse::Registered { .. })
                ));
            }
        }
        self.collect();
    }

    /// The handler answers what it holds, the queue is read until empty,
    /// and every deadline passes.
    fn finish(&mut self) {
        self.p.read();
        self.collect();
        for _ in 0..64 {
            let t = self.token();
            let g = match self.p.handler(t, FaultsRequest::Next) {
                Some(FaultsResponse::PageGroup(g)) => g,
                None => break,
                Some(other) => panic!("{other:?}"),
            };
            assert!(self.seen.insert(g.token), "{:?} delivered twice", g.token);
            let t = self.token();
            self.p.answer(t, g.token, ResponseCode::Success);
        }
        self.p.now += 3_600_000 * MS;
        let now = self.p.now;
        self.p
            .desk
            .expire(&mut self.p.service, now, &mut self.p.server);
        self.p.read();
        if let Err(problems) = self.p.model.check_idle() {
            panic!("the model's judge: {problems:#?}");
        }
        let c = self.p.desk.counters();
        assert_eq!(
            c.faults,
            c.success + c.invalid + c.failure,
            "every fault answered exactly once"
        );
        let pc = self.p.desk.page_counters();
        let software = self
            .p
            .model
            .responses()
            .iter()
            .filter(|(_, by)| *by == Responder::Software)
            .count() as u64;
        assert_eq!(
            pc.responses, software,
            "every response sent reached the unit"
        );
        assert_eq!(pc.response_errors, 0);
        assert_eq!(c.faults, software, "each page group fault is one response");
        assert_eq!(pc.requests as usize, self.p.model.page_requests_written());
    }
}

fn run(ops: Vec<Op>) {
    let mut r = Run {
        p: Prq::new(),
        next_token: 100,
        parked: None,
        delivered: Vec::new(),
        seen: HashSet::new(),
        page: 0,
    };
    for op in ops {
        r.step(op);
    }
    r.finish();
}

fn cases() -> u32 {
    std::env::var("PAGE_REQUEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn every_group_needing_a_response_gets_exactly_one_with_the_right_fields(
        ops in prop::collection::vec(op(), 0..40)
    ) {
        run(ops);
    }
}
