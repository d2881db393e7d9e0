//! `faultline-fault-driver`: the edu driver of Faultline's fault
//! scenarios. Its checks are not its own: it makes its device fault, and
//! reports what the fault pipeline made of each fault, so a deployment's
//! `[expect]` can judge a fault handler that breaks the rules (one that
//! crashes holding faults, one that never answers) or one that keeps them.
//!
//! It holds the edu function (`edu`, BAR0 as `edu-bar0`), its MSI
//! (`edu-irq`), a DMA budget (`dma`, five pages) and a client end of the
//! `iommu` protocol (`iommu`); beside another fault-driver, a
//! notification grant aimed at it (`lead` or `follow`, see [`edu::turn`]). It:
//!
//! 1. attaches its device to a domain and turns on bus mastering;
//! 2. maps a source page at [`SOURCE`] and loads edu's buffer from it with
//!    a pattern (a transfer that must not fault);
//! 3. reserves [`PAGES`] pages of its own, zero-filled, at [`FIRST`],
//!    [`FIRST`] + 0x1000, ... without mapping them, and has edu write its
//!    buffer into each (`faults`): every write faults, and the driver logs
//!    what became of each fault and how long after the transfer's
//!    completion interrupt it learned the answer (asking after each
//!    transfer, or with the `back-to-back` feature after all of them); a
//!    fault resolved by the handler is retried and the page verified byte
//!    for byte against the pattern. Beside another device's driver on the
//!    same VT-d unit, the two take turns at faulting ([`edu::turn`]);
//! 4. logs `fault-driver: N faults: R retried and verified, A aborted` and
//!    `fault-driver: done`, asks the IOMMU service for its fault summary
//!    (which the service logs) and keeps serving its interrupt.
//!
//! A kernel or IPC error, a transfer into a reserved page that does not
//! fault, or data that does not verify logs `fault-driver: UNEXPECTED ...`
//! and exits 1.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod faults;

use edu::device::{self, Direction, Edu};
use edu::domain::Domain;
use edu::page::{PAGE, Page};
use faultline_ipc::abi::{CapKind, NOTIFY_USER_BITS};
use faultline_ipc::channel::Handle;
use faultline_ipc::protocol::iommu::Bdf;
use userlib::{cap_lookup, dma_alloc, exit, irq_ack, log, wait};

userlib::service_entry!(main);

/// The notification bit the turn arrives as (see [`edu::turn`]; the
/// deployment gives both `lead` and `follow` grants this bit).
pub const TURN: u32 = 1 << 4;
/// The notification bits edu's interrupt may arrive as: every user bit
/// but the turn's.
pub const IRQ_BITS: u32 = NOTIFY_USER_BITS & !TURN;
/// Where the source page is mapped.
const SOURCE: u64 = 0x10_0000;
/// Where the first reserved page is; the others follow, a page apart.
pub const FIRST: u64 = 0x40_0000;
/// Reserved pages, one faulting transfer each.
pub const PAGES: usize = 4;

/// Logs a fatal deviation and exits 1.
pub fn fail(what: core::fmt::Arguments) -> ! {
    log!("fault-driver: UNEXPECTED {what}");
    exit(1)
}

/// The capability `name`, which must be of `kind`; exits 1 without it.
fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => fail(format_args!("no {kind:?} capability `{name}` ({other:?})")),
    }
}

fn main() -> ! {
    let pci = handle("edu", CapKind::Pci);
    let bar0 = handle("edu-bar0", CapKind::Mmio);
    let irq = handle("edu-irq", CapKind::Irq);
    let dma = handle("dma", CapKind::Dma);
    let iommu = handle("iommu", CapKind::Client);
    let turns = match edu::turn::Turns::from_caps(TURN) {
        Ok(turns) => turns,
        Err(e) => fail(format_args!("{e}")),
    };

    let (mut domain, info) = match Domain::attach(iommu, pci) {
        Ok(attached) => attached,
        Err(e) => fail(format_args!("attach: {e}")),
    };
    log!(
        "fault-driver: {} attached to domain {}",
        Bdf(info.bdf),
        info.domain
    );
    let edu = match Edu::map(bar0) {
        Ok(edu) => edu,
        Err(e) => fail(format_args!("cannot map BAR0: {e:?}")),
    };
    if let Err(e) = device::set_command(pci, device::COMMAND_BUS_MASTER) {
        fail(format_args!("bus mastering refused after attach: {e}"));
    }
    if edu.ident() != device::EDU_IDENT {
        fail(format_args!("edu identifies as {:#x}", edu.ident()));
    }

    let source = alloc(dma);
    source.fill(pattern);
    if let Err(e) = domain.map(SOURCE, &source) {
        fail(format_args!("map of {SOURCE:#x}: {e}"));
    }
    load_buffer(&edu, irq, &mut domain);

    let sinks: [Page; PAGES] = core::array::from_fn(|_| alloc(dma));
    for (i, sink) in sinks.iter().enumerate() {
        sink.fill(|_| 0);
        let iova = FIRST + i as u64 * PAGE;
        if let Err(e) = domain.reserve(iova, sink) {
            fail(format_args!("reserving {iova:#x}: {e}"));
        }
    }
    let tally = faults::run(&edu, irq, &mut domain, &sinks, &turns);
    log!(
        "fault-driver: {} faults: {} retried and verified, {} aborted",
        tally.faults,
        tally.retried,
        tally.aborted
    );
    log!("fault-driver: done");
    // The IOMMU service logs its fault counters as it answers.
    if let Err(e) = domain.fault_summary() {
        fail(format_args!("fault summary: {e}"));
    }
    serve(&edu, irq)
}

/// Copies the source page into edu's buffer: a transfer through a mapped
/// page, which must not fault.
fn load_buffer(edu: &Edu, irq: Handle, domain: &mut Domain) {
    let mark = match domain.fault_mark() {
        Ok(mark) => mark,
        Err(e) => fail(format_args!("fault mark: {e}")),
    };
    if let Err(e) = edu::transfer::run(edu, irq, IRQ_BITS, Direction::ToDevice, SOURCE) {
        fail(format_args!("DMA from {SOURCE:#x}: {e}"));
    }
    match domain.await_fault(mark) {
        Ok(None) => {}
        Ok(Some(fault)) => fail(format_args!(
            "DMA from the mapped page {SOURCE:#x} faulted ({fault:?})"
        )),
        Err(e) => fail(format_args!("asking about DMA from {SOURCE:#x}: {e}")),
    }
}

fn alloc(dma: Handle) -> Page {
    match dma_alloc(dma, PAGE) {
        Ok(region) => Page { region },
        Err(e) => fail(format_args!("DMA allocation: {e:?}")),
    }
}

/// What edu's buffer carries into every reserved page: no byte is 0 (the
/// pages' fill), and it has no short period, so a partial or shifted copy
/// shows.
pub fn pattern(i: u64) -> u8 {
    edu::page::pattern(i).rotate_left(5)
}

/// A driver keeps serving: it handles its device's interrupts forever.
fn serve(edu: &Edu, irq: Handle) -> ! {
    loop {
        if let Err(e) = wait(IRQ_BITS) {
            fail(format_args!("wait: {e:?}"));
        }
        edu.take_interrupt();
        if let Err(e) = irq_ack(irq) {
            fail(format_args!("irq_ack: {e:?}"));
        }
    }
}
