//! Ordering: one-way messages arrive in the order they were sent.

use crate::check::{Why, ask};
use crate::{Caps, ensure, fail};
use conformance_peer::{Msg, op};
use faultline_ipc::abi::MAX_MESSAGE;
use userlib::{call, send};

/// Messages sent (and a call made in between, which must not reorder them).
const SENDS: u32 = 32;

/// 32 one-way `SEQ` messages with sequence numbers, an echo call after
/// the 16th; the server's log must read 0..32 in order.
pub fn ordering(c: &Caps) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    // Start from an empty log, whatever ran before.
    if let Err(e) = call(c.ctl, &[op::SEQ_LOG], &mut out) {
        fail!("clearing the log: {e}");
    }
    for seq in 0..SENDS {
        if let Err(e) = send(c.ctl, Msg::op(op::SEQ).u32(seq).as_bytes()) {
            fail!("send {seq} refused: {e}");
        }
        if seq == SENDS / 2
            && let Err(e) = call(c.echo, &[7], &mut out)
        {
            fail!("the echo call between sends: {e}");
        }
    }
    let len = 1 + 4 * SENDS as usize;
    let mut r = ask("SEQ_LOG", c.ctl, &[op::SEQ_LOG], &mut out, len)?;
    let count = r.u8();
    ensure!(
        count == Some(SENDS as u8),
        "the log holds {count:?} messages, want {SENDS}"
    );
    for want in 0..SENDS {
        let got = r.u32();
        ensure!(
            got == Some(want),
            "message {want} arrived as {got:?} (out of order)"
        );
    }
    Ok(())
}
