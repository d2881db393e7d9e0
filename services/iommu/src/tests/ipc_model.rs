//! The fault desk and the service behind one server over the in-memory
//! model of the kernel's IPC: a driver and a fault handler, each a thread
//! with its own channel, make real calls that block until answered. The
//! handler's pull and the driver's question are deferred replies, answered
//! when the fault arrives and when it is settled, in whatever order the
//! threads happen to run.

use std::thread;

use faultline_iommu_core::FaultRecord;
use faultline_ipc::channel::{Client, Either, Incoming};
use faultline_ipc::memory::Kernel as Ipc;
use faultline_ipc::protocol::faults::{
    Faults, FaultsError, FaultsRequest, FaultsResponse, ResponseCode,
};
use faultline_ipc::protocol::iommu::{Access, FaultOutcome, Iommu, IommuRequest, IommuResponse};

use super::{A, EDU, qemu, source};
use crate::desk::{Desk, DriverCall, IommuServer};

const H: u64 = 11;

#[test]
fn a_fault_travels_from_the_device_to_the_handler_and_back_to_the_driver() {
    let (model, mut service, mut kernel) = qemu();
    kernel.faults.insert((H, 0), (EDU, 50));
    let ipc = Ipc::new();
    let server_task = ipc.spawn("iommu");
    let driver_task = ipc.spawn("edu-driver");
    let handler_task = ipc.spawn("edu-fault-handler");
    let (driver_end, _) = ipc.channel(driver_task, server_task, A);
    let (handler_end, _) = ipc.channel(handler_task, server_task, H);

    let driver = thread::spawn({
        let ep = ipc.endpoint(driver_task);
        let ipc = ipc.clone();
        move || {
            let mut c = Client::<Iommu, _>::new(ep, driver_end);
            assert!(matches!(
                c.call(&IommuRequest::Attach { pci: 0 }),
                Ok(IommuResponse::Attached(_))
            ));
            let reserve = IommuRequest::Reserve {
                pci: 0,
                iova: 0x40_0000,
                buffer: 1,
                offset: 0,
                len: 0x1000,
                access: Access::READ_WRITE,
            };
            assert!(matches!(
                c.call(&reserve),
                Ok(IommuResponse::Reserved { .. })
            ));
            // The handler is registered and its pull parked (a fault with
            // no handler would be answered Invalid at once); the device
            // "faults" as this question reaches the service.
            ipc.wait_until("the handler's pull parked", |k| k.held_by(server_task) == 1);
            let Ok(IommuResponse::FaultSettled(s)) =
                c.call(&IommuRequest::AwaitFault { pci: 0, since: 0 })
            else {
                panic!("the driver learns what became of its fault");
            };
            assert_eq!(
                (s.mark, s.iova, s.outcome),
                (1, 0x40_0000, FaultOutcome::Retry)
            );
            assert_eq!(
                c.call(&IommuRequest::RetryVerified { pci: 0, mark: 1 }),
                Ok(IommuResponse::Noted)
            );
        }
    });
    let handler = thread::spawn({
        let ep = ipc.endpoint(handler_task);
        move || {
            let mut c = Client::<Faults, _>::new(ep, handler_end);
            assert_eq!(
                c.call(&FaultsRequest::Register { device: 0 }),
                Ok(FaultsResponse::Registered {
                    bdf: EDU,
                    deadline_ms: 50
                })
            );
            let Ok(FaultsResponse::Fault(f)) = c.call(&FaultsRequest::Next) else {
                panic!("the pull gets the fault");
            };
            assert_eq!((f.bdf, f.iova, f.backed), (EDU, 0x40_0000, true));
            let answer = FaultsRequest::Answer {
                token: f.token,
                code: ResponseCode::Success,
                map: true,
            };
            assert_eq!(c.call(&answer), Ok(FaultsResponse::Answered));
            assert_eq!(
                c.call(&answer),
                Ok(FaultsResponse::Refused(FaultsError::AlreadyAnswered))
            );
        }
    });

    // The service: eight calls in all, in the order they come.
    let mut server = IommuServer::new(ipc.endpoint(server_task));
    let mut desk = Desk::new();
    for _ in 0..8 {
        let Ok(Incoming::Call {
            request,
            badge,
            token,
        }) = server.recv(0)
        else {
            panic!("calls only");
        };
        let mut as_client = super::desk::FakeKernelAs(&mut kernel, badge);
        match request {
            Either::First(request) => {
                if matches!(request, IommuRequest::AwaitFault { .. }) {
                    assert!(model.translate(source(EDU), 0x40_0000, true).is_err());
                    let mut records: Vec<FaultRecord> = Vec::new();
                    for slot in service.units() {
                        slot.unit.drain_faults(|f| records.push(f));
                    }
                    for r in &records {
                        desk.record(&service, r, 0, &mut server);
                    }
                }
                if let DriverCall::Other(token, request) =
                    desk.driver(&mut as_client, token, request, &mut server)
                {
                    let response = service.handle(&mut as_client, badge, &token, request);
                    server.reply_as::<Iommu>(token, &response).unwrap();
                }
            }
            Either::Second(request) => desk.handler(
                &mut service,
                &mut as_client,
                badge,
                token,
                request,
                &mut server,
            ),
        }
    }
    driver.join().unwrap();
    handler.join().unwrap();
    // The handler's page is the driver's reserved frame.
    assert_eq!(model.translate(source(EDU), 0x40_0010, true), Ok(0x10_0010));
    let c = desk.counters();
    assert_eq!(
        (
            c.faults,
            c.delivered,
            c.success,
            c.auto,
            c.retried,
            c.verified
        ),
        (1, 1, 1, 0, 1, 1)
    );
}
