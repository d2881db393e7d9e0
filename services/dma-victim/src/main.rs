//! `faultline-dma-victim`: the other service in the isolation scenarios'
//! "DMA aimed at another service's memory" check.
//!
//! It drives a second edu device only as far as a domain: it attaches it
//! through the IOMMU service, maps one page of its own DMA memory at
//! `0x300000` in that domain and fills it. Then it tells `edu-driver`
//! (notification `attacker`), which has its own edu write to the same
//! IOVA; nothing is mapped there in `edu-driver`'s domain, so the write
//! must fault there and never reach this page. When `edu-driver` says it
//! is done (this service's notification bit 1), the page is checked byte
//! for byte.
//!
//! Log lines: `dma-victim: page mapped at 0x300000 in domain N, filled`,
//! then `dma-victim: page unchanged after the other driver's DMA`, or
//! `dma-victim: UNEXPECTED ...` and exit 1.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::{Client, Handle};
use faultline_ipc::protocol::iommu::{Access, Iommu, IommuRequest, IommuResponse, PageSize};
use userlib::{KernelTransport, cap_lookup, dma_alloc, exit, log, notify, wait};

userlib::service_entry!(main);

/// Where the page is mapped in this service's domain.
const IOVA: u64 = 0x30_0000;
const PAGE: u64 = 4096;
/// What the page is filled with.
const FILL: u8 = 0x3c;
/// The notification bit `edu-driver` posts when its DMA is done.
const ATTACKER_DONE: u32 = 1 << 1;

fn fail(what: core::fmt::Arguments) -> ! {
    log!("dma-victim: UNEXPECTED {what}");
    exit(1)
}

fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => fail(format_args!("no {kind:?} capability `{name}` ({other:?})")),
    }
}

#[allow(unsafe_code)]
fn byte(vaddr: u64, i: u64) -> u8 {
    // SAFETY: `vaddr` is this service's own DMA page of `PAGE` bytes,
    // mapped read-write for its whole life and never a Rust reference;
    // `i < PAGE`.
    unsafe { core::ptr::read_volatile((vaddr + i) as *const u8) }
}

#[allow(unsafe_code)]
fn fill(vaddr: u64) {
    for i in 0..PAGE {
        // SAFETY: as in `byte`.
        unsafe { core::ptr::write_volatile((vaddr + i) as *mut u8, FILL) }
    }
}

fn main() -> ! {
    let pci = handle("edu", CapKind::Pci);
    let dma = handle("dma", CapKind::Dma);
    let attacker = handle("attacker", CapKind::Notification);
    let mut iommu = Client::<Iommu, _>::new(KernelTransport, handle("iommu", CapKind::Client));
    let pci_n = pci.0 as u8;
    let domain = match iommu.call(&IommuRequest::Attach { pci: pci_n }) {
        Ok(IommuResponse::Attached(info)) => info.domain,
        other => fail(format_args!("attach: {other:?}")),
    };
    let page = match dma_alloc(dma, PAGE) {
        Ok(region) => region,
        Err(e) => fail(format_args!("DMA allocation: {e:?}")),
    };
    fill(page.vaddr);
    let map = IommuRequest::Map {
        pci: pci_n,
        iova: IOVA,
        buffer: page.buffer,
        offset: 0,
        len: PAGE,
        access: Access::READ_WRITE,
        page: PageSize::Small,
    };
    match iommu.call(&map) {
        Ok(IommuResponse::Mapped { .. }) => {}
        other => fail(format_args!("map: {other:?}")),
    }
    log!("dma-victim: page mapped at {IOVA:#x} in domain {domain}, filled");
    if let Err(e) = notify(attacker) {
        fail(format_args!("telling edu-driver: {e:?}"));
    }
    if let Err(e) = wait(ATTACKER_DONE) {
        fail(format_args!("waiting for edu-driver: {e:?}"));
    }
    match (0..PAGE).find(|&i| byte(page.vaddr, i) != FILL) {
        None => log!("dma-victim: page unchanged after the other driver's DMA"),
        Some(i) => fail(format_args!(
            "byte {i} of the page is {:#04x}, not {FILL:#04x}",
            byte(page.vaddr, i)
        )),
    }
    loop {
        let _ = wait(ATTACKER_DONE);
    }
}
