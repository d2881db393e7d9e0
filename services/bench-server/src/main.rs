//! `faultline-bench-server`: the far end of the IPC benchmark.
//!
//! Capabilities: its server end of the `bench` channel, and optionally
//! `wake-client` (a notification to `faultline-bench-client`). It echoes
//! every call raw: the message lands in one buffer and the reply goes out
//! of the same buffer, with no decoding, so the benchmark times the
//! kernel's call/reply path rather than postcard. Any user notification
//! bit is answered at once with a `wake-client` notification (the
//! notification round trip). It never exits: once the client is done it
//! waits in `recv`.
//!
//! Log lines: `bench-server: serving (notification peer: yes|no)`,
//! `bench-server: <operation> refused: <error>`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::abi::{CapKind, MAX_MESSAGE, NOTIFY_USER_BITS};
use faultline_ipc::channel::Received;
use userlib::{cap_lookup, log, notify, recv, reply};

userlib::service_entry!(main);

fn main() -> ! {
    let wake_client = match cap_lookup("wake-client") {
        Ok((h, CapKind::Notification)) => Some(h),
        _ => None,
    };
    let peer = if wake_client.is_some() { "yes" } else { "no" };
    log!("bench-server: serving (notification peer: {peer})");
    let mut buf = [0u8; MAX_MESSAGE];
    loop {
        match recv(&mut buf, NOTIFY_USER_BITS) {
            Ok(Received::Call { len, token, .. }) => {
                if let Err(e) = reply(token, &buf[..len.min(MAX_MESSAGE)]) {
                    log!("bench-server: reply refused: {e}");
                }
            }
            Ok(Received::Notification { .. }) => {
                if let Some(h) = wake_client
                    && let Err(e) = notify(h)
                {
                    log!("bench-server: notify refused: {e}");
                }
            }
            Ok(Received::Send { .. }) => {}
            Err(e) => log!("bench-server: recv refused: {e}"),
        }
    }
}
