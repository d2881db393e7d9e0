//! `faultline-restart-client`: crashes its server on purpose and checks
//! that it recovers after the supervisor restarts it.
//!
//! Capability: `crasher` (a client end to `faultline-crasher`, whose policy
//! is `restart`). Steps:
//!
//! 1. a normal ping is echoed;
//! 2. a ping with payload `crash` kills the server while it holds our reply
//!    token: the kernel answers our call with `PeerDead` (no hang);
//! 3. every 10 ms we call again: `PeerDead` while the server is down
//!    (back-off), then `PeerRestarted { generation }` once (not delivered;
//!    the server's state is new), then the echo;
//! 4. the server's ping count is 1: it really is a fresh instance.
//!
//! Exits 0 after `restart: client recovered ...`, 1 on any surprise.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::{ChannelError, Client};
use faultline_ipc::protocol::ping::{CRASH, Ping, PingRequest, PingResponse};
use userlib::{KernelTransport, cap_lookup, exit, log, sleep_ms};

userlib::service_entry!(main);

/// Attempts (10 ms apart) before giving up on the server coming back.
const ATTEMPTS: u32 = 500;

/// What a call came to, small enough to keep on the stack cheaply (the
/// full answer is logged where it is decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Echo { seq: u32 },
    Count { calls: u32 },
    PeerDead,
    Restarted { generation: u32 },
    Other,
}

/// Pings (`payload` given) or asks for the count (`None`).
#[inline(never)]
fn call(c: &mut Client<Ping, KernelTransport>, seq: u32, payload: Option<&[u8]>) -> Outcome {
    let request = match payload {
        Some(p) => PingRequest::Ping {
            seq,
            payload: heapless::Vec::from_slice(p).unwrap_or_default(),
        },
        None => PingRequest::Count,
    };
    match c.call(&request) {
        Ok(PingResponse::Pong { seq, .. }) => Outcome::Echo { seq },
        Ok(PingResponse::Count { calls }) => Outcome::Count { calls },
        Err(ChannelError::PeerDead) => Outcome::PeerDead,
        Err(ChannelError::PeerRestarted { generation }) => Outcome::Restarted { generation },
        Err(e) => {
            log!("restart: call failed: {e}");
            Outcome::Other
        }
    }
}

fn main() {
    let handle = match cap_lookup("crasher") {
        Ok((h, CapKind::Client)) => h,
        other => {
            log!("restart: no client capability `crasher` ({other:?})");
            exit(1)
        }
    };
    let mut c = Client::<Ping, _>::new(KernelTransport, handle);
    let first = call(&mut c, 1, Some(b"hello"));
    if first != (Outcome::Echo { seq: 1 }) {
        log!("restart: first ping failed: {first:?}");
        exit(1)
    }
    log!("restart: crasher answers; asking it to crash");
    match call(&mut c, 2, Some(CRASH)) {
        Outcome::PeerDead => log!("restart: crasher died mid-call; we were told (peer dead)"),
        other => {
            log!("restart: expected PeerDead, got {other:?}");
            exit(1)
        }
    }
    let mut generation = None;
    for attempt in 0..ATTEMPTS {
        let _ = sleep_ms(10);
        let seq = 3 + attempt;
        match (call(&mut c, seq, Some(b"again")), generation) {
            (Outcome::PeerDead, _) => {}
            (Outcome::Restarted { generation: g }, None) => {
                log!("restart: crasher restarted (generation {g}); calling again");
                generation = Some(g);
            }
            (Outcome::Echo { seq: s }, Some(g)) if s == seq => {
                let count = call(&mut c, 0, None);
                if count != (Outcome::Count { calls: 1 }) {
                    log!("restart: the restarted crasher is not fresh: {count:?}");
                    exit(1)
                }
                log!("restart: client recovered (crasher generation {g}, fresh state)");
                exit(0)
            }
            (other, _) => {
                log!("restart: unexpected answer on attempt {attempt}: {other:?}");
                exit(1)
            }
        }
    }
    log!("restart: crasher did not come back after {ATTEMPTS} attempts");
    exit(1)
}
