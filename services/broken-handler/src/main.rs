//! `faultline-broken-handler`: fault handlers that break the fault
//! pipeline's rules on purpose, so Faultline's fault scenarios can show the
//! IOMMU service keeping them anyway (every fault answered exactly once,
//! the device's driver told).
//!
//! Like `edu-fault-handler`, it holds one device's fault grant (`edu`) and
//! a client end of the `faults` protocol (`iommu`), and registers. Then it
//! misbehaves as its cargo feature says (at most one may be enabled; with
//! none, it is `never-answers`, so `--features image` alone builds):
//!
//! - `crash-holding-3`: pulls faults without answering until it holds
//!   three (`broken-handler: holding 3 faults; crashing`), then faults.
//!   The IOMMU service learns of it when the restarted instance registers
//!   again, and answers the three Failure. An instance handed a fault whose
//!   token is above 3 (only the restarted one is) answers it properly, as
//!   `edu-fault-handler` does: the reserved page mapped and Success, or
//!   Invalid if nothing is reserved there.
//! - `never-answers`: pulls every fault and answers none; each is answered
//!   Failure automatically at its deadline.
//! - `answers-twice`: answers every fault properly, then answers it again;
//!   the IOMMU service refuses the second answer (already answered). The
//!   model run (`page-requests-twice`) shows a page group getting no
//!   second page group response.
//! - `wrong-token`: answers every fault first with a token it was never
//!   given (its own plus 1000); the IOMMU service refuses that (unknown
//!   token), and the handler then answers properly.
//!
//! Page groups (PCIe PRI) get the same misbehaviour as DMA faults. A proper
//! answer is `edu-fault-handler`'s for a DMA fault (the reserved page
//! mapped and Success, or Invalid if nothing is reserved there) and Success
//! for a page group. Each refusal is logged: `broken-handler: fault N:
//! answer with token M refused: <why>` (`page group N` for a group).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[cfg(any(
    all(feature = "crash-holding-3", feature = "never-answers"),
    all(feature = "crash-holding-3", feature = "answers-twice"),
    all(feature = "crash-holding-3", feature = "wrong-token"),
    all(feature = "never-answers", feature = "answers-twice"),
    all(feature = "never-answers", feature = "wrong-token"),
    all(feature = "answers-twice", feature = "wrong-token"),
))]
compile_error!("faultline-broken-handler: enable one behaviour feature, not several");

use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::{ChannelError, Client, Handle};
use faultline_ipc::protocol::faults::{
    Fault, FaultAccess, FaultToken, Faults, FaultsRequest, FaultsResponse, PageGroup, ResponseCode,
};
use faultline_ipc::protocol::iommu::Bdf;
use userlib::{KernelTransport, cap_lookup, exit, log};

userlib::service_entry!(main);

/// The behaviour this image was built with.
const BEHAVIOUR: &str = if cfg!(feature = "crash-holding-3") {
    "crash-holding-3"
} else if cfg!(feature = "answers-twice") {
    "answers-twice"
} else if cfg!(feature = "wrong-token") {
    "wrong-token"
} else {
    "never-answers"
};

/// `wrong-token`: how far from its own token the wrong one is.
const WRONG_BY: u64 = 1000;

/// `crash-holding-3`: how many faults it holds before crashing, and the
/// last token the first instance can have been handed.
const CRASH_AT: u32 = 3;

type FaultsClient = Client<Faults, KernelTransport>;

fn handle(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => {
            log!("broken-handler: no {kind:?} capability `{name}` ({other:?})");
            exit(1)
        }
    }
}

fn main() -> ! {
    let device = handle("edu", CapKind::Faults);
    let iommu = handle("iommu", CapKind::Client);
    let mut client = FaultsClient::new(KernelTransport, iommu);
    register(&mut client, device);
    let mut held: u32 = 0;
    loop {
        let pulled = match call(&mut client, FaultsRequest::Next) {
            FaultsResponse::Fault(fault) => Pulled::Fault(fault),
            FaultsResponse::PageGroup(group) => Pulled::Group(group),
            other => {
                log!("broken-handler: pull answered {other:?}");
                exit(1)
            }
        };
        let token = pulled.token();
        if cfg!(feature = "answers-twice") {
            answer(&mut client, &pulled, token);
            answer(&mut client, &pulled, token);
            continue;
        }
        if cfg!(feature = "wrong-token") {
            answer(&mut client, &pulled, FaultToken(token.0 + WRONG_BY));
            answer(&mut client, &pulled, token);
            continue;
        }
        if cfg!(feature = "crash-holding-3") && token.0 > u64::from(CRASH_AT) {
            answer(&mut client, &pulled, token);
            continue;
        }
        held += 1;
        log!(
            "broken-handler: fault {}: {}: holding it unanswered ({held} held)",
            token.0,
            Describe(&pulled)
        );
        if cfg!(feature = "crash-holding-3") && held == CRASH_AT {
            log!("broken-handler: holding {CRASH_AT} faults; crashing");
            // The kernel stops this instance; the supervisor restarts it.
            userlib::rt::fault_by_write(0);
        }
    }
}

/// What a pull brought: a DMA fault or a page group (one at a time, on
/// the stack: the size difference does not matter).
#[allow(clippy::large_enum_variant)]
enum Pulled {
    Fault(Fault),
    Group(PageGroup),
}

impl Pulled {
    fn token(&self) -> FaultToken {
        match self {
            Self::Fault(f) => f.token,
            Self::Group(g) => g.token,
        }
    }

    /// The answer a handler that keeps the rules gives: a DMA fault's
    /// reserved page mapped and Success, or Invalid; a page group Success.
    fn proper(&self) -> (ResponseCode, bool) {
        match self {
            Self::Fault(f) if f.backed => (ResponseCode::Success, true),
            Self::Fault(_) => (ResponseCode::Invalid, false),
            Self::Group(_) => (ResponseCode::Success, false),
        }
    }
}

fn register(client: &mut FaultsClient, device: Handle) {
    let request = FaultsRequest::Register {
        device: device.0 as u8,
    };
    match call(client, request) {
        FaultsResponse::Registered { bdf, deadline_ms } => log!(
            "broken-handler: handling faults of {} (deadline {deadline_ms} ms) as {BEHAVIOUR}",
            Bdf(bdf)
        ),
        other => {
            log!("broken-handler: registering refused: {other:?}");
            exit(1)
        }
    }
}

/// Answers as a handler that keeps the rules would ([`Pulled::proper`]),
/// but under `token`.
fn answer(client: &mut FaultsClient, pulled: &Pulled, token: FaultToken) {
    let (code, map) = pulled.proper();
    let own = pulled.token();
    let request = FaultsRequest::Answer { token, code, map };
    match call(client, request) {
        FaultsResponse::Answered if token == own => log!(
            "broken-handler: {} {}: {}: answered {code:?}",
            pulled.noun(),
            own.0,
            Describe(pulled)
        ),
        FaultsResponse::Answered => log!(
            "broken-handler: {} {}: answer with token {} taken",
            pulled.noun(),
            own.0,
            token.0
        ),
        FaultsResponse::Refused(e) => log!(
            "broken-handler: {} {}: answer with token {} refused: {e}",
            pulled.noun(),
            own.0,
            token.0
        ),
        other => log!(
            "broken-handler: {} {}: answer got {other:?}",
            pulled.noun(),
            own.0
        ),
    }
}

impl Pulled {
    fn noun(&self) -> &'static str {
        match self {
            Self::Fault(_) => "fault",
            Self::Group(_) => "page group",
        }
    }
}

/// `00:01.0 write at 0x400000 (reason 0x5)`, or `00:01.0 pasid Some(1)
/// prg 0x2 (16 pages)`.
struct Describe<'a>(&'a Pulled);

impl core::fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let fault = match self.0 {
            Pulled::Fault(fault) => fault,
            Pulled::Group(g) => {
                return write!(
                    f,
                    "{} pasid {:?} prg {:#x} ({} pages)",
                    Bdf(g.bdf),
                    g.pasid,
                    g.prg_index,
                    g.pages.len()
                );
            }
        };
        let access = match fault.access {
            FaultAccess::Read => "read",
            FaultAccess::Write => "write",
        };
        write!(
            f,
            "{} {access} at {:#x} (reason {:#x})",
            Bdf(fault.bdf),
            fault.iova,
            fault.reason
        )
    }
}

/// One call; a dead or restarted IOMMU service ends the handler.
fn call(client: &mut FaultsClient, request: FaultsRequest) -> FaultsResponse {
    match client.call(&request) {
        Ok(response) => response,
        Err(e @ (ChannelError::PeerDead | ChannelError::PeerRestarted { .. })) => {
            log!("broken-handler: IOMMU service gone ({e}): stopping");
            exit(2)
        }
        Err(e) => {
            log!("broken-handler: call failed: {e}");
            exit(1)
        }
    }
}
