//! `faultline-pong`: the echo server of the `ping` protocol.
//!
//! Serves every client of its server channels (a deployment usually gives
//! it one, named anything): answers `Ping` with the `Pong` that echoes it
//! (byte for byte the request's message), `Count` with the number of pings
//! it answered. Malformed requests are refused by the typed channel layer
//! (the caller gets a typed error) and logged here. It never exits: when
//! its clients are done it waits in `recv`, which the kernel counts as
//! finished.
//!
//! Log lines: `pong: serving`, `pong: refused <kind> from badge <b>: <error>`,
//! `pong: receive failed: <error>`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::channel::{Incoming, RecvError, Server};
use faultline_ipc::protocol::ping::{Ping, PingRequest};
use userlib::{KernelTransport, log};

userlib::service_entry!(main);

fn main() -> ! {
    let mut server = Server::<Ping, _>::new(KernelTransport);
    let mut calls: u32 = 0;
    log!("pong: serving");
    loop {
        match server.recv(0) {
            Ok(Incoming::Call { request, token, .. }) => {
                if matches!(request, PingRequest::Ping { .. }) {
                    calls = calls.wrapping_add(1);
                }
                if let Err(e) = server.reply(token, &request.echo(calls)) {
                    log!("pong: reply failed: {e}");
                }
            }
            Ok(Incoming::Send { .. } | Incoming::Notification { .. }) => {}
            Err(RecvError::Malformed {
                badge, kind, error, ..
            }) => log!("pong: refused {kind:?} from badge {badge}: {error}"),
            Err(RecvError::Transport(e)) => log!("pong: receive failed: {e}"),
        }
    }
}
