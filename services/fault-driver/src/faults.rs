//! The faulting transfers, what became of each, and the retries.
//!
//! Each transfer is run after taking the device's fault mark; then the
//! driver asks what became of its fault (`AwaitFault` from that mark),
//! which the IOMMU service answers once the fault is settled. By default
//! it asks right after each transfer, so the time it logs is the time the
//! answer took. With the `back-to-back` feature it first runs all the
//! transfers and only then asks about each: asking after each transfer
//! holds the device still until the fault is answered, so a handler could
//! never hold more than one of its faults, and a scenario where a handler
//! holds several needs them issued back to back. Beside another driver,
//! each transfer waits its turn (`turn`).
//!
//! Per fault, one line: `fault-driver: DMA into 0x400000: fault mark 1
//! answered Failure automatically after N us`, `... answered Invalid by
//! the handler after N us`, or `... resolved (Success) after N us:
//! retrying`. N is the time from the transfer's completion interrupt to
//! the driver learning the answer (back to back, for a fault settled while
//! the driver was still running transfers or waiting on an earlier one,
//! that is when it asked).
//!
//! Once a fault is settled, its page must still hold its zero fill: the
//! faulting write was dropped. A resolved fault's transfer is then run
//! again (after a fresh mark: the retry must not fault) and the page
//! compared with the pattern byte for byte; the driver reports the retry
//! verified to the IOMMU service.

use crate::{FIRST, IRQ_BITS, PAGES, fail, pattern};
use edu::device::{Direction, Edu};
use edu::domain::Domain;
use edu::page::{PAGE, Page};
use edu::turn::Turns;
use faultline_ipc::channel::Handle;
use faultline_ipc::protocol::iommu::{FaultOutcome, SettledFault};
use userlib::{log, time};

/// What became of the faults.
#[derive(Default)]
pub struct Tally {
    pub faults: u32,
    pub retried: u32,
    pub aborted: u32,
}

/// One transfer issued: where, the mark before it, and when it completed.
struct Issued {
    iova: u64,
    mark: u32,
    done_ns: u64,
}

/// Runs the transfers into the reserved `sinks`, reports each fault, and
/// retries and verifies the resolved ones.
pub fn run(
    edu: &Edu,
    irq: Handle,
    domain: &mut Domain,
    sinks: &[Page; PAGES],
    turns: &Turns,
) -> Tally {
    let mut tally = Tally::default();
    if cfg!(feature = "back-to-back") {
        // In order: page 0 first.
        let issued: [Issued; PAGES] = core::array::from_fn(|i| issue(edu, irq, domain, turns, i));
        let resolved = issued
            .each_ref()
            .map(|sent| settle(domain, sinks, sent, &mut tally));
        for (sent, fault_mark) in issued.iter().zip(resolved) {
            if let Some(fault_mark) = fault_mark {
                retry(edu, irq, domain, sinks, sent.iova, fault_mark, &mut tally);
            }
        }
    } else {
        for i in 0..PAGES {
            let sent = issue(edu, irq, domain, turns, i);
            if let Some(fault_mark) = settle(domain, sinks, &sent, &mut tally) {
                retry(edu, irq, domain, sinks, sent.iova, fault_mark, &mut tally);
            }
        }
    }
    tally
}

/// Runs faulting transfer `i` (into reserved page `i`), in its turn.
fn issue(edu: &Edu, irq: Handle, domain: &mut Domain, turns: &Turns, i: usize) -> Issued {
    let iova = FIRST + i as u64 * PAGE;
    if let Err(e) = turns.before(i) {
        fail(format_args!("waiting for the turn: {e}"));
    }
    let mark = mark(domain);
    transfer(edu, irq, iova);
    let done_ns = time().ns;
    if let Err(e) = turns.after() {
        fail(format_args!("passing the turn: {e}"));
    }
    Issued {
        iova,
        mark,
        done_ns,
    }
}

/// Waits for what became of `sent`'s fault and logs it; checks that the
/// faulting write changed nothing. The fault's mark if it was resolved.
fn settle(
    domain: &mut Domain,
    sinks: &[Page; PAGES],
    sent: &Issued,
    tally: &mut Tally,
) -> Option<u32> {
    let fault = settled(domain, sent);
    let us = time().ns.saturating_sub(sent.done_ns) / 1000;
    tally.faults += 1;
    let (iova, mark) = (sent.iova, fault.mark);
    if let Some((at, found)) = sink(sinks, iova).first_difference(|_| 0) {
        fail(format_args!(
            "a faulting write changed byte {at} of the page at {iova:#x} to {found:#04x}"
        ));
    }
    match fault.outcome {
        FaultOutcome::Retry => {
            log!(
                "fault-driver: DMA into {iova:#x}: fault mark {mark} resolved (Success) \
                 after {us} us: retrying"
            );
            Some(mark)
        }
        FaultOutcome::Aborted { code, automatic } => {
            let by = if automatic {
                "automatically"
            } else {
                "by the handler"
            };
            log!(
                "fault-driver: DMA into {iova:#x}: fault mark {mark} answered {code:?} {by} after \
                 {us} us"
            );
            tally.aborted += 1;
            None
        }
        // The drivers take turns so that no fault is ever lost.
        FaultOutcome::Lost => fail(format_args!(
            "DMA into {iova:#x}: the fault records overflowed (mark {mark}): faults were lost"
        )),
    }
}

/// The reserved page at `iova`.
fn sink(sinks: &[Page; PAGES], iova: u64) -> &Page {
    &sinks[((iova - FIRST) / PAGE) as usize]
}

/// Runs the transfer into `iova` again, checks that it did not fault and
/// that `sink` holds the pattern, and reports the retry verified.
fn retry(
    edu: &Edu,
    irq: Handle,
    domain: &mut Domain,
    sinks: &[Page; PAGES],
    iova: u64,
    fault_mark: u32,
    tally: &mut Tally,
) {
    let sink = sink(sinks, iova);
    let mark = mark(domain);
    transfer(edu, irq, iova);
    match domain.await_fault(mark) {
        Ok(None) => {}
        Ok(Some(again)) => fail(format_args!(
            "the retry into {iova:#x} faulted again ({:?})",
            again.outcome
        )),
        Err(e) => fail(format_args!("asking about the retry into {iova:#x}: {e}")),
    }
    if let Some((at, found)) = sink.first_difference(pattern) {
        fail(format_args!(
            "after the retry, byte {at} at {iova:#x} is {found:#04x}, not {:#04x}",
            pattern(at)
        ));
    }
    if let Err(e) = domain.retry_verified(fault_mark) {
        fail(format_args!(
            "reporting the retry of fault mark {fault_mark}: {e}"
        ));
    }
    log!("fault-driver: DMA into {iova:#x} retried and verified byte for byte ({PAGE} bytes)");
    tally.retried += 1;
}

/// The first fault after `sent`'s mark, once answered: it must be that
/// transfer's.
fn settled(domain: &mut Domain, sent: &Issued) -> SettledFault {
    let iova = sent.iova;
    match domain.await_fault(sent.mark) {
        Ok(Some(fault)) if fault.iova == iova && fault.write => fault,
        Ok(Some(fault)) => fail(format_args!(
            "DMA into {iova:#x} did not fault, though the page is only reserved (the next \
             fault is at {:#x})",
            fault.iova
        )),
        Ok(None) => fail(format_args!(
            "DMA into {iova:#x} did not fault, though the page is only reserved"
        )),
        Err(e) => fail(format_args!("asking about DMA into {iova:#x}: {e}")),
    }
}

fn mark(domain: &mut Domain) -> u32 {
    match domain.fault_mark() {
        Ok(mark) => mark,
        Err(e) => fail(format_args!("fault mark: {e}")),
    }
}

/// One device→RAM transfer of edu's buffer into `iova`, to completion.
fn transfer(edu: &Edu, irq: Handle, iova: u64) {
    if let Err(e) = edu::transfer::run(edu, irq, IRQ_BITS, Direction::ToRam, iova) {
        fail(format_args!("DMA into {iova:#x}: {e}"));
    }
}
