//! A server that dies during a call, and what the capabilities of both
//! sides are worth once the supervisor has restarted it (the ABI's IPC
//! section: `PeerDead` for calls to a dead server and for the callers it
//! held, `PeerRestarted` once for the first call after a restart, then
//! ordinary calls; a restarted service gets the deployment's
//! capabilities afresh).

use crate::check::{Why, ask, pending, refused};
use crate::{Caps, ensure, fail};
use conformance_peer::{Hex, Msg, badge, bit, op, status_name};
use faultline_ipc::abi::{Error, MAX_MESSAGE};
use faultline_ipc::channel::Handle;
use userlib::{SysError, call, log, notify, sleep_ms, time};

/// Attempts, 10 ms apart, before giving up on the restart (the
/// deployment's back-off is 50 ms).
const ATTEMPTS: u32 = 500;

fn ping(h: Handle, x: u32) -> Result<u32, SysError> {
    let mut out = [0u8; MAX_MESSAGE];
    let n = call(h, Msg::op(op::PING).u32(x).as_bytes(), &mut out)?;
    let mut r = conformance_peer::Reader::new(&out[..n.min(MAX_MESSAGE)]);
    match (n, r.u32(), r.u32()) {
        (8, Some(count), Some(echo)) if echo == x => Ok(count),
        _ => Err(SysError::Unknown(u64::MAX)),
    }
}

/// The doomed victim faults while our call is queued at it (it waits
/// outside `recv` until the nudger, which runs only once we are blocked,
/// nudges it), and the victim faults while holding our call: both calls
/// return `PeerDead` (no hang). The doomed victim is held by the
/// supervisor, so it stays dead: calls and notifications to it are
/// `PeerDead`, deterministically (a timed window before a restart would
/// depend on the host's speed). The victim is restarted after its
/// back-off: until then calls are `PeerDead`, the first call after the
/// restart is `PeerRestarted` with generation 2 (not delivered), and the
/// next reaches a fresh instance (its count is 1).
pub fn peer_death_during_call(c: &Caps) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    for (who, h) in [("doomed", c.doomed), ("victim", c.victim)] {
        if let Err(e) = ping(h, 1) {
            fail!("{who} does not answer before the case: {e}");
        }
    }
    if let Err(e) = call(c.doomed, &[op::DIE_ON_NUDGE], &mut out) {
        fail!("DIE_ON_NUDGE: {e}");
    }
    if let Err(e) = notify(c.nudge) {
        fail!("nudging the nudger: {e}");
    }
    refused("the queued call", ping(c.doomed, 2), Error::PeerDead)?;
    let r = call(c.victim, &[op::DIE], &mut out);
    refused("the held call", r, Error::PeerDead)?;
    let died = time().ns;
    for round in 0..2 {
        let r = ping(c.doomed, 3);
        refused("a call to the held server", r, Error::PeerDead)?;
        let r = notify(c.poke_doomed);
        refused("a notification to the held server", r, Error::PeerDead)?;
        if round == 0 {
            let _ = sleep_ms(10);
        }
    }
    for attempt in 0..ATTEMPTS {
        match ping(c.victim, 3) {
            Err(SysError::Kernel(Error::PeerDead)) => {
                let _ = sleep_ms(10);
                continue;
            }
            Err(SysError::PeerRestarted { generation: 2 }) => {
                let ms = (time().ns - died) / 1_000_000;
                log!(
                    "  peer_death_during_call: victim restarted after {ms} ms (attempt {attempt})"
                );
                return match ping(c.victim, 4) {
                    Ok(1) => Ok(()),
                    other => fail!("the first call after PeerRestarted: {other:?}, want count 1"),
                };
            }
            other => fail!("attempt {attempt} while waiting for the restart: {other:?}"),
        }
    }
    fail!("the victim was not restarted within {ATTEMPTS} attempts")
}

/// After the restart (the previous case): our client end works without a
/// second `PeerRestarted`, our notification reaches the new instance, its
/// notification reaches us, its own client end (granted afresh) reaches
/// the echo server, and its channel keeps its badge.
pub fn cap_after_restart(c: &Caps) -> Result<(), Why> {
    match ping(c.victim, 5) {
        Ok(n) if n >= 1 => {}
        other => fail!("our client end after the restart: {other:?}"),
    }
    let mut out = [0u8; MAX_MESSAGE];
    let before = ask("NOTIFIED", c.victim, &[op::NOTIFIED], &mut out, 4)?.u32();
    if let Err(e) = notify(c.poke) {
        fail!("our notification to the restarted victim: {e}");
    }
    let after = ask("NOTIFIED", c.victim, &[op::NOTIFIED], &mut out, 4)?.u32();
    ensure!(
        before.zip(after).is_some_and(|(b, a)| a == b + 1),
        "the restarted victim counted {before:?} then {after:?} notifications around ours"
    );
    let s = ask("NOTIFY_BACK", c.victim, &[op::NOTIFY_BACK], &mut out, 8)?.u64();
    ensure!(
        s == Some(0),
        "its notification to us: {}",
        status_name(s.unwrap_or(u64::MAX))
    );
    let got = pending(bit::BACK)?;
    ensure!(
        got == bit::BACK,
        "its notification did not arrive ({got:#x})"
    );
    let mut r = ask("CALL_PEER", c.victim, &[op::CALL_PEER], &mut out, 16)?;
    let (s, seen) = (r.u64().unwrap_or(u64::MAX), r.u64());
    ensure!(
        s == 0 && seen == Some(badge::VECHO),
        "its client end to the echo server: {} (badge seen {})",
        status_name(s),
        Hex(seen)
    );
    let m = Msg::op(op::WHOAMI).u64(0);
    let seen = ask("WHOAMI", c.victim, m.as_bytes(), &mut out, 16)?.u64();
    ensure!(
        seen == Some(badge::VICTIM),
        "our channel's badge after the restart: {}",
        Hex(seen)
    );
    Ok(())
}
