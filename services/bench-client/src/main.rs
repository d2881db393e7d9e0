//! `faultline-bench-client`: the full IPC and notification benchmark that
//! `cargo xtask bench` runs (see the library for what it measures and
//! prints).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_bench_client::{Plan, run};

userlib::service_entry!(main);

fn main() {
    run(Plan::FULL)
}
