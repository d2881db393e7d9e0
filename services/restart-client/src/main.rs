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

fn ping(seq: u32, payload: &[u8]) -> PingRequest {
    PingRequest::Ping {
        seq,
        payload: heapless::Vec::from_slice(payload).unwrap_or_default(),
    }
}

fn is_echo(answer: &Result<PingResponse, ChannelError>, seq: u32) -> bool {
    matches!(answer, Ok(PingResponse::Pong { seq: s, .. }) if *s == seq)
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
    let first = c.call(&ping(1, b"hello"));
    if !is_echo(&first, 1) {
        log!("restart: first ping failed: {first:?}");
        exit(1)
    }
    log!("restart: crasher answers; asking it to crash");
    match c.call(&ping(2, CRASH)) {
        Err(ChannelError::PeerDead) => {
            log!("restart: crasher died mid-call; we were told (peer dead)")
        }
        other => {
            log!("restart: expected PeerDead, got {other:?}");
            exit(1)
        }
    }
    let mut generation = None;
    for attempt in 0..ATTEMPTS {
        let _ = sleep_ms(10);
        let seq = 3 + attempt;
        match c.call(&ping(seq, b"again")) {
            Err(ChannelError::PeerDead) => {}
            Err(ChannelError::PeerRestarted { generation: g }) if generation.is_none() => {
                log!("restart: crasher restarted (generation {g}); calling again");
                generation = Some(g);
            }
            answer if is_echo(&answer, seq) && generation.is_some() => {
                let g = generation.unwrap_or(0);
                let count = c.call(&PingRequest::Count);
                if count != Ok(PingResponse::Count { calls: 1 }) {
                    log!("restart: the restarted crasher is not fresh: {count:?}");
                    exit(1)
                }
                log!("restart: client recovered (crasher generation {g}, fresh state)");
                exit(0)
            }
            other => {
                log!("restart: unexpected answer on attempt {attempt}: {other:?}");
                exit(1)
            }
        }
    }
    log!("restart: crasher did not come back after {ATTEMPTS} attempts");
    exit(1)
}
