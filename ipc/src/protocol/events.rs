//! The `events` protocol: a server publishes events to clients that pull
//! them, one call per event.
//!
//! A client sends [`EventsRequest::Subscribe`] once, then
//! [`EventsRequest::NextEvent`] in a loop. The server answers `NextEvent`
//! at once if it has an event the client has not seen; otherwise it keeps
//! the reply token and answers when the next event is published (a
//! *deferred reply*). Replies never block, so a slow or dead client can
//! never stall the publisher: a slow one finds a gap in `seq` (the server
//! keeps a bounded backlog), a dead one makes the reply fail with
//! `PeerDead` and is dropped. [`crate::publisher::Publisher`] is the
//! server side.

use super::Protocol;
use serde::{Deserialize, Serialize};

/// Marker type for the protocol.
pub struct Events;

impl Protocol for Events {
    const ID: u16 = 0x0003;
    const VERSION: u8 = 1;
    const NAME: &'static str = "events";
    type Request = EventsRequest;
    type Response = EventsResponse;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventsRequest {
    /// Start receiving events from the next one published.
    Subscribe,
    /// The next event this client has not seen (blocks until there is one).
    NextEvent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventsResponse {
    /// Subscribed; the first event will carry `next_seq` (or later).
    Subscribed { next_seq: u32 },
    /// An event. `seq` counts every event published; a jump shows how many
    /// this client missed because it fell behind the backlog.
    Event { seq: u32, kind: EventKind },
    /// `NextEvent` before `Subscribe`.
    NotSubscribed,
    /// The server has no room for another subscriber.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A periodic tick.
    Tick { n: u32 },
    /// A service (by index) stopped.
    TaskStopped { task: u8 },
}
