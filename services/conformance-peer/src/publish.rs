//! The `events` publisher (role `events`): [`Publisher`] as it is, with a
//! backlog of [`BACKLOG`] events, and a control channel to make it publish.
//!
//! - `events` (badge [`badge::EVENTS`]): the `events` protocol, handled
//!   by the publisher (answered at once from the backlog, or parked until
//!   the next event).
//! - `pubctl` (badge [`badge::PUBCTL`]): `BURST n` publishes `n` events at
//!   once and answers what the publisher reported; `NUDGED_DELIVERED`
//!   answers how many parked pulls the last nudged event answered.
//! - [`bit::PUBLISH`] (from the nudger, which runs only while the driver
//!   is blocked): publish one event.
//!
//! The `n` of every `Tick` is the number of events published before it,
//! which is its `seq`, so a subscriber can tell each event is the one its
//! `seq` says.

use conformance_peer::{BACKLOG, Msg, Reader, badge, bit, op};
use faultline_ipc::abi::MAX_MESSAGE;
use faultline_ipc::channel::{Received, Refusal, ReplyToken, Server, Serves};
use faultline_ipc::protocol::events::{EventKind, Events};
use faultline_ipc::publisher::Publisher;
use userlib::{KernelTransport, log, recv, reply};

pub fn run() -> ! {
    let mut server = Server::<Events, _>::new(KernelTransport);
    let mut publisher = Publisher::<2, BACKLOG>::new();
    let mut count: u32 = 0;
    let mut nudged_delivered: u32 = 0;
    log!("publisher: serving");
    let mut buf = [0u8; MAX_MESSAGE];
    loop {
        let (len, badge, token) = match recv(&mut buf, bit::PUBLISH) {
            Ok(Received::Call { len, badge, token }) => (len, badge, token),
            Ok(Received::Notification { bits }) => {
                if bits & bit::PUBLISH != 0 {
                    let d = publisher.publish(&mut server, EventKind::Tick { n: count });
                    nudged_delivered = d.delivered as u32;
                    count += 1;
                }
                continue;
            }
            Ok(Received::Send { .. }) => continue,
            Err(e) => {
                log!("publisher: receive failed: {e}");
                continue;
            }
        };
        let msg = &buf[..len.min(MAX_MESSAGE)];
        if badge == badge::EVENTS {
            match <Events as Serves>::decode(msg) {
                Ok(request) => {
                    if let Err(e) = publisher.handle(&mut server, badge, request, token) {
                        log!("publisher: answering a subscriber: {e}");
                    }
                }
                Err(e) => {
                    let _ = server.refuse(token, Refusal::Malformed(e));
                }
            }
            continue;
        }
        let mut r = Reader::new(msg);
        let m = match r.u8() {
            Some(op::BURST) => {
                let (mut delivered, mut dropped) = (0u32, 0u32);
                for _ in 0..r.u16().unwrap_or(0) {
                    let d = publisher.publish(&mut server, EventKind::Tick { n: count });
                    count += 1;
                    delivered += d.delivered as u32;
                    dropped += d.dropped as u32;
                }
                Msg::new().u32(delivered).u32(dropped)
            }
            Some(op::NUDGED_DELIVERED) => Msg::new().u32(nudged_delivered),
            other => {
                log!("publisher: unknown request {other:?}");
                Msg::op(0xff)
            }
        };
        answer(token, m.as_bytes());
    }
}

fn answer(token: ReplyToken, bytes: &[u8]) {
    if let Err(e) = reply(token, bytes) {
        log!("publisher: reply failed: {e}");
    }
}
