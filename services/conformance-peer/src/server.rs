//! The echo and control server (role `echo`).
//!
//! - `echo` (badge [`badge::ECHO`]): every request is payload; the reply
//!   is [`echo_reply`] of it.
//! - `ctl` (driver), `pair` (second client), `vecho` (victim): the
//!   opcodes of [`op`]. `HOLD` keeps each caller's token until two are
//!   held, then answers the newest first, each with its own caller's
//!   badge and nonce; around that it misuses tokens on purpose (a foreign
//!   one through the second client, a used one, a forged one, a live
//!   one's sequence number changed, an oversize reply) and keeps the
//!   kernel's answers for `REPORT`.
//! - One-way `SEQ` messages are logged in arrival order for `SEQ_LOG`.

use crate::cap;
use conformance_peer::{Msg, Reader, badge, echo_reply, op, status};
use faultline_ipc::abi::{CapKind, MAX_MESSAGE};
use faultline_ipc::channel::{Handle, Received, ReplyToken};
use userlib::{SysError, call, log, notify, recv, reply, send};

/// A report slot nobody filled.
const NOT_RUN: u64 = u64::MAX;

struct Held {
    token: u64,
    badge: u64,
    nonce: u32,
}

struct State {
    echo: Handle,
    foreign: Handle,
    note_a: Handle,
    note_b: Handle,
    seqs: heapless::Vec<u32, 63>,
    held: heapless::Vec<Held, 2>,
    report: [u64; 5],
}

pub fn run() -> ! {
    let mut s = State {
        echo: cap("echo", CapKind::Server),
        foreign: cap("foreign", CapKind::Client),
        note_a: cap("note-a", CapKind::Notification),
        note_b: cap("note-b", CapKind::Notification),
        seqs: heapless::Vec::new(),
        held: heapless::Vec::new(),
        report: [NOT_RUN; 5],
    };
    log!("echo: serving");
    let mut buf = [0u8; MAX_MESSAGE];
    loop {
        match recv(&mut buf, 0) {
            Ok(Received::Call { len, badge, token }) => {
                let msg = &buf[..len.min(MAX_MESSAGE)];
                if badge == badge::ECHO {
                    echo(msg, token);
                } else {
                    s.call(msg, badge, token);
                }
            }
            Ok(Received::Send { len, .. }) => {
                let mut r = Reader::new(&buf[..len.min(MAX_MESSAGE)]);
                if let (Some(op::SEQ), Some(seq)) = (r.u8(), r.u32()) {
                    let _ = s.seqs.push(seq);
                }
            }
            Ok(Received::Notification { .. }) => {}
            Err(e) => log!("echo: receive failed: {e}"),
        }
    }
}

fn echo(msg: &[u8], token: ReplyToken) {
    let mut out = [0u8; MAX_MESSAGE];
    let n = echo_reply(msg, &mut out);
    if cfg!(feature = "misbehave") && n == 77 {
        out[40] ^= 1;
    }
    answer(token, &out[..n]);
}

fn answer(token: ReplyToken, bytes: &[u8]) {
    if let Err(e) = reply(token, bytes) {
        log!("echo: reply failed: {e}");
    }
}

impl State {
    fn call(&mut self, msg: &[u8], badge: u64, token: ReplyToken) {
        let mut r = Reader::new(msg);
        match r.u8() {
            Some(op::WHOAMI) => {
                let claim = r.u64().unwrap_or(0);
                let seen = if cfg!(feature = "misbehave") {
                    claim
                } else {
                    badge
                };
                answer(token, Msg::new().u64(seen).u64(claim).as_bytes());
            }
            Some(op::SEQ_LOG) => {
                let mut m = Msg::new().u8(self.seqs.len() as u8);
                for &seq in &self.seqs {
                    m = m.u32(seq);
                }
                self.seqs.clear();
                answer(token, m.as_bytes());
            }
            Some(op::HOLD) => self.hold(token, badge, r.u32().unwrap_or(0)),
            Some(op::REPORT) => {
                let mut m = Msg::new();
                for v in self.report {
                    m = m.u64(v);
                }
                self.report = [NOT_RUN; 5];
                answer(token, m.as_bytes());
            }
            Some(op::NOTIFY) => {
                let (a, b) = (r.u8().unwrap_or(0), r.u8().unwrap_or(0));
                let mut last = 0;
                for _ in 0..a {
                    last = last.max(status(&notify(self.note_a)));
                }
                for _ in 0..b {
                    last = last.max(status(&notify(self.note_b)));
                }
                answer(token, Msg::new().u64(last).as_bytes());
            }
            Some(op::RIGHTS) => {
                let mut scratch = [0u8; 8];
                let c = status(&call(self.echo, &[op::WHOAMI], &mut scratch));
                let s = status(&send(self.echo, &[op::SEQ]));
                let n = status(&notify(self.echo));
                answer(token, Msg::new().u64(c).u64(s).u64(n).as_bytes());
            }
            other => {
                log!("echo: unknown request {other:?} from badge {badge:#x}");
                answer(token, &[0xff]);
            }
        }
    }

    /// Keeps the call; with two held, answers both (newest first).
    fn hold(&mut self, token: ReplyToken, badge: u64, nonce: u32) {
        let raw = token.raw();
        let held = Held {
            token: raw,
            badge,
            nonce,
        };
        if self.held.push(held).is_err() {
            log!("echo: a third HOLD (badge {badge:#x}) while two are held");
            answer(token, &[0xff]);
            return;
        }
        if self.held.len() == 1 {
            // A server with no right to this token tries it while the
            // caller still waits for it.
            self.report[0] = self.foreign_reply(raw);
            return;
        }
        self.answer_held();
    }

    fn foreign_reply(&self, raw: u64) -> u64 {
        let mut out = [0u8; 8];
        let request = Msg::op(op::TRY_REPLY).u64(raw);
        match call(self.foreign, request.as_bytes(), &mut out) {
            Ok(8) => Reader::new(&out).u64().unwrap_or(NOT_RUN),
            other => {
                log!("echo: TRY_REPLY call to the second client: {other:?}");
                NOT_RUN
            }
        }
    }

    fn answer_held(&mut self) {
        let first = &self.held[0];
        let second = &self.held[1];
        // Before answering: an oversize reply, and the first token with its
        // sequence number changed; neither may reach anyone.
        let big = [0u8; MAX_MESSAGE + 1];
        self.report[4] = status(&reply(ReplyToken::from_raw(first.token), &big));
        self.report[3] = status(&reply(ReplyToken::from_raw(first.token ^ 1), b"seq"));
        // Newest first; misbehaving, each caller gets the other's answer.
        let (to_second, to_first) = if cfg!(feature = "misbehave") {
            (first, second)
        } else {
            (second, first)
        };
        for (to, h) in [(second, to_second), (first, to_first)] {
            let m = Msg::new().u64(h.badge).u32(h.nonce);
            let r: Result<(), SysError> = reply(ReplyToken::from_raw(to.token), m.as_bytes());
            if let Err(e) = r {
                log!(
                    "echo: answering the held call of badge {:#x}: {e}",
                    to.badge
                );
            }
        }
        self.report[1] = status(&reply(ReplyToken::from_raw(second.token), b"again"));
        let forged = first.token & !(1 << 63);
        self.report[2] = status(&reply(ReplyToken::from_raw(forged), b"forged"));
        self.held.clear();
    }
}
