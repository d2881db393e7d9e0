//! The fault desk: the IOMMU service's side of the fault pipeline. It
//! feeds the DMA faults drained from the fault recording registers into
//! [`Pipeline`], serves fault handlers (the `faults` protocol) and the
//! drivers' fault questions (`FaultMark`, `AwaitFault`, `RetryVerified`,
//! `FaultSummary` of the `iommu` protocol), and turns the pipeline's
//! replies into IPC replies: a pull or a question is a reply token kept
//! until there is something to say (a deferred reply), so the service
//! never waits for a handler or a driver.
//!
//! A handler names its device by its own fault capability, which the
//! kernel resolves for the client of the call ([`Kernel::client_faults`]),
//! with the deadline the deployment set for it. A handler that answers
//! with `map` gets the faulting page mapped from the memory the device's
//! driver reserved ([`Service::demand_map`]), and nothing else.

use core::fmt;

use embedded_hal::delay::DelayNs;
use faultline_fault_pipeline::{AutoReason, Await, Gone, NewFault, Outbox, Pending, Pipeline};
use faultline_iommu_core::prq::{GroupId, PageGroupResponse};
use faultline_iommu_core::{DmaMemory, FaultAccess, FaultRecord, Registers};
use faultline_ipc::channel::{Pair, ReplyToken, Server, Transport};
use faultline_ipc::protocol::faults::{
    Fault, Faults, FaultsError, FaultsRequest, FaultsResponse, PageGroup, ResponseCode,
};
use faultline_ipc::protocol::iommu::{
    Bdf, FaultCounters, Iommu, IommuError, IommuRequest, IommuResponse, SettledFault,
};
use userlib::log;

mod pages;

pub use pages::PageCounters;

use crate::kernel::Kernel;
use crate::service::Service;

/// The service's server: drivers speak `iommu`, handlers `faults`.
pub type IommuServer<T> = Server<Pair<Iommu, Faults>, T>;

/// Automatic answers logged one by one before they are only counted.
pub const LOGGED_AUTOMATIC: u64 = 16;

/// The pipeline, and what the service counts beside it.
pub struct Desk {
    pipeline: Pipeline<ReplyToken>,
    pages: pages::Pages,
    /// Times the fault records overflowed (FSTS.PFO).
    overflows: u64,
    /// VT-d register accesses so far, as the register layer counts them
    /// (the image sets it; host tests leave it 0).
    pub register_accesses: u64,
}

/// A driver's request, after the desk has looked at it.
#[derive(Debug)]
pub enum DriverCall {
    /// Answered (or parked) by the desk.
    Taken,
    /// Not a fault question: the service's to serve.
    Other(ReplyToken, IommuRequest),
}

/// Page group responses one desk call can queue before they are sent:
/// every outstanding fault, and every request of a full queue read.
pub const RESPONSE_BUFFER: usize = faultline_fault_pipeline::MAX_OUTSTANDING + pages::MAX_READ;

/// The pipeline's replies, sent as IPC replies; page group responses are
/// queued for [`Desk::flush`].
struct Replies<'a, T: Transport> {
    server: &'a mut IommuServer<T>,
    automatic: u64,
    responses: &'a mut heapless::Vec<PageGroupResponse, RESPONSE_BUFFER>,
}

impl<'a, T: Transport> Replies<'a, T> {
    fn new(
        automatic: u64,
        server: &'a mut IommuServer<T>,
        responses: &'a mut heapless::Vec<PageGroupResponse, RESPONSE_BUFFER>,
    ) -> Self {
        Self {
            server,
            automatic,
            responses,
        }
    }
}

impl<T: Transport> Outbox<ReplyToken> for Replies<'_, T> {
    fn deliver(&mut self, to: ReplyToken, fault: Fault) -> Result<(), Gone> {
        self.server
            .reply_as::<Faults>(to, &FaultsResponse::Fault(fault))
            .map_err(|_| Gone)
    }

    fn deliver_group(&mut self, to: ReplyToken, group: PageGroup) -> Result<(), Gone> {
        self.server
            .reply_as::<Faults>(to, &FaultsResponse::PageGroup(group))
            .map_err(|_| Gone)
    }

    fn respond(&mut self, fault: &Pending, code: ResponseCode) {
        let Some(group) = fault.fault.group else {
            // A DMA fault: the driver is told; the hardware needs nothing.
            return;
        };
        let response = PageGroupResponse {
            group: GroupId {
                rid: fault.fault.bdf,
                pasid: fault.fault.pasid,
                prg_index: group.prg_index,
            },
            code: code.code(),
        };
        if self.responses.push(response).is_err() {
            // The buffer holds every fault one call can settle.
            log!(
                "iommu: page group response buffer full: {:?} not sent",
                response.group
            );
        }
    }

    fn settled(&mut self, to: ReplyToken, fault: SettledFault) {
        // A driver that is gone has nobody to tell.
        let _ = self
            .server
            .reply_as::<Iommu>(to, &IommuResponse::FaultSettled(fault));
    }

    fn automatic(&mut self, fault: &Pending, reason: AutoReason) {
        self.automatic += 1;
        if self.automatic <= LOGGED_AUTOMATIC {
            log!("iommu: {}", Automatic(fault, reason));
        }
    }
}

/// `fault 3 of 00:03.0 at iova 0x...: answered Invalid automatically: <why>`.
struct Automatic<'a>(&'a Pending, AutoReason);

impl fmt::Display for Automatic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(p, reason) = self;
        if let Some(group) = p.fault.group {
            return write!(
                f,
                "page group {} of {} (PASID {:?}, {} page(s) from {:#x}): answered {:?} ({:#x}) \
                 automatically: {}",
                group.prg_index,
                Bdf(p.fault.bdf),
                p.fault.pasid,
                group.pages().len(),
                p.fault.iova,
                reason.code(),
                reason.code().code(),
                reason.text()
            );
        }
        write!(
            f,
            "fault {} of {} at iova {:#x}: answered {:?} ({:#x}) automatically: {}",
            p.token.0,
            Bdf(p.fault.bdf),
            p.fault.iova,
            reason.code(),
            reason.code().code(),
            reason.text()
        )
    }
}

impl Default for Desk {
    fn default() -> Self {
        Self::new()
    }
}

impl Desk {
    pub const fn new() -> Self {
        Self {
            pipeline: Pipeline::new(),
            pages: pages::Pages::new(),
            overflows: 0,
            register_accesses: 0,
        }
    }

    pub fn counters(&self) -> FaultCounters {
        FaultCounters {
            overflows: self.overflows,
            register_accesses: self.register_accesses,
            ..self.pipeline.counters()
        }
    }

    /// When the earliest outstanding fault must be answered.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pipeline.next_deadline()
    }

    /// The fault records overflowed: the hardware dropped faults without
    /// saying whose, so every device the pipeline knows is marked as
    /// having maybe faulted (its driver's question is answered `Lost`).
    pub fn overflowed<T: Transport>(&mut self, server: &mut IommuServer<T>) {
        self.overflows += 1;
        let mut out = Replies::new(
            self.pipeline.counters().auto,
            server,
            &mut self.pages.responses,
        );
        self.pipeline.overflowed(&mut out);
    }

    /// One drained fault record. Interrupt remapping faults (reasons
    /// 0x20 and up) are only logged: no handler answers for them.
    pub fn record<R: Registers, M: DmaMemory, D: DelayNs, T: Transport>(
        &mut self,
        service: &Service<R, M, D>,
        record: &FaultRecord,
        now_ns: u64,
        server: &mut IommuServer<T>,
    ) {
        if record.reason.code() >= 0x20 {
            return;
        }
        let fault = NewFault {
            bdf: record.source.0,
            iova: record.address,
            write: record.access == FaultAccess::Write,
            reason: record.reason.code(),
            pasid: record.pasid,
            backed: service.backed(record.source.0, record.address),
            group: None,
        };
        let mut out = Replies::new(
            self.pipeline.counters().auto,
            server,
            &mut self.pages.responses,
        );
        self.pipeline.record(fault, now_ns, &mut out);
    }

    /// Answers every fault past its deadline.
    pub fn expire<R: Registers, M: DmaMemory, D: DelayNs, T: Transport>(
        &mut self,
        service: &mut Service<R, M, D>,
        now_ns: u64,
        server: &mut IommuServer<T>,
    ) {
        let mut out = Replies::new(
            self.pipeline.counters().auto,
            server,
            &mut self.pages.responses,
        );
        self.pipeline.expire(now_ns, &mut out);
        self.flush(service);
    }

    /// Whether a handler is registered for `bdf` (a requester the service
    /// knows even without a domain).
    pub fn handled(&self, bdf: u16) -> bool {
        self.pipeline.handled(bdf)
    }

    /// Serves one `faults` request of handler `badge`.
    pub fn handler<R: Registers, M: DmaMemory, D: DelayNs, T: Transport>(
        &mut self,
        service: &mut Service<R, M, D>,
        kernel: &mut impl Kernel,
        badge: u64,
        token: ReplyToken,
        request: FaultsRequest,
        server: &mut IommuServer<T>,
    ) {
        let mut out = Replies::new(
            self.pipeline.counters().auto,
            server,
            &mut self.pages.responses,
        );
        let response = match request {
            FaultsRequest::Register { device } => match kernel.client_faults(&token, device) {
                Ok((bdf, deadline_ms)) => {
                    let held = self.pipeline.counters().auto;
                    match self.pipeline.register(badge, bdf, deadline_ms, &mut out) {
                        Ok(()) => {
                            let again = self.pipeline.counters().auto - held;
                            log!(
                                "iommu: fault handler (badge {badge}) registered for {}, deadline \
                                 {deadline_ms} ms{}",
                                Bdf(bdf),
                                Again(again)
                            );
                            FaultsResponse::Registered { bdf, deadline_ms }
                        }
                        Err(e) => FaultsResponse::Refused(e),
                    }
                }
                Err(_) => FaultsResponse::Refused(FaultsError::NoSuchDevice),
            },
            FaultsRequest::RegisterPasid { device, pasid } => {
                match kernel.client_faults(&token, device) {
                    Ok((bdf, deadline_ms)) => {
                        match self
                            .pipeline
                            .register_pasid(badge, bdf, pasid, deadline_ms, &mut out)
                        {
                            Ok(()) => {
                                log!(
                                    "iommu: fault handler (badge {badge}) registered for {} PASID \
                                     {pasid}, deadline {deadline_ms} ms",
                                    Bdf(bdf)
                                );
                                FaultsResponse::Registered { bdf, deadline_ms }
                            }
                            Err(e) => FaultsResponse::Refused(e),
                        }
                    }
                    Err(_) => FaultsResponse::Refused(FaultsError::NoSuchDevice),
                }
            }
            FaultsRequest::Next => match self.pipeline.next(badge, token, &mut out) {
                Ok(()) => return,
                Err((token, e)) => {
                    let _ = out
                        .server
                        .reply_as::<Faults>(token, &FaultsResponse::Refused(e));
                    return;
                }
            },
            FaultsRequest::Answer {
                token: t,
                code,
                map,
            } => {
                let act = |p: &Pending| -> Result<(), FaultsError> {
                    match (map, code) {
                        (false, _) => Ok(()),
                        // A page group's pages are the handler's to make
                        // present, in its own tables.
                        (true, _) if p.fault.group.is_some() => Err(FaultsError::NotBacked),
                        (true, ResponseCode::Success) => {
                            service.demand_map(p.fault.bdf, p.fault.iova)
                        }
                        (true, _) => Err(FaultsError::NotBacked),
                    }
                };
                match self.pipeline.answer(badge, t, code, act, &mut out) {
                    Ok(()) => FaultsResponse::Answered,
                    Err(e) => FaultsResponse::Refused(e),
                }
            }
        };
        let _ = out.server.reply_as::<Faults>(token, &response);
        self.flush(service);
    }

    /// Whether `request` asks about faults, so the fault records must be
    /// drained before it is answered.
    pub fn asks_about_faults(request: &IommuRequest) -> bool {
        matches!(
            request,
            IommuRequest::FaultMark { .. }
                | IommuRequest::AwaitFault { .. }
                | IommuRequest::FaultSummary
        )
    }

    /// Serves a driver's fault question, or hands the request back. The
    /// caller has drained the fault records first (see
    /// [`Desk::asks_about_faults`]), so a fault recorded before the
    /// driver's completion interrupt is known.
    pub fn driver<T: Transport>(
        &mut self,
        kernel: &mut impl Kernel,
        token: ReplyToken,
        request: IommuRequest,
        server: &mut IommuServer<T>,
    ) -> DriverCall {
        let pci = match request {
            IommuRequest::FaultMark { pci }
            | IommuRequest::AwaitFault { pci, .. }
            | IommuRequest::RetryVerified { pci, .. } => Some(pci),
            IommuRequest::FaultSummary => None,
            other => return DriverCall::Other(token, other),
        };
        let bdf = match pci.map(|pci| kernel.client_pci(&token, pci)) {
            Some(Ok((bdf, _))) => bdf,
            Some(Err(_)) => {
                let refused = IommuResponse::Refused(IommuError::NoSuchDevice);
                let _ = server.reply_as::<Iommu>(token, &refused);
                return DriverCall::Taken;
            }
            None => 0,
        };
        let (token, response) = match request {
            IommuRequest::FaultMark { .. } => (
                token,
                IommuResponse::Mark {
                    mark: self.pipeline.mark_for_driver(bdf),
                },
            ),
            IommuRequest::AwaitFault { since, .. } => {
                match self.pipeline.await_fault(bdf, since, token) {
                    Await::Parked => return DriverCall::Taken,
                    Await::Settled(token, s) => (token, IommuResponse::FaultSettled(s)),
                    Await::NoFault(token, mark) => (token, IommuResponse::NoFault { mark }),
                    Await::Full(token) => {
                        (token, IommuResponse::Refused(IommuError::OutOfTableMemory))
                    }
                }
            }
            IommuRequest::RetryVerified { mark, .. } => (
                token,
                if self.pipeline.verified(bdf, mark) {
                    IommuResponse::Noted
                } else {
                    IommuResponse::Refused(IommuError::UnknownMark)
                },
            ),
            _ => {
                let c = self.counters();
                log!("iommu: {}", Summary(&c));
                (token, IommuResponse::FaultSummary(c))
            }
        };
        let _ = server.reply_as::<Iommu>(token, &response);
        DriverCall::Taken
    }
}

/// `faults=N delivered=N success=N invalid=N failure=N auto=N retried=N
/// verified=N` (and `overflows=N` when the hardware dropped faults).
pub struct Summary<'a>(pub &'a FaultCounters);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(
            f,
            "faults={} delivered={} success={} invalid={} failure={} auto={} retried={} \
             verified={}",
            c.faults, c.delivered, c.success, c.invalid, c.failure, c.auto, c.retried, c.verified
        )?;
        if c.overflows > 0 {
            write!(f, " overflows={}", c.overflows)?;
        }
        Ok(())
    }
}

/// `; N fault(s) the earlier instance held answered Failure`, when a
/// handler registered again.
struct Again(u64);

impl fmt::Display for Again {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(
                f,
                " (again: {n} fault(s) the earlier instance held answered Failure)"
            ),
        }
    }
}
