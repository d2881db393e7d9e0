//! The model run (feature `model-unit`): this service's own code — the
//! driver core, the service's unit bookkeeping and the fault desk — drives
//! a software VT-d unit, the strict VT-d model of `faultline-iommu-core`
//! (ECAP.PRS=1 PDS=1), instead of hardware: QEMU's intel-iommu has no page
//! request queue, so this is how the page request path (PCIe PRI) runs
//! inside the guest. A scripted PRI device ([`script`]) writes page
//! requests into the model's queue; the desk reads them and hands the page
//! groups over the real kernel IPC path (`faults` protocol, deferred
//! replies) to a real handler service, whose answers come back the same
//! way and leave as page group responses through the model's invalidation
//! queue. The model's judge checks every response; the run logs its
//! verdict and exits 1 on any violation.
//!
//! The device uses the requester ID of the function named by the
//! handler's `faults` grant, which the kernel resolves when the handler
//! registers ([`ModelKernel`] keeps it).
//!
//! With the `bench` feature the run times page groups instead
//! ([`bench`]).
//!
//! Log lines: `iommu: model run: a software VT-d unit ...` first, the
//! steps' lines, `iommu: model run: N groups needing a response, N
//! answered exactly once (...), 0 violations`, the desk's summary.

#[cfg(feature = "bench")]
mod bench;
mod script;

use alloc::boxed::Box;

use faultline_iommu_core::model::{
    Model, ModelConfig, ModelDelay, ModelMemory, ModelRegisters, Responder,
};
use faultline_iommu_core::{Config, Unit};
use faultline_ipc::abi::{Error, NOTIFY_TIMER};
use faultline_ipc::channel::{Either, Incoming, RecvError, ReplyToken};
use faultline_ipc::protocol::iommu::{Bdf, Iommu, IommuError, IommuResponse};
use faultline_vtd::TranslationMode;
use hermit_sync::ExclusiveCell;
use iommu::desk::{Desk, IommuServer, Summary};
use iommu::kernel::Kernel;
use iommu::service::Service;
use userlib::{KernelTransport, Pinned, SysError, client_faults, exit, log, set_timer, time};

type ModelService = Service<ModelRegisters, ModelMemory, ModelDelay>;

/// A pause long enough for the console budget to refill a whole burst
/// (4 KiB at 16 KiB a second).
pub const LOG_PAUSE_NS: u64 = 300_000_000;

/// The fault desk (large: a static, not the stack).
static DESK: ExclusiveCell<Desk> = ExclusiveCell::new(Desk::new());

/// The kernel as the desk asks it: only fault grants mean anything here
/// (no driver attaches a device to the model).
struct ModelKernel {
    /// The function the last registered handler's grant names.
    handler_bdf: Option<u16>,
}

fn refused<T>() -> Result<T, SysError> {
    Err(SysError::Kernel(Error::NotFound))
}

impl Kernel for ModelKernel {
    fn client_pci(&mut self, _: &ReplyToken, _: u8) -> Result<(u16, Option<u8>), SysError> {
        refused()
    }

    fn client_faults(&mut self, token: &ReplyToken, handle: u8) -> Result<(u16, u32), SysError> {
        let grant = client_faults(token, handle)?;
        self.handler_bdf = Some(grant.bdf);
        Ok((grant.bdf, grant.deadline_ms))
    }

    fn client_dma(&mut self, _: &ReplyToken, _: u8, _: u64, _: u64) -> Result<Pinned, SysError> {
        refused()
    }

    fn dma_unpin(&mut self, _: u64) -> Result<(), SysError> {
        refused()
    }

    fn device_translated(&mut self, _: u8, _: u16, _: bool) -> Result<(), SysError> {
        refused()
    }
}

/// The model, the service driving it, and the service's IPC.
pub struct Run {
    pub model: Model,
    service: Box<ModelService>,
    desk: &'static mut Desk,
    server: IommuServer<KernelTransport>,
    kernel: ModelKernel,
    /// The deadline the timer is set for.
    timer: u64,
    /// While pausing ([`Run::pause`]): when the pause ends.
    pause_until: u64,
}

fn now_ns() -> u64 {
    time().ns
}

impl Run {
    /// The desk reads the model's page request queue (what the service
    /// does on every wake-up). No device is attached: a requester is known
    /// only by its handler.
    pub fn read(&mut self) {
        self.desk
            .page_requests(&mut self.service, &[], now_ns(), &mut self.server);
    }

    /// Serves one message: a handler's `faults` call through the desk, a
    /// driver's `iommu` call refused, a timer tick for the deadlines.
    pub fn serve_one(&mut self) {
        match self.server.recv(NOTIFY_TIMER) {
            Ok(Incoming::Call {
                request: Either::Second(request),
                badge,
                token,
            }) => self.desk.handler(
                &mut self.service,
                &mut self.kernel,
                badge,
                token,
                request,
                &mut self.server,
            ),
            Ok(Incoming::Call {
                request: Either::First(_),
                badge,
                token,
            }) => {
                let refusal = IommuResponse::Refused(IommuError::NotPermitted);
                if let Err(e) = self.server.reply_as::<Iommu>(token, &refusal) {
                    log!("iommu: reply to badge {badge} failed: {e}");
                }
            }
            Ok(Incoming::Send { badge, .. }) => {
                log!("iommu: one-way message from badge {badge} ignored");
            }
            Ok(Incoming::Notification { .. }) => {}
            Err(RecvError::Malformed {
                badge, kind, error, ..
            }) => log!("iommu: refused {kind:?} from badge {badge}: {error}"),
            Err(RecvError::Transport(e)) => log!("iommu: receive failed: {e}"),
        }
        if self.desk.next_deadline().is_some() {
            self.desk
                .expire(&mut self.service, now_ns(), &mut self.server);
        }
        self.arm();
    }

    /// Sets the timer for the earliest fault deadline or the end of a
    /// pause, whichever comes first (none: no timer).
    fn arm(&mut self) {
        let next = match (self.desk.next_deadline(), self.pause_until) {
            (Some(d), 0) => d,
            (Some(d), p) => d.min(p),
            (None, p) => p,
        };
        if next != self.timer {
            self.timer = next;
            if let Err(e) = set_timer(next) {
                log!("iommu: setting the fault deadline timer refused: {e}");
            }
        }
    }

    /// Serves the handler until every group the model has queued a last
    /// request of has its response (or its deadline answers it).
    pub fn settle(&mut self) {
        while !self.model.unanswered().is_empty() {
            self.serve_one();
        }
    }

    /// Serves the handler for `ns` (timer-driven, so it costs nothing).
    /// The run logs in bursts, and the kernel gives each service's console
    /// lines a budget (4 KiB at once, 16 KiB a second; lines past it are
    /// dropped): a pause after each burst keeps every line of the run.
    pub fn pause(&mut self, ns: u64) {
        self.pause_until = now_ns() + ns;
        // Armed before the first receive: a service blocked with no timer
        // and nothing else to wake it lets the kernel end the run.
        self.arm();
        while now_ns() < self.pause_until {
            self.serve_one();
        }
        self.pause_until = 0;
        self.arm();
    }

    /// Serves until a handler has registered; the function its grant
    /// names.
    fn await_handler(&mut self) -> u16 {
        loop {
            if let Some(bdf) = self.kernel.handler_bdf.filter(|b| self.desk.handled(*b)) {
                return bdf;
            }
            self.serve_one();
        }
    }
}

/// Brings the model up as unit 0 of the service, serves the handler while
/// the script plays the PRI device, and judges.
pub fn main() -> ! {
    if !userlib::heap::init() {
        log!("iommu: model run: heap set up twice");
        exit(1)
    }
    log!(
        "iommu: model run: a software VT-d unit (the VT-d model, ECAP.PRS=1 PDS=1) driven by this \
         service's own code; its page requests come from a scripted PRI device, not hardware"
    );
    let Some(desk) = DESK.take() else {
        log!("iommu: fault desk taken twice");
        exit(1)
    };
    let model = Model::new(ModelConfig::scalable_with_page_requests());
    let config = Config {
        mode: TranslationMode::Scalable,
        ..Config::default()
    };
    let mut unit = match Unit::bring_up(model.registers(), model.memory(), model.delay(), config) {
        Ok(unit) => unit,
        Err(e) => {
            log!("iommu: model run: unit 0: {e}: not started");
            exit(1)
        }
    };
    if let Err(e) = unit.enable_page_requests() {
        log!("iommu: model run: unit 0: page request queue not set up: {e}");
        exit(1)
    }
    let mut service = Box::new(Service::new());
    if service.add_unit(0, unit).is_err() {
        log!("iommu: model run: no room for the unit");
        exit(1)
    }
    log!(
        "iommu: model run: unit 0: translation on (scalable mode), page request queue on (128 \
         requests, drain supported)"
    );
    let mut run = Run {
        model,
        service,
        desk,
        server: IommuServer::new(KernelTransport),
        kernel: ModelKernel { handler_bdf: None },
        timer: 0,
        pause_until: 0,
    };
    log!("iommu: serving");
    let rid = run.await_handler();
    log!(
        "iommu: model run: the scripted PRI device uses requester {} (the function the handler's \
         `faults` grant names, learned at its registration)",
        Bdf(rid)
    );
    #[cfg(feature = "bench")]
    bench::run(&mut run, rid);
    #[cfg(not(feature = "bench"))]
    script::run(&mut run, rid);
    verdict(&mut run)
}

/// The judge's verdict, the summary lines; then serves on (a handler
/// parked on its next pull keeps waiting for a reply, as in any run), or
/// exits 1 on a violation.
fn verdict(run: &mut Run) -> ! {
    run.pause(LOG_PAUSE_NS);
    let mut problems = run.model.violations();
    if let Err(idle) = run.model.check_idle() {
        for p in idle {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    let responses = run.model.responses();
    let by_unit = responses
        .iter()
        .filter(|(_, by)| *by == Responder::Hardware)
        .count() as u64;
    let software = responses.len() as u64 - by_unit;
    let auto = run.desk.counters().auto;
    log!(
        "iommu: model run: {} groups needing a response, {} answered exactly once ({} by the \
         handler, {auto} automatically, {by_unit} by the unit on overflow), {} violations",
        responses.len(),
        if problems.is_empty() {
            responses.len()
        } else {
            0
        },
        software.saturating_sub(auto),
        problems.len()
    );
    let p = run.desk.page_counters();
    log!(
        "iommu: page requests={} groups={} stop-markers={} refused={} overflows={} \
         partials-discarded={} responses={} response-errors={}",
        p.requests,
        p.groups,
        p.stop_markers,
        p.refused,
        p.overflows,
        p.partials_discarded,
        p.responses,
        p.response_errors
    );
    log!("iommu: {}", Summary(&run.desk.counters()));
    if !problems.is_empty() {
        for problem in &problems {
            log!("iommu: model run: VIOLATION: {problem}");
        }
        exit(1)
    }
    log!("iommu: model run: done, the judge found nothing wrong");
    // A handler may still answer (a second answer of the last group): the
    // judge keeps watching.
    loop {
        run.serve_one();
        let late = run.model.violations();
        if !late.is_empty() {
            for problem in &late {
                log!("iommu: model run: VIOLATION: {problem}");
            }
            exit(1)
        }
    }
}
