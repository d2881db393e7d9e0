//! `faultline-bench-client`: IPC and notification latency, in TSC cycles.
//!
//! Capabilities: `bench` (a client end to `faultline-bench-server`) and
//! optionally `wake-server` (a notification to the server; the server
//! answers with one back). For raw messages of 0, 64 and 256 bytes it makes
//! [`WARMUP`] calls, then times [`ITERATIONS`] call+reply round trips one
//! by one with `rdtsc` (allowed in ring 3), and reports the median and
//! 99th percentile from a fixed-size histogram. Then the same for a
//! notification round trip (notify the server, wait for its notification
//! back; one way is about half). Each figure is one console line:
//!
//! ```text
//! BENCH {"name":"ipc_call_reply","payload":64,"unit":"cycles","median":..,"p99":..,"iterations":100000}
//! BENCH {"name":"notify_round_trip","payload":0,"unit":"cycles","median":..,"p99":..,"iterations":100000,"one_way_median":..}
//! ```
//!
//! then `bench: done`, and exit 0 (1 if an echo came back wrong).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::abi::{CapKind, MAX_MESSAGE, NOTIFY_USER_BITS};
use faultline_ipc::channel::{Client, Handle};
use faultline_ipc::protocol::bench::{Bench, BenchRequest, BenchResponse};
use userlib::stats::{Histogram, cycles};
use userlib::{KernelTransport, call, cap_lookup, exit, log, notify, time, wait};

userlib::service_entry!(main);

/// Untimed round trips before each measurement.
const WARMUP: u32 = 1_000;
/// Timed round trips per figure.
const ITERATIONS: u32 = 100_000;
/// Message sizes timed, in bytes (the whole message, raw).
const SIZES: [usize; 3] = [0, 64, MAX_MESSAGE];

static SAMPLES: Histogram = Histogram::new();

fn main() {
    let bench = match cap_lookup("bench") {
        Ok((h, CapKind::Client)) => h,
        other => {
            log!("bench: no client capability `bench` ({other:?})");
            exit(1)
        }
    };
    log!("bench: TSC at {} Hz", time().tsc_hz);
    let probe = BenchRequest::Echo(heapless::Vec::from_slice(b"typed").unwrap_or_default());
    match Client::<Bench, _>::new(KernelTransport, bench).call(&probe) {
        Ok(BenchResponse::Echo(v)) if v.as_slice() == b"typed" => {}
        other => {
            log!("bench: typed echo failed: {other:?}");
            exit(1)
        }
    }
    for size in SIZES {
        call_reply(bench, size);
    }
    match cap_lookup("wake-server") {
        Ok((h, CapKind::Notification)) => notify_round_trip(h),
        _ => log!("bench: no `wake-server` notification capability; notification figures skipped"),
    }
    log!("bench: done");
    exit(0)
}

fn call_reply(bench: Handle, size: usize) {
    let mut message = [0u8; MAX_MESSAGE];
    for (i, b) in message.iter_mut().enumerate() {
        *b = i as u8 ^ 0xa5;
    }
    let mut echo = [0u8; MAX_MESSAGE];
    let mut round_trip = || {
        let start = cycles();
        let answer = call(bench, &message[..size], &mut echo);
        let elapsed = cycles().wrapping_sub(start);
        if answer != Ok(size) || echo[..size] != message[..size] {
            log!("bench: {size}-byte echo came back wrong: {answer:?}");
            exit(1)
        }
        elapsed
    };
    for _ in 0..WARMUP {
        round_trip();
    }
    SAMPLES.clear();
    for _ in 0..ITERATIONS {
        SAMPLES.record(u32::try_from(round_trip()).unwrap_or(u32::MAX));
    }
    log!(
        "BENCH {{\"name\":\"ipc_call_reply\",\"payload\":{size},\"unit\":\"cycles\",\"median\":{},\"p99\":{},\"iterations\":{ITERATIONS}}}",
        SAMPLES.quantile(500),
        SAMPLES.quantile(990)
    );
}

fn notify_round_trip(wake_server: Handle) {
    let round_trip = || {
        let start = cycles();
        let sent = notify(wake_server);
        let back = wait(NOTIFY_USER_BITS);
        let elapsed = cycles().wrapping_sub(start);
        if sent.is_err() || back.is_err() {
            log!("bench: notification round trip failed: {sent:?} {back:?}");
            exit(1)
        }
        elapsed
    };
    for _ in 0..WARMUP {
        round_trip();
    }
    SAMPLES.clear();
    for _ in 0..ITERATIONS {
        SAMPLES.record(u32::try_from(round_trip()).unwrap_or(u32::MAX));
    }
    let median = SAMPLES.quantile(500);
    log!(
        "BENCH {{\"name\":\"notify_round_trip\",\"payload\":0,\"unit\":\"cycles\",\"median\":{median},\"p99\":{},\"iterations\":{ITERATIONS},\"one_way_median\":{}}}",
        SAMPLES.quantile(990),
        median / 2
    );
}
