//! The IPC and notification latency benchmark, in TSC cycles, shared by
//! the `faultline-bench-client` service (the full [`Plan::FULL`]) and
//! `faultline-bench-smoke` (the short [`Plan::SMOKE`] that `cargo xtask
//! test` runs so the benchmark cannot rot).
//!
//! Capabilities: `bench` (a client end to `faultline-bench-server`) and
//! optionally `wake-server` (a notification to the server; the server
//! answers with one back). It first logs `bench: ready at TSC <n>` (the
//! moment every more important service waits, which `cargo xtask bench`
//! turns into the boot figure). For raw messages of 0, 64 and 256 bytes it
//! makes [`Plan::warmup`] calls, then times [`Plan::iterations`] call+reply
//! round trips one by one with `rdtsc` (allowed in ring 3), and reports the
//! median and
//! 99th percentile from a fixed-size histogram. Then the same for a
//! notification round trip (notify the server and wait for its
//! notification back, one `NotifyWait`; one way is about half). Each figure
//! is one console line:
//!
//! ```text
//! BENCH {"name":"ipc_call_reply","payload":64,"unit":"cycles","median":..,"p99":..,"iterations":100000}
//! BENCH {"name":"notify_round_trip","payload":0,"unit":"cycles","median":..,"p99":..,"iterations":100000,"one_way_median":..}
//! ```
//!
//! then `bench: done`, and exit 0 (1 if an echo came back wrong).
#![no_std]
#![deny(unsafe_code)]

use faultline_ipc::abi::{CapKind, MAX_MESSAGE, NOTIFY_USER_BITS};
use faultline_ipc::channel::{Client, Handle};
use faultline_ipc::protocol::bench::{Bench, BenchRequest, BenchResponse};
use userlib::stats::{Histogram, cycles};
use userlib::{KernelTransport, call, cap_lookup, exit, log, notify_wait, time};

/// How many round trips a run makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Untimed round trips before each measurement.
    pub warmup: u32,
    /// Timed round trips per figure.
    pub iterations: u32,
}

impl Plan {
    /// `cargo xtask bench`: enough samples for stable medians and p99s.
    pub const FULL: Plan = Plan {
        warmup: 1_000,
        iterations: 100_000,
    };
    /// `cargo xtask test`: every path a hundred times, which stays within
    /// a minute even on hosts where a round trip costs 100 ms (a KVM that
    /// emulates virtualisation in software, where every exit is slow).
    pub const SMOKE: Plan = Plan {
        warmup: 10,
        iterations: 100,
    };
}
/// Message sizes timed, in bytes (the whole message, raw).
const SIZES: [usize; 3] = [0, 64, MAX_MESSAGE];

static SAMPLES: Histogram = Histogram::new();

/// Runs the benchmark with `plan`, then exits the service.
pub fn run(plan: Plan) -> ! {
    let ready = time();
    log!("bench: ready at TSC {} ({} Hz)", ready.tsc, ready.tsc_hz);
    let bench = match cap_lookup("bench") {
        Ok((h, CapKind::Client)) => h,
        other => {
            log!("bench: no client capability `bench` ({other:?})");
            exit(1)
        }
    };
    let probe = BenchRequest::Echo(heapless::Vec::from_slice(b"typed").unwrap_or_default());
    match Client::<Bench, _>::new(KernelTransport, bench).call(&probe) {
        Ok(BenchResponse::Echo(v)) if v.as_slice() == b"typed" => {}
        other => {
            log!("bench: typed echo failed: {other:?}");
            exit(1)
        }
    }
    for size in SIZES {
        call_reply(plan, bench, size);
    }
    match cap_lookup("wake-server") {
        Ok((h, CapKind::Notification)) => notify_round_trip(plan, h),
        _ => log!("bench: no `wake-server` notification capability; notification figures skipped"),
    }
    log!("bench: done");
    exit(0)
}

fn call_reply(plan: Plan, bench: Handle, size: usize) {
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
    for _ in 0..plan.warmup {
        round_trip();
    }
    SAMPLES.clear();
    for _ in 0..plan.iterations {
        SAMPLES.record(u32::try_from(round_trip()).unwrap_or(u32::MAX));
    }
    log!(
        "BENCH {{\"name\":\"ipc_call_reply\",\"payload\":{size},\"unit\":\"cycles\",\"median\":{},\"p99\":{},\"iterations\":{}}}",
        SAMPLES.quantile(500),
        SAMPLES.quantile(990),
        plan.iterations
    );
}

fn notify_round_trip(plan: Plan, wake_server: Handle) {
    let round_trip = || {
        let start = cycles();
        let back = notify_wait(wake_server, NOTIFY_USER_BITS);
        let elapsed = cycles().wrapping_sub(start);
        if back.is_err() {
            log!("bench: notification round trip failed: {back:?}");
            exit(1)
        }
        elapsed
    };
    for _ in 0..plan.warmup {
        round_trip();
    }
    SAMPLES.clear();
    for _ in 0..plan.iterations {
        SAMPLES.record(u32::try_from(round_trip()).unwrap_or(u32::MAX));
    }
    let median = SAMPLES.quantile(500);
    log!(
        "BENCH {{\"name\":\"notify_round_trip\",\"payload\":0,\"unit\":\"cycles\",\"median\":{median},\"p99\":{},\"iterations\":{},\"one_way_median\":{}}}",
        SAMPLES.quantile(990),
        plan.iterations,
        median / 2
    );
}
