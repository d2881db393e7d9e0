//! `faultline-edu-driver`: the driver of QEMU's edu device on a machine
//! whose DMA goes through the IOMMU service.
//!
//! It holds the edu function (`edu`), its BAR0 (`edu-bar0`), its MSI
//! (`edu-irq`), a DMA budget (`dma`) and a client end of the `iommu`
//! protocol (`iommu`). It:
//!
//! 1. tries to turn on bus mastering before its device has a domain: the
//!    kernel must refuse (`NotPermitted`);
//! 2. attaches the device (`edu-driver: 00:03.0 attached to domain N
//!    (legacy, 48-bit)`), then turns on memory decoding and bus mastering,
//!    which the kernel must now allow;
//! 3. maps two DMA pages, A and B, at IOVA 0x100000 and 0x101000, has edu
//!    copy a pattern from A into its buffer and from there into B, and
//!    compares B with A byte for byte (`edu-driver: DMA round trip through
//!    domain N verified (4096 bytes each way)`);
//! 4. shows that DMA where the domain maps nothing changes nothing
//!    (`isolation`);
//! 5. shows that a DMA write into the interrupt range raises nothing it was
//!    not granted (`interrupt_range`);
//! 6. has DMA fault on pages it reserved, resolved by the device's fault
//!    handler, retried and verified both ways, and a DMA the handler
//!    refuses aborted (`retry`);
//! 7. with `restart-check`, drives the IOMMU service into its injected
//!    fault, attaches again once it is back (`restart`), and runs the
//!    retry checks again through the new instance at fresh IOVAs;
//! 8. logs `edu-driver: done`, asks the IOMMU service for its fault
//!    summary (which the service logs) and keeps serving its interrupt.
//!
//! Beside another edu driver on the same VT-d unit, steps 4 to 7 (the ones
//! whose DMA faults) run in turn with the other driver's: the deployment
//! grants one a `lead` and the other a `follow` notification ([`edu::turn`],
//! bit [`TURN`]), so that no fault is lost to the unit's one fault record.
//!
//! Every deviation logs a line with `UNEXPECTED`, and the driver then
//! exits 1 instead of serving. With no IOMMU service (no `iommu`
//! capability, or the service is dead) it logs `edu-driver: no IOMMU
//! service: not enabling DMA` and exits 0 without ever enabling DMA.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod interrupt_range;
mod isolation;
mod restart;
mod retry;
mod transfer;

pub use edu::{device, domain, page};

use device::{Direction, Edu};
use domain::{Domain, Failed};
use edu::turn::Turns;
use faultline_ipc::abi::{CapKind, Error, NOTIFY_USER_BITS};
use faultline_ipc::channel::{ChannelError, Handle};
use faultline_ipc::protocol::iommu::{Bdf, DomainInfo, Mode};
use page::{PAGE, Page};
use userlib::{SysError, cap_lookup, dma_alloc, exit, irq_ack, log, wait};

userlib::service_entry!(main);

/// The notification bit the turn at faulting arrives as (see
/// [`edu::turn`]; bit 4 is `dma-victim`'s).
pub const TURN: u32 = 1 << 5;
/// The notification bits edu's interrupt may arrive as (the deployment
/// picks one): every bit but the one `dma-victim` signals with and the
/// turn's.
pub const IRQ_BITS: u32 = NOTIFY_USER_BITS & !isolation::VICTIM_READY & !TURN;

/// Where the driver maps its two pages in its device's domain.
const IOVA: u64 = 0x10_0000;

/// Counts what did not go as it must; each is logged as UNEXPECTED.
#[derive(Default)]
pub struct Tally {
    unexpected: u32,
}

impl Tally {
    pub fn unexpected(&mut self, what: core::fmt::Arguments) {
        self.unexpected += 1;
        log!("edu-driver: UNEXPECTED {what}");
    }
}

/// The capability `name`, which must be of `kind`; exits 1 without it.
fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => {
            log!("edu-driver: UNEXPECTED no {kind:?} capability `{name}` ({other:?})");
            exit(1)
        }
    }
}

/// Logs a fatal deviation and exits 1.
pub fn fail(what: core::fmt::Arguments) -> ! {
    log!("edu-driver: UNEXPECTED {what}");
    exit(1)
}

fn no_iommu() -> ! {
    log!("edu-driver: no IOMMU service: not enabling DMA");
    exit(0)
}

fn main() -> ! {
    let pci = handle("edu", CapKind::Pci);
    let bar0 = handle("edu-bar0", CapKind::Mmio);
    let irq = handle("edu-irq", CapKind::Irq);
    let dma = handle("dma", CapKind::Dma);
    let iommu = match cap_lookup("iommu") {
        Ok((h, CapKind::Client)) => h,
        _ => no_iommu(),
    };
    let turns = match Turns::from_caps(TURN) {
        Ok(turns) => turns,
        Err(e) => fail(format_args!("{e}")),
    };
    let mut t = Tally::default();

    bus_master_before_attach(pci, &mut t);
    let (mut domain, info) = match Domain::attach(iommu, pci) {
        Ok(attached) => attached,
        Err(Failed::Channel(ChannelError::PeerDead)) => no_iommu(),
        Err(e) => fail(format_args!("attach: {e}")),
    };
    log_attached(&info);
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

    let a = alloc(dma);
    let b = alloc(dma);
    for (iova, page) in [(IOVA, &a), (IOVA + PAGE, &b)] {
        if let Err(e) = domain.map(iova, page) {
            fail(format_args!("map of {iova:#x}: {e}"));
        }
    }
    round_trip(&edu, irq, &a, &b, info.domain, &mut t);
    // From here on DMA faults: in turn with another edu's driver.
    if let Err(e) = turns.before(0) {
        fail(format_args!("waiting for the turn: {e}"));
    }
    let mut setup = isolation::Setup {
        edu: &edu,
        irq,
        domain: &mut domain,
        a: &a,
        b: &b,
        iova: IOVA,
    };
    isolation::run(&mut setup, &mut t);
    if let Ok((victim, CapKind::Notification)) = cap_lookup("victim") {
        isolation::other_domain(&mut setup, &mut t, victim);
    }
    let probe = alloc(dma);
    interrupt_range::run(&edu, irq, &mut domain, &probe, &mut t);
    let (source, sink) = (alloc(dma), alloc(dma));
    retry::run(
        &edu,
        irq,
        &mut domain,
        (&source, &sink),
        retry::FIRST_BASE,
        &mut t,
    );
    if cfg!(feature = "restart-check") {
        restart::run(&mut domain, iommu, pci, &edu, irq, (&a, &b), IOVA, &mut t);
        // The fault pipeline again, through the new instance and the
        // restarted fault handler: fresh pages, IOVAs the new domain has
        // never seen.
        let (source, sink) = (alloc(dma), alloc(dma));
        retry::run(
            &edu,
            irq,
            &mut domain,
            (&source, &sink),
            restart::RETRY_BASE,
            &mut t,
        );
    }

    // The other driver's turn, whatever this one found.
    if let Err(e) = turns.after() {
        fail(format_args!("passing the turn: {e}"));
    }

    if t.unexpected > 0 {
        log!(
            "edu-driver: {} UNEXPECTED result(s); stopping",
            t.unexpected
        );
        exit(1);
    }
    log!("edu-driver: done");
    // The IOMMU service logs its fault counters as it answers.
    if let Err(e) = domain.fault_summary() {
        log!("edu-driver: fault summary: {e}");
    }
    serve(&edu, irq)
}

/// Before its device has a domain, the kernel refuses bus mastering.
fn bus_master_before_attach(pci: Handle, t: &mut Tally) {
    match device::set_command(pci, device::COMMAND_BUS_MASTER) {
        Err(SysError::Kernel(Error::NotPermitted)) => {
            log!("edu-driver: bus mastering before attach refused by the kernel (NotPermitted)");
        }
        Ok(()) => {
            t.unexpected(format_args!(
                "bus mastering allowed before attach (no kernel gate)"
            ));
            let _ = device::set_command(pci, device::COMMAND_MEMORY);
        }
        Err(e) => t.unexpected(format_args!(
            "bus mastering before attach: {e}, not NotPermitted"
        )),
    }
}

fn log_attached(info: &DomainInfo) {
    let mode = match info.mode {
        Mode::Legacy => "legacy",
        Mode::Scalable => "scalable",
    };
    log!(
        "edu-driver: {} attached to domain {} ({mode}, {}-bit)",
        Bdf(info.bdf),
        info.domain,
        info.address_width
    );
}

fn alloc(dma: Handle) -> Page {
    match dma_alloc(dma, PAGE) {
        Ok(region) => Page { region },
        Err(e) => fail(format_args!("DMA allocation: {e:?}")),
    }
}

/// A into edu's buffer, the buffer into B; B must equal A.
pub fn round_trip(edu: &Edu, irq: Handle, a: &Page, b: &Page, domain: u16, t: &mut Tally) {
    a.fill(page::pattern);
    for (direction, iova) in [(Direction::ToDevice, IOVA), (Direction::ToRam, IOVA + PAGE)] {
        if let Err(e) = transfer::run(edu, irq, direction, iova) {
            fail(format_args!("DMA {direction:?} at {iova:#x}: {e}"));
        }
    }
    match b.first_difference(page::pattern) {
        None => log!(
            "edu-driver: DMA round trip through domain {domain} verified ({PAGE} bytes each way)"
        ),
        Some((at, found)) => t.unexpected(format_args!(
            "round trip: byte {at} of B is {found:#04x}, not {:#04x}",
            page::pattern(at)
        )),
    }
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
