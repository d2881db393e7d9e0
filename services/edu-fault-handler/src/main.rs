//! `faultline-edu-fault-handler`: the fault handler of an edu device.
//!
//! It holds the device's fault grant (`edu`: the right to handle that
//! function's DMA faults, and nothing else) and a client end of the
//! `faults` protocol at the IOMMU service (`iommu`). It registers, then
//! pulls faults one at a time and answers each exactly once:
//!
//! - a fault on a page the driver reserved (`backed`): map it from the
//!   driver's reservation and answer Success, so the driver retries;
//! - any other fault: answer Invalid, so the driver's transfer is aborted;
//! - a page group (PCIe PRI): every page a user non-exec access → made
//!   present (recorded per PASID, see [`pages`]) and answered Success;
//!   otherwise Invalid.
//!
//! The policy is the point of a handler: the IOMMU service decides nothing
//! about a device's faults, and the handler can reach nothing but its own
//! device's reserved pages.
//!
//! Log lines: `edu-fault-handler: handling faults of 00:03.0 (deadline N
//! ms)`, then per fault `edu-fault-handler: fault N: 00:03.0 read at
//! 0x400000 (reason 0x6): reserved page, mapped: Success` or `...: not
//! reserved: Invalid` for the first [`LOGGED`], then one line each time
//! the count doubles (a storm costs a few lines); per page group
//! `edu-fault-handler: page group 1: 00:03.0 pasid Some(1) prg 0x1, 16
//! page(s): user non-exec: made present (16 present for the PASID):
//! Success`, rate-limited the same way.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use edu_fault_handler::pages;
use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::{ChannelError, Client, Handle};
use faultline_ipc::protocol::faults::{
    Fault, FaultAccess, Faults, FaultsRequest, FaultsResponse, PageGroup, ResponseCode,
};
use faultline_ipc::protocol::iommu::Bdf;
use userlib::{KernelTransport, cap_lookup, exit, log};

userlib::service_entry!(main);

/// Faults logged one by one.
const LOGGED: u64 = 16;

fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => {
            log!("edu-fault-handler: no {kind:?} capability `{name}` ({other:?})");
            exit(1)
        }
    }
}

fn main() -> ! {
    let device = handle("edu", CapKind::Faults);
    let iommu = handle("iommu", CapKind::Client);
    let mut client = Client::<Faults, _>::new(KernelTransport, iommu);
    register(&mut client, device);
    let mut answered = 0u64;
    let mut present = pages::Present::new();
    loop {
        let next = call(&mut client, FaultsRequest::Next);
        answered += 1;
        match next {
            FaultsResponse::Fault(fault) => answer(&mut client, &fault, answered <= LOGGED),
            FaultsResponse::PageGroup(group) => {
                answer_group(&mut client, &mut present, &group, answered <= LOGGED)
            }
            other => {
                log!("edu-fault-handler: pull answered {other:?}");
                exit(1)
            }
        }
        if answered > LOGGED && answered.is_power_of_two() {
            log!("edu-fault-handler: {answered} faults answered");
        }
    }
}

fn register(client: &mut Client<Faults, KernelTransport>, device: Handle) {
    let request = FaultsRequest::Register {
        device: device.0 as u8,
    };
    match call(client, request) {
        FaultsResponse::Registered { bdf, deadline_ms } => log!(
            "edu-fault-handler: handling faults of {} (deadline {deadline_ms} ms)",
            Bdf(bdf)
        ),
        other => {
            log!("edu-fault-handler: registering refused: {other:?}");
            exit(1)
        }
    }
}

/// Decides, answers, and logs what it did.
fn answer(client: &mut Client<Faults, KernelTransport>, fault: &Fault, verbose: bool) {
    let (code, map, why) = if fault.backed {
        (ResponseCode::Success, true, "reserved page, mapped")
    } else {
        (ResponseCode::Invalid, false, "not reserved")
    };
    let request = FaultsRequest::Answer {
        token: fault.token,
        code,
        map,
    };
    let access = match fault.access {
        FaultAccess::Read => "read",
        FaultAccess::Write => "write",
    };
    match call(client, request) {
        FaultsResponse::Answered if !verbose => {}
        FaultsResponse::Answered => log!(
            "edu-fault-handler: fault {}: {} {access} at {:#x} (reason {:#x}): {why}: {code:?}",
            fault.token.0,
            Bdf(fault.bdf),
            fault.iova,
            fault.reason
        ),
        FaultsResponse::Refused(e) => log!(
            "edu-fault-handler: fault {}: answer refused: {e}",
            fault.token.0
        ),
        other => log!("edu-fault-handler: answer got {other:?}"),
    }
}

/// Decides a page group by the policy in [`pages`], answers it once, and
/// logs what it did.
fn answer_group(
    client: &mut Client<Faults, KernelTransport>,
    present: &mut pages::Present,
    group: &PageGroup,
    verbose: bool,
) {
    let decision = present.decide(group);
    let request = FaultsRequest::Answer {
        token: group.token,
        code: decision.code,
        map: false,
    };
    match call(client, request) {
        FaultsResponse::Answered if !verbose => {}
        FaultsResponse::Answered => log!(
            "edu-fault-handler: page group {}: {} pasid {:?} prg {:#x}, {} page(s): {} ({} \
             present for the PASID): {:?}",
            group.token.0,
            Bdf(group.bdf),
            group.pasid,
            group.prg_index,
            group.pages.len(),
            decision.why,
            present.count(group.pasid),
            decision.code
        ),
        FaultsResponse::Refused(e) => log!(
            "edu-fault-handler: page group {}: answer refused: {e}",
            group.token.0
        ),
        other => log!("edu-fault-handler: answer got {other:?}"),
    }
}

/// One call; a dead or restarted IOMMU service ends the handler (the
/// supervisor restarts it, and it registers afresh).
fn call(client: &mut Client<Faults, KernelTransport>, request: FaultsRequest) -> FaultsResponse {
    match client.call(&request) {
        Ok(response) => response,
        Err(e @ (ChannelError::PeerDead | ChannelError::PeerRestarted { .. })) => {
            log!("edu-fault-handler: IOMMU service gone ({e}): stopping");
            exit(2)
        }
        Err(e) => {
            log!("edu-fault-handler: call failed: {e}");
            exit(1)
        }
    }
}
