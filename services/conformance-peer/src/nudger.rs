//! The nudger (role `nudge-doomed`): on `nudge` from the driver it posts
//! `nudge-doomed` to the doomed victim, on `nudge-pub` it posts
//! `nudge-publisher` to the publisher. It is less important than the
//! driver, so it runs only once the driver is blocked: that is how the
//! driver has a call queued at the doomed victim (which waits outside
//! `recv`) when the victim faults, and a pull parked at the publisher when
//! the event is published, whatever the host's speed.

use crate::cap;
use conformance_peer::bit;
use faultline_ipc::abi::CapKind;
use userlib::{log, notify, wait};

pub fn run() -> ! {
    let doomed = cap("nudge-doomed", CapKind::Notification);
    let publisher = cap("nudge-publisher", CapKind::Notification);
    log!("nudger: waiting");
    loop {
        let bits = match wait(bit::NUDGE | bit::NUDGE_PUB) {
            Ok(bits) => bits,
            Err(e) => {
                log!("nudger: wait refused: {e}");
                continue;
            }
        };
        for (b, target, name) in [
            (bit::NUDGE, doomed, "doomed victim"),
            (bit::NUDGE_PUB, publisher, "publisher"),
        ] {
            if bits & b != 0
                && let Err(e) = notify(target)
            {
                log!("nudger: nudging the {name}: {e}");
            }
        }
    }
}
