//! The combined system calls (the ABI's IPC section): `ReplyRecv` is
//! `Reply` then `Recv`, `NotifyWait` is `Notify` then `Wait`, `NotifyRecv`
//! is `Notify` then `Recv`, in one entry; a refusal of either half (the
//! receive buffer is checked first) leaves both undone.
//!
//! Each is tried where the kernel's fast path takes it (the woken service
//! is the only one to run next, nothing queued, nothing pending) and where
//! the general path must (a truncated reply, another service of the
//! woken one's priority runnable, a message queued for the server, a bit
//! of the caller's mask already pending), and the outcomes must be the
//! same. `ReplyRecv` is a server's call, so the echo server makes it (the
//! driver holds only client ends) and the driver checks what its call got
//! back; `NotifyWait` and `NotifyRecv` the driver makes itself, poking the
//! victim, which (with `ECHO_POKES` on) answers every poke with `note-back`.

use crate::check::{Why, ask, pending, refused};
use crate::{Caps, ensure, fail};
use conformance_peer::{
    Hex, KERNEL_ADDRESS, Msg, STIR_QUEUED, STIR_RUNNABLE, badge, bit, echo_reply, fill_request, op,
    status_name,
};
use faultline_ipc::abi::{Error, MAX_MESSAGE, NOTIFY_TIMER, RecvKind, Sysnum};
use faultline_ipc::channel::{Handle, Received};
use userlib::{SysError, call, check, notify_recv, notify_wait, set_timer, time, wait};

/// Calls `REPLY_RECV` (answered through `ReplyRecv`) for an `n`-byte
/// reply into a `cap`-byte buffer, after the second client did what
/// `stir` says: the outcome (length, `Truncated`, bytes) must be a plain
/// `Reply`'s (the echo channel's answer to the same request), and the
/// message the server's `ReplyRecv` received must be the next one sent
/// to it (`next`: kind, length, badge).
fn one_reply_recv(
    c: &Caps,
    n: usize,
    stir: u8,
    cap: usize,
    next: (RecvKind, u64, u64),
) -> Result<(), Why> {
    let what = match stir {
        0 => "",
        STIR_RUNNABLE => " with another service runnable",
        _ => " with a message queued",
    };
    let mut request = [0u8; MAX_MESSAGE];
    fill_request(&mut request[..n]);
    let mut want = [0u8; MAX_MESSAGE];
    echo_reply(&request[..n], &mut want);
    // What a plain `Reply` of the same bytes gives (the echo channel).
    let mut plain = [0xeeu8; MAX_MESSAGE];
    let plain_r = call(c.echo, &request[..n], &mut plain[..cap]);
    let mut out = [0xeeu8; MAX_MESSAGE];
    let m = Msg::op(op::REPLY_RECV).u16(n as u16).u8(stir);
    let r = call(c.ctl, m.as_bytes(), &mut out[..cap]);
    match r {
        Ok(got) if cap >= n && got == n => {}
        Err(SysError::Truncated { len }) if cap < n && len == n => {}
        other => fail!(
            "{n} bytes into {cap}{what}: {other:?}, want {}",
            if cap < n { "Truncated" } else { "the length" }
        ),
    }
    let same = match (&r, &plain_r) {
        (Ok(a), Ok(b)) => a == b,
        (Err(SysError::Truncated { len: a }), Err(SysError::Truncated { len: b })) => a == b,
        _ => false,
    };
    ensure!(
        same,
        "{n} bytes into {cap}{what}: ReplyRecv gave {r:?}, Reply gave {plain_r:?}"
    );
    let shown = n.min(cap);
    if let Some(i) = (0..shown).find(|&i| out[i] != want[i]) {
        fail!(
            "{n} bytes into {cap}{what}: reply byte {i} is {:#04x}, want {:#04x}",
            out[i],
            want[i]
        );
    }
    ensure!(
        out[shown..].iter().all(|&b| b == 0xee),
        "{n} bytes into {cap}{what}: bytes written past the {shown} delivered"
    );
    ensure!(
        out == plain,
        "{n} bytes into {cap}{what}: the buffer differs from a plain Reply's"
    );
    let mut rep = [0u8; MAX_MESSAGE];
    let m = [op::REPLY_RECV_REPORT];
    let mut r = ask("REPLY_RECV_REPORT", c.ctl, &m, &mut rep, 32)?;
    let got = (r.u64(), r.u64(), r.u64(), r.u64());
    let (kind, len, b) = next;
    ensure!(
        got == (Some(0), Some(kind as u64), Some(len), Some(b)),
        "{n} bytes into {cap}{what}: the server's ReplyRecv returned {} kind {} length {} badge {}, want kind {kind:?} length {len} badge {b:#x}",
        status_name(got.0.unwrap_or(u64::MAX)),
        Hex(got.1),
        Hex(got.2),
        Hex(got.3)
    );
    Ok(())
}

/// A call answered with `ReplyRecv` gets what `Reply` would give it
/// (length, bytes, `Truncated` with the full length into a smaller
/// buffer, nothing written past what was delivered), and the server's
/// `ReplyRecv` then receives the next message: our next call, or at once
/// the second client's one-way message queued meanwhile. Fast path: the
/// whole replies with nothing else to run; general path: truncation,
/// the second client runnable (as important as us), a message queued.
pub fn reply_recv(c: &Caps) -> Result<(), Why> {
    let ours = (RecvKind::Call, 1, badge::CTL);
    let queued = (RecvKind::Send, 1, badge::PAIR);
    for (n, stir, cap, next) in [
        (0, 0, MAX_MESSAGE, ours),
        (1, 0, MAX_MESSAGE, ours),
        (100, 0, MAX_MESSAGE, ours),
        (MAX_MESSAGE, 0, MAX_MESSAGE, ours),
        (100, 0, 100, ours),
        (200, 0, 16, ours),
        (MAX_MESSAGE, 0, 0, ours),
        (99, STIR_RUNNABLE, MAX_MESSAGE, ours),
        (99, STIR_QUEUED, MAX_MESSAGE, queued),
        (200, STIR_QUEUED, 16, queued),
    ] {
        one_reply_recv(c, n, stir, cap, next)?;
    }
    Ok(())
}

/// `ReplyRecv` with a used token is `StaleToken` at once (the server is
/// not left waiting: a timer bounds it, and it got the error, not the
/// timer); with a kernel address as the receive buffer it is `BadPointer`
/// and the reply did not happen: our call gets the server's plain `Reply`
/// with the same token afterwards, not the refused one's bytes.
pub fn reply_recv_refused(c: &Caps) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    // So the server's last answered token is a used one.
    let m = Msg::op(op::WHOAMI).u64(0);
    ask("WHOAMI", c.ctl, m.as_bytes(), &mut out, 16)?;
    let n = match call(c.ctl, &[op::REPLY_RECV_REFUSED], &mut out) {
        Ok(n) => n,
        Err(e) => fail!("REPLY_RECV_REFUSED: {e}"),
    };
    ensure!(
        &out[..n] != b"refused ReplyRecv",
        "the reply of the ReplyRecv refused for its receive buffer reached us"
    );
    ensure!(n == 16, "REPLY_RECV_REFUSED: {n}-byte answer, want 16");
    let mut r = conformance_peer::Reader::new(&out[..n]);
    let (used, bad) = (r.u64().unwrap_or(u64::MAX), r.u64().unwrap_or(u64::MAX));
    ensure!(
        used != u64::MAX - 1,
        "ReplyRecv with a used token blocked the server until its timer"
    );
    ensure!(
        used == Error::StaleToken as u64,
        "ReplyRecv with a used token: {} ({used}), want StaleToken",
        status_name(used)
    );
    ensure!(
        bad == Error::BadPointer as u64,
        "ReplyRecv into a kernel address: {} ({bad}), want BadPointer",
        status_name(bad)
    );
    // The server serves on.
    ask("WHOAMI after", c.ctl, m.as_bytes(), &mut out, 16)?;
    Ok(())
}

fn echo_pokes(c: &Caps, on: bool) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    let m = Msg::op(op::ECHO_POKES).u8(u8::from(on));
    ask("ECHO_POKES", c.victim, m.as_bytes(), &mut out, 1).map(drop)
}

fn notified(c: &Caps) -> Result<u32, Why> {
    let mut out = [0u8; MAX_MESSAGE];
    match ask("NOTIFIED", c.victim, &[op::NOTIFIED], &mut out, 4)?.u32() {
        Some(n) => Ok(n),
        None => fail!("NOTIFIED: no count"),
    }
}

/// Has the echo server post bit A once (so it is pending for us).
fn post_a(c: &Caps) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    let m = Msg::op(op::NOTIFY).u8(1).u8(0);
    let s = ask("NOTIFY", c.ctl, m.as_bytes(), &mut out, 8)?
        .u64()
        .unwrap_or(u64::MAX);
    ensure!(s == 0, "the echo server's notify: {}", status_name(s));
    Ok(())
}

/// Runs `f` (a `NotifyWait` or `NotifyRecv` poking the victim, which
/// echoes pokes) twice: waiting for the echo (fast path: the victim is
/// the one to run next), and with bit A pending in the mask (general
/// path: the bits are there at once). Each time the victim must have
/// counted exactly one poke, and `f` must return exactly the bits.
fn poke_twice(
    c: &Caps,
    name: &str,
    mut f: impl FnMut(u32) -> Result<u32, SysError>,
) -> Result<(), Why> {
    let all = bit::A | bit::B | bit::BACK;
    let stale = pending(all)?;
    ensure!(stale == 0, "bits {stale:#x} pending before the case");
    echo_pokes(c, true)?;
    let r = (|| {
        for (mask, pre) in [(bit::BACK, false), (bit::A, true)] {
            if pre {
                post_a(c)?;
            }
            let before = notified(c)?;
            match f(mask) {
                Ok(bits) if bits == mask => {}
                other => fail!("{name} for {mask:#x}: {other:?}, want bits {mask:#x}"),
            }
            let after = notified(c)?;
            ensure!(
                after == before.wrapping_add(1),
                "{name} for {mask:#x}: the victim counted {before} then {after} pokes"
            );
            let echoed = pending(bit::BACK)?;
            let want = if pre { bit::BACK } else { 0 };
            ensure!(
                echoed == want,
                "{name} for {mask:#x}: the victim's echo left {echoed:#x} pending, want {want:#x}"
            );
        }
        Ok(())
    })();
    echo_pokes(c, false)?;
    r
}

/// `NotifyWait` wakes the victim as `Notify` does (it counts one poke and
/// echoes it) and then waits as `Wait` does, returning the bits: the echo
/// itself, or bit A already pending (returned at once).
pub fn notify_wait_case(c: &Caps) -> Result<(), Why> {
    poke_twice(c, "NotifyWait", |mask| notify_wait(c.poke, mask))
}

/// Blocks (bounded by a timer 5 ms out) and checks the timer is what
/// woke us; `f` must be refused at once with `want`, never wait.
fn refused_at_once<T: core::fmt::Debug>(
    what: &str,
    want: Error,
    f: impl FnOnce() -> Result<T, SysError>,
) -> Result<(), Why> {
    if let Err(e) = set_timer(time().ns + 5_000_000) {
        fail!("set_timer refused: {e}");
    }
    let r = f();
    // A call that waited took the timer's bit; otherwise take it, so
    // none is left behind.
    if r.is_err()
        && let Err(e) = wait(NOTIFY_TIMER)
    {
        fail!("wait for the timer refused: {e}");
    }
    refused(what, r, want)
}

/// `NotifyWait` with a handle that is not a notification (a client end)
/// or names nothing is refused at once (`WrongKind`, `BadHandle`) and
/// does not wait (a timer 5 ms out would have ended the wait with its
/// bit).
pub fn notify_wait_refused(c: &Caps) -> Result<(), Why> {
    refused_at_once("NotifyWait on a client end", Error::WrongKind, || {
        notify_wait(c.echo, NOTIFY_TIMER)
    })?;
    refused_at_once("NotifyWait on a bad handle", Error::BadHandle, || {
        notify_wait(Handle(1000), NOTIFY_TIMER)
    })
}

/// `NotifyRecv` wakes the victim as `Notify` does and then receives as
/// `Recv` does: the echo's notification, or bit A already pending.
pub fn notify_recv_case(c: &Caps) -> Result<(), Why> {
    let mut buf = [0u8; MAX_MESSAGE];
    poke_twice(c, "NotifyRecv", |mask| {
        match notify_recv(c.poke, &mut buf, mask)? {
            Received::Notification { bits } => Ok(bits),
            other => Err(SysError::Unknown(match other {
                Received::Call { .. } => RecvKind::Call as u64,
                _ => RecvKind::Send as u64,
            })),
        }
    })
}

/// `NotifyRecv` on the victim's notification into a kernel address.
#[allow(unsafe_code)]
fn raw_notify_recv(h: Handle, mask: u32) -> Result<[u64; 4], SysError> {
    let args = [
        h.0,
        KERNEL_ADDRESS,
        MAX_MESSAGE as u64,
        u64::from(mask),
        0,
        0,
    ];
    // SAFETY: the only pointer the kernel may write through is a kernel
    // address, which it refuses.
    check(unsafe { userlib::sys::syscall6(Sysnum::NotifyRecv as u64, args) })
}

/// `NotifyRecv` with a kernel address as its receive buffer is
/// `BadPointer`, and the notification was not posted: the victim counted
/// no poke and echoed none. With a client end as the notification it is
/// `WrongKind` at once, nothing received.
pub fn notify_recv_refused(c: &Caps) -> Result<(), Why> {
    let stale = pending(bit::BACK)?;
    ensure!(stale == 0, "bits {stale:#x} pending before the case");
    echo_pokes(c, true)?;
    let r = (|| {
        let before = notified(c)?;
        refused(
            "NotifyRecv into a kernel address",
            raw_notify_recv(c.poke, bit::BACK),
            Error::BadPointer,
        )?;
        let after = notified(c)?;
        ensure!(
            after == before,
            "the refused NotifyRecv posted its notification: the victim counted {before} then {after} pokes"
        );
        let echoed = pending(bit::BACK)?;
        ensure!(
            echoed == 0,
            "the refused NotifyRecv's poke was echoed ({echoed:#x})"
        );
        let mut buf = [0u8; MAX_MESSAGE];
        refused_at_once("NotifyRecv on a client end", Error::WrongKind, || {
            notify_recv(c.echo, &mut buf, NOTIFY_TIMER)
        })
    })();
    echo_pokes(c, false)?;
    r
}
