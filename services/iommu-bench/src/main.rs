//! `faultline-iommu-bench`: how much a DMA mapping costs through the IOMMU
//! service, for `cargo xtask bench` (the `bench-iommu` deployment, with
//! the `full` feature) and, in its short form, a `cargo xtask test`
//! scenario (`bench-iommu-smoke`), so the benchmark cannot rot.
//!
//! It holds an edu function (`edu`, the PCI function only: the device never
//! runs a DMA here), a DMA budget (`dma`) and a client end of the `iommu`
//! protocol (`iommu`). It attaches the device to a domain, allocates a
//! 4 KiB and a 2 MiB buffer, and times (see `measure`):
//!
//! 1. `Query` requests (`iommu_query`): an IPC round trip to the service
//!    with no table work;
//! 2. map+unmap pairs of one 4 KiB page (`iommu_map_unmap`, payload 4096),
//!    with the map and the unmap alone (`iommu_map`, `iommu_unmap`);
//! 3. the same with one 2 MiB page (payload 2097152), when the service
//!    can map one. A 2 MiB page needs a 2 MiB-aligned frame, and the
//!    kernel's `dma_alloc` aligns buffers to 4 KiB only, so the buffer may
//!    not qualify; the service then refuses (`BadAlignment`) and the
//!    figure is printed as `"unavailable"` with the reason.
//!
//! It ends with `iommu-bench: done` and exits 0; any call that does not get
//! the answer the protocol promises logs `iommu-bench: FAILED ...` and
//! exits 1.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod domain;
mod measure;

use domain::{Domain, Failed};
use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::Handle;
use faultline_ipc::protocol::iommu::{Bdf, IommuError, PageSize};
use measure::Plan;
use userlib::{DmaRegion, cap_lookup, dma_alloc, exit, log, time};

userlib::service_entry!(main);

/// Requests (or pairs) per figure, with the `full` feature: what `cargo
/// xtask bench` records (the `bench-iommu` deployment).
#[cfg(feature = "full")]
const PLAN: Plan = Plan {
    warmup: 100,
    iterations: 2_000,
};
/// Requests (or pairs) per figure in the `bench-iommu-smoke` scenario:
/// within a minute even where a KVM without hardware nested paging takes
/// half a second a pair.
#[cfg(not(feature = "full"))]
const PLAN: Plan = Plan {
    warmup: 5,
    iterations: 50,
};
/// Where the 4 KiB page is mapped.
const SMALL_IOVA: u64 = 0x10_0000;
/// Where the 2 MiB page is mapped (2 MiB-aligned).
const LARGE_IOVA: u64 = 0x4000_0000;

/// Logs why the benchmark cannot go on and exits 1.
fn fail(what: core::fmt::Arguments) -> ! {
    log!("iommu-bench: FAILED {what}");
    exit(1)
}

/// The capability `name`, which must be of `kind`.
fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => fail(format_args!("no {kind:?} capability `{name}` ({other:?})")),
    }
}

fn alloc(dma: Handle, bytes: u64) -> DmaRegion {
    dma_alloc(dma, bytes)
        .unwrap_or_else(|e| fail(format_args!("DMA allocation of {bytes} bytes: {e:?}")))
}

fn main() -> ! {
    let pci = handle("edu", CapKind::Pci);
    let dma = handle("dma", CapKind::Dma);
    let iommu = handle("iommu", CapKind::Client);
    let (mut domain, info) =
        Domain::attach(iommu, pci).unwrap_or_else(|e| fail(format_args!("attach: {e}")));
    let hz = time().tsc_hz;
    log!(
        "iommu-bench: {} attached to domain {} ({:?}); {} warm-up and {} timed requests per figure, TSC {hz} Hz",
        Bdf(info.bdf),
        info.domain,
        info.mode,
        PLAN.warmup,
        PLAN.iterations
    );
    let small = alloc(dma, PageSize::Small.bytes());
    let large = alloc(dma, PageSize::Large.bytes());

    if let Err(e) = measure::queries(&mut domain, PLAN, hz) {
        fail(format_args!("query: {e}"));
    }
    let small_page = (SMALL_IOVA, small.buffer, PageSize::Small);
    if let Err(e) = measure::pairs(&mut domain, small_page, PLAN, hz) {
        fail(format_args!("4 KiB map+unmap: {e}"));
    }
    match large_page_usable(&mut domain, large.buffer) {
        Ok(()) => {
            let large_page = (LARGE_IOVA, large.buffer, PageSize::Large);
            if let Err(e) = measure::pairs(&mut domain, large_page, PLAN, hz) {
                fail(format_args!("2 MiB map+unmap: {e}"));
            }
        }
        Err(why) => {
            log!("iommu-bench: no 2 MiB figures: {why}");
            log!(
                "BENCH {{\"name\":\"iommu_map_unmap\",\"payload\":{},\"unavailable\":\"{why}\"}}",
                PageSize::Large.bytes()
            );
        }
    }
    log!("iommu-bench: done");
    exit(0)
}

/// Whether the service maps the 2 MiB buffer as one 2 MiB page (it is
/// unmapped again), or why not.
fn large_page_usable(domain: &mut Domain, buffer: u8) -> Result<(), &'static str> {
    let len = PageSize::Large.bytes();
    match domain.map(LARGE_IOVA, buffer, PageSize::Large) {
        Ok(()) => {
            if let Err(e) = domain.unmap(LARGE_IOVA, len) {
                fail(format_args!("unmapping the 2 MiB probe: {e}"));
            }
            Ok(())
        }
        Err(Failed::Refused(IommuError::BadAlignment)) => {
            Err("the DMA buffer is not 2 MiB-aligned (dma_alloc aligns to 4 KiB)")
        }
        Err(Failed::Refused(IommuError::Unsupported)) => {
            Err("the IOMMU unit has no 2 MiB second-level pages")
        }
        Err(e) => fail(format_args!("2 MiB map: {e}")),
    }
}
