//! The server side of the [`events`](crate::protocol::events) protocol: a
//! publisher that never waits for a subscriber.
//!
//! Each subscriber (told apart by its channel's badge) has a cursor, the
//! next `seq` it wants. Published events go into a bounded backlog of the
//! last `BACKLOG`. A `NextEvent` is answered at once from the backlog if it
//! holds an event at or after the cursor; otherwise its reply token is
//! parked and answered by the next [`Publisher::publish`] (a deferred
//! reply). Nothing here blocks:
//!
//! - a slow subscriber that falls more than `BACKLOG` events behind gets
//!   the oldest event still kept, and sees the gap in `seq`;
//! - a dead subscriber makes its reply fail with `PeerDead` and is dropped;
//! - a subscriber that restarted and subscribes again starts afresh (its
//!   old parked token, if any, is dropped: the caller it would answer is
//!   gone).

use crate::channel::{ChannelError, ReplyToken, Server, Transport};
use crate::protocol::events::{EventKind, Events, EventsRequest, EventsResponse};
use heapless::{Deque, Vec};

struct Subscriber {
    badge: u64,
    /// The next `seq` this subscriber has not seen.
    cursor: u32,
    parked: Option<ReplyToken>,
}

/// What one [`Publisher::publish`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Parked pulls answered with the new event.
    pub delivered: usize,
    /// Subscribers dropped because their reply failed (they died).
    pub dropped: usize,
}

/// Publishes events to up to `SUBS` subscribers, keeping the last
/// `BACKLOG` events.
pub struct Publisher<const SUBS: usize, const BACKLOG: usize> {
    next_seq: u32,
    backlog: Deque<(u32, EventKind), BACKLOG>,
    subs: Vec<Subscriber, SUBS>,
}

impl<const SUBS: usize, const BACKLOG: usize> Default for Publisher<SUBS, BACKLOG> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SUBS: usize, const BACKLOG: usize> Publisher<SUBS, BACKLOG> {
    pub const fn new() -> Self {
        Self {
            next_seq: 0,
            backlog: Deque::new(),
            subs: Vec::new(),
        }
    }

    /// Subscribers currently known.
    pub fn subscribers(&self) -> usize {
        self.subs.len()
    }

    /// Pulls waiting for an event.
    pub fn parked(&self) -> usize {
        self.subs.iter().filter(|s| s.parked.is_some()).count()
    }

    /// Handles one call from the client with `badge`: answers it now, or
    /// parks its token for the next [`publish`](Self::publish). A failed
    /// answer (the client died) drops the subscriber and is returned.
    pub fn handle<T: Transport>(
        &mut self,
        server: &mut Server<Events, T>,
        badge: u64,
        request: EventsRequest,
        token: ReplyToken,
    ) -> Result<(), ChannelError> {
        let index = self.subs.iter().position(|s| s.badge == badge);
        let answer = match (request, index) {
            (EventsRequest::Subscribe, Some(i)) => {
                let s = &mut self.subs[i];
                s.cursor = self.next_seq;
                s.parked = None;
                EventsResponse::Subscribed {
                    next_seq: self.next_seq,
                }
            }
            (EventsRequest::Subscribe, None) => {
                let fresh = Subscriber {
                    badge,
                    cursor: self.next_seq,
                    parked: None,
                };
                match self.subs.push(fresh) {
                    Ok(()) => EventsResponse::Subscribed {
                        next_seq: self.next_seq,
                    },
                    Err(_) => EventsResponse::Full,
                }
            }
            (EventsRequest::NextEvent, None) => EventsResponse::NotSubscribed,
            (EventsRequest::NextEvent, Some(i)) => {
                let cursor = self.subs[i].cursor;
                match self.backlog.iter().find(|(seq, _)| *seq >= cursor) {
                    Some(&(seq, kind)) => {
                        self.subs[i].cursor = seq.wrapping_add(1);
                        EventsResponse::Event { seq, kind }
                    }
                    None => {
                        self.subs[i].parked = Some(token);
                        return Ok(());
                    }
                }
            }
        };
        let result = server.reply(token, &answer);
        if result == Err(ChannelError::PeerDead) {
            self.subs.retain(|s| s.badge != badge);
        }
        result
    }

    /// Publishes an event: answers every parked pull, drops subscribers
    /// whose reply fails. Never blocks.
    pub fn publish<T: Transport>(
        &mut self,
        server: &mut Server<Events, T>,
        kind: EventKind,
    ) -> Delivery {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        if self.backlog.is_full() {
            self.backlog.pop_front();
        }
        let _ = self.backlog.push_back((seq, kind));
        let mut delivery = Delivery::default();
        let mut i = 0;
        while i < self.subs.len() {
            if let Some(token) = self.subs[i].parked.take() {
                self.subs[i].cursor = seq.wrapping_add(1);
                if server
                    .reply(token, &EventsResponse::Event { seq, kind })
                    .is_err()
                {
                    self.subs.swap_remove(i);
                    delivery.dropped += 1;
                    continue;
                }
                delivery.delivered += 1;
            }
            i += 1;
        }
        delivery
    }
}
