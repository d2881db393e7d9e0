//! `faultline-bench-server`: the far end of the IPC benchmark.
//!
//! Capabilities: its server end of the `bench` channel, and optionally
//! `wake-client` (a notification to `faultline-bench-client`). It echoes
//! every call raw, with no decoding, so the benchmark times the kernel's
//! call/reply path rather than postcard: each answer goes out with
//! `ReplyRecv`, which also waits for the next message. Any user
//! notification bit is answered at once with a `wake-client` notification
//! by `NotifyRecv` (the notification round trip). It never exits: once the
//! client is done it waits in `recv`.
//!
//! Log lines: `bench-server: serving (notification peer: yes|no)`,
//! `bench-server: <operation> refused: <error>`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::abi::{CapKind, MAX_MESSAGE, NOTIFY_USER_BITS};
use faultline_ipc::channel::Received;
use userlib::{SysError, cap_lookup, log, notify_recv, recv, reply_recv};

userlib::service_entry!(main);

fn main() -> ! {
    let wake_client = match cap_lookup("wake-client") {
        Ok((h, CapKind::Notification)) => Some(h),
        _ => None,
    };
    let peer = if wake_client.is_some() { "yes" } else { "no" };
    log!("bench-server: serving (notification peer: {peer})");
    // Two buffers, taking turns: a call lands in one and is echoed from
    // it while the next message lands in the other, so nothing is copied.
    let mut bufs = [[0u8; MAX_MESSAGE]; 2];
    let mut next = recv(&mut bufs[0], NOTIFY_USER_BITS);
    let mut landed = 0;
    loop {
        let [a, b] = &mut bufs;
        let (message, spare) = if landed == 0 { (a, b) } else { (b, a) };
        landed ^= 1;
        // Each answer and the wait for the next message are one system
        // call, as a server loop should be.
        next = match next {
            Ok(Received::Call { len, token, .. }) => {
                let echo = &message[..len.min(MAX_MESSAGE)];
                reply_recv(token, echo, spare, NOTIFY_USER_BITS)
                    .or_else(|e| refused("reply", e, spare))
            }
            Ok(Received::Notification { .. }) => match wake_client {
                Some(h) => {
                    notify_recv(h, spare, NOTIFY_USER_BITS).or_else(|e| refused("notify", e, spare))
                }
                None => recv(spare, NOTIFY_USER_BITS),
            },
            Ok(Received::Send { .. }) => recv(spare, NOTIFY_USER_BITS),
            Err(e) => refused("recv", e, spare),
        };
    }
}

/// Logs a refusal and goes back to receiving.
fn refused(what: &str, e: SysError, buf: &mut [u8; MAX_MESSAGE]) -> Result<Received, SysError> {
    log!("bench-server: {what} refused: {e}");
    recv(buf, NOTIFY_USER_BITS)
}
