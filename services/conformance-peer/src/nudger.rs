//! The nudger (role `nudge-doomed`): on every `nudge` from the driver it
//! posts `nudge-doomed` to the doomed victim. It is less important than
//! the driver, so it runs only once the driver is blocked: that is how the
//! driver has a call queued at the doomed victim (which waits outside
//! `recv`) when the victim faults, whatever the host's speed.

use crate::cap;
use conformance_peer::bit;
use faultline_ipc::abi::CapKind;
use userlib::{log, notify, wait};

pub fn run() -> ! {
    let doomed = cap("nudge-doomed", CapKind::Notification);
    log!("nudger: waiting");
    loop {
        match wait(bit::NUDGE) {
            Ok(_) => {
                if let Err(e) = notify(doomed) {
                    log!("nudger: nudging the doomed victim: {e}");
                }
            }
            Err(e) => log!("nudger: wait refused: {e}"),
        }
    }
}
