//! The fault desk on the VT-d model: a DMA fault the model records is
//! drained, delivered to the device's handler, answered by mapping the
//! page from the driver's reservation, and the driver is told to retry;
//! with the IPC replies checked byte for byte as the clients decode them.

use std::collections::BTreeSet;

use faultline_iommu_core::FaultRecord;
use faultline_ipc::channel::{
    Handle, Received, ReplyToken, Transport, TransportError, decode_reply,
};
use faultline_ipc::protocol::faults::{
    Faults, FaultsError, FaultsRequest, FaultsResponse, ResponseCode,
};
use faultline_ipc::protocol::iommu::{
    Access, FaultOutcome, Iommu, IommuError, IommuRequest, IommuResponse,
};
use faultline_ipc::wire::Frame;

use super::{A, EDU, FakeKernel, Model, TestService, attach, call, map, qemu, source};
use crate::desk::{Desk, DriverCall, IommuServer};

/// The handler's badge; it holds EDU's fault grant as handle 0.
const H: u64 = 11;

/// Replies as the kernel would carry them: by raw token.
#[derive(Default)]
pub(super) struct Wire {
    pub(super) replies: Vec<(u64, Vec<u8>)>,
    /// Tokens whose caller is gone.
    dead: BTreeSet<u64>,
}

impl Transport for Wire {
    fn call(&mut self, _: Handle, _: &[u8], _: &mut [u8]) -> Result<usize, TransportError> {
        unreachable!("the desk never calls")
    }
    fn send(&mut self, _: Handle, _: &[u8]) -> Result<(), TransportError> {
        unreachable!("the desk never sends")
    }
    fn recv(&mut self, _: &mut Frame, _: u32) -> Result<Received, TransportError> {
        unreachable!("the test receives for the desk")
    }
    fn reply(&mut self, token: ReplyToken, message: &[u8]) -> Result<(), TransportError> {
        if self.dead.contains(&token.raw()) {
            return Err(TransportError::Kernel(faultline_ipc::abi::Error::PeerDead));
        }
        self.replies.push((token.raw(), message.to_vec()));
        Ok(())
    }
}

struct Bench {
    model: Model,
    service: TestService,
    kernel: FakeKernel,
    desk: Desk,
    server: IommuServer<Wire>,
}

impl Bench {
    /// EDU attached by A, `[0x8000, 0xa000)` reserved from A's buffer 1 at
    /// offset 0x2000 (paddr 0x10_2000), and H registered for EDU.
    fn new() -> Self {
        let (model, mut service, mut kernel) = qemu();
        kernel.faults.insert((H, 0), (EDU, 50));
        assert!(matches!(
            call(&mut service, &mut kernel, A, attach(0)),
            IommuResponse::Attached(_)
        ));
        let reserve = IommuRequest::Reserve {
            pci: 0,
            iova: 0x8000,
            buffer: 1,
            offset: 0x2000,
            len: 0x2000,
            access: Access::READ_WRITE,
        };
        assert_eq!(
            call(&mut service, &mut kernel, A, reserve),
            IommuResponse::Reserved {
                iova: 0x8000,
                len: 0x2000
            }
        );
        let mut b = Self {
            model,
            service,
            kernel,
            desk: Desk::new(),
            server: IommuServer::new(Wire::default()),
        };
        assert_eq!(
            b.handler(1, FaultsRequest::Register { device: 0 }),
            Some(FaultsResponse::Registered {
                bdf: EDU,
                deadline_ms: 50
            })
        );
        b
    }

    /// Handler H calls with `request` under reply token `token`; its
    /// reply, if it got one now.
    fn handler(&mut self, token: u64, request: FaultsRequest) -> Option<FaultsResponse> {
        let mut kernel = FakeKernelAs(&mut self.kernel, H);
        self.desk.handler(
            &mut self.service,
            &mut kernel,
            H,
            ReplyToken::from_raw(token),
            request,
            &mut self.server,
        );
        self.reply_to::<Faults>(token)
    }

    /// Driver A asks `request` under token `token`.
    fn driver(&mut self, token: u64, request: IommuRequest) -> Option<IommuResponse> {
        let mut kernel = FakeKernelAs(&mut self.kernel, A);
        let call = self.desk.driver(
            &mut kernel,
            ReplyToken::from_raw(token),
            request,
            &mut self.server,
        );
        assert!(matches!(call, DriverCall::Taken));
        self.reply_to::<Iommu>(token)
    }

    fn reply_to<P: faultline_ipc::protocol::Protocol>(
        &mut self,
        token: u64,
    ) -> Option<P::Response> {
        let wire = self.server.transport();
        let i = wire.replies.iter().position(|(t, _)| *t == token)?;
        let (_, bytes) = wire.replies.remove(i);
        Some(decode_reply::<P>(&bytes).expect("a reply the client decodes"))
    }

    /// EDU writes to `iova`: the model records the fault, the desk drains it.
    fn dma_faults(&mut self, iova: u64) {
        assert!(
            self.model.translate(source(EDU), iova, true).is_err(),
            "{iova:#x} must fault"
        );
        let mut records: Vec<FaultRecord> = Vec::new();
        for slot in self.service.units() {
            slot.unit.drain_faults(|f| records.push(f));
        }
        assert_eq!(records.len(), 1);
        self.desk
            .record(&self.service, &records[0], 0, &mut self.server);
    }
}

/// The fake kernel, answering for the client whose call is served (the
/// fake names clients by token; the desk's tokens are arbitrary numbers).
pub(super) struct FakeKernelAs<'a>(pub(super) &'a mut FakeKernel, pub(super) u64);

impl crate::kernel::Kernel for FakeKernelAs<'_> {
    fn client_pci(
        &mut self,
        _: &ReplyToken,
        handle: u8,
    ) -> Result<(u16, Option<u8>), userlib::SysError> {
        self.0.client_pci(&ReplyToken::from_raw(self.1), handle)
    }
    fn client_faults(
        &mut self,
        _: &ReplyToken,
        handle: u8,
    ) -> Result<(u16, u32), userlib::SysError> {
        self.0.client_faults(&ReplyToken::from_raw(self.1), handle)
    }
    fn client_dma(
        &mut self,
        _: &ReplyToken,
        b: u8,
        o: u64,
        l: u64,
    ) -> Result<userlib::Pinned, userlib::SysError> {
        self.0.client_dma(&ReplyToken::from_raw(self.1), b, o, l)
    }
    fn dma_unpin(&mut self, pin: u64) -> Result<(), userlib::SysError> {
        self.0.dma_unpin(pin)
    }
    fn device_translated(&mut self, unit: u8, bdf: u16, on: bool) -> Result<(), userlib::SysError> {
        self.0.device_translated(unit, bdf, on)
    }
}

#[test]
fn a_fault_reaches_the_handler_which_maps_the_page_and_the_driver_retries() {
    let mut b = Bench::new();
    assert_eq!(
        b.driver(2, IommuRequest::FaultMark { pci: 0 }),
        Some(IommuResponse::Mark { mark: 0 })
    );
    assert_eq!(b.handler(3, FaultsRequest::Next), None, "parked");
    b.dma_faults(0x9000);
    let Some(FaultsResponse::Fault(f)) = b.reply_to::<Faults>(3) else {
        panic!("the parked pull gets the fault");
    };
    assert_eq!(
        (f.bdf, f.iova, f.reason, f.backed),
        (EDU, 0x9000, 0x5, true)
    );
    assert_eq!(
        b.driver(4, IommuRequest::AwaitFault { pci: 0, since: 0 }),
        None,
        "parked until answered"
    );
    let answer = FaultsRequest::Answer {
        token: f.token,
        code: ResponseCode::Success,
        map: true,
    };
    assert_eq!(b.handler(5, answer), Some(FaultsResponse::Answered));
    // The page is the reservation's: 0x9000 is 0x1000 into it.
    assert_eq!(b.model.translate(source(EDU), 0x9abc, true), Ok(0x10_3abc));
    assert!(
        b.model.translate(source(EDU), 0x8000, true).is_err(),
        "only the faulting page"
    );
    let Some(IommuResponse::FaultSettled(s)) = b.reply_to::<Iommu>(4) else {
        panic!("the driver's question is answered");
    };
    assert_eq!(
        (s.mark, s.iova, s.write, s.outcome),
        (1, 0x9000, true, FaultOutcome::Retry)
    );
    assert_eq!(
        b.driver(6, IommuRequest::RetryVerified { pci: 0, mark: 1 }),
        Some(IommuResponse::Noted)
    );
    let c = b.desk.counters();
    assert_eq!(
        (c.faults, c.delivered, c.success, c.retried, c.verified),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(b.service.mappings().len(), 1);
}

#[test]
fn a_page_outside_the_reservation_cannot_be_mapped_and_stays_outstanding() {
    let mut b = Bench::new();
    b.handler(3, FaultsRequest::Next);
    b.dma_faults(0x20_0000);
    let Some(FaultsResponse::Fault(f)) = b.reply_to::<Faults>(3) else {
        panic!()
    };
    assert!(!f.backed);
    let map = FaultsRequest::Answer {
        token: f.token,
        code: ResponseCode::Success,
        map: true,
    };
    assert_eq!(
        b.handler(4, map),
        Some(FaultsResponse::Refused(FaultsError::NotBacked))
    );
    let abort = FaultsRequest::Answer {
        token: f.token,
        code: ResponseCode::Invalid,
        map: false,
    };
    assert_eq!(b.handler(5, abort), Some(FaultsResponse::Answered));
    assert_eq!(
        b.driver(6, IommuRequest::AwaitFault { pci: 0, since: 0 }),
        Some(IommuResponse::FaultSettled(
            faultline_ipc::protocol::iommu::SettledFault {
                mark: 1,
                iova: 0x20_0000,
                write: true,
                outcome: FaultOutcome::Aborted {
                    code: ResponseCode::Invalid,
                    automatic: false
                },
            }
        ))
    );
    assert!(b.service.mappings().is_empty());
}

#[test]
fn map_with_an_abort_code_is_refused() {
    let mut b = Bench::new();
    b.handler(3, FaultsRequest::Next);
    b.dma_faults(0x8000);
    let Some(FaultsResponse::Fault(f)) = b.reply_to::<Faults>(3) else {
        panic!()
    };
    let odd = FaultsRequest::Answer {
        token: f.token,
        code: ResponseCode::Failure,
        map: true,
    };
    assert_eq!(
        b.handler(4, odd),
        Some(FaultsResponse::Refused(FaultsError::NotBacked))
    );
    assert!(b.service.mappings().is_empty());
}

#[test]
fn a_handler_names_only_devices_it_holds_a_fault_grant_for() {
    let mut b = Bench::new();
    assert_eq!(
        b.handler(3, FaultsRequest::Register { device: 1 }),
        Some(FaultsResponse::Refused(FaultsError::NoSuchDevice))
    );
    // A driver's PCI grant is not a fault grant.
    let mut kernel = FakeKernelAs(&mut b.kernel, A);
    b.desk.handler(
        &mut b.service,
        &mut kernel,
        99,
        ReplyToken::from_raw(4),
        FaultsRequest::Register { device: 0 },
        &mut b.server,
    );
    assert_eq!(
        b.reply_to::<Faults>(4),
        Some(FaultsResponse::Refused(FaultsError::NoSuchDevice))
    );
}

#[test]
fn a_driver_asks_only_about_its_own_device() {
    let mut b = Bench::new();
    assert_eq!(
        b.driver(3, IommuRequest::FaultMark { pci: 5 }),
        Some(IommuResponse::Refused(IommuError::NoSuchDevice))
    );
    let other = b.desk.driver(
        &mut FakeKernelAs(&mut b.kernel, super::B),
        ReplyToken::from_raw(4),
        IommuRequest::AwaitFault { pci: 0, since: 0 },
        &mut b.server,
    );
    assert!(matches!(other, DriverCall::Taken));
    // B's handle 0 is NIC: no fault of EDU is reported to it.
    assert_eq!(
        b.reply_to::<Iommu>(4),
        Some(IommuResponse::NoFault { mark: 0 })
    );
}

#[test]
fn a_fault_of_a_device_without_handler_is_answered_invalid_and_the_driver_told() {
    let (model, mut service, mut kernel) = qemu();
    assert!(matches!(
        call(&mut service, &mut kernel, A, attach(0)),
        IommuResponse::Attached(_)
    ));
    let mut b = Bench {
        model,
        service,
        kernel,
        desk: Desk::new(),
        server: IommuServer::new(Wire::default()),
    };
    b.dma_faults(0x5000);
    assert_eq!(
        b.driver(2, IommuRequest::AwaitFault { pci: 0, since: 0 }),
        Some(IommuResponse::FaultSettled(
            faultline_ipc::protocol::iommu::SettledFault {
                mark: 1,
                iova: 0x5000,
                write: true,
                outcome: FaultOutcome::Aborted {
                    code: ResponseCode::Invalid,
                    automatic: true
                },
            }
        ))
    );
    let c = b.desk.counters();
    assert_eq!((c.faults, c.auto, c.invalid, c.delivered), (1, 1, 1, 0));
}

#[test]
fn other_requests_pass_through_to_the_service() {
    let mut b = Bench::new();
    let mut kernel = FakeKernelAs(&mut b.kernel, A);
    let call = b.desk.driver(
        &mut kernel,
        ReplyToken::from_raw(2),
        IommuRequest::Query { pci: 0 },
        &mut b.server,
    );
    assert!(matches!(call, DriverCall::Other(t, IommuRequest::Query { pci: 0 }) if t.raw() == 2));
}

#[test]
fn a_dead_handler_has_its_faults_answered_and_the_next_instance_gets_the_rest() {
    let mut b = Bench::new();
    b.handler(3, FaultsRequest::Next);
    b.dma_faults(0x8000);
    let Some(FaultsResponse::Fault(first)) = b.reply_to::<Faults>(3) else {
        panic!()
    };
    b.server.transport().dead.insert(4);
    b.handler(4, FaultsRequest::Next);
    b.dma_faults(0x9000);
    // Delivering to 4 failed: the fault it held (0x8000) is answered.
    assert_eq!(b.desk.counters().auto, 1);
    assert_eq!(
        b.handler(
            5,
            FaultsRequest::Answer {
                token: first.token,
                code: ResponseCode::Success,
                map: true
            }
        ),
        Some(FaultsResponse::Refused(FaultsError::Stale))
    );
    assert_eq!(
        b.handler(6, FaultsRequest::Register { device: 0 }),
        Some(FaultsResponse::Registered {
            bdf: EDU,
            deadline_ms: 50
        })
    );
    let Some(FaultsResponse::Fault(second)) = b.handler(7, FaultsRequest::Next) else {
        panic!("the queued fault goes to the new instance at once")
    };
    assert_eq!(second.iova, 0x9000);
    assert_ne!(second.token, first.token);
}

#[test]
fn the_summary_counts_every_answer() {
    let mut b = Bench::new();
    b.dma_faults(0x8000);
    b.desk.expire(&mut b.service, u64::MAX, &mut b.server);
    let Some(IommuResponse::FaultSummary(c)) = b.driver(2, IommuRequest::FaultSummary) else {
        panic!()
    };
    assert_eq!((c.faults, c.failure, c.auto), (1, 1, 1));
    assert_eq!(
        crate::desk::Summary(&c).to_string(),
        "faults=1 delivered=0 success=0 invalid=0 failure=1 auto=1 retried=0 verified=0"
    );
}

#[test]
fn a_reservation_is_checked_like_a_mapping() {
    let mut b = Bench::new();
    let reserve = |iova, buffer, offset, len| IommuRequest::Reserve {
        pci: 0,
        iova,
        buffer,
        offset,
        len,
        access: Access::READ_WRITE,
    };
    let refused = |e| IommuResponse::Refused(e);
    let (s, k) = (&mut b.service, &mut b.kernel);
    assert_eq!(
        call(s, k, A, reserve(0x9000, 1, 0, 0x1000)),
        refused(IommuError::Overlap)
    );
    assert_eq!(
        call(s, k, A, reserve(0x10_0800, 1, 0, 0x1000)),
        refused(IommuError::BadAlignment)
    );
    assert_eq!(
        call(s, k, A, reserve(0x10_0000, 1, 0, 0)),
        refused(IommuError::BadAlignment)
    );
    assert_eq!(
        call(s, k, A, reserve(0x10_0000, 7, 0, 0x1000)),
        refused(IommuError::NotPermitted)
    );
    assert_eq!(
        call(s, k, A, reserve(1 << 48, 1, 0, 0x1000)),
        refused(IommuError::OutOfRange)
    );
    assert_eq!(
        call(s, k, super::B, reserve(0x10_0000, 1, 0, 0x1000)),
        refused(IommuError::NotAttached)
    );
    // A mapping may not overlap a reservation either.
    assert_eq!(
        call(s, k, A, map(0, 0x8000, 1, 0, 0x1000)),
        refused(IommuError::Overlap)
    );
    assert_eq!(b.service.reservations().len(), 1);
}

#[test]
fn detaching_releases_a_reservations_pin_once_after_its_pages_are_gone() {
    let mut b = Bench::new();
    for (pull, iova) in [(3, 0x8000), (5, 0x9000)] {
        b.handler(pull, FaultsRequest::Next);
        b.dma_faults(iova);
        let Some(FaultsResponse::Fault(f)) = b.reply_to::<Faults>(pull) else {
            panic!()
        };
        let answer = FaultsRequest::Answer {
            token: f.token,
            code: ResponseCode::Success,
            map: true,
        };
        assert_eq!(b.handler(pull + 1, answer), Some(FaultsResponse::Answered));
    }
    assert_eq!(b.service.mappings().len(), 2);
    let pins = b.kernel.live_pins();
    assert_eq!(
        call(
            &mut b.service,
            &mut b.kernel,
            A,
            IommuRequest::Detach { pci: 0 }
        ),
        IommuResponse::Detached
    );
    assert_eq!(b.kernel.live_pins(), pins - 1);
    assert_eq!(b.kernel.released.len(), 1, "one pin, released once");
    assert!(b.service.reservations().is_empty());
    assert!(b.model.translate(source(EDU), 0x8000, true).is_err());
}

#[test]
fn revoking_a_reservations_pin_unmaps_its_pages_and_releases_it_once() {
    let mut b = Bench::new();
    b.handler(3, FaultsRequest::Next);
    b.dma_faults(0x8000);
    let Some(FaultsResponse::Fault(f)) = b.reply_to::<Faults>(3) else {
        panic!()
    };
    let answer = FaultsRequest::Answer {
        token: f.token,
        code: ResponseCode::Success,
        map: true,
    };
    assert_eq!(b.handler(4, answer), Some(FaultsResponse::Answered));
    let pin = b.service.reservations()[0].pin;
    let r = b.service.revoke(&mut b.kernel, pin);
    assert_eq!((r.mappings, r.released), (1, true));
    assert_eq!(b.kernel.released, [pin]);
    assert!(b.service.reservations().is_empty());
    assert!(!b.service.backed(EDU, 0x9000));
    assert!(b.model.translate(source(EDU), 0x8000, true).is_err());
}

#[test]
fn a_fault_the_hardware_dropped_reaches_the_drivers_as_lost() {
    let mut b = Bench::new();
    assert!(matches!(
        call(&mut b.service, &mut b.kernel, super::B, attach(0)),
        IommuResponse::Attached(_)
    ));
    let mut kernel = FakeKernelAs(&mut b.kernel, super::B);
    let mark = b.desk.driver(
        &mut kernel,
        ReplyToken::from_raw(2),
        IommuRequest::FaultMark { pci: 0 },
        &mut b.server,
    );
    assert!(matches!(mark, DriverCall::Taken));
    assert_eq!(
        b.reply_to::<Iommu>(2),
        Some(IommuResponse::Mark { mark: 0 })
    );
    // EDU's fault holds the one record; NIC's is dropped (FSTS.PFO).
    assert!(b.model.translate(source(EDU), 0x9000, true).is_err());
    assert!(b.model.translate(source(super::NIC), 0x9000, true).is_err());
    let mut records: Vec<FaultRecord> = Vec::new();
    let mut overflow = false;
    for slot in b.service.units() {
        overflow |= slot.unit.drain_faults(|f| records.push(f)).overflow;
    }
    assert_eq!(records.len(), 1);
    assert!(overflow, "the model drops the second source's fault");
    b.desk.record(&b.service, &records[0], 0, &mut b.server);
    b.desk.overflowed(&mut b.server);
    let mut kernel = FakeKernelAs(&mut b.kernel, super::B);
    b.desk.driver(
        &mut kernel,
        ReplyToken::from_raw(3),
        IommuRequest::AwaitFault { pci: 0, since: 0 },
        &mut b.server,
    );
    let Some(IommuResponse::FaultSettled(s)) = b.reply_to::<Iommu>(3) else {
        panic!("NIC's driver must not be told its transfer was clean");
    };
    assert_eq!(s.outcome, FaultOutcome::Lost);
    assert_eq!(b.desk.counters().overflows, 1);
}
