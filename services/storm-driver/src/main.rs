//! `faultline-storm-driver`: a fault storm, and every fault accounted for.
//!
//! QEMU's e1000 fetches a transmit descriptor by DMA each time its
//! transmit tail register moves, synchronously, so one register write is
//! one DMA read: the fastest source of DMA faults a q35 machine has (edu
//! takes 100 ms per transfer). This driver attaches the NIC to a domain
//! that maps nothing, points the transmit ring at an unmapped IOVA, and
//! moves the tail [`STORM`] times. Every fetch faults.
//!
//! Then it accounts for each one. A fault is either recorded by VT-d (and
//! then delivered to the device's fault handler or answered automatically
//! by the IOMMU service: the pipeline's counters say which), or dropped by
//! the hardware before software could see it (QEMU drops a fault whose
//! source already has a record pending, and every fault while the records
//! overflowed). The driver's fault mark counts the recorded ones; the
//! rest were dropped. It waits until every recorded fault is answered and
//! checks that the IOMMU service's counters add up.
//!
//! Capabilities: `nic` (the e1000 function) and `nic-bar0`, and `iommu`
//! (a client of the IOMMU service). Log lines: `storm-driver: NIC attached
//! to domain N`, `storm-driver: S descriptor fetches from an unmapped
//! ring in T ms`, `storm-driver: every fault accounted for: ...`,
//! `storm-driver: done`; any deviation `storm-driver: UNEXPECTED ...` and
//! exit 1. Built with the `bench` feature it measures the pipeline instead
//! (see `bench`).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod bench;
mod nic;

use edu::device::{COMMAND_BUS_MASTER, set_command};
use edu::domain::Domain;
use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::Handle;
use faultline_ipc::protocol::iommu::{Bdf, FaultCounters};
use nic::Nic;
use userlib::{cap_lookup, exit, log, time, wait};

userlib::service_entry!(main);

/// Descriptor fetches the storm makes.
const STORM: u32 = 10_000;
/// Where the transmit ring points: nothing is mapped there.
const RING: u64 = 0x7000_0000;

fn fail(what: core::fmt::Arguments) -> ! {
    log!("storm-driver: UNEXPECTED {what}");
    exit(1)
}

fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => fail(format_args!("no {kind:?} capability `{name}` ({other:?})")),
    }
}

fn main() -> ! {
    let pci = handle("nic", CapKind::Pci);
    let bar0 = handle("nic-bar0", CapKind::Mmio);
    let iommu = handle("iommu", CapKind::Client);
    let (mut domain, info) =
        Domain::attach(iommu, pci).unwrap_or_else(|e| fail(format_args!("attach: {e}")));
    log!(
        "storm-driver: NIC {} attached to domain {} (nothing mapped)",
        Bdf(info.bdf),
        info.domain
    );
    if let Err(e) = set_command(pci, COMMAND_BUS_MASTER) {
        fail(format_args!("bus mastering refused after attach: {e}"));
    }
    let nic = Nic::map(bar0).unwrap_or_else(|e| fail(format_args!("BAR0: {e:?}")));
    if cfg!(feature = "bench") {
        let mark = domain
            .fault_mark()
            .unwrap_or_else(|e| fail(format_args!("fault mark: {e}")));
        if let Err(e) = bench::run(&nic, &mut domain, RING, mark, time().tsc_hz) {
            fail(format_args!("bench: {e}"));
        }
        log!("storm-driver: bench done");
    } else {
        storm(&nic, &mut domain);
    }
    // Nothing more to do.
    loop {
        let _ = wait(0);
    }
}

/// The storm, and the accounting.
fn storm(nic: &Nic, domain: &mut Domain) {
    let before = summary(domain);
    let first = domain
        .fault_mark()
        .unwrap_or_else(|e| fail(format_args!("fault mark: {e}")));
    let start = time().ns;
    nic.start_transmit(RING);
    for tail in 1..=STORM {
        nic.set_tail(tail);
    }
    nic.stop_transmit();
    let ms = (time().ns - start) / 1_000_000;
    log!("storm-driver: {STORM} descriptor fetches from an unmapped ring in {ms} ms");
    account(domain, first, &before);
    log!("storm-driver: done");
}

/// Waits until every recorded fault is answered, then checks the sums.
fn account(domain: &mut Domain, first: u32, before: &FaultCounters) {
    // The question drains the fault records first, so the mark is final.
    let last = domain
        .fault_mark()
        .unwrap_or_else(|e| fail(format_args!("fault mark: {e}")));
    let recorded = last.wrapping_sub(first);
    if recorded == 0 {
        fail(format_args!("no fault recorded"));
    }
    // The last fault answered: the handler answers in order, and what it
    // does not answer is answered at its deadline.
    match domain.await_fault(last - 1) {
        Ok(Some(_)) => {}
        other => fail(format_args!("the last fault: {other:?}")),
    }
    let mut c = summary(domain);
    for _ in 0..100 {
        if answered(&c) - answered(before) == c.faults - before.faults {
            break;
        }
        let _ = userlib::sleep_ms(10);
        c = summary(domain);
    }
    let faults = c.faults - before.faults;
    let delivered = c.delivered - before.delivered;
    let automatic = c.auto - before.auto;
    let handled = answered(&c) - answered(before) - automatic;
    let dropped = u64::from(STORM) - u64::from(recorded);
    if faults != u64::from(recorded)
        || answered(&c) - answered(before) != faults
        || handled > delivered
    {
        fail(format_args!(
            "counters do not add up: {recorded} recorded, counters {c:?} (before {before:?})"
        ));
    }
    log!(
        "storm-driver: every fault accounted for: {STORM} = {recorded} recorded ({handled} \
         answered by the handler of {delivered} delivered, {automatic} answered automatically) \
         + {dropped} dropped by the hardware while a record was pending ({} overflow(s))",
        c.overflows - before.overflows
    );
}

fn summary(domain: &mut Domain) -> FaultCounters {
    domain
        .fault_summary()
        .unwrap_or_else(|e| fail(format_args!("fault summary: {e}")))
}

fn answered(c: &FaultCounters) -> u64 {
    c.success + c.invalid + c.failure
}
