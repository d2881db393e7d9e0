//! The publisher's bookkeeping, one call at a time: who is subscribed, which
//! pulls are parked, which event each pull gets, and what a failed reply
//! does. The transport here only records replies (and fails the ones to
//! clients that died), so each rule is seen without threads.

use faultline_ipc::abi::Error;
use faultline_ipc::channel::{
    ChannelError, Handle, Received, ReplyToken, Server, Transport, TransportError, decode_reply,
};
use faultline_ipc::protocol::events::{EventKind, Events, EventsRequest, EventsResponse};
use faultline_ipc::publisher::{Delivery, Publisher};
use faultline_ipc::wire::Frame;

/// Records every reply; replies to a token in `dead` fail with `PeerDead`.
#[derive(Default)]
struct Replies {
    sent: Vec<(u64, EventsResponse)>,
    dead: Vec<u64>,
}

impl Transport for Replies {
    fn call(&mut self, _: Handle, _: &[u8], _: &mut [u8]) -> Result<usize, TransportError> {
        Err(TransportError::Kernel(Error::NotPermitted))
    }
    fn send(&mut self, _: Handle, _: &[u8]) -> Result<(), TransportError> {
        Err(TransportError::Kernel(Error::NotPermitted))
    }
    fn recv(&mut self, _: &mut Frame, _: u32) -> Result<Received, TransportError> {
        Err(TransportError::Kernel(Error::NotPermitted))
    }
    fn reply(&mut self, token: ReplyToken, message: &[u8]) -> Result<(), TransportError> {
        if self.dead.contains(&token.raw()) {
            return Err(TransportError::Kernel(Error::PeerDead));
        }
        let response = decode_reply::<Events>(message).expect("a well-formed response");
        self.sent.push((token.raw(), response));
        Ok(())
    }
}

type Pub = Publisher<3, 2>;

struct Rig {
    server: Server<Events, Replies>,
    publisher: Pub,
    next_token: u64,
    /// What the last `handle` returned.
    last: Result<(), ChannelError>,
}

impl Rig {
    fn new() -> Self {
        Rig {
            server: Server::new(Replies::default()),
            publisher: Pub::new(),
            next_token: 100,
            last: Ok(()),
        }
    }

    /// One call from `badge`; returns its token's raw value.
    fn call(&mut self, badge: u64, request: EventsRequest) -> u64 {
        self.next_token += 1;
        let raw = self.next_token;
        self.last =
            self.publisher
                .handle(&mut self.server, badge, request, ReplyToken::from_raw(raw));
        raw
    }

    /// The answer `raw` got, if any.
    fn answer(&mut self, raw: u64) -> Option<EventsResponse> {
        let sent = &self.server.transport().sent;
        let mut answers = sent.iter().filter(|(t, _)| *t == raw);
        let first = answers.next().map(|(_, r)| *r);
        assert!(answers.next().is_none(), "token {raw} answered twice");
        first
    }

    fn publish(&mut self, n: u32) -> Delivery {
        self.publisher
            .publish(&mut self.server, EventKind::Tick { n })
    }

    fn kill(&mut self, raw: u64) {
        self.server.transport().dead.push(raw);
    }
}

fn event(seq: u32, n: u32) -> Option<EventsResponse> {
    Some(EventsResponse::Event {
        seq,
        kind: EventKind::Tick { n },
    })
}

#[test]
fn subscribers_are_counted_once_each_up_to_capacity() {
    let mut r = Rig::new();
    assert_eq!(r.publisher.subscribers(), 0);
    for badge in [1, 2, 3] {
        let t = r.call(badge, EventsRequest::Subscribe);
        assert_eq!(
            r.answer(t),
            Some(EventsResponse::Subscribed { next_seq: 0 })
        );
    }
    assert_eq!(r.publisher.subscribers(), 3);
    let t = r.call(4, EventsRequest::Subscribe);
    assert_eq!(r.answer(t), Some(EventsResponse::Full));
    // Subscribing again is not a second subscription.
    let t = r.call(2, EventsRequest::Subscribe);
    assert_eq!(
        r.answer(t),
        Some(EventsResponse::Subscribed { next_seq: 0 })
    );
    assert_eq!(r.publisher.subscribers(), 3);
    let t = r.call(9, EventsRequest::NextEvent);
    assert_eq!(r.answer(t), Some(EventsResponse::NotSubscribed));
}

#[test]
fn a_pull_with_nothing_new_is_parked_and_answered_by_the_next_event() {
    let mut r = Rig::new();
    r.call(1, EventsRequest::Subscribe);
    r.call(2, EventsRequest::Subscribe);
    let pull = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(pull), None);
    assert_eq!(r.publisher.parked(), 1);
    let d = r.publish(40);
    assert_eq!(
        d,
        Delivery {
            delivered: 1,
            dropped: 0
        }
    );
    assert_eq!(r.answer(pull), event(0, 40));
    assert_eq!(r.publisher.parked(), 0);
    // The parked pull consumed event 0: the next pull waits for event 1.
    let pull = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(pull), None);
    // The other subscriber has not seen event 0 yet and gets it at once.
    let other = r.call(2, EventsRequest::NextEvent);
    assert_eq!(r.answer(other), event(0, 40));
    let other = r.call(2, EventsRequest::NextEvent);
    assert_eq!(r.answer(other), None);
    assert_eq!(r.publisher.parked(), 2);
    assert_eq!(
        r.publish(41),
        Delivery {
            delivered: 2,
            dropped: 0
        }
    );
    assert_eq!(r.answer(pull), event(1, 41));
    assert_eq!(r.answer(other), event(1, 41));
}

#[test]
fn pulls_walk_the_backlog_in_order_and_a_laggard_sees_the_gap() {
    let mut r = Rig::new();
    r.call(1, EventsRequest::Subscribe);
    for n in 0..2 {
        r.publish(n);
    }
    // Subscribed at 0: both kept events, oldest first, each once.
    let a = r.call(1, EventsRequest::NextEvent);
    let b = r.call(1, EventsRequest::NextEvent);
    assert_eq!((r.answer(a), r.answer(b)), (event(0, 0), event(1, 1)));
    let c = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(c), None);
    r.publish(2);
    assert_eq!(r.answer(c), event(2, 2));
    // Five more while nobody pulls: the backlog (2) keeps only the last two.
    for n in 3..8 {
        r.publish(n);
    }
    let d = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(d), event(6, 6));
    let e = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(e), event(7, 7));
}

#[test]
fn subscribing_again_starts_afresh_and_drops_the_parked_pull() {
    let mut r = Rig::new();
    r.call(1, EventsRequest::Subscribe);
    r.publish(0);
    let stale = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(stale), event(0, 0));
    let parked = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.publisher.parked(), 1);
    // The client restarted and subscribes again: its old pull is forgotten,
    // and it starts from the next event.
    let t = r.call(1, EventsRequest::Subscribe);
    assert_eq!(
        r.answer(t),
        Some(EventsResponse::Subscribed { next_seq: 1 })
    );
    assert_eq!(r.publisher.parked(), 0);
    assert_eq!(
        r.publish(1),
        Delivery {
            delivered: 0,
            dropped: 0
        }
    );
    assert_eq!(r.answer(parked), None);
    // A fresh subscriber after some events starts at the next one too.
    let t = r.call(2, EventsRequest::Subscribe);
    assert_eq!(
        r.answer(t),
        Some(EventsResponse::Subscribed { next_seq: 2 })
    );
    let t = r.call(2, EventsRequest::NextEvent);
    assert_eq!(r.answer(t), None);
}

#[test]
fn dead_subscribers_are_dropped_and_the_rest_still_served() {
    let mut r = Rig::new();
    for badge in [1, 2, 3] {
        r.call(badge, EventsRequest::Subscribe);
    }
    let pulls: Vec<u64> = [1, 2, 3]
        .into_iter()
        .map(|b| r.call(b, EventsRequest::NextEvent))
        .collect();
    // The first and the last die while parked.
    r.kill(pulls[0]);
    r.kill(pulls[2]);
    assert_eq!(
        r.publish(5),
        Delivery {
            delivered: 1,
            dropped: 2
        }
    );
    assert_eq!(r.answer(pulls[1]), event(0, 5));
    assert_eq!(r.publisher.subscribers(), 1);
    assert_eq!(r.publisher.parked(), 0);
    // Badge 1 is gone: it must subscribe again.
    let t = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(t), Some(EventsResponse::NotSubscribed));
}

#[test]
fn a_subscriber_that_dies_before_an_immediate_answer_is_dropped() {
    let mut r = Rig::new();
    r.call(1, EventsRequest::Subscribe);
    r.call(2, EventsRequest::Subscribe);
    r.publish(0);
    // The next token will be a dead client's.
    r.kill(r.next_token + 1);
    let doomed = r.call(1, EventsRequest::NextEvent);
    assert_eq!(r.answer(doomed), None);
    assert_eq!(r.last, Err(ChannelError::PeerDead));
    assert_eq!(r.publisher.subscribers(), 1);
    // The other one is untouched.
    let t = r.call(2, EventsRequest::NextEvent);
    assert_eq!(r.answer(t), event(0, 0));
}
