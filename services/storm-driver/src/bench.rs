//! Figures of the fault pipeline (built with the `bench` feature): one
//! descriptor fetch at a time, each a DMA fault that VT-d records, the
//! IOMMU service drains and delivers to the NIC's fault handler, and the
//! handler answers. Each sample is timed with the TSC from just before the
//! register write that makes the NIC fault to the driver's answer from the
//! IOMMU service that the fault was answered (`AwaitFault`): the whole
//! pipeline, plus one call to ask. The IOMMU service's register accesses
//! over the timed faults, divided by their number, give the VT-d MMIO
//! accesses per fault (the driver's question costs one of them: the
//! service reads the fault status before answering any fault question).
//!
//! ```text
//! BENCH {"name":"fault_to_answer","payload":0,"unit":"cycles","median":..,"p99":..,"mean":..,"iterations":..,"tsc_hz":..}
//! BENCH {"name":"fault_mmio_accesses","payload":0,"unit":"accesses","median":..,"mean":..,"iterations":..}
//! ```

use edu::domain::{Domain, Failed};
use faultline_ipc::protocol::iommu::FaultOutcome;
use userlib::log;
use userlib::stats::{Histogram, cycles};

use crate::nic::Nic;

/// Untimed faults first, then timed ones.
const WARMUP: u32 = 20;
const ITERATIONS: u32 = if cfg!(feature = "full") { 2000 } else { 100 };

static LATENCY: Histogram = Histogram::new();

/// Times faults one by one; `mark` is the device's fault mark now.
pub fn run(
    nic: &Nic,
    domain: &mut Domain,
    ring: u64,
    mut mark: u32,
    tsc_hz: u64,
) -> Result<(), Failed> {
    nic.start_transmit(ring);
    let mut tail = 0;
    let mut one = |domain: &mut Domain| -> Result<u32, Failed> {
        tail += 1;
        let start = cycles();
        nic.set_tail(tail);
        let settled = domain.await_fault(mark)?;
        let took = u32::try_from(cycles().wrapping_sub(start)).unwrap_or(u32::MAX);
        match settled {
            Some(s)
                if matches!(
                    s.outcome,
                    FaultOutcome::Aborted { .. } | FaultOutcome::Retry
                ) =>
            {
                mark = s.mark;
            }
            _ => log!("storm-driver: UNEXPECTED descriptor fetch {tail} did not fault"),
        }
        Ok(took)
    };
    for _ in 0..WARMUP {
        one(domain)?;
    }
    LATENCY.clear();
    let before = domain.fault_summary()?;
    for _ in 0..ITERATIONS {
        let took = one(domain)?;
        LATENCY.record(took);
    }
    let after = domain.fault_summary()?;
    nic.stop_transmit();
    log!(
        "BENCH {{\"name\":\"fault_to_answer\",\"payload\":0,\"unit\":\"cycles\",\"median\":{},\"p99\":{},\"mean\":{},\"iterations\":{ITERATIONS},\"tsc_hz\":{tsc_hz}}}",
        LATENCY.quantile(500),
        LATENCY.quantile(990),
        LATENCY.mean()
    );
    // The summary call itself reads the fault status once.
    let accesses = after.register_accesses - before.register_accesses - 1;
    let faults = after.faults - before.faults;
    let per_fault_x100 = accesses * 100 / faults.max(1);
    log!(
        "BENCH {{\"name\":\"fault_mmio_accesses\",\"payload\":0,\"unit\":\"accesses\",\"median\":{}.{:02},\"mean\":{}.{:02},\"iterations\":{faults}}}",
        per_fault_x100 / 100,
        per_fault_x100 % 100,
        per_fault_x100 / 100,
        per_fault_x100 % 100
    );
    Ok(())
}
