//! `faultline-supervisor`: started first; restarts or holds services that
//! stop badly, as each one's restart policy says.
//!
//! It holds one capability, `supervisor` (kind Supervisor), and talks to
//! nobody but the kernel. It sleeps in `wait(NOTIFY_TASK_FAULT |
//! NOTIFY_TIMER)`. On a fault bit it reads every task's status (index 0,
//! 1, ... until `NotFound`) and hands each to [`supervisor::Supervisor`];
//! restarts wait for their back-off on the timer, one timer for all of
//! them. With nothing scheduled it arms no timer, so once every other
//! service is done the kernel can see that nothing will run again.
//!
//! Log lines:
//! - `supervisor: watching`
//! - `supervisor: <name> faulted: page fault (vector 14) at 0x0, rip 0x...`
//!   or `supervisor: <name> exited with code <c>`
//! - `supervisor: restarting <name> (generation <g>, restart <n>/<max>) after <ms> ms`
//! - `supervisor: restarted <name>`
//! - `supervisor: holding <name> (<reason>)`
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use faultline_ipc::abi::{CapKind, Error, MAX_MESSAGE, NOTIFY_TASK_FAULT, NOTIFY_TIMER};
use faultline_ipc::channel::Handle;
use faultline_ipc::kconfig::MAX_SERVICES;
use supervisor::{Decision, Stop, Supervisor, decode_status};
use userlib::{SysError, cap_lookup, exit, log, set_timer, task_restart, task_status, time, wait};

userlib::service_entry!(main);

fn main() -> ! {
    let sup = match cap_lookup("supervisor") {
        Ok((h, CapKind::Supervisor)) => h,
        other => {
            log!("supervisor: no supervisor capability ({other:?})");
            exit(1)
        }
    };
    log!("supervisor: watching");
    let mut s = Supervisor::new();
    loop {
        let bits = match wait(NOTIFY_TASK_FAULT | NOTIFY_TIMER) {
            Ok(bits) => bits,
            Err(e) => {
                log!("supervisor: wait refused: {e}");
                exit(1)
            }
        };
        if bits & NOTIFY_TASK_FAULT != 0 {
            scan(sup, &mut s);
        }
        restart_due(sup, &mut s);
        if let Err(e) = set_timer(s.next_deadline().unwrap_or(0)) {
            log!("supervisor: set_timer refused: {e}");
        }
    }
}

/// Reads every task's status and acts on those that stopped badly.
fn scan(sup: Handle, s: &mut Supervisor) {
    let mut buf = [0u8; MAX_MESSAGE];
    for index in 0..MAX_SERVICES {
        let n = match task_status(sup, index as u64, &mut buf) {
            Ok(n) => n,
            Err(SysError::Kernel(Error::NotFound)) => return,
            Err(e) => {
                log!("supervisor: status of task {index} refused: {e}");
                return;
            }
        };
        let status = match decode_status(&buf[..n]) {
            Ok(status) => status,
            Err(e) => {
                log!("supervisor: status of task {index} does not decode: {e}");
                continue;
            }
        };
        let name = status.name.as_str();
        match s.observe(index, &status, time().ns) {
            Decision::Nothing => {}
            Decision::Restart {
                delay_ms,
                restart,
                max,
                generation,
                ..
            } => {
                log!("supervisor: {name} {}", Stop(&status));
                log!(
                    "supervisor: restarting {name} (generation {generation}, restart {restart}/{max}) after {delay_ms} ms"
                );
            }
            Decision::Hold(reason) => {
                log!("supervisor: {name} {}", Stop(&status));
                log!("supervisor: holding {name} ({reason})");
            }
        }
    }
}

/// Restarts every task whose back-off is over.
fn restart_due(sup: Handle, s: &mut Supervisor) {
    let now = time().ns;
    while let Some(task) = s.take_due(now) {
        match task_restart(sup, task as u64) {
            Ok(()) => log!("supervisor: restarted {}", s.name(task)),
            Err(e) => {
                log!("supervisor: restart of {} refused: {e}", s.name(task));
                if let Decision::Hold(reason) = s.restart_refused(task) {
                    log!("supervisor: holding {} ({reason})", s.name(task));
                }
            }
        }
    }
}
