//! `faultline-crasher`: an echo server of the `ping` protocol that faults on
//! purpose, for the restart scenario.
//!
//! Like `faultline-pong`, except that a `Ping` whose payload is `crash`
//! ([`faultline_ipc::protocol::ping::CRASH`]) makes it write to address 0
//! while it holds the caller's reply token. The kernel stops it with a
//! page fault and wakes the caller with `PeerDead`; the supervisor restarts
//! it (policy `restart`), and its next caller gets `PeerRestarted`.
//!
//! Log lines: `crasher: serving`,
//! `crasher: crashing on request (after <n> pings)`, and pong's refusal lines.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::channel::{Incoming, RecvError, Server};
use faultline_ipc::protocol::ping::{CRASH, Ping, PingRequest};
use userlib::{KernelTransport, log};

userlib::service_entry!(main);

fn main() -> ! {
    let mut server = Server::<Ping, _>::new(KernelTransport);
    let mut calls: u32 = 0;
    log!("crasher: serving");
    loop {
        match server.recv(0) {
            Ok(Incoming::Call { request, token, .. }) => {
                if let PingRequest::Ping { payload, .. } = &request {
                    if payload.as_slice() == CRASH {
                        log!("crasher: crashing on request (after {calls} pings)");
                        // The token dies with us: the kernel answers the
                        // caller with PeerDead.
                        let _token = token;
                        userlib::rt::fault_by_write(0);
                    }
                    calls = calls.wrapping_add(1);
                }
                if let Err(e) = server.reply(token, &request.echo(calls)) {
                    log!("crasher: reply failed: {e}");
                }
            }
            Ok(Incoming::Send { .. } | Incoming::Notification { .. }) => {}
            Err(RecvError::Malformed {
                badge, kind, error, ..
            }) => log!("crasher: refused {kind:?} from badge {badge}: {error}"),
            Err(RecvError::Transport(e)) => log!("crasher: receive failed: {e}"),
        }
    }
}
