//! `faultline-iommu`: the IOMMU service. It alone holds the VT-d units'
//! registers; it brings each up and gives drivers DMA domains over the
//! `iommu` protocol (the logic is in the `iommu` library next to this file).
//!
//! Capabilities: `vtd0`, `vtd1`, ... (each unit's registers, in DMAR order,
//! looked up until one is not found; one that does not map is reported and
//! skipped), `vtd<N>-fault` (the unit's fault event interrupt; whichever
//! notification bit the deployment gives it, any interrupt bit drains every
//! unit's fault records), `dma` (memory for tables and queues), and server
//! channels from drivers (any names; the badge tells clients apart).
//! Legacy mode unless built with the `scalable` feature.
//!
//! Log lines: the unit report (`iommu: VT-d unit 0: version 1.0, CAP ...`,
//! `iommu: unit 0 ECAP ...`, interrupt remapping, page requests: `no page
//! request queue (ECAP.PRS=0): page requests are not available` on QEMU
//! 10.0, else `page request queue on`); for a
//! unit an earlier instance left translating, `iommu: unit 0: translation
//! found on (an earlier instance): new empty tables installed with
//! translation kept on` (see `faultline_iommu_core::Config::take_over`);
//! then `iommu: unit 0: translation on (legacy mode, ...)` or `iommu: unit 0:
//! <reason>: not started`; `iommu: serving`; `iommu: revoked pin ...`;
//! `iommu: DMA fault from 00:03.0 at iova 0x... (write): <reason>`.
//!
//! Built with `model-unit`, the service maps no hardware unit: it runs the
//! model run instead (`model_run.rs`: its own code driving the VT-d model
//! as a software unit with a page request queue, inside the guest).
#![no_std]
#![no_main]
#![deny(unsafe_code)]
// The model run has its own entry point; the hardware path stays built.
#![cfg_attr(feature = "model-unit", allow(dead_code))]

#[cfg(feature = "model-unit")]
extern crate alloc;

mod inject;
mod memory;
mod mmio;
#[cfg(feature = "model-unit")]
mod model_run;

use core::fmt::Write;

use faultline_iommu_core::{Config, FaultRecord, Unit};
use faultline_ipc::abi::{CapKind, Error, NOTIFY_DMA_REVOKED, NOTIFY_TIMER, NOTIFY_USER_BITS};
use faultline_ipc::channel::{Either, Handle, Incoming, RecvError, ReplyToken};
use faultline_ipc::protocol::iommu::{Bdf, Iommu, IommuRequest, IommuResponse};
use faultline_vtd::TranslationMode;
use hermit_sync::ExclusiveCell;
use iommu::delay::ClockDelay;
use iommu::desk::{Desk, DriverCall, IommuServer};
use iommu::faults::FaultLog;
use iommu::interrupts::{InterruptRoutes, RemapError, remap_interrupts};
use iommu::kernel::Kernel;
use iommu::report::{Identity, check_mode, mode_name, translating, unit_report};
use iommu::service::{MAX_UNITS, Service};
use memory::PoolMemory;
use mmio::MmioRegisters;
use userlib::logging::log_fmt;
use userlib::{
    IrqRoute, KernelTransport, Pinned, SysError, cap_lookup, client_dma, client_faults,
    client_pci_unit, device_translated, dma_revoked, dma_unpin, exit, irq_ack, irq_info, irq_remap,
    irq_route, log, mmio_map, set_timer, time, vtd_info,
};

#[cfg(not(feature = "model-unit"))]
userlib::service_entry!(main);
#[cfg(feature = "model-unit")]
userlib::service_entry!(model_run::main);

type Delay = ClockDelay<fn() -> u64>;
type IommuService = Service<MmioRegisters, PoolMemory, Delay>;

/// The service's state lives here, not on its small stack.
static SERVICE: ExclusiveCell<IommuService> = ExclusiveCell::new(Service::new());
/// The fault pipeline's state, likewise.
static DESK: ExclusiveCell<Desk> = ExclusiveCell::new(Desk::new());

/// The mode this build brings units up in.
const MODE: TranslationMode = if cfg!(feature = "scalable") {
    TranslationMode::Scalable
} else {
    TranslationMode::Legacy
};

/// Fault records routed per drain (QEMU has one; hardware has up to 256
/// per unit).
const MAX_RECORDS_PER_DRAIN: usize = 64;

/// Most pins taken from the kernel per revocation notification.
const MAX_REVOKED_PER_WAKE: usize = 1024;

/// The kernel, as the request logic asks it.
struct Syscalls {
    /// Each unit's register capability, by DMAR index.
    vtd: [Option<Handle>; MAX_UNITS],
}

impl Kernel for Syscalls {
    fn client_pci(
        &mut self,
        token: &ReplyToken,
        handle: u8,
    ) -> Result<(u16, Option<u8>), SysError> {
        client_pci_unit(token, handle)
    }

    fn client_faults(&mut self, token: &ReplyToken, handle: u8) -> Result<(u16, u32), SysError> {
        client_faults(token, handle).map(|g| (g.bdf, g.deadline_ms))
    }

    fn client_dma(
        &mut self,
        token: &ReplyToken,
        buffer: u8,
        offset: u64,
        len: u64,
    ) -> Result<Pinned, SysError> {
        client_dma(token, buffer, offset, len)
    }

    fn dma_unpin(&mut self, pin: u64) -> Result<(), SysError> {
        dma_unpin(pin)
    }

    fn device_translated(&mut self, unit: u8, bdf: u16, on: bool) -> Result<(), SysError> {
        let vtd = self
            .vtd
            .get(usize::from(unit))
            .copied()
            .flatten()
            .ok_or(SysError::Kernel(Error::BadHandle))?;
        device_translated(vtd, bdf, on)
    }
}

/// The kernel's interrupt lines, asked through one unit's register
/// capability.
struct Lines(Handle);

impl InterruptRoutes for Lines {
    fn route(&mut self, irq: u8) -> Result<Option<IrqRoute>, SysError> {
        irq_route(self.0, irq)
    }

    fn remap(&mut self, irq: u8, irte: u16) -> Result<(), SysError> {
        irq_remap(self.0, irq, Some(irte))
    }
}

fn now_ns() -> u64 {
    time().ns
}

fn cap_name(index: u8, suffix: &str) -> heapless::String<24> {
    let mut name = heapless::String::new();
    let _ = write!(name, "vtd{index}{suffix}");
    name
}

fn main() -> ! {
    let Some(service) = SERVICE.take() else {
        log!("iommu: state taken twice");
        exit(1)
    };
    let dma = match cap_lookup("dma") {
        Ok((h, CapKind::Dma)) => h,
        other => {
            log!("iommu: no DMA capability `dma` ({other:?}): cannot build tables");
            exit(1)
        }
    };
    let mut kernel = Syscalls {
        vtd: [None; MAX_UNITS],
    };
    let mut fault_irqs: heapless::Vec<Handle, MAX_UNITS> = heapless::Vec::new();
    for index in 0u8.. {
        let name = cap_name(index, "");
        let handle = match cap_lookup(&name) {
            Ok((h, CapKind::Mmio)) => h,
            Ok((_, kind)) => {
                log!("iommu: {name} is a {kind:?} capability, not registers: skipped");
                continue;
            }
            Err(SysError::Kernel(Error::NotFound)) => break,
            Err(e) => {
                log!("iommu: looking up {name} refused ({e}): skipped");
                continue;
            }
        };
        if usize::from(index) >= MAX_UNITS {
            log!("iommu: {name}: this service drives {MAX_UNITS} units at most: skipped");
            continue;
        }
        if let Some(irq) = start_unit(service, index, handle, dma) {
            kernel.vtd[usize::from(index)] = Some(handle);
            if let Some(irq) = irq {
                let _ = fault_irqs.push(irq);
            }
        }
    }
    if service.units().next().is_none() {
        log!("iommu: no VT-d unit started: every attach will be refused");
    }
    log!("iommu: serving");
    serve(service, &mut kernel, &fault_irqs)
}

/// Maps, reports and brings up unit `index`; `Some` with its fault
/// interrupt (if it has one) when it is up and added to the service.
#[inline(never)]
fn start_unit(
    service: &mut IommuService,
    index: u8,
    handle: Handle,
    dma: Handle,
) -> Option<Option<Handle>> {
    let region = match mmio_map(handle) {
        Ok(region) => region,
        Err(e) => {
            log!("iommu: unit {index}: registers not mapped ({e}): skipped");
            return None;
        }
    };
    let mut regs = MmioRegisters::new(region);
    let id = Identity::read(&mut regs);
    unit_report(index, &id, log_fmt);
    if let Err(refusal) = check_mode(MODE, id.ecap) {
        log!("iommu: unit {index}: {refusal}: not started");
        return None;
    }
    if translating(&mut regs) {
        inject::took_over();
        log!(
            "iommu: unit {index}: translation found on (an earlier instance): new empty tables \
             installed with translation kept on"
        );
    }
    // The DMAR's host address width bounds every address the unit is
    // given (tables, queue); 48 where the kernel cannot say.
    let host_address_width = match vtd_info(handle) {
        Ok(info) => info.host_address_width,
        Err(e) => {
            log!("iommu: unit {index}: DMAR description refused ({e}): assuming 48-bit addresses");
            48
        }
    };
    let config = Config {
        mode: MODE,
        take_over: true,
        host_address_width,
        ..Config::default()
    };
    let delay = ClockDelay::new(now_ns as fn() -> u64);
    let mut unit = match Unit::bring_up(regs, PoolMemory::new(dma), delay, config) {
        Ok(unit) => unit,
        Err(e) => {
            log!("iommu: unit {index}: {e}: not started");
            return None;
        }
    };
    let stale = unit.drain_faults(|_| ());
    let cap = unit.capability();
    log!(
        "iommu: unit {index}: translation on ({} mode, {}-bit domains, {} pages, {} IOTLB \
         invalidation{})",
        mode_name(MODE),
        unit.domain_address_bits(),
        if cap
            .second_level_large_pages()
            .contains(faultline_vtd::LargePageSizes::SIZE_2M)
        {
            "4 KiB and 2 MiB"
        } else {
            "4 KiB"
        },
        if cap.page_selective_invalidation() {
            "page-selective"
        } else {
            "domain-selective"
        },
        if stale.records > 0 {
            ", stale fault records cleared"
        } else {
            ""
        },
    );
    remap(&mut unit, index, handle);
    let irq = fault_interrupt(&mut unit, index);
    page_requests(&mut unit, index);
    if service.add_unit(index, unit).is_err() {
        log!(
            "iommu: unit {index}: no room for another unit: left translating with nothing attached"
        );
        return None;
    }
    Some(irq)
}

/// Turns interrupt remapping on where the unit has it, and says whether
/// interrupts are isolated from DMA.
fn remap(unit: &mut Unit<MmioRegisters, PoolMemory, Delay>, index: u8, handle: Handle) {
    if !unit.extended_capability().interrupt_remapping() {
        // The unit report already said so.
        return;
    }
    match remap_interrupts(unit, &mut Lines(handle)) {
        Ok(lines) => log!(
            "iommu: unit {index}: interrupt remapping on: {lines} device interrupt(s), each \
             accepted only from its function"
        ),
        Err(e @ RemapError::Remap { .. }) => log!(
            "iommu: unit {index}: interrupt remapping on, but {e}: that line's interrupts are \
             blocked"
        ),
        Err(e) => log!(
            "iommu: unit {index}: interrupt remapping not enabled ({e}): interrupts are not \
             isolated from DMA"
        ),
    }
}

/// Sets up unit `index`'s page request queue where it has one. Its
/// requests are read on every wake-up of the service (no page request
/// event interrupt is granted to it).
fn page_requests(unit: &mut Unit<MmioRegisters, PoolMemory, Delay>, index: u8) {
    if !unit.page_requests_supported() {
        // The unit report already said page requests are not available.
        return;
    }
    match unit.enable_page_requests() {
        Ok(()) => log!(
            "iommu: unit {index}: page request queue on (128 requests; drain {}): read on every \
             wake-up",
            if unit.page_drain_supported() {
                "supported"
            } else {
                "not supported"
            }
        ),
        Err(e) => log!("iommu: unit {index}: page request queue not set up: {e}"),
    }
}

/// Programs unit `index`'s fault event interrupt with the MSI the kernel
/// granted as `vtd<index>-fault`.
fn fault_interrupt(unit: &mut Unit<MmioRegisters, PoolMemory, Delay>, index: u8) -> Option<Handle> {
    let name = cap_name(index, "-fault");
    let irq = match cap_lookup(&name) {
        Ok((h, CapKind::Irq)) => h,
        other => {
            log!(
                "iommu: unit {index}: no fault interrupt ({name}: {other:?}): faults are read only when the service wakes"
            );
            return None;
        }
    };
    match irq_info(irq) {
        Ok(msi) => {
            unit.enable_fault_interrupt(msi.address as u32, msi.data as u16);
            Some(irq)
        }
        Err(e) => {
            log!(
                "iommu: unit {index}: {name} has no MSI ({e}): faults are read only when the service wakes"
            );
            None
        }
    }
}

fn serve(service: &mut IommuService, kernel: &mut Syscalls, fault_irqs: &[Handle]) -> ! {
    let Some(desk) = DESK.take() else {
        log!("iommu: fault desk taken twice");
        exit(1)
    };
    let mut server = IommuServer::new(KernelTransport);
    let mut faults = FaultLog::new();
    // Units already reported as failed, one bit per slot.
    let mut failed = 0u32;
    // The deadline the timer is set for.
    let mut timer = 0u64;
    // A unit without a fault interrupt has its records read on every
    // wake-up.
    let polled = fault_irqs.len() < service.units().count();
    // Units with a page request queue have it read on every wake-up.
    let page_queues = service
        .units()
        .any(|s| s.unit.page_request_queue().is_some());
    loop {
        let incoming = server.recv(NOTIFY_DMA_REVOKED | NOTIFY_TIMER | NOTIFY_USER_BITS);
        // Fault records first: on the fault interrupt; before a driver's
        // fault question, so a fault recorded before its completion
        // interrupt is known; and on every wake-up while a unit has no
        // fault interrupt. Nothing else reads them (each read is an MMIO
        // access, and a fault should cost few).
        let irq =
            matches!(incoming, Ok(Incoming::Notification { bits }) if bits & NOTIFY_USER_BITS != 0);
        let question = matches!(
            &incoming,
            Ok(Incoming::Call { request: Either::First(request), .. })
                if Desk::asks_about_faults(request)
        );
        if irq || question || polled {
            let irqs = if irq { fault_irqs } else { &[] };
            drain_faults(service, desk, &mut server, &mut faults, irqs);
        }
        if page_queues {
            let known = attached(service);
            desk.page_requests(service, &known, now_ns(), &mut server);
        }
        desk.register_accesses = mmio::accesses();
        match incoming {
            Ok(Incoming::Call {
                request: Either::First(request),
                badge,
                token,
            }) => {
                inject::before(&request);
                if let DriverCall::Other(token, request) =
                    desk.driver(kernel, token, request, &mut server)
                {
                    let leaving = match request {
                        IommuRequest::Detach { pci } if page_queues => {
                            leaving(service, kernel, badge, &token, pci)
                        }
                        _ => None,
                    };
                    let response = service.handle(kernel, badge, &token, request);
                    if let Err(e) = server.reply_as::<Iommu>(token, &response) {
                        log!("iommu: reply to badge {badge} failed: {e}");
                    }
                    if let Some(a) = leaving.filter(|_| response == IommuResponse::Detached) {
                        let known = attached(service);
                        desk.device_gone(
                            service,
                            a.slot,
                            a.bdf,
                            a.domain,
                            &known,
                            now_ns(),
                            &mut server,
                        );
                    }
                }
                report_failed_units(service, &mut failed);
            }
            Ok(Incoming::Call {
                request: Either::Second(request),
                badge,
                token,
            }) => desk.handler(service, kernel, badge, token, request, &mut server),
            Ok(Incoming::Send { badge, .. }) => {
                log!("iommu: one-way message from badge {badge} ignored");
            }
            Ok(Incoming::Notification { bits }) => {
                if bits & NOTIFY_DMA_REVOKED != 0 {
                    revoke(service, kernel);
                    report_failed_units(service, &mut failed);
                }
            }
            Err(RecvError::Malformed {
                badge, kind, error, ..
            }) => log!("iommu: refused {kind:?} from badge {badge}: {error}"),
            Err(RecvError::Transport(e)) => log!("iommu: receive failed: {e}"),
        }
        // The clock is read only while a fault is outstanding.
        if desk.next_deadline().is_some() {
            desk.expire(service, now_ns(), &mut server);
        }
        let next = desk.next_deadline().unwrap_or(0);
        if next != timer {
            timer = next;
            if let Err(e) = set_timer(next) {
                log!("iommu: setting the fault deadline timer refused: {e}");
            }
        }
    }
}

/// The devices with a domain: requesters the page request path knows.
fn attached(service: &IommuService) -> heapless::Vec<u16, { iommu::service::MAX_ATTACHED }> {
    service.attachments().iter().map(|a| a.bdf).collect()
}

/// The attachment a `Detach` of handle `pci` by `badge` removes, looked
/// up before it is gone (its page requests are drained after).
fn leaving(
    service: &IommuService,
    kernel: &mut Syscalls,
    badge: u64,
    token: &ReplyToken,
    pci: u8,
) -> Option<iommu::service::Attachment> {
    let (bdf, _) = iommu::kernel::Kernel::client_pci(kernel, token, pci).ok()?;
    service
        .attachments()
        .iter()
        .find(|a| a.bdf == bdf && a.badge == badge)
        .copied()
}

/// Logs each unit that failed since the last call (once per unit).
fn report_failed_units(service: &mut IommuService, reported: &mut u32) {
    for (i, slot) in service.units().enumerate() {
        if slot.failed && *reported & (1 << i) == 0 {
            *reported |= 1 << i;
            log!(
                "iommu: unit {}: the hardware did not answer in time: no more requests for its \
                 devices, and memory it may still cache stays pinned",
                slot.index
            );
        }
    }
}

/// Unmaps and releases every pin whose owner stopped.
fn revoke(service: &mut IommuService, kernel: &mut Syscalls) {
    for _ in 0..MAX_REVOKED_PER_WAKE {
        let pin = match dma_revoked() {
            Ok(Some(pin)) => pin,
            Ok(None) => return,
            Err(e) => {
                log!("iommu: asking for revoked pins refused: {e}");
                return;
            }
        };
        let r = service.revoke(kernel, pin);
        match r.bdf {
            Some(bdf) => log!(
                "iommu: revoked pin {pin}: {} mapping(s), {} page(s) of {} unmapped{}",
                r.mappings,
                r.pages,
                Bdf(bdf),
                if r.released {
                    ""
                } else {
                    "; invalidation failed, memory stays pinned"
                }
            ),
            None => log!("iommu: revoked pin {pin}: nothing mapped"),
        }
    }
}

/// Reads and clears every unit's fault records, logs them (rate-limited),
/// feeds the DMA faults to the fault pipeline, and re-enables the fault
/// interrupts in `irqs`.
fn drain_faults(
    service: &mut IommuService,
    desk: &mut Desk,
    server: &mut IommuServer<KernelTransport>,
    faults: &mut FaultLog,
    irqs: &[Handle],
) {
    let mut records: heapless::Vec<FaultRecord, MAX_RECORDS_PER_DRAIN> = heapless::Vec::new();
    let mut overflowed = false;
    for slot in service.units() {
        let summary = slot.unit.drain_faults(|f| {
            faults.note(&f, log_fmt);
            if records.push(f).is_err() {
                log!(
                    "iommu: more than {MAX_RECORDS_PER_DRAIN} fault records at once: {f} not routed"
                );
            }
        });
        if summary.overflow {
            overflowed = true;
        }
        faults.drained(slot.index, summary, log_fmt);
    }
    let now = now_ns();
    for record in &records {
        desk.record(service, record, now, server);
    }
    if overflowed {
        desk.overflowed(server);
    }
    for irq in irqs {
        if let Err(e) = irq_ack(*irq) {
            log!("iommu: acknowledging the fault interrupt refused: {e}");
        }
    }
}
