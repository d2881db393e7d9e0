//! The timed loops and the `BENCH` lines they print.
//!
//! Every sample is one request (or one map and its unmap) timed with the
//! TSC from before the call to after the checked answer, so it includes
//! both IPC round trips, the IOMMU service's table work, the kernel's
//! pin and unpin of the buffer, and the IOTLB invalidation the service
//! waits for before it answers an unmap. Each figure is one line, in TSC
//! cycles (`cargo xtask bench` relabels them as instructions under
//! icount), with the median, the 99th percentile and the mean:
//!
//! ```text
//! BENCH {"name":"iommu_map_unmap","payload":4096,"unit":"cycles","median":..,"p99":..,"mean":..,"iterations":..,"tsc_hz":..}
//! ```

use crate::domain::{Domain, Failed};
use faultline_ipc::protocol::iommu::PageSize;
use userlib::log;
use userlib::stats::{Histogram, cycles};

/// How many requests a figure is made of.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Untimed requests (or pairs) first: tables built, caches warm.
    pub warmup: u32,
    /// Timed requests (or pairs) per figure.
    pub iterations: u32,
}

static PAIR: Histogram = Histogram::new();
static MAP: Histogram = Histogram::new();
static UNMAP: Histogram = Histogram::new();

/// Cycles since `start`, as a histogram sample.
fn since(start: u64) -> u32 {
    u32::try_from(cycles().wrapping_sub(start)).unwrap_or(u32::MAX)
}

/// Prints the `BENCH` line of figure `name` from `h`.
fn report(name: &str, payload: u64, h: &Histogram, plan: Plan, tsc_hz: u64) {
    log!(
        "BENCH {{\"name\":\"{name}\",\"payload\":{payload},\"unit\":\"cycles\",\"median\":{},\"p99\":{},\"mean\":{},\"iterations\":{},\"tsc_hz\":{tsc_hz}}}",
        h.quantile(500),
        h.quantile(990),
        h.mean(),
        plan.iterations
    );
}

/// Times `Query` requests: an IPC round trip to the IOMMU service that
/// does no table work, the floor under every map and unmap.
pub fn queries(domain: &mut Domain, plan: Plan, tsc_hz: u64) -> Result<(), Failed> {
    for _ in 0..plan.warmup {
        domain.query()?;
    }
    PAIR.clear();
    for _ in 0..plan.iterations {
        let start = cycles();
        domain.query()?;
        PAIR.record(since(start));
    }
    report("iommu_query", 0, &PAIR, plan, tsc_hz);
    Ok(())
}

/// Times map+unmap pairs of one page of size `page` at `iova`, backed by
/// the start of `buffer`: the pair, and the map and the unmap alone.
pub fn pairs(
    domain: &mut Domain,
    (iova, buffer, page): (u64, u8, PageSize),
    plan: Plan,
    tsc_hz: u64,
) -> Result<(), Failed> {
    let len = page.bytes();
    let mut pair = || -> Result<(u32, u32), Failed> {
        let start = cycles();
        domain.map(iova, buffer, page)?;
        let mapped = cycles();
        domain.unmap(iova, len)?;
        Ok((
            u32::try_from(mapped.wrapping_sub(start)).unwrap_or(u32::MAX),
            since(mapped),
        ))
    };
    for _ in 0..plan.warmup {
        pair()?;
    }
    for h in [&PAIR, &MAP, &UNMAP] {
        h.clear();
    }
    for _ in 0..plan.iterations {
        let (map, unmap) = pair()?;
        MAP.record(map);
        UNMAP.record(unmap);
        PAIR.record(map.saturating_add(unmap));
    }
    report("iommu_map_unmap", len, &PAIR, plan, tsc_hz);
    report("iommu_map", len, &MAP, plan, tsc_hz);
    report("iommu_unmap", len, &UNMAP, plan, tsc_hz);
    Ok(())
}
