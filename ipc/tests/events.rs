//! The events protocol over the in-memory kernel: a publisher answering
//! pulls with deferred replies is never held up by a slow or a dead
//! subscriber.

use faultline_ipc::abi::Error;
use faultline_ipc::channel::{ChannelError, Client, Incoming, Server, TransportError};
use faultline_ipc::memory::Kernel;
use faultline_ipc::protocol::events::{EventKind, Events, EventsRequest, EventsResponse};
use faultline_ipc::publisher::{Delivery, Publisher};
use std::sync::mpsc;
use std::thread;

const PUBLISH: u32 = 0b01;
const QUIT: u32 = 0b10;
const EVENTS: u32 = 10;

#[test]
fn slow_and_dead_subscribers_never_stall_the_publisher() {
    let k = Kernel::new();
    let server = k.spawn("publisher");
    let (fast, slow, dead, test) = (
        k.spawn("fast"),
        k.spawn("slow"),
        k.spawn("dead"),
        k.spawn("test"),
    );
    let (hf, _) = k.channel(fast, server, 1);
    let (hs, _) = k.channel(slow, server, 2);
    let (hd, _) = k.channel(dead, server, 3);
    let publish = k.notification(test, server, PUBLISH);
    let quit = k.notification(test, server, QUIT);

    let publisher = thread::spawn({
        let ep = k.endpoint(server);
        move || {
            let mut s = Server::<Events, _>::new(ep);
            let mut p = Publisher::<4, 4>::new();
            let mut deliveries = Vec::new();
            let mut n = 0;
            loop {
                match s.recv(PUBLISH | QUIT).unwrap() {
                    Incoming::Call {
                        request,
                        badge,
                        token,
                    } => {
                        let _ = p.handle(&mut s, badge, request, token);
                    }
                    Incoming::Notification { bits } => {
                        if bits & PUBLISH != 0 {
                            deliveries.push(p.publish(&mut s, EventKind::Tick { n }));
                            n += 1;
                        }
                        if bits & QUIT != 0 {
                            return (deliveries, p.subscribers());
                        }
                    }
                    Incoming::Send { .. } => {}
                }
            }
        }
    });

    // The slow subscriber subscribes, then does not pull for a while.
    let mut slow_client = Client::<Events, _>::new(k.endpoint(slow), hs);
    assert_eq!(
        slow_client.call(&EventsRequest::Subscribe),
        Ok(EventsResponse::Subscribed { next_seq: 0 })
    );

    // The dead one subscribes, pulls (its token is parked), and dies.
    let (subscribed, dead_subscribed) = mpsc::channel();
    let dead_client = thread::spawn({
        let ep = k.endpoint(dead);
        move || {
            let mut c = Client::<Events, _>::new(ep, hd);
            subscribed.send(c.call(&EventsRequest::Subscribe)).unwrap();
            c.call(&EventsRequest::NextEvent)
        }
    });
    assert!(matches!(
        dead_subscribed.recv(),
        Ok(Ok(EventsResponse::Subscribed { .. }))
    ));
    k.wait_until("the dead subscriber's pull is parked", |k| {
        k.held_by(server) == 1
    });
    k.stop(dead);
    assert_eq!(
        dead_client.join().unwrap(),
        Err(ChannelError::Transport(TransportError::Kernel(
            Error::NotPermitted
        )))
    );

    // The fast one pulls every event as it comes.
    let (tx, rx) = mpsc::channel();
    let fast_client = thread::spawn({
        let ep = k.endpoint(fast);
        move || {
            let mut c = Client::<Events, _>::new(ep, hf);
            tx.send(c.call(&EventsRequest::Subscribe).unwrap()).unwrap();
            for _ in 0..EVENTS {
                tx.send(c.call(&EventsRequest::NextEvent).unwrap()).unwrap();
            }
        }
    });
    assert_eq!(rx.recv(), Ok(EventsResponse::Subscribed { next_seq: 0 }));
    let mut ep = k.endpoint(test);
    for n in 0..EVENTS {
        ep.notify(publish).unwrap();
        let event = rx.recv().unwrap();
        let kind = EventKind::Tick { n };
        assert_eq!(event, EventsResponse::Event { seq: n, kind });
    }
    fast_client.join().unwrap();

    // The slow one finds the oldest event the backlog (4) still holds:
    // the gap in seq tells it it missed six.
    let next = slow_client.call(&EventsRequest::NextEvent);
    let kind = EventKind::Tick { n: 6 };
    assert_eq!(next, Ok(EventsResponse::Event { seq: 6, kind }));

    ep.notify(quit).unwrap();
    let (deliveries, subscribers) = publisher.join().unwrap();
    assert_eq!(deliveries.len(), EVENTS as usize);
    let total = deliveries
        .iter()
        .fold(Delivery::default(), |a, d| Delivery {
            delivered: a.delivered + d.delivered,
            dropped: a.dropped + d.dropped,
        });
    // The dead subscriber was dropped on the first publish, without delay.
    assert_eq!(deliveries[0].dropped, 1);
    assert_eq!(total.dropped, 1);
    assert_eq!(subscribers, 2);
}

#[test]
fn pulls_before_subscribing_and_past_capacity_get_typed_answers() {
    let k = Kernel::new();
    let server = k.spawn("publisher");
    let (a, b) = (k.spawn("a"), k.spawn("b"));
    let (ha, _) = k.channel(a, server, 1);
    let (hb, _) = k.channel(b, server, 2);
    let publisher = thread::spawn({
        let ep = k.endpoint(server);
        move || {
            let mut s = Server::<Events, _>::new(ep);
            let mut p = Publisher::<1, 2>::new();
            for _ in 0..3 {
                if let Ok(Incoming::Call {
                    request,
                    badge,
                    token,
                }) = s.recv(0)
                {
                    p.handle(&mut s, badge, request, token).unwrap();
                }
            }
        }
    });
    let mut ca = Client::<Events, _>::new(k.endpoint(a), ha);
    let mut cb = Client::<Events, _>::new(k.endpoint(b), hb);
    assert_eq!(
        ca.call(&EventsRequest::NextEvent),
        Ok(EventsResponse::NotSubscribed)
    );
    assert_eq!(
        ca.call(&EventsRequest::Subscribe),
        Ok(EventsResponse::Subscribed { next_seq: 0 })
    );
    assert_eq!(cb.call(&EventsRequest::Subscribe), Ok(EventsResponse::Full));
    publisher.join().unwrap();
}
