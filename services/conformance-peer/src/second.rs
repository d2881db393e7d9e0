//! The second client of the pairing case (role `go`).
//!
//! - On `foreign` (from the echo server, badge [`badge::FOREIGN`]),
//!   `TRY_REPLY`: replies with the given token, which the echo server was
//!   issued and this service never was, answers with the kernel's status,
//!   then makes its own `HOLD` call on `pair` and checks that the answer
//!   is its own (its badge, its nonce); the verdict is kept. `STIR`:
//!   answers, then yields the CPU or queues a one-way `QUEUED` message at
//!   the echo server (so the echo server's `ReplyRecv` that follows takes
//!   the kernel's general path).
//! - On `go` (from the driver): `VERDICT` hands the verdict over (and
//!   clears it); `WHOAMI_VIA_PAIR` asks the echo server `WHOAMI` with the
//!   driver's claim and passes the answer on.

use crate::cap;
use conformance_peer::{Hex, Msg, Reader, STIR_QUEUED, STIR_RUNNABLE, badge, op, status};
use faultline_ipc::abi::{CapKind, MAX_MESSAGE};
use faultline_ipc::channel::{Handle, Received, ReplyToken};
use heapless::Vec;
use userlib::{call, log, recv, reply, send, yield_now};

type Verdict = Vec<u8, 160>;

pub fn run() -> ! {
    let pair = cap("pair", CapKind::Client);
    let mut verdict = none_yet();
    let mut nonce: u32 = 0xb0b0_0000;
    log!("second: serving");
    let mut buf = [0u8; MAX_MESSAGE];
    loop {
        let (len, badge, token) = match recv(&mut buf, 0) {
            Ok(Received::Call { len, badge, token }) => (len, badge, token),
            Ok(_) => continue,
            Err(e) => {
                log!("second: receive failed: {e}");
                continue;
            }
        };
        let mut r = Reader::new(&buf[..len.min(MAX_MESSAGE)]);
        match (badge, r.u8()) {
            (badge::FOREIGN, Some(op::TRY_REPLY)) => {
                let raw = r.u64().unwrap_or(0);
                let s = status(&reply(ReplyToken::from_raw(raw), b"forged by second"));
                answer(token, Msg::new().u64(s).as_bytes());
                nonce = nonce.wrapping_add(1);
                verdict = held_call(pair, nonce);
            }
            (badge::FOREIGN, Some(op::STIR)) => {
                let how = r.u8();
                answer(token, &[0]);
                match how {
                    Some(STIR_RUNNABLE) => {
                        if let Err(e) = yield_now() {
                            log!("second: yield refused: {e}");
                        }
                    }
                    Some(STIR_QUEUED) => {
                        if let Err(e) = send(pair, &[op::QUEUED]) {
                            log!("second: QUEUED send refused: {e}");
                        }
                    }
                    other => log!("second: STIR {other:?}"),
                }
            }
            (badge::GO, Some(op::VERDICT)) => {
                answer(token, &verdict);
                verdict = none_yet();
            }
            (badge::GO, Some(op::WHOAMI_VIA_PAIR)) => {
                let claim = r.u64().unwrap_or(0);
                let mut out = [0u8; MAX_MESSAGE];
                let n = match call(pair, Msg::op(op::WHOAMI).u64(claim).as_bytes(), &mut out) {
                    Ok(n) => n,
                    Err(e) => {
                        log!("second: WHOAMI on pair: {e}");
                        0
                    }
                };
                answer(token, &out[..n.min(MAX_MESSAGE)]);
            }
            (b, o) => {
                log!("second: unknown request {o:?} from badge {b:#x}");
                answer(token, &[0xff]);
            }
        }
    }
}

fn answer(token: ReplyToken, bytes: &[u8]) {
    if let Err(e) = reply(token, bytes) {
        log!("second: reply failed: {e}");
    }
}

fn none_yet() -> Verdict {
    verdict(format_args!("the second client made no held call"))
}

fn verdict(why: core::fmt::Arguments<'_>) -> Verdict {
    let mut line = userlib::logging::Line::new();
    let _ = core::fmt::write(&mut line, why);
    let mut v = Vec::new();
    let _ = v.push(1);
    let text = line.as_str().as_bytes();
    let _ = v.extend_from_slice(&text[..text.len().min(159)]);
    v
}

/// Our own `HOLD` call: the answer must carry our badge and nonce.
fn held_call(pair: Handle, nonce: u32) -> Verdict {
    let mut out = [0u8; MAX_MESSAGE];
    let n = match call(pair, Msg::op(op::HOLD).u32(nonce).as_bytes(), &mut out) {
        Ok(n) => n,
        Err(e) => return verdict(format_args!("its HOLD call failed: {e}")),
    };
    let mut r = Reader::new(&out[..n.min(MAX_MESSAGE)]);
    match (n, r.u64(), r.u32()) {
        (12, Some(badge::PAIR), Some(got)) if got == nonce => {
            Vec::from_slice(&[0]).unwrap_or_default()
        }
        (n, b, got) => verdict(format_args!(
            "it got a reply not its own: {n} bytes, badge {}, nonce {} (want badge {:#x}, nonce {nonce:#x})",
            Hex(b),
            Hex(got),
            badge::PAIR
        )),
    }
}
