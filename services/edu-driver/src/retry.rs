//! Faults resolved and retried: the driver reserves two pages of its own
//! memory in its domain without mapping them, and has edu DMA there. The
//! IOVAs are relative to a base the caller picks (`FIRST_BASE` on the
//! first run; a run after the IOMMU service restarted uses fresh pages at
//! another base), written `SOURCE` = base, `SINK` = base + one page and
//! `REFUSED` = base + 1 MiB below.
//!
//! 1. RAM → device from `SOURCE`: the read faults (edu reads zeros, and
//!    still signals completion), the IOMMU service delivers the fault to
//!    the device's fault handler, which maps the reserved page and answers
//!    Success; the driver, told to retry, runs the transfer again.
//! 2. Device → RAM into `SINK`: the write faults (edu's data is dropped),
//!    likewise resolved and retried.
//! 3. The page at `SINK` must now hold exactly what `SOURCE` held: both
//!    retried transfers verified byte for byte, and reported as such.
//! 4. A DMA to `REFUSED`, which nothing reserves: the handler answers
//!    Invalid and the driver reports the abort.
//!
//! After every completion interrupt the driver asks whether its device
//! faulted since the transfer began (`AwaitFault`): edu signals completion
//! whether or not its DMA faulted, so the interrupt alone proves nothing.
//! A device with no fault handler has its first fault answered Invalid
//! automatically; the driver reports that and goes no further.

use crate::device::{Direction, Edu};
use crate::domain::{Domain, Failed};
use crate::page::{PAGE, Page};
use crate::{Tally, transfer};
use faultline_ipc::channel::Handle;
use faultline_ipc::protocol::iommu::FaultOutcome;
use userlib::log;

/// The base of the first run: edu reads from the reserved page here.
pub const FIRST_BASE: u64 = 0x40_0000;
/// Where nothing is reserved or mapped, above a run's base.
const REFUSED_OFFSET: u64 = 0x10_0000;
/// Runs of one transfer when faults are lost around it.
const ATTEMPTS: u32 = 3;

/// What became of one transfer.
enum Outcome {
    /// It did not fault.
    Clean,
    /// It faulted, was resolved, and its retry did not fault.
    Retried { mark: u32 },
    /// It faulted and was aborted.
    Aborted(FaultOutcome),
}

/// The retry checks at `base` (4 KiB-aligned, with nothing reserved or
/// mapped from it up to 1 MiB + 4 KiB); `source` and `sink` are two pages
/// of the driver's.
pub fn run(
    edu: &Edu,
    irq: Handle,
    domain: &mut Domain,
    pages: (&Page, &Page),
    base: u64,
    t: &mut Tally,
) {
    let (source, sink) = pages;
    let (source_iova, sink_iova, refused) = (base, base + PAGE, base + REFUSED_OFFSET);
    source.fill(pattern);
    sink.fill(|_| 0);
    for (iova, page) in [(source_iova, source), (sink_iova, sink)] {
        if let Err(e) = domain.reserve(iova, page) {
            return t.unexpected(format_args!("reserving {iova:#x}: {e}"));
        }
    }
    let mut marks = [0u32; 2];
    for (i, (direction, iova)) in [
        (Direction::ToDevice, source_iova),
        (Direction::ToRam, sink_iova),
    ]
    .into_iter()
    .enumerate()
    {
        match transfer(edu, irq, domain, direction, iova) {
            Ok(Outcome::Retried { mark }) => marks[i] = mark,
            Ok(Outcome::Clean) => {
                return t.unexpected(format_args!(
                    "DMA {direction:?} at {iova:#x} did not fault: the page is only reserved"
                ));
            }
            Ok(Outcome::Aborted(outcome)) => {
                log!(
                    "edu-driver: DMA {direction:?} at {iova:#x} aborted: {}",
                    Why(outcome)
                );
                return;
            }
            Err(e) => return t.unexpected(format_args!("DMA {direction:?} at {iova:#x}: {e}")),
        }
    }
    match sink.first_difference(pattern) {
        None => {
            for mark in marks {
                if let Err(e) = domain.retry_verified(mark) {
                    t.unexpected(format_args!("reporting the retry of fault {mark}: {e}"));
                }
            }
            log!(
                "edu-driver: faulting DMA retried and verified byte for byte both ways \
                 (RAM->device from {source_iova:#x}, device->RAM into {sink_iova:#x}, {PAGE} bytes)"
            );
        }
        Some((at, found)) => t.unexpected(format_args!(
            "after the retries, byte {at} at {sink_iova:#x} is {found:#04x}, not {:#04x}",
            pattern(at)
        )),
    }
    match transfer(edu, irq, domain, Direction::ToRam, refused) {
        Ok(Outcome::Aborted(outcome)) => {
            log!("edu-driver: DMA to {refused:#x} aborted: {}", Why(outcome))
        }
        Ok(Outcome::Clean) => t.unexpected(format_args!("DMA to {refused:#x} did not fault")),
        Ok(Outcome::Retried { .. }) => t.unexpected(format_args!(
            "DMA to {refused:#x} was resolved, though nothing is reserved there"
        )),
        Err(e) => t.unexpected(format_args!("DMA to {refused:#x}: {e}")),
    }
}

/// Runs a transfer, asks whether it faulted, and retries it once when the
/// fault was resolved. When faults were lost around it (the fault records
/// overflowed, say while another device faulted), nobody knows whether it
/// faulted: it is run again, up to [`ATTEMPTS`] times.
fn transfer(
    edu: &Edu,
    irq: Handle,
    domain: &mut Domain,
    direction: Direction,
    iova: u64,
) -> Result<Outcome, Error> {
    for _ in 0..ATTEMPTS {
        let mark = domain.fault_mark()?;
        transfer::run(edu, irq, direction, iova)?;
        let Some(fault) = domain.await_fault(mark)? else {
            return Ok(Outcome::Clean);
        };
        match fault.outcome {
            FaultOutcome::Lost => {
                log!(
                    "edu-driver: DMA {direction:?} at {iova:#x}: fault records overflowed meanwhile                      (it may have faulted): running it again"
                );
                continue;
            }
            FaultOutcome::Aborted { .. } => return Ok(Outcome::Aborted(fault.outcome)),
            FaultOutcome::Retry => {}
        }
        log!(
            "edu-driver: DMA {direction:?} at {iova:#x} faulted (fault mark {}); the fault handler \
             resolved it: retrying",
            fault.mark
        );
        transfer::run(edu, irq, direction, iova)?;
        return match domain.await_fault(fault.mark)? {
            None => Ok(Outcome::Retried { mark: fault.mark }),
            Some(again) => Err(Error::FaultedAgain(again.outcome)),
        };
    }
    Err(Error::FaultsLost)
}

/// Why a transfer could not be checked.
enum Error {
    Domain(Failed),
    Stalled(transfer::Stalled),
    FaultedAgain(FaultOutcome),
    /// Faults were lost around every attempt.
    FaultsLost,
}

impl From<Failed> for Error {
    fn from(e: Failed) -> Self {
        Self::Domain(e)
    }
}

impl From<transfer::Stalled> for Error {
    fn from(e: transfer::Stalled) -> Self {
        Self::Stalled(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Domain(e) => write!(f, "IOMMU service: {e}"),
            Self::Stalled(e) => write!(f, "{e}"),
            Self::FaultedAgain(o) => write!(f, "the retry faulted again ({})", Why(*o)),
            Self::FaultsLost => write!(f, "faults were lost around each of {ATTEMPTS} attempts"),
        }
    }
}

/// Who aborted a transfer, and how.
struct Why(FaultOutcome);

impl core::fmt::Display for Why {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            FaultOutcome::Retry => write!(f, "resolved"),
            FaultOutcome::Lost => write!(f, "faults were lost (the fault records overflowed)"),
            FaultOutcome::Aborted {
                code,
                automatic: false,
            } => write!(f, "the fault handler answered {code:?}"),
            FaultOutcome::Aborted {
                code,
                automatic: true,
            } => write!(
                f,
                "the IOMMU service answered {code:?} automatically (no fault handler, or it \
                 failed to answer)"
            ),
        }
    }
}

/// The pattern carried: unlike the round trip's, so a stale copy shows.
fn pattern(i: u64) -> u8 {
    crate::page::pattern(i).rotate_left(3) ^ 0x3c
}
