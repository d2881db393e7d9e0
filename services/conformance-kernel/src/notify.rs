//! Notification coalescing: bits are a set, not a queue.

use crate::check::{Why, ask, pending};
use crate::{Caps, ensure};
use conformance_peer::{Msg, bit, op, status_name};
use faultline_ipc::abi::MAX_MESSAGE;

/// The echo server posts bit A three times before the driver waits: one
/// wake with A, nothing after. A twice and B twice: one wake with both.
/// B alone while the driver waits for A: A's wait sees nothing, B stays
/// pending and a wait for B takes it at once.
pub fn coalescing(c: &Caps) -> Result<(), Why> {
    let both = bit::A | bit::B;
    let stale = pending(both)?;
    ensure!(stale == 0, "bits {stale:#x} pending before the case");
    for (a, b, mask, want) in [(3, 0, both, bit::A), (2, 2, both, both), (0, 1, bit::A, 0)] {
        post(c, a, b)?;
        let got = if want == 0 {
            pending(mask)?
        } else {
            match userlib::wait(mask) {
                Ok(bits) => bits,
                Err(e) => crate::fail!("wait refused: {e}"),
            }
        };
        ensure!(
            got == want,
            "after {a} x A and {b} x B, a wait for {mask:#x} woke with {got:#x}, want {want:#x}"
        );
        let again = pending(mask)?;
        ensure!(
            again == 0,
            "after {a} x A and {b} x B, a second wake with {again:#x}"
        );
    }
    let b = pending(bit::B)?;
    ensure!(
        b == bit::B,
        "bit B, posted outside the mask, was lost ({b:#x})"
    );
    Ok(())
}

/// Has the echo server post bit A `a` times and bit B `b` times.
fn post(c: &Caps, a: u8, b: u8) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    let mut r = ask(
        "NOTIFY",
        c.ctl,
        Msg::op(op::NOTIFY).u8(a).u8(b).as_bytes(),
        &mut out,
        8,
    )?;
    let s = r.u64().unwrap_or(u64::MAX);
    ensure!(s == 0, "the echo server's notify: {}", status_name(s));
    Ok(())
}
