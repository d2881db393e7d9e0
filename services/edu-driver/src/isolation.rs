//! The isolation checks: DMA aimed where the domain maps nothing lands
//! nowhere, shown byte for byte on the driver's own pages.
//!
//! After the round trip, edu's buffer holds the round trip's pattern, and
//! each check first fills the page it watches with a byte the pattern
//! never has, then has edu write its buffer to an address the domain does
//! not map:
//!
//! 1. page B's address, just unmapped: B keeps its 0x5a;
//! 2. the address just past the range the driver mapped: A (refilled with
//!    0xa5) and B keep their fills;
//! 3. the kernel image's physical load address, 1 MiB, which was page A's
//!    address until A is unmapped too: A keeps its fill, and the kernel
//!    runs on.
//!
//! Each write faults in the IOMMU (the IOMMU service logs the fault
//! record); here a check passes when the pages are unchanged.
//!
//! Where the deployment runs `dma-victim` (a second driver with a second
//! edu device and a page of its own at [`VICTIM_IOVA`] in its own domain)
//! and grants this driver a notification to it, a fourth check aims at
//! that page: this driver waits until the victim has mapped and filled it,
//! has edu write to the same IOVA (nothing is mapped there in this
//! driver's domain), and tells the victim, which checks its page byte for
//! byte and says so.

use crate::Tally;
use crate::device::{Direction, Edu};
use crate::domain::Domain;
use crate::page::{PAGE, Page};
use crate::transfer;
use faultline_ipc::channel::Handle;
use userlib::log;

/// Where the kernel image is loaded (`BOOT_PADDR` in `kernel/link.ld`).
pub const KERNEL_LOAD: u64 = 0x10_0000;
/// Where `dma-victim` maps its page in its own domain.
pub const VICTIM_IOVA: u64 = 0x30_0000;
/// The notification bit `dma-victim` posts when its page is ready (the
/// deployment grants it as this driver's bit 4).
pub const VICTIM_READY: u32 = 1 << 4;

/// The driver's device, domain and pages, mapped at `iova` (A) and
/// `iova + PAGE` (B).
pub struct Setup<'a> {
    pub edu: &'a Edu,
    pub irq: Handle,
    pub domain: &'a mut Domain,
    pub a: &'a Page,
    pub b: &'a Page,
    pub iova: u64,
}

/// Runs the three checks; each deviation is counted in `t`.
pub fn run(s: &mut Setup, t: &mut Tally) {
    let b_iova = s.iova + PAGE;
    if let Err(e) = s.domain.unmap(b_iova) {
        t.unexpected(format_args!("unmap of {b_iova:#x}: {e}"));
        return;
    }
    s.b.fill(|_| 0x5a);
    if write_nowhere(s, t, b_iova, &[(s.b, 0x5a)]) {
        log!("edu-driver: after unmap, DMA into {b_iova:#x} changed nothing");
    }

    let past = s.iova + 2 * PAGE;
    s.a.fill(|_| 0xa5);
    if write_nowhere(s, t, past, &[(s.a, 0xa5), (s.b, 0x5a)]) {
        log!("edu-driver: DMA into {past:#x}, just past the mapped range, changed nothing");
    }

    if let Err(e) = s.domain.unmap(s.iova) {
        t.unexpected(format_args!("unmap of {:#x}: {e}", s.iova));
        return;
    }
    if write_nowhere(s, t, KERNEL_LOAD, &[(s.a, 0xa5)]) {
        log!(
            "edu-driver: DMA aimed at the kernel image ({KERNEL_LOAD:#x}, unmapped in the domain) changed nothing; the kernel runs on"
        );
    }
}

/// The fourth check, against another driver's page: `victim` is the
/// notification to `dma-victim`.
pub fn other_domain(s: &mut Setup, t: &mut Tally, victim: Handle) {
    if let Err(e) = userlib::wait(VICTIM_READY) {
        t.unexpected(format_args!("waiting for dma-victim: {e}"));
        return;
    }
    s.a.fill(|_| 0xa5);
    s.b.fill(|_| 0x5a);
    if write_nowhere(s, t, VICTIM_IOVA, &[(s.a, 0xa5), (s.b, 0x5a)]) {
        log!(
            "edu-driver: DMA aimed at dma-victim's page ({VICTIM_IOVA:#x} in its domain, nothing in ours) faulted here"
        );
    }
    if let Err(e) = userlib::notify(victim) {
        t.unexpected(format_args!("telling dma-victim: {e}"));
    }
}

/// Has edu write its buffer to `iova`, which the domain does not map, and
/// checks that every watched page still holds its fill.
fn write_nowhere(s: &Setup, t: &mut Tally, iova: u64, watched: &[(&Page, u8)]) -> bool {
    if let Err(e) = transfer::run(s.edu, s.irq, Direction::ToRam, iova) {
        t.unexpected(format_args!("DMA into {iova:#x} did not finish: {e}"));
        return false;
    }
    let mut ok = true;
    for (page, fill) in watched {
        if let Some((at, found)) = page.first_difference(|_| *fill) {
            t.unexpected(format_args!(
                "DMA into unmapped {iova:#x} changed buffer {} at byte {at}: {found:#04x}, not {fill:#04x}",
                page.region.buffer
            ));
            ok = false;
        }
    }
    ok
}
