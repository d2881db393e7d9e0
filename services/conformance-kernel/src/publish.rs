//! The publish mechanism (`faultline_ipc::publisher` over the kernel's
//! deferred replies): a subscriber that falls behind sees every event or
//! a gap in `seq` that says how many it missed, never a silent loss; a
//! pull with nothing to deliver is parked and answered later.

use crate::check::{Why, ask};
use crate::{Caps, ensure, fail};
use conformance_peer::{BACKLOG, Msg, op};
use faultline_ipc::abi::MAX_MESSAGE;
use faultline_ipc::channel::Client;
use faultline_ipc::protocol::events::{EventKind, Events, EventsRequest, EventsResponse};
use userlib::{KernelTransport, log, notify};

/// Events published while the subscriber does not pull: more than the
/// backlog holds.
const OVERFLOW: u32 = 20;
/// Then fewer than the backlog holds.
const FITS: u32 = 5;

fn subscribe(c: &mut Client<Events, KernelTransport>) -> Result<u32, Why> {
    match c.call(&EventsRequest::Subscribe) {
        Ok(EventsResponse::Subscribed { next_seq }) => Ok(next_seq),
        other => fail!("Subscribe: {other:?}"),
    }
}

/// The next event: its `seq`, checked to be the `Tick` it names.
fn next(c: &mut Client<Events, KernelTransport>) -> Result<u32, Why> {
    match c.call(&EventsRequest::NextEvent) {
        Ok(EventsResponse::Event {
            seq,
            kind: EventKind::Tick { n },
        }) if n == seq => Ok(seq),
        other => fail!("NextEvent: {other:?}"),
    }
}

fn burst(c: &Caps, n: u32) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    let m = Msg::op(op::BURST).u16(n as u16);
    let mut r = ask("BURST", c.pubctl, m.as_bytes(), &mut out, 8)?;
    let (delivered, dropped) = (r.u32(), r.u32());
    ensure!(
        delivered == Some(0) && dropped == Some(0),
        "a burst with no pull parked delivered {delivered:?} and dropped {dropped:?}"
    );
    Ok(())
}

/// 20 events published at once with no pull parked, into a backlog of 8:
/// the pulls that follow get the last 8, in order, and the gap in `seq`
/// before them reports exactly the 12 missed (delivered + missed = 20).
/// Then 5 more, which fit: all 5, no gap.
pub fn overflow(c: &Caps) -> Result<(), Why> {
    let mut sub = Client::<Events, _>::new(KernelTransport, c.events);
    let start = subscribe(&mut sub)?;
    burst(c, OVERFLOW)?;
    let first = next(&mut sub)?;
    ensure!(first >= start, "first seq {first} is before {start}");
    let missed = first - start;
    let mut delivered = 1;
    let mut last = first;
    while last + 1 < start + OVERFLOW {
        let seq = next(&mut sub)?;
        ensure!(
            seq == last + 1,
            "seq {seq} after {last}: a gap of {} after the first event",
            seq.wrapping_sub(last + 1)
        );
        last = seq;
        delivered += 1;
    }
    log!(
        "  publish_overflow: {OVERFLOW} published, {delivered} delivered, {missed} reported missed (seq {start}..{first})"
    );
    ensure!(
        delivered + missed == OVERFLOW,
        "{delivered} delivered + {missed} missed != {OVERFLOW} published"
    );
    let kept = BACKLOG as u32;
    ensure!(
        missed == OVERFLOW - kept,
        "{missed} missed, want {} (a backlog of {kept})",
        OVERFLOW - kept
    );
    burst(c, FITS)?;
    for want in start + OVERFLOW..start + OVERFLOW + FITS {
        let seq = next(&mut sub)?;
        ensure!(
            seq == want,
            "with room in the backlog: seq {seq}, want {want}"
        );
    }
    Ok(())
}

/// A pull with nothing published is parked (the caller blocks) and
/// answered by the next event, with the next `seq`. The event is published
/// only once we are blocked in the pull (the nudger, less important than
/// us, nudges the publisher), and the publisher confirms it answered one
/// parked pull.
pub fn deferred_reply(c: &Caps) -> Result<(), Why> {
    let mut sub = Client::<Events, _>::new(KernelTransport, c.events);
    let start = subscribe(&mut sub)?;
    if let Err(e) = notify(c.nudge_pub) {
        fail!("nudging the nudger: {e}");
    }
    let seq = next(&mut sub)?;
    ensure!(seq == start, "the parked pull got seq {seq}, want {start}");
    let mut out = [0u8; MAX_MESSAGE];
    let m = [op::NUDGED_DELIVERED];
    let parked = ask("NUDGED_DELIVERED", c.pubctl, &m, &mut out, 4)?.u32();
    ensure!(
        parked == Some(1),
        "the nudged event answered {parked:?} parked pulls, want 1 (ours)"
    );
    Ok(())
}
