//! The faulting transfers, what became of each, and the retries.
//!
//! The transfers are issued back to back, each after taking the device's
//! fault mark, and only then does the driver ask about each fault in turn
//! (`AwaitFault` from that transfer's mark). A driver that asked after
//! each transfer would hold its device still until the fault was answered,
//! so a handler could never hold more than one of its faults; issued back
//! to back, a handler that pulls without answering holds several, as a
//! scenario needs.
//!
//! Per fault, one line: `fault-driver: DMA into 0x400000: fault mark 1
//! answered Failure automatically after N us`, `... answered Invalid by
//! the handler after N us`, or `... resolved (Success) after N us:
//! retrying`. N is the time from the transfer's completion interrupt to
//! the driver learning the answer: for a fault settled while the driver
//! was still waiting on an earlier one, that is when it asked.
//!
//! Before any retry, every reserved page must still hold its zero fill:
//! the faulting writes were dropped. A resolved fault's transfer is then
//! run again (after a fresh mark: the retry must not fault) and the page
//! compared with the pattern byte for byte; the driver reports the retry
//! verified to the IOMMU service.

use crate::{FIRST, IRQ_BITS, PAGES, fail, pattern};
use edu::device::{Direction, Edu};
use edu::domain::Domain;
use edu::page::{PAGE, Page};
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
pub fn run(edu: &Edu, irq: Handle, domain: &mut Domain, sinks: &[Page; PAGES]) -> Tally {
    // In order: page 0 first.
    let issued: [Issued; PAGES] = core::array::from_fn(|i| {
        let iova = FIRST + i as u64 * PAGE;
        let mark = mark(domain);
        transfer(edu, irq, iova);
        Issued {
            iova,
            mark,
            done_ns: time().ns,
        }
    });

    let mut tally = Tally::default();
    // The mark of each page's fault, if it was resolved.
    let mut resolved: [Option<u32>; PAGES] = [None; PAGES];
    for (sent, slot) in issued.iter().zip(&mut resolved) {
        let fault = settled(domain, sent);
        let us = time().ns.saturating_sub(sent.done_ns) / 1000;
        tally.faults += 1;
        let (iova, mark) = (sent.iova, fault.mark);
        match fault.outcome {
            FaultOutcome::Retry => {
                log!(
                    "fault-driver: DMA into {iova:#x}: fault mark {mark} resolved (Success) \
                     after {us} us: retrying"
                );
                *slot = Some(mark);
            }
            FaultOutcome::Aborted { code, automatic } => {
                let by = if automatic {
                    "automatically"
                } else {
                    "by the handler"
                };
                log!("fault-driver: DMA into {iova:#x}: fault mark {mark} answered {code:?} {by} after {us} us");
                tally.aborted += 1;
            }
        }
    }

    for (i, sink) in sinks.iter().enumerate() {
        if let Some((at, found)) = sink.first_difference(|_| 0) {
            fail(format_args!(
                "a faulting write changed byte {at} of the page at {:#x} to {found:#04x}",
                FIRST + i as u64 * PAGE
            ));
        }
    }
    for ((sent, sink), fault_mark) in issued.iter().zip(sinks).zip(resolved) {
        if let Some(fault_mark) = fault_mark {
            retry(edu, irq, domain, sink, sent.iova, fault_mark);
            tally.retried += 1;
        }
    }
    tally
}

/// Runs the transfer into `iova` again, checks that it did not fault and
/// that `sink` holds the pattern, and reports the retry verified.
fn retry(edu: &Edu, irq: Handle, domain: &mut Domain, sink: &Page, iova: u64, fault_mark: u32) {
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
        fail(format_args!("reporting the retry of fault mark {fault_mark}: {e}"));
    }
    log!("fault-driver: DMA into {iova:#x} retried and verified byte for byte ({PAGE} bytes)");
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
