//! Rights. A channel end's rights are its kind: a client end may `call`
//! and `send`, a server end only receives (through `recv`, which names no
//! handle) and replies (with a token). The ABI promises `BadHandle` for a
//! handle that names nothing and `WrongKind` for one of the wrong kind;
//! no IPC call answers `NoRight` (channel ends carry no rights beyond
//! their kind).

use crate::check::{Why, ask, refused};
use crate::{Caps, ensure, fail};
use conformance_peer::{op, status_name};
use faultline_ipc::abi::{Error, MAX_MESSAGE, NOTIFY_TIMER};
use faultline_ipc::channel::{Handle, Received};
use userlib::{call, notify, recv, send, set_timer, time};

/// Bad handles, a notification used as a channel, a client end used as a
/// notification, and (in the echo server) its server end used to call,
/// send and notify: each refused with the exact code.
pub fn rights(c: &Caps) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    for h in [Handle(24), Handle(1000), Handle(u64::MAX)] {
        refused(
            "call on a bad handle",
            call(h, &[1], &mut out),
            Error::BadHandle,
        )?;
        refused("send on a bad handle", send(h, &[1]), Error::BadHandle)?;
        refused("notify on a bad handle", notify(h), Error::BadHandle)?;
    }
    refused(
        "call on a notification",
        call(c.poke, &[1], &mut out),
        Error::WrongKind,
    )?;
    refused(
        "send on a notification",
        send(c.poke, &[1]),
        Error::WrongKind,
    )?;
    refused("notify on a client end", notify(c.echo), Error::WrongKind)?;
    let mut r = ask("RIGHTS", c.ctl, &[op::RIGHTS], &mut out, 24)?;
    for what in ["call", "send", "notify"] {
        let got = r.u64().unwrap_or(u64::MAX);
        ensure!(
            got == Error::WrongKind as u64,
            "{what} on the echo server's own server end: {} ({got}), want WrongKind",
            status_name(got)
        );
    }
    Ok(())
}

/// `recv` in a service holding only client ends: nothing arrives through
/// them (its servers are idle, not sending to it); only the notification
/// it asked for.
pub fn recv_without_server_ends(_c: &Caps) -> Result<(), Why> {
    if let Err(e) = set_timer(time().ns + 2_000_000) {
        fail!("set_timer refused: {e}");
    }
    let mut buf = [0u8; MAX_MESSAGE];
    match recv(&mut buf, NOTIFY_TIMER) {
        Ok(Received::Notification { bits }) if bits == NOTIFY_TIMER => Ok(()),
        other => fail!("want only the timer notification, got {other:?}"),
    }
}
