//! Figures of the page request path (feature `bench` with `model-unit`):
//! page groups from the scripted PRI device, timed with the TSC from the
//! moment the group's last request is in the model's queue (just after
//! [`Model::page_request`] returns `Queued`) to the moment the model holds
//! the group's page group response: the service's queue read, the group
//! to the handler over IPC (a deferred reply to its pull), the handler's
//! answer back over IPC, and the response through the invalidation queue.
//! The figures include the model's own work as the VT-d unit (register
//! and memory emulation in software), which hardware would not cost.
//! Under `--icount` one tick is one guest instruction. The plan: 20
//! timed groups of each size, 200 with `bench-full`.
//!
//! ```text
//! BENCH {"name":"page_request_to_response","payload":1,"pages":1,"unit":"cycles","median":..,"p99":..,"mean":..,"iterations":200,"tsc_hz":..}
//! BENCH {"name":"page_request_to_response","payload":16,"pages":16,"unit":"cycles",...}
//! ```
//!
//! [`Model::page_request`]: faultline_iommu_core::model::Model::page_request

use faultline_iommu_core::model::RequestOutcome;
use faultline_iommu_core::prq::PageRequest;
use userlib::log;
use userlib::stats::{Histogram, cycles};

use super::Run;

/// Untimed groups first (the handler logs its first ones), then timed.
const WARMUP: u32 = 20;
const ITERATIONS: u32 = if cfg!(feature = "bench-full") {
    200
} else {
    20
};

static SINGLE: Histogram = Histogram::new();
static SIXTEEN: Histogram = Histogram::new();

/// One group of `pages` pages from `rid`, PASID 1, index `prg`: the
/// instructions (ticks) from its last request queued to its response.
fn one(run: &mut Run, rid: u16, prg: u16, pages: u64) -> u32 {
    let mut start = 0;
    for p in 0..pages {
        let last = p + 1 == pages;
        let outcome = run.model.page_request(PageRequest {
            rid,
            pasid: Some(1),
            exec: false,
            privileged: false,
            read: true,
            write: false,
            last,
            prg_index: prg,
            address: 0x7000_0000 + (p << 12),
        });
        if last {
            start = cycles();
        }
        if !matches!(outcome, RequestOutcome::Queued { .. }) {
            log!("iommu: model run: UNEXPECTED bench request not queued: {outcome:?}");
        }
    }
    run.read();
    while !run.model.unanswered().is_empty() {
        run.serve_one();
    }
    let took = u32::try_from(cycles().wrapping_sub(start)).unwrap_or(u32::MAX);
    run.model.clear_events();
    took
}

fn series(run: &mut Run, rid: u16, pages: u64, histogram: &Histogram) {
    for i in 0..WARMUP + ITERATIONS {
        let took = one(run, rid, (i % 512) as u16, pages);
        if i >= WARMUP {
            histogram.record(took);
        }
    }
}

/// Times single-request groups, then 16-request groups, and prints the
/// figures.
pub fn run(run: &mut Run, rid: u16) {
    let tsc_hz = userlib::time().tsc_hz;
    log!(
        "iommu: model run: bench: {ITERATIONS} groups of 1 and of 16 requests (after {WARMUP} \
         untimed each), last request queued to page group response"
    );
    series(run, rid, 1, &SINGLE);
    series(run, rid, 16, &SIXTEEN);
    for (pages, h) in [(1, &SINGLE), (16, &SIXTEEN)] {
        log!(
            "BENCH {{\"name\":\"page_request_to_response\",\"payload\":{pages},\"pages\":{pages},\"unit\":\"cycles\",\"median\":{},\"p99\":{},\"mean\":{},\"iterations\":{ITERATIONS},\"tsc_hz\":{tsc_hz}}}",
            h.quantile(500),
            h.quantile(990),
            h.mean()
        );
    }
    log!("iommu: model run: bench done");
}
