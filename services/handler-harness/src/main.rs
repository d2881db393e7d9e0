//! `faultline-handler-harness`: the fault-handler conformance harness as a
//! service (the logic is in the `handler_harness` library next to this
//! file). It serves the `faults` protocol on every server channel it holds
//! (the handler's `iommu` channel ends here instead of at the IOMMU
//! service), takes the handler's registration as the IOMMU service would
//! (the kernel resolves the handler's grant and deadline, which is why the
//! deployment gives the harness the VT-d grant: only its holder may ask;
//! the harness never maps the registers), runs every case and prints:
//!
//! ```text
//! handler-harness: handler of 00:01.0 registered (deadline 10000 ms)
//! PASS dma_fault
//! FAIL page_group_single: fault token 3 (page group 0x1 of PASID Some(1), 1 page(s)): answered twice (rule: ...)
//! ...
//! handler conformance: 8 passed, 1 failed
//! ```
//!
//! After the last case it keeps serving (the handler's pull stays parked,
//! so the run ends normally) if every case passed, and exits 1 otherwise.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::fmt;

use faultline_ipc::abi::NOTIFY_TIMER;
use faultline_ipc::channel::{Incoming, RecvError, ReplyToken, Server};
use faultline_ipc::protocol::faults::{Faults, FaultsError, FaultsRequest, FaultsResponse};
use faultline_ipc::protocol::iommu::Bdf;
use handler_harness::cases::{CASES, Item};
use handler_harness::judge::{Judge, Violation};
use userlib::{KernelTransport, client_faults, exit, log, set_timer, time};

userlib::service_entry!(main);

type HarnessServer = Server<Faults, KernelTransport>;

/// How long the `quiet` case waits for answers nobody asked for.
const QUIET_NS: u64 = 300_000_000;

/// The harness's view of the handler's channel.
struct Link {
    server: HarnessServer,
    /// The handler's pull, parked until there is something to deliver.
    parked: Option<ReplyToken>,
    timer: u64,
}

fn now() -> u64 {
    time().ns
}

fn main() -> ! {
    let mut link = Link {
        server: Server::new(KernelTransport),
        parked: None,
        timer: 0,
    };
    let (bdf, deadline_ms) = registration(&mut link);
    log!(
        "handler-harness: handler of {} registered (deadline {deadline_ms} ms); {} cases",
        Bdf(bdf),
        CASES.len() + 1
    );
    let mut judge = Judge::new(bdf, deadline_ms);
    let mut passed = 0u32;
    let mut failed = 0u32;
    for case in CASES {
        judge.start(case.items, now());
        let quiet_until = case.items.is_empty().then(|| now() + QUIET_NS);
        loop {
            if link.parked.is_some()
                && let Some(delivery) = judge.deliver()
                && let Some(pull) = link.parked.take()
                && link.server.reply(pull, &delivery).is_err()
            {
                log!("handler-harness: a delivery failed: the handler is gone");
            }
            let done = match quiet_until {
                Some(t) => now() >= t,
                // Settled, and the handler came back for more: any late
                // second answer would have come before its pull.
                None => judge.settled() && link.parked.is_some(),
            };
            if done {
                break;
            }
            let wake = quiet_until.or(judge.next_deadline()).unwrap_or(0);
            serve_one(&mut link, &mut judge, wake);
        }
        let (violations, more) = judge.violations();
        if violations.is_empty() {
            passed += 1;
            log!("PASS {}", case.name);
        } else {
            failed += 1;
            log!(
                "FAIL {}: {}{}",
                case.name,
                Reason(&violations[0]),
                More(violations.len() - 1 + more)
            );
            for v in &violations[1..] {
                log!("  also {}: {}", case.name, Reason(v));
            }
        }
    }
    // The last rule: the handler is still there, pulling.
    if link.parked.is_some() {
        passed += 1;
        log!("PASS still_pulling");
    } else {
        failed += 1;
        log!("FAIL still_pulling: the handler has no pull outstanding (rule: keep pulling)");
    }
    log!("handler conformance: {passed} passed, {failed} failed");
    if failed > 0 {
        exit(1)
    }
    // Everything held: keep the handler's pull parked, and still refuse
    // whatever it sends.
    judge.start(&[], now());
    loop {
        serve_one(&mut link, &mut judge, 0);
        let (v, more) = judge.violations();
        if let Some(first) = v.first() {
            log!(
                "FAIL after_the_run: {}{}",
                Reason(first),
                More(v.len() - 1 + more)
            );
            exit(1)
        }
    }
}

/// Waits for the handler's `Register` (or `RegisterPasid`); the device it
/// handles and its deadline, as the kernel says.
fn registration(link: &mut Link) -> (u16, u32) {
    loop {
        let (request, token) = match link.server.recv(0) {
            Ok(Incoming::Call { request, token, .. }) => (request, token),
            Ok(_) => continue,
            Err(e) => {
                log!("handler-harness: before registration: {e:?}");
                continue;
            }
        };
        let device = match request {
            FaultsRequest::Register { device } | FaultsRequest::RegisterPasid { device, .. } => {
                device
            }
            _ => {
                let _ = link
                    .server
                    .reply(token, &FaultsResponse::Refused(FaultsError::NotRegistered));
                continue;
            }
        };
        match client_faults(&token, device) {
            Ok(g) => {
                let registered = FaultsResponse::Registered {
                    bdf: g.bdf,
                    deadline_ms: g.deadline_ms,
                };
                let _ = link.server.reply(token, &registered);
                return (g.bdf, g.deadline_ms);
            }
            Err(_) => {
                let _ = link
                    .server
                    .reply(token, &FaultsResponse::Refused(FaultsError::NoSuchDevice));
            }
        }
    }
}

/// Serves one request from the handler (or a timer), with the timer set
/// for `wake` (0: none).
fn serve_one(link: &mut Link, judge: &mut Judge, wake: u64) {
    if wake != link.timer {
        link.timer = wake;
        let _ = set_timer(wake);
    }
    match link.server.recv(NOTIFY_TIMER) {
        Ok(Incoming::Call { request, token, .. }) => match request {
            // One call at a time per channel: a new pull replaces the old.
            FaultsRequest::Next => link.parked = Some(token),
            FaultsRequest::Answer { token: t, map, .. } => {
                let reply = judge.answer(t, map, now());
                let _ = link.server.reply(token, &reply);
            }
            FaultsRequest::Register { .. } | FaultsRequest::RegisterPasid { .. } => {
                // A restart: its pull is gone; the faults it held stay the
                // judge's to settle.
                link.parked = None;
                let _ = link
                    .server
                    .reply(token, &FaultsResponse::Refused(FaultsError::AlreadyHandled));
            }
        },
        Ok(Incoming::Notification { .. }) | Ok(Incoming::Send { .. }) => {}
        Err(RecvError::Malformed { .. }) => judge.malformed(),
        Err(RecvError::Transport(e)) => log!("handler-harness: receive failed: {e}"),
    }
    judge.expire(now());
}

/// `fault token N (what it was): rule`.
struct Reason<'a>(&'a Violation);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        match v.item {
            Some(item) => write!(
                f,
                "fault token {} ({}): {}",
                v.token.0,
                What(item),
                v.rule.text()
            ),
            None if v.token.0 == 0 => f.write_str(v.rule.text()),
            None => write!(f, "token {}: {}", v.token.0, v.rule.text()),
        }
    }
}

/// ` (and N more)` when there are.
struct More(usize);

impl fmt::Display for More {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " (and {n} more)"),
        }
    }
}

/// A delivered item, in a few words.
struct What(Item);

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Item::Dma { iova, reason, .. } => {
                write!(f, "DMA fault at {iova:#x}, reason {reason:#x}")
            }
            Item::Group {
                pasid,
                prg_index,
                pages,
                ..
            } => write!(
                f,
                "page group {prg_index:#x} of PASID {pasid:?}, {pages} page(s)"
            ),
        }
    }
}
