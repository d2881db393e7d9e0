//! The server that dies mid-call (role `victim`; its policy is restart).
//!
//! On `victim` (badge [`badge::VICTIM`]): `PING` answers how many calls
//! this instance answered; `DIE` faults (a write to address 0) while
//! holding the call, so the kernel must wake the caller with `PeerDead`;
//! `NOTIFY_BACK` posts `note-back` to the driver; `CALL_PEER` calls the
//! echo server's `WHOAMI` on `vecho`; `NOTIFIED` answers how many `poke`
//! notifications this instance received; `WHOAMI` answers the badge;
//! `ECHO_POKES` turns on (or off) posting `note-back` for every `poke`.
//! Every count starts at zero in a restarted instance.
//!
//! The deployment runs two victims: `victim` (restarted after a back-off)
//! and `doomed` (held once it faults, so it stays dead). Only `victim`
//! holds `vecho` and `note-back`; without them those requests answer
//! `NotFound`. `DIE_ON_NUDGE` answers, then waits for the nudger's
//! notification (outside `recv`, so calls made meanwhile stay queued) and
//! faults.

use conformance_peer::{Msg, Reader, bit, op, status};
use faultline_ipc::abi::{Error, MAX_MESSAGE};
use faultline_ipc::channel::{Handle, Received, ReplyToken};
use userlib::{SysError, call, cap_lookup, log, notify, recv, reply, wait};

pub fn run() -> ! {
    let vecho = optional("vecho");
    let note_back = optional("note-back");
    let mut calls: u32 = 0;
    let mut notified: u32 = 0;
    let mut echo_pokes = false;
    log!("victim: serving");
    let mut buf = [0u8; MAX_MESSAGE];
    loop {
        let (len, badge, token) = match recv(&mut buf, bit::POKE) {
            Ok(Received::Call { len, badge, token }) => (len, badge, token),
            Ok(Received::Notification { bits }) => {
                if bits & bit::POKE != 0 {
                    notified += 1;
                    if echo_pokes && let Err(e) = note_back.and_then(notify) {
                        log!("victim: echoing a poke: {e}");
                    }
                }
                continue;
            }
            Ok(Received::Send { .. }) => continue,
            Err(e) => {
                log!("victim: receive failed: {e}");
                continue;
            }
        };
        let mut r = Reader::new(&buf[..len.min(MAX_MESSAGE)]);
        let m = match r.u8() {
            Some(op::PING) => {
                calls += 1;
                Msg::new().u32(calls).u32(r.u32().unwrap_or(0))
            }
            Some(op::DIE) => {
                log!("victim: faulting on purpose while holding the call");
                let _token = token;
                userlib::rt::fault_by_write(0)
            }
            Some(op::DIE_ON_NUDGE) => {
                answer(token, &[0]);
                if let Err(e) = wait(bit::NUDGED) {
                    log!("victim: wait for the nudge refused: {e}");
                }
                log!("victim: nudged; faulting on purpose with a call queued");
                userlib::rt::fault_by_write(0)
            }
            Some(op::NOTIFY_BACK) => Msg::new().u64(status(&note_back.and_then(notify))),
            Some(op::CALL_PEER) => {
                let mut out = [0u8; MAX_MESSAGE];
                let request = Msg::op(op::WHOAMI).u64(0);
                let r = vecho.and_then(|h| call(h, request.as_bytes(), &mut out));
                let seen = Reader::new(&out).u64().unwrap_or(0);
                Msg::new().u64(status(&r)).u64(seen)
            }
            Some(op::NOTIFIED) => Msg::new().u32(notified),
            Some(op::ECHO_POKES) => {
                echo_pokes = r.u8().is_some_and(|on| on != 0);
                Msg::new().u8(0)
            }
            Some(op::WHOAMI) => Msg::new().u64(badge).u64(r.u64().unwrap_or(0)),
            other => {
                log!("victim: unknown request {other:?}");
                Msg::op(0xff)
            }
        };
        answer(token, m.as_bytes());
    }
}

/// A capability only one of the victims holds.
fn optional(name: &str) -> Result<Handle, SysError> {
    cap_lookup(name)
        .map(|(h, _)| h)
        .map_err(|_| SysError::Kernel(Error::NotFound))
}

fn answer(token: ReplyToken, bytes: &[u8]) {
    if let Err(e) = reply(token, bytes) {
        log!("victim: reply failed: {e}");
    }
}
