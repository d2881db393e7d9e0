//! Random fault streams against random handler behaviour: handlers that
//! answer, answer twice, answer another's token or a made-up one, hang,
//! die (their next delivery fails) and restart (register again), drivers
//! asking at random marks, and time passing. Checked after every step
//! against a reference of what was delivered and settled:
//!
//! - every fault is delivered at most once, and only to a pull of the
//!   handler registered for its device;
//! - every fault is answered at most once (by its handler or
//!   automatically), and every refused answer is refused for the right
//!   reason;
//! - a device with no handler has each fault answered Invalid at once;
//! - at the end, once every deadline has passed, every fault has exactly
//!   one answer and the counters add up.

use std::collections::{HashMap, HashSet};

use faultline_ipc::protocol::faults::{FaultToken, FaultsError, ResponseCode};
use proptest::prelude::*;

use super::{Log, MS, Reply, fault};
use crate::Await;
use crate::{AutoReason, Pipeline, RECENT_TOKENS};

/// Devices 0 and 1 have handlers 0 and 1; device 2 has none.
const DEVICES: [u16; 3] = [0x18, 0x20, 0x28];
const HANDLERS: [u64; 2] = [100, 101];
const DEADLINE_MS: u32 = 20;

#[derive(Clone, Debug)]
enum Op {
    Record(usize),
    Pull {
        handler: usize,
        dies: bool,
    },
    Answer {
        handler: usize,
        pick: Pick,
        code: u8,
    },
    Wait(u64),
    /// The fault records overflowed.
    Overflow,
    Restart(usize),
    Ask {
        device: usize,
        back: u32,
    },
}

#[derive(Clone, Debug)]
enum Pick {
    /// One of the faults delivered to this handler (outstanding or not).
    Delivered(usize),
    /// Any token at all, made up.
    Any(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize).prop_map(Op::Record),
        3 => (0..2usize, prop::bool::weighted(0.1)).prop_map(|(handler, dies)| Op::Pull { handler, dies }),
        4 => (0..2usize, prop_oneof![
                4 => any::<usize>().prop_map(Pick::Delivered),
                1 => (0..40u64).prop_map(Pick::Any),
            ], 0..3u8).prop_map(|(handler, pick, code)| Op::Answer { handler, pick, code }),
        1 => (0..30u64).prop_map(Op::Wait),
        1 => (0..2usize).prop_map(Op::Restart),
        1 => (0..3usize, 0..4u32).prop_map(|(device, back)| Op::Ask { device, back }),
        1 => Just(Op::Overflow),
    ]
}

/// What the reference knows of one token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    Delivered(u64),
    Answered(u64),
    Auto { holder: Option<u64> },
}

struct Reference {
    fates: HashMap<FaultToken, Fate>,
    /// Tokens in the order they were settled.
    settled: Vec<FaultToken>,
    delivered_to: HashMap<u64, Vec<FaultToken>>,
    pulls: HashMap<Reply, u64>,
}

impl Reference {
    /// Takes the log's new deliveries and automatic answers.
    fn absorb(&mut self, log: &Log, seen: &mut (usize, usize)) {
        for (to, f) in &log.delivered[seen.0..] {
            let handler = self.pulls[to];
            let device = DEVICES.iter().position(|d| *d == f.bdf).unwrap();
            assert_eq!(handler, HANDLERS[device], "delivered to the wrong handler");
            assert!(
                self.fates
                    .insert(f.token, Fate::Delivered(handler))
                    .is_none(),
                "{:?} delivered twice or after being settled",
                f.token
            );
            self.delivered_to.entry(handler).or_default().push(f.token);
        }
        for (token, bdf, reason) in &log.automatic[seen.1..] {
            if let Some(other @ (Fate::Answered(_) | Fate::Auto { .. })) = self.fates.get(token) {
                panic!("{token:?} answered automatically after {other:?}");
            }
            // The handler the fault was routed to, delivered or not.
            let holder = DEVICES
                .iter()
                .position(|d| d == bdf)
                .and_then(|i| HANDLERS.get(i))
                .copied();
            if *bdf == DEVICES[2] {
                assert_eq!(*reason, AutoReason::NoHandler);
            } else {
                assert_ne!(*reason, AutoReason::NoHandler);
            }
            self.fates.insert(*token, Fate::Auto { holder });
            self.settled.push(*token);
        }
        *seen = (log.delivered.len(), log.automatic.len());
    }

    /// The refusal an answer from `handler` for `token` must get, or
    /// `None` if it must be taken.
    fn expected(&self, handler: u64, token: FaultToken, next: u64) -> Option<FaultsError> {
        if token.0 == 0 || token.0 >= next {
            return Some(FaultsError::UnknownToken);
        }
        let recent = self
            .settled
            .iter()
            .rev()
            .take(RECENT_TOKENS)
            .any(|t| *t == token);
        match self.fates.get(&token) {
            // Recorded, still queued (or answered before delivery).
            None => Some(FaultsError::UnknownToken),
            Some(Fate::Delivered(h)) if *h == handler => None,
            Some(Fate::Delivered(_)) => Some(FaultsError::NotYours),
            Some(_) if !recent => Some(FaultsError::Stale),
            Some(Fate::Answered(h)) if *h != handler => Some(FaultsError::NotYours),
            Some(Fate::Answered(_)) => Some(FaultsError::AlreadyAnswered),
            Some(Fate::Auto { holder }) if *holder != Some(handler) => Some(FaultsError::NotYours),
            Some(Fate::Auto { .. }) => Some(FaultsError::Stale),
        }
    }
}

fn run(ops: Vec<Op>) {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    for (h, d) in HANDLERS.iter().zip(DEVICES) {
        p.register(*h, d, DEADLINE_MS, &mut log).unwrap();
    }
    let mut r = Reference {
        fates: HashMap::new(),
        settled: Vec::new(),
        delivered_to: HashMap::new(),
        pulls: HashMap::new(),
    };
    let mut seen = (0, 0);
    let mut now = 0u64;
    let mut next_reply: Reply = 1;
    let mut recorded = 0u64;
    let mut tokens_issued = 0u64;
    let mut handler_answers = 0u64;
    let mut asked: HashSet<Reply> = HashSet::new();
    for op in ops {
        match op {
            Op::Record(d) => {
                p.record(fault(DEVICES[d], recorded << 12), now, &mut log);
                recorded += 1;
                tokens_issued += 1;
                if d == 2 {
                    // Answered at once.
                    assert_eq!(log.automatic.last().unwrap().0, FaultToken(tokens_issued));
                }
            }
            Op::Pull { handler, dies } => {
                let reply = next_reply;
                next_reply += 1;
                r.pulls.insert(reply, HANDLERS[handler]);
                if dies {
                    log.gone.insert(reply);
                }
                p.next(HANDLERS[handler], reply, &mut log).unwrap();
            }
            Op::Answer {
                handler,
                pick,
                code,
            } => {
                let h = HANDLERS[handler];
                let token = match pick {
                    Pick::Delivered(i) => match r.delivered_to.get(&h) {
                        Some(v) if !v.is_empty() => v[i % v.len()],
                        _ => continue,
                    },
                    Pick::Any(t) => FaultToken(t),
                };
                let code = [
                    ResponseCode::Success,
                    ResponseCode::Invalid,
                    ResponseCode::Failure,
                ][usize::from(code)];
                let expected = r.expected(h, token, tokens_issued + 1);
                let got = p.answer(
                    h,
                    token,
                    code,
                    |f| {
                        assert_eq!(f.token, token);
                        Ok(())
                    },
                    &mut log,
                );
                assert_eq!(got.err(), expected, "answer {token:?} from {h}");
                if got.is_ok() {
                    handler_answers += 1;
                    r.fates.insert(token, Fate::Answered(h));
                    r.settled.push(token);
                }
            }
            Op::Wait(ms) => {
                now += ms * MS;
                p.expire(now, &mut log);
            }
            Op::Restart(handler) => {
                p.register(HANDLERS[handler], DEVICES[handler], DEADLINE_MS, &mut log)
                    .unwrap();
            }
            Op::Overflow => p.overflowed(&mut log),
            Op::Ask { device, back } => {
                let bdf = DEVICES[device];
                let since = p.mark(bdf).saturating_sub(back);
                let reply = next_reply;
                next_reply += 1;
                match p.await_fault(bdf, since, reply) {
                    Await::NoFault(_, mark) => assert_eq!(mark, since, "no fault after {since}"),
                    Await::Settled(_, s) => assert!(s.mark > since),
                    Await::Parked => {
                        asked.insert(reply);
                    }
                    Await::Full(_) => panic!("three devices fit"),
                }
            }
        }
        r.absorb(&log, &mut seen);
        let c = p.counters();
        assert_eq!(c.faults, recorded);
        assert_eq!(
            crate::answered(&c) + p.outstanding().count() as u64,
            c.faults
        );
        assert_eq!(crate::answered(&c), c.auto + handler_answers);
        assert_eq!(c.delivered, log.delivered.len() as u64);
    }
    // Every deadline passes: nothing is left unanswered.
    p.expire(u64::MAX, &mut log);
    r.absorb(&log, &mut seen);
    assert_eq!(p.outstanding().count(), 0);
    let c = p.counters();
    assert_eq!(crate::answered(&c), c.faults);
    let unique: HashSet<_> = r.settled.iter().collect();
    assert_eq!(
        unique.len() as u64,
        c.faults,
        "each fault answered exactly once"
    );
    for (reply, s) in &log.settled {
        assert!(
            asked.remove(reply),
            "answered a question never parked, or twice"
        );
        assert!(s.mark > 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("FAULT_PIPELINE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn every_fault_is_delivered_at_most_once_and_answered_exactly_once(
        ops in prop::collection::vec(op(), 0..200)
    ) {
        run(ops);
    }
}
