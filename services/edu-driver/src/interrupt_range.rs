//! The interrupt-range check: a DMA write into 0xFEEx_xxxx is an interrupt
//! request, not a memory write, and through interrupt remapping it can
//! raise nothing this device was not granted.
//!
//! edu writes 4 bytes from its buffer to a remappable-format interrupt
//! address (SHV = 0, so the data is ignored) naming each of the first
//! remapping table entries and one past the table. The IOMMU service wrote
//! an entry only for each granted device interrupt, accepting only that
//! function, so each write is blocked, or (for this device's own entry)
//! yields this device's own vector. The driver then watches its interrupt
//! for a while: an arrival with nothing pending in edu is counted as this
//! device's own vector; any other vector would reach some other holder or
//! the kernel ("unexpected interrupt vector", which the deployments list as
//! absent).
//!
//! Two cases are shown against the IOMMU core's VT-d model instead, since
//! QEMU's `intel-iommu` (10.0) does not do what the VT-d spec says there:
//! - compatibility-format writes (a vector in the data): the spec blocks
//!   them while GCMD.CFI is clear, which is how the IOMMU service leaves
//!   it, but QEMU delivers them unchanged;
//! - a write naming another function's present entry: QEMU issues edu's
//!   DMA without a requester id (it reports source ff:1f.7) and skips
//!   source-id verification for such requests, so it would deliver that
//!   function's vector. The deployments that run this check grant one
//!   device interrupt, edu's own, so no other entry is present here.
//!
//! edu masks DMA addresses with its `dma_mask`, 28 bits unless the
//! deployment widens it, and 0xFEE0_0000 then becomes 0x0EE0_0000. So the
//! driver first maps a page at that clamped address: if a write lands
//! there, edu never reached the interrupt range and the check says so
//! instead of passing.

use crate::Tally;
use crate::device::{Direction, Edu};
use crate::domain::Domain;
use crate::page::Page;
use crate::transfer;
use faultline_ipc::channel::Handle;
use userlib::log;

/// The interrupt address range's base.
const INTERRUPT_BASE: u64 = 0xfee0_0000;
/// Where edu's default 28-bit DMA mask sends a write to the base.
pub const CLAMPED: u64 = INTERRUPT_BASE & 0x0fff_ffff;
/// Entries tried: the first four and one past the 256-entry table.
const HANDLES: [u16; 5] = [0, 1, 2, 3, 256];
/// How long the driver watches its interrupt after each write.
const QUIET_NS: u64 = 300_000_000;
/// The probe page's fill.
const FILL: u8 = 0x5a;

/// The remappable-format interrupt address naming entry `handle`.
const fn remappable(handle: u16) -> u64 {
    let h = handle as u64;
    INTERRUPT_BASE | (h & 0x7fff) << 5 | 1 << 4 | (h >> 15 & 1) << 2
}

/// Runs the check with `probe`, a page of the driver's, mapped at
/// [`CLAMPED`] in `domain` for the duration.
pub fn run(edu: &Edu, irq: Handle, domain: &mut Domain, probe: &Page, t: &mut Tally) {
    if let Err(e) = domain.map(CLAMPED, probe) {
        t.unexpected(format_args!("map of {CLAMPED:#x}: {e}"));
        return;
    }
    // edu's first 4 buffer bytes: zero data (ignored in remappable format
    // with SHV = 0), then the probe page back to its fill.
    probe.fill(|_| 0);
    if let Err(e) = transfer::run_len(edu, irq, Direction::ToDevice, CLAMPED, 4) {
        t.unexpected(format_args!("loading edu's buffer: {e}"));
        return;
    }
    probe.fill(|_| FILL);
    let mut own = 0;
    for handle in HANDLES {
        let address = remappable(handle);
        if let Err(e) = transfer::run_len(edu, irq, Direction::ToRam, address, 4) {
            t.unexpected(format_args!(
                "DMA write to {address:#x} did not finish: {e}"
            ));
            return;
        }
        if let Some((at, found)) = probe.first_difference(|_| FILL) {
            log!(
                "edu-driver: edu's DMA mask sent the write to {address:#x} to memory at \
                 {:#x} ({found:#04x}): the interrupt range is out of its reach; give it \
                 dma_mask=0xffffffff",
                CLAMPED + at
            );
            if let Err(e) = domain.unmap(CLAMPED) {
                t.unexpected(format_args!("unmap of {CLAMPED:#x}: {e}"));
            }
            return;
        }
        match transfer::quiet(edu, irq, QUIET_NS) {
            Ok(n) => own += n,
            Err(e) => {
                t.unexpected(format_args!("watching the interrupt: {e}"));
                return;
            }
        }
    }
    if let Err(e) = domain.unmap(CLAMPED) {
        t.unexpected(format_args!("unmap of {CLAMPED:#x}: {e}"));
    }
    if own > 1 {
        t.unexpected(format_args!(
            "{own} interrupts edu did not raise arrived on its line during the check"
        ));
        return;
    }
    log!(
        "edu-driver: DMA write into the interrupt range raised nothing (remappable-format \
         writes naming entries 0-3 and 256; no interrupt but edu's own arrived)"
    );
}
