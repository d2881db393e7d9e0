//! `faultline-conformance-kernel`: the kernel IPC conformance suite (part
//! 2 of issue 11), run against the real kernel in QEMU.
//!
//! Each case is a function returning `Result<(), Why>`, run in the fixed
//! order of [`CASES`], each leaving the peers as it found them so the
//! cases are independent and the run repeatable. The suite prints one
//! line per case, `PASS <name>` or `FAIL <name>: <reason>` (and `SKIP
//! <name>: <reason>` for what the kernel does not offer), then `<n>
//! passed, <m> failed`, and exits 0 only if nothing failed.
//!
//! Its peers (`faultline-conformance-peer`, one image in four roles) are
//! described there; the channels, badges and bits are in
//! `conformance-kernel.toml` and `conformance_peer::{badge, bit}`.
//! Capabilities: `echo`, `ctl`, `go`, `victim`, `doomed`, `events`,
//! `pubctl` (client ends), `poke-victim` and `poke-doomed` (notifications
//! to the two victims), `nudge` and `nudge-pub` (to the nudger).
#![no_std]
#![no_main]
#![deny(unsafe_code)]
// A case's error is one bounded line of text ([`check::Why`], no heap in a
// service), larger than clippy likes; each case returns it once.
#![allow(clippy::result_large_err)]

mod check;
mod combined;
mod death;
mod notify;
mod order;
mod pairing;
mod payload;
mod publish;
mod rights;

use check::Why;
use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::Handle;
use userlib::{cap_lookup, exit, log};

userlib::service_entry!(main);

/// The driver's capabilities.
pub struct Caps {
    pub echo: Handle,
    pub ctl: Handle,
    pub go: Handle,
    pub victim: Handle,
    pub doomed: Handle,
    pub events: Handle,
    pub pubctl: Handle,
    pub poke: Handle,
    pub poke_doomed: Handle,
    pub nudge: Handle,
    pub nudge_pub: Handle,
}

type Case = fn(&Caps) -> Result<(), Why>;

/// Every case, in the order they run.
const CASES: [(&str, Case); 19] = [
    ("payload_every_length", payload::every_length),
    ("truncated_reply", payload::truncated_reply),
    ("oversize_refused", payload::oversize_refused),
    ("ordering", order::ordering),
    ("badge_identity", pairing::badge_identity),
    (
        "reply_reaches_only_its_caller",
        pairing::reply_reaches_only_its_caller,
    ),
    ("rights", rights::rights),
    ("recv_without_server_ends", rights::recv_without_server_ends),
    ("notification_coalescing", notify::coalescing),
    ("reply_recv", combined::reply_recv),
    ("reply_recv_refused", combined::reply_recv_refused),
    ("notify_wait", combined::notify_wait_case),
    ("notify_wait_refused", combined::notify_wait_refused),
    ("notify_recv", combined::notify_recv_case),
    ("notify_recv_refused", combined::notify_recv_refused),
    ("publish_overflow", publish::overflow),
    ("publish_deferred_reply", publish::deferred_reply),
    ("peer_death_during_call", death::peer_death_during_call),
    ("cap_after_restart", death::cap_after_restart),
];

fn main() {
    let caps = Caps {
        echo: cap("echo", CapKind::Client),
        ctl: cap("ctl", CapKind::Client),
        go: cap("go", CapKind::Client),
        victim: cap("victim", CapKind::Client),
        doomed: cap("doomed", CapKind::Client),
        events: cap("events", CapKind::Client),
        pubctl: cap("pubctl", CapKind::Client),
        poke: cap("poke-victim", CapKind::Notification),
        poke_doomed: cap("poke-doomed", CapKind::Notification),
        nudge: cap("nudge", CapKind::Notification),
        nudge_pub: cap("nudge-pub", CapKind::Notification),
    };
    log!("conformance: {} cases", CASES.len());
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in CASES {
        match case(&caps) {
            Ok(()) => {
                log!("PASS {name}");
                passed += 1;
            }
            Err(why) => {
                log!("FAIL {name}: {why}");
                failed += 1;
            }
        }
    }
    log!("SKIP cap_transfer: the kernel has no capability transfer");
    log!("{passed} passed, {failed} failed");
    exit(if failed == 0 { 0 } else { 1 })
}

fn cap(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => {
            log!("conformance: no {kind:?} capability `{name}` ({other:?})");
            exit(1)
        }
    }
}
