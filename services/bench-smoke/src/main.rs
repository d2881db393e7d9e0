//! `faultline-bench-smoke`: the IPC and notification benchmark in its short
//! form ([`Plan::SMOKE`]), so that `cargo xtask test` runs every benchmark
//! path on every change and the benchmark cannot rot. Its figures are
//! printed like the full run's but are not what `cargo xtask bench`
//! records.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_bench_client::{Plan, run};

userlib::service_entry!(main);

fn main() {
    run(Plan::SMOKE)
}
