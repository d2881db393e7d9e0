//! `faultline-conformance-peer`: the services the kernel IPC conformance
//! suite (`faultline-conformance-kernel`) talks to. One image plays four
//! roles, told apart by the capabilities the deployment gives each
//! service (services of one crate share one image):
//!
//! - `echo` server end: [`server`], the echo and control server;
//! - `go` server end: [`second`], the second client of the pairing case;
//! - `victim` server end: [`victim`], the server that faults mid-call and
//!   is restarted;
//! - `events` server end: [`publish`], the `events` publisher;
//! - `nudge-doomed` notification: [`nudger`], which runs only when the
//!   driver is blocked (it is the least important service).
//!
//! Each role serves forever (waiting in `recv` counts as finished). With
//! the debug feature `misbehave` the echo server lies on purpose (see the
//! crate manifest), so the suite can be seen failing.
//!
//! Log lines: `<role>: serving`, and one line per surprise.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod nudger;
mod publish;
mod second;
mod server;
mod victim;

use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::Handle;
use userlib::{cap_lookup, exit, log};

userlib::service_entry!(main);

fn main() -> ! {
    if cap_lookup("echo").is_ok() {
        server::run()
    } else if cap_lookup("go").is_ok() {
        second::run()
    } else if cap_lookup("victim").is_ok() {
        victim::run()
    } else if cap_lookup("events").is_ok() {
        publish::run()
    } else if cap_lookup("nudge-doomed").is_ok() {
        nudger::run()
    }
    log!("conformance-peer: no role (none of echo, go, victim, events, nudge-doomed granted)");
    exit(1)
}

/// The handle of capability `name`, which must be of `kind`; exits if the
/// deployment did not grant it.
pub fn cap(name: &str, kind: CapKind) -> Handle {
    match cap_lookup(name) {
        Ok((h, k)) if k == kind => h,
        other => {
            log!("conformance-peer: no {kind:?} capability `{name}` ({other:?})");
            exit(1)
        }
    }
}
