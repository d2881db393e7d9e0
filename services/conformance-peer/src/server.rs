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
//! - `REPLY_RECV` is answered through `ReplyRecv` (and what that received
//!   is the next message served, and kept for `REPLY_RECV_REPORT`);
//!   `REPLY_RECV_REFUSED` tries the two refusals of `ReplyRecv`.

use crate::cap;
use conformance_peer::{KERNEL_ADDRESS, Msg, Reader, badge, echo_reply, fill_request, op, status};
use faultline_ipc::abi::{CapKind, MAX_MESSAGE, NOTIFY_TIMER, RecvKind, Sysnum};
use faultline_ipc::channel::{Handle, Received, ReplyToken};
use userlib::{
    SysError, call, check, log, notify, recv, reply, reply_recv, send, set_timer, time, wait,
};

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
    /// What the last `REPLY_RECV` answer's `ReplyRecv` returned.
    reply_recv: [u64; 4],
    /// The token of the last call answered (a used token).
    used: u64,
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
        reply_recv: [NOT_RUN; 4],
        used: 0,
    };
    log!("echo: serving");
    let mut buf = [0u8; MAX_MESSAGE];
    // A message `ReplyRecv` received, served next.
    let mut next = None;
    loop {
        let got = match next.take() {
            Some(got) => got,
            None => recv(&mut buf, 0),
        };
        match got {
            Ok(Received::Call { len, badge, token }) => {
                let msg = &buf[..len.min(MAX_MESSAGE)];
                let raw = token.raw();
                let mut r = Reader::new(msg);
                let opcode = if badge == badge::ECHO { None } else { r.u8() };
                if badge == badge::ECHO {
                    echo(msg, token);
                } else if opcode == Some(op::REPLY_RECV) {
                    let (n, stir) = (r.u16().unwrap_or(0), r.u8().unwrap_or(0));
                    let got = s.reply_recv(token, usize::from(n), stir, &mut buf);
                    s.reply_recv = summary(&got);
                    next = Some(got);
                } else {
                    s.call(msg, badge, token);
                }
                if opcode != Some(op::HOLD) {
                    s.used = raw;
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
    /// Has the second client stir (see `op::STIR`), then answers `token`
    /// with the echo reply of the length-`n` echo request through
    /// `ReplyRecv` into `buf`.
    fn reply_recv(
        &mut self,
        token: ReplyToken,
        n: usize,
        stir: u8,
        buf: &mut [u8; MAX_MESSAGE],
    ) -> Result<Received, SysError> {
        if stir != 0 {
            let mut out = [0u8; 8];
            let m = Msg::op(op::STIR).u8(stir);
            if let Err(e) = call(self.foreign, m.as_bytes(), &mut out) {
                log!("echo: STIR call to the second client: {e}");
            }
        }
        let n = n.min(MAX_MESSAGE);
        let mut request = [0u8; MAX_MESSAGE];
        fill_request(&mut request[..n]);
        let mut out = [0u8; MAX_MESSAGE];
        echo_reply(&request[..n], &mut out);
        reply_recv(token, &out[..n], buf, 0)
    }

    /// The two refusals of `ReplyRecv` while holding `token`, then a plain
    /// reply with their statuses. The used token's attempt may wait only
    /// for a timer 5 ms out (a `ReplyRecv` that blocked instead of
    /// refusing shows as a timer notification, not a hang).
    fn reply_recv_refused(&mut self, token: ReplyToken) {
        let deadline = time().ns + 5_000_000;
        if let Err(e) = set_timer(deadline) {
            log!("echo: set_timer refused: {e}");
        }
        let mut buf = [0u8; MAX_MESSAGE];
        let used = reply_recv(
            ReplyToken::from_raw(self.used),
            b"used token",
            &mut buf,
            NOTIFY_TIMER,
        );
        let stale = match used {
            Ok(Received::Notification { bits }) if bits & NOTIFY_TIMER != 0 => u64::MAX - 1,
            ref other => status(other),
        };
        if stale != u64::MAX - 1 && stale != 0 {
            // Take the timer's bit, so none is left behind.
            let _ = wait(NOTIFY_TIMER);
        }
        let refused = b"refused ReplyRecv";
        let bad = status(&raw_reply_recv(token.raw(), refused, KERNEL_ADDRESS));
        answer(token, Msg::new().u64(stale).u64(bad).as_bytes());
    }

    fn call(&mut self, msg: &[u8], badge: u64, token: ReplyToken) {
        let mut r = Reader::new(msg);
        match r.u8() {
            Some(op::REPLY_RECV_REPORT) => {
                let mut m = Msg::new();
                for v in self.reply_recv {
                    m = m.u64(v);
                }
                self.reply_recv = [NOT_RUN; 4];
                answer(token, m.as_bytes());
            }
            Some(op::REPLY_RECV_REFUSED) => self.reply_recv_refused(token),
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

/// What a `ReplyRecv` returned: `[status, kind, len or bits, badge]`.
fn summary(r: &Result<Received, SysError>) -> [u64; 4] {
    match r {
        Ok(Received::Call { len, badge, .. }) => [0, RecvKind::Call as u64, *len as u64, *badge],
        Ok(Received::Send { len, badge }) => [0, RecvKind::Send as u64, *len as u64, *badge],
        Ok(Received::Notification { bits }) => {
            [0, RecvKind::Notification as u64, u64::from(*bits), 0]
        }
        Err(_) => [status(r), NOT_RUN, NOT_RUN, NOT_RUN],
    }
}

/// `ReplyRecv` answering `token` with `message`, receiving into `buf`,
/// which must be an address the kernel refuses to write (a kernel one).
#[allow(unsafe_code)]
fn raw_reply_recv(token: u64, message: &[u8], buf: u64) -> Result<[u64; 4], SysError> {
    let ptr = message.as_ptr() as u64;
    let args = [token, ptr, message.len() as u64, buf, MAX_MESSAGE as u64, 0];
    // SAFETY: the only pointer the kernel may write through is `buf`, a
    // kernel address it refuses; `message` is only read.
    check(unsafe { userlib::sys::syscall6(Sysnum::ReplyRecv as u64, args) })
}
