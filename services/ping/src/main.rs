//! `faultline-ping`: the client of the `ping` protocol that checks every
//! message length crosses a channel intact, both ways.
//!
//! Capability: `pong` (a client end to a `ping` server). For every length
//! 0..=MAX_MESSAGE it sends a message of exactly that many bytes
//! ([`faultline_ipc::protocol::ping::frame_of_len`]) with a raw call and
//! checks the reply:
//!
//! - from [`MIN_LEN`] up, a valid `Ping` whose echo must come back byte for
//!   byte (so the reply is exactly as long), and decode as the matching
//!   `Pong`;
//! - below [`MIN_LEN`], a truncated message, which the server must refuse
//!   with the typed `Malformed(Truncated)` answer instead of leaving us
//!   waiting.
//!
//! Then it asks for the server's ping count (typed call), reports, and
//! exits 0 if every length passed (1 otherwise).
//!
//! Log lines: `pingpong: length <n>: <what went wrong>` (per failure),
//! `pingpong: pong has answered <n> pings`, `pingpong: all lengths ok`
//! or `pingpong: <n> lengths FAILED`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::abi::{CapKind, MAX_MESSAGE};
use faultline_ipc::channel::{ChannelError, Client, Handle, Refusal, Transport, decode_reply};
use faultline_ipc::protocol::ping::{
    MIN_LEN, Ping, PingRequest, PingResponse, frame_of_len, ping_of_len,
};
use faultline_ipc::wire::WireError;
use userlib::{KernelTransport, cap_lookup, exit, log};

userlib::service_entry!(main);

fn main() {
    let pong = match cap_lookup("pong") {
        Ok((h, CapKind::Client)) => h,
        other => {
            log!("pingpong: no client capability `pong` ({other:?})");
            exit(1)
        }
    };
    let failures = (0..=MAX_MESSAGE)
        .filter(|&len| !check_length(pong, len))
        .count();
    let mut client = Client::<Ping, _>::new(KernelTransport, pong);
    match client.call(&PingRequest::Count) {
        Ok(PingResponse::Count { calls }) => log!("pingpong: pong has answered {calls} pings"),
        other => log!("pingpong: count: unexpected answer {other:?}"),
    }
    if failures == 0 {
        log!("pingpong: all lengths ok ({MIN_LEN}..={MAX_MESSAGE} echoed, shorter refused)");
        exit(0)
    }
    log!("pingpong: {failures} lengths FAILED");
    exit(1)
}

/// One round trip of exactly `len` bytes; logs and returns false on failure.
fn check_length(pong: Handle, len: usize) -> bool {
    let mut request = [0u8; MAX_MESSAGE];
    let mut reply = [0u8; MAX_MESSAGE];
    let n = frame_of_len(len, &mut request);
    let m = match KernelTransport.call(pong, &request[..n], &mut reply) {
        Ok(m) => m,
        Err(e) => return fail(len, format_args!("call refused: {e}")),
    };
    if len < MIN_LEN {
        return refused_as_truncated(len, &reply[..m]);
    }
    if reply[..m] != request[..n] {
        let first = (0..m.min(n)).find(|&i| reply[i] != request[i]);
        return fail(
            len,
            format_args!("echo differs: {m} bytes back, first difference at {first:?}"),
        );
    }
    echo_decodes(len, &reply[..m])
}

// The typed checks live in their own frames, so the buffers above and the
// decoded values below are not all on the stack at once in debug builds.

#[inline(never)]
fn refused_as_truncated(len: usize, reply: &[u8]) -> bool {
    match decode_reply::<Ping>(reply) {
        Err(ChannelError::Refused(Refusal::Malformed(WireError::Truncated))) => true,
        other => fail(
            len,
            format_args!("expected a truncation refusal, got {other:?}"),
        ),
    }
}

#[inline(never)]
fn echo_decodes(len: usize, reply: &[u8]) -> bool {
    let Some(PingRequest::Ping { seq, payload }) = ping_of_len(len) else {
        return fail(len, format_args!("no ping of this length"));
    };
    match decode_reply::<Ping>(reply) {
        Ok(PingResponse::Pong { seq: s, payload: p }) if s == seq && p == payload => true,
        other => fail(len, format_args!("echo decodes as {other:?}")),
    }
}

fn fail(len: usize, why: core::fmt::Arguments<'_>) -> bool {
    log!("pingpong: length {len}: {why}");
    false
}
