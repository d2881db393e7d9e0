//! `faultline-rogue-driver`: a hostile driver. It was granted one edu
//! device (the PCI function, its BAR0, its MSI and a DMA budget), a client
//! end to pong and one to the IOMMU service, and it attacks the kernel and
//! the IOMMU service through them. Each attempt must be refused while pong
//! keeps answering:
//!
//! - (0) bus mastering before the IOMMU service attached its device →
//!   `NotPermitted`; IOMMU requests naming a device it does not hold, a
//!   buffer it never allocated, a range past its buffer or past the
//!   domain, a misaligned address, an overlap, an unmapped range → each
//!   refused with its typed error; and no physical address for its DMA
//!   memory;
//! - (2) the kernel copying through a pointer into its own MMIO mapping
//!   (`log`, `cap_lookup`, `call` request and reply, `recv`) →
//!   `BadPointer`;
//! - (4) programming its device's MSI (address, data for NMI delivery,
//!   control) → `NotPermitted`; the kernel's own MSI delivers edu's
//!   interrupt as the granted notification bit;
//! - (6) writing BARs, the expansion ROM, the header, BIST, the
//!   capability pointer or extended config space → `NotPermitted`; the
//!   command register keeps only the bits a driver may set;
//! - (7) it leaves its device in the middle of a DMA aimed at the
//!   kernel's physical load address (unmapped in its domain: the IOMMU
//!   service reports the fault) with bus mastering on, then
//! - (3) jumps to the kernel's syscall entry with a non-canonical `rcx`,
//!   as if the CPU had left a SYSCALL in ring 3: a fault that stops it, not
//!   a syscall; the kernel quiesces its device as it stops.
//!
//! It logs `rogue-driver: all attempts refused` before its last act, or
//! `rogue-driver: UNEXPECTED ...` lines and exits 1.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod device;
mod iommu;

use device::Edu;
use faultline_ipc::abi::{CapKind, Error, MAX_MESSAGE, NOTIFY_TIMER, Sysnum};
use faultline_ipc::channel::{Client, Handle};
use faultline_ipc::protocol::ping::{Ping, PingRequest, PingResponse};
use userlib::sys::syscall6;
use userlib::{
    KernelTransport, SysError, cap_lookup, check, exit, irq_ack, irq_info, log, pci_config_read,
    pci_config_write, set_timer, time, wait,
};

userlib::service_entry!(main);

/// The kernel's physical load address: a DMA target a driver would love.
const KERNEL_LOAD: u64 = 0x10_0000;

/// The notification bit the deployment grants edu's MSI as.
const EDU_IRQ_BIT: u32 = 1 << 1;

/// Counts refusals; anything else is logged as UNEXPECTED.
#[derive(Default)]
struct Tally {
    refused: u32,
    unexpected: u32,
}

impl Tally {
    fn expect<T: core::fmt::Debug>(
        &mut self,
        what: &str,
        result: Result<T, SysError>,
        want: Error,
    ) {
        match result {
            Err(SysError::Kernel(e)) if e == want => self.refused += 1,
            other => {
                self.unexpected += 1;
                log!("rogue-driver: UNEXPECTED {what}: {other:?} (wanted {want:?})");
            }
        }
    }

    fn check(&mut self, what: &str, ok: bool) {
        if !ok {
            self.unexpected += 1;
            log!("rogue-driver: UNEXPECTED {what}");
        }
    }
}

fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => {
            log!("rogue-driver: no {kind:?} capability `{name}` ({other:?})");
            exit(1)
        }
    }
}

fn main() {
    let pong = handle("pong", CapKind::Client);
    let pci = handle("edu", CapKind::Pci);
    let irq = handle("edu-irq", CapKind::Irq);
    let dma = handle("dma", CapKind::Dma);
    let mut t = Tally::default();
    let mut seq = 0;
    iommu::attach_hostile(pci, dma, handle("iommu", CapKind::Client), &mut t);
    group(
        pong,
        &mut seq,
        &t,
        "(0) bus mastering before attach and forged IOMMU requests refused",
    );
    let edu = match Edu::map(handle("edu-bar0", CapKind::Mmio), pci) {
        Ok(edu) => edu,
        Err(e) => {
            log!("rogue-driver: cannot map edu: {e:?}");
            exit(1)
        }
    };
    mmio_pointers(pong, &edu, &mut t);
    group(
        pong,
        &mut seq,
        &t,
        "(2) kernel copies through its MMIO refused: bad pointer",
    );
    msi(pci, irq, &edu, &mut t);
    group(
        pong,
        &mut seq,
        &t,
        "(4) MSI is the kernel's; edu's interrupt arrived as granted",
    );
    config(pci, &mut t);
    group(
        pong,
        &mut seq,
        &t,
        "(6) config writes outside the allow-list refused",
    );
    let dma_at = edu.start_dma_to_ram(KERNEL_LOAD);
    log!("rogue-driver: (7) edu is writing to {dma_at:#x} by DMA with bus mastering on; dying now");
    log!("rogue-driver: all attempts refused");
    forge_syscall()
}

/// Pointers into our own edu registers, where the kernel would copy.
#[allow(unsafe_code)]
fn mmio_pointers(pong: Handle, edu: &Edu, t: &mut Tally) {
    let regs = edu.base();
    let raw = |nr: Sysnum, args: [u64; 6]| {
        // SAFETY: every pointer argument is our MMIO mapping, which the
        // kernel must refuse; if it did not, it would write device
        // registers, never memory a Rust reference covers.
        check(unsafe { syscall6(nr as u64, args) })
    };
    t.expect(
        "log from MMIO",
        raw(Sysnum::Log, [regs, 16, 0, 0, 0, 0]),
        Error::BadPointer,
    );
    t.expect(
        "cap_lookup from MMIO",
        raw(Sysnum::CapLookup, [regs, 8, 0, 0, 0, 0]),
        Error::BadPointer,
    );
    let mut reply = [0u8; MAX_MESSAGE];
    let reply_at = reply.as_mut_ptr() as u64;
    t.expect(
        "call with a request in MMIO",
        raw(Sysnum::Call, [pong.0, regs, 16, reply_at, 256, 0]),
        Error::BadPointer,
    );
    let request = ping_bytes();
    t.expect(
        "call replying into MMIO",
        raw(
            Sysnum::Call,
            [
                pong.0,
                request.as_ptr() as u64,
                request.len() as u64,
                regs,
                256,
                0,
            ],
        ),
        Error::BadPointer,
    );
    let _ = set_timer(time().ns + 10_000_000);
    t.expect(
        "recv into MMIO",
        raw(Sysnum::Recv, [regs, 256, u64::from(NOTIFY_TIMER), 0, 0, 0]),
        Error::BadPointer,
    );
    let _ = set_timer(0);
    t.check(
        "edu still answers its identity",
        edu.ident() == device::EDU_IDENT,
    );
}

/// The MSI structure is the kernel's; the interrupt works as granted.
fn msi(pci: Handle, irq: Handle, edu: &Edu, t: &mut Tally) {
    let Some(cap) = device::find_capability(pci, device::CAP_MSI) else {
        t.check("edu has an MSI capability", false);
        return;
    };
    let target = irq_info(irq);
    let data_at = cap + 12; // edu's MSI is 64-bit
    let programmed = pci_config_read(pci, data_at, 2);
    t.check(
        "the kernel programmed edu's MSI data with the granted vector",
        matches!((&target, programmed), (Ok(m), Ok(d)) if m.data == d),
    );
    t.expect(
        "MSI address",
        pci_config_write(pci, cap + 4, 4, 0xfee0_0000),
        Error::NotPermitted,
    );
    // Delivery mode NMI (0b100 in bits 8..11), as the review did.
    t.expect(
        "MSI data for NMI delivery",
        pci_config_write(pci, data_at, 2, 0x400),
        Error::NotPermitted,
    );
    t.expect(
        "MSI control",
        pci_config_write(pci, cap + 2, 2, 0),
        Error::NotPermitted,
    );
    t.check(
        "MSI data unchanged",
        pci_config_read(pci, data_at, 2) == programmed,
    );
    // The interrupt the kernel programmed arrives as our notification bit.
    let bits = EDU_IRQ_BIT;
    let _ = set_timer(time().ns + 100_000_000);
    edu.raise_interrupt();
    let got = wait(bits | NOTIFY_TIMER);
    let _ = set_timer(0);
    t.check(
        "edu's MSI arrived as notification bit 1",
        matches!(got, Ok(b) if b & bits != 0),
    );
    edu.ack_interrupt();
    t.check("irq_ack", irq_ack(irq).is_ok());
}

/// Writes outside the allow-list are refused; the command register keeps
/// only the bits a driver may set.
fn config(pci: Handle, t: &mut Tally) {
    let bar0 = pci_config_read(pci, 0x10, 4);
    for (what, offset, width) in [
        ("BAR0", 0x10, 4),
        ("BAR1", 0x14, 4),
        ("expansion ROM", 0x30, 4),
        ("header type", 0x0e, 1),
        ("BIST", 0x0f, 1),
        ("capability pointer", 0x34, 1),
        ("interrupt pin", 0x3d, 1),
        ("extended config space", 0x100, 4),
    ] {
        t.expect(
            what,
            pci_config_write(pci, offset, width, 0xffff_ffff),
            Error::NotPermitted,
        );
    }
    t.check("BAR0 unchanged", pci_config_read(pci, 0x10, 4) == bar0);
    let before = pci_config_read(pci, 0x04, 2).unwrap_or(0);
    t.check(
        "command write accepted",
        pci_config_write(pci, 0x04, 2, 0xffff).is_ok(),
    );
    let after = pci_config_read(pci, 0x04, 2).unwrap_or(0);
    t.check(
        "only I/O, memory, bus master, parity, SERR and INTx-disable bits can be set",
        after & !0x0547 == before & !0x0547,
    );
    // Back to memory and bus master only, MSI rather than INTx.
    let _ = pci_config_write(pci, 0x04, 2, 0x0406);
}

/// Jumps to the kernel's syscall entry as if a SYSCALL had been left in
/// ring 3, with a non-canonical return address in `rcx`. A ring-3 jump
/// there faults (the page is the kernel's), with IF set, so the kernel
/// takes it for the fault it is and stops this service.
#[allow(unsafe_code)]
fn forge_syscall() -> ! {
    // SAFETY: the jump never returns: it faults at the target, and the
    // kernel stops this service there.
    unsafe {
        core::arch::asm!(
            "jmp {entry}",
            entry = in(reg) faultline_ipc::harness::SYSCALL_ENTRY,
            in("rcx") 0x8000_0000_dead_0000u64,
            in("r11") 0x202u64,
            in("rax") Sysnum::Yield as u64,
            options(noreturn),
        )
    }
}

fn ping_bytes() -> heapless::Vec<u8, MAX_MESSAGE> {
    let request = PingRequest::Ping {
        seq: 0,
        payload: heapless::Vec::new(),
    };
    let mut buf = [0u8; MAX_MESSAGE];
    let n = faultline_ipc::wire::encode(
        <Ping as faultline_ipc::protocol::Protocol>::PROTOCOL,
        &request,
        &mut buf,
    )
    .unwrap_or(0);
    heapless::Vec::from_slice(&buf[..n]).unwrap_or_default()
}

/// Ends a group: nothing unexpected, and pong still answers.
fn group(pong: Handle, seq: &mut u32, t: &Tally, line: &str) {
    *seq += 1;
    let payload = heapless::Vec::from_slice(b"still there?").unwrap_or_default();
    let request = PingRequest::Ping { seq: *seq, payload };
    let answer = Client::<Ping, _>::new(KernelTransport, pong).call(&request);
    let ok = matches!(&answer, Ok(PingResponse::Pong { seq: s, .. }) if *s == *seq);
    if t.unexpected > 0 || !ok {
        log!(
            "rogue-driver: some attempts were NOT refused ({} unexpected; pong: {answer:?})",
            t.unexpected
        );
        exit(1)
    }
    log!(
        "rogue-driver: {line} ({} refusals so far); pong still answers",
        t.refused
    );
}
