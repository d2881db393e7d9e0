//! Conformance vectors for the wire format, in the style of Fuchsia's GIDL:
//! every `success` vector is checked both ways (value → bytes, bytes →
//! value), every `decode_failure` vector must fail with exactly its error,
//! every `encode_failure` value must refuse to encode with its error.
//!
//! The bytes are written out by hand from the postcard specification
//! (varint integers, a varint discriminant before each enum variant's
//! body, a varint length before each sequence) behind the 3-byte envelope
//! `[id lo, id hi, version]`. They are the contract: a change that breaks
//! one of them changes the wire format, and needs a protocol version bump.

use faultline_ipc::abi::MAX_MESSAGE;
use faultline_ipc::channel::{REFUSAL, Refusal};
use faultline_ipc::protocol::Protocol;
use faultline_ipc::protocol::bench::{Bench, BenchRequest, BenchResponse};
use faultline_ipc::protocol::events::{EventKind, Events, EventsRequest, EventsResponse};
use faultline_ipc::protocol::ping::{PAYLOAD_MAX, Ping, PingRequest, PingResponse};
use faultline_ipc::wire::{self, ProtocolId, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// value ↔ bytes, both ways.
fn success<T>(name: &str, proto: ProtocolId, value: T, bytes: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut buf = [0; MAX_MESSAGE];
    let n = wire::encode(proto, &value, &mut buf).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&buf[..n], bytes, "{name}: encoding");
    assert_eq!(
        wire::decode::<T>(proto, bytes),
        Ok(value),
        "{name}: decoding"
    );
}

/// bytes → exactly this error.
fn decode_failure<T: DeserializeOwned + Debug>(
    name: &str,
    proto: ProtocolId,
    bytes: &[u8],
    err: WireError,
) {
    assert_eq!(wire::decode::<T>(proto, bytes).unwrap_err(), err, "{name}");
}

fn payload(v: &[u8]) -> heapless::Vec<u8, PAYLOAD_MAX> {
    heapless::Vec::from_slice(v).unwrap()
}

#[test]
fn ping_success() {
    let p = Ping::PROTOCOL;
    let ping = PingRequest::Ping {
        seq: 1,
        payload: payload(&[0xaa, 0xbb]),
    };
    success(
        "Ping{1,[aa bb]}",
        p,
        ping,
        &[0x01, 0x00, 0x01, 0x00, 0x01, 0x02, 0xaa, 0xbb],
    );
    let ping = PingRequest::Ping {
        seq: 300,
        payload: payload(&[]),
    };
    success(
        "Ping{300,[]}",
        p,
        ping,
        &[0x01, 0x00, 0x01, 0x00, 0xac, 0x02, 0x00],
    );
    success("Count", p, PingRequest::Count, &[0x01, 0x00, 0x01, 0x01]);
    let pong = PingResponse::Pong {
        seq: 1,
        payload: payload(&[0xaa, 0xbb]),
    };
    success(
        "Pong{1,[aa bb]}",
        p,
        pong,
        &[0x01, 0x00, 0x01, 0x00, 0x01, 0x02, 0xaa, 0xbb],
    );
    let count = PingResponse::Count { calls: 128 };
    success(
        "Count{128}",
        p,
        count,
        &[0x01, 0x00, 0x01, 0x01, 0x80, 0x01],
    );
}

#[test]
fn bench_success() {
    let p = Bench::PROTOCOL;
    let echo = BenchRequest::Echo(heapless::Vec::from_slice(&[1, 2, 3]).unwrap());
    success(
        "Echo([1 2 3])",
        p,
        echo,
        &[0x02, 0x00, 0x01, 0x00, 0x03, 0x01, 0x02, 0x03],
    );
    let empty = BenchResponse::Echo(heapless::Vec::new());
    success("Echo([])", p, empty, &[0x02, 0x00, 0x01, 0x00, 0x00]);
}

#[test]
fn events_success() {
    let p = Events::PROTOCOL;
    success(
        "Subscribe",
        p,
        EventsRequest::Subscribe,
        &[0x03, 0x00, 0x01, 0x00],
    );
    success(
        "NextEvent",
        p,
        EventsRequest::NextEvent,
        &[0x03, 0x00, 0x01, 0x01],
    );
    let sub = EventsResponse::Subscribed { next_seq: 5 };
    success("Subscribed{5}", p, sub, &[0x03, 0x00, 0x01, 0x00, 0x05]);
    let tick = EventsResponse::Event {
        seq: 7,
        kind: EventKind::Tick { n: 2 },
    };
    success(
        "Event{7,Tick{2}}",
        p,
        tick,
        &[0x03, 0x00, 0x01, 0x01, 0x07, 0x00, 0x02],
    );
    let stopped = EventsResponse::Event {
        seq: 0x4000,
        kind: EventKind::TaskStopped { task: 3 },
    };
    let b = [0x03, 0x00, 0x01, 0x01, 0x80, 0x80, 0x01, 0x01, 0x03];
    success("Event{0x4000,TaskStopped{3}}", p, stopped, &b);
    success(
        "NotSubscribed",
        p,
        EventsResponse::NotSubscribed,
        &[0x03, 0x00, 0x01, 0x02],
    );
    success("Full", p, EventsResponse::Full, &[0x03, 0x00, 0x01, 0x03]);
}

#[test]
fn refusal_success() {
    let p = REFUSAL;
    let r = |e| Refusal::Malformed(e);
    success(
        "Truncated",
        p,
        r(WireError::Truncated),
        &[0xff, 0xff, 0x01, 0x00, 0x00],
    );
    let trailing = r(WireError::TrailingBytes { extra: 2 });
    success(
        "TrailingBytes{2}",
        p,
        trailing,
        &[0xff, 0xff, 0x01, 0x00, 0x01, 0x02],
    );
    let wrong = r(WireError::WrongProtocol {
        expected: 1,
        found: 0x1234,
    });
    success(
        "WrongProtocol{1,0x1234}",
        p,
        wrong,
        &[0xff, 0xff, 0x01, 0x00, 0x06, 0x01, 0xb4, 0x24],
    );
    let version = r(WireError::VersionMismatch {
        expected: 1,
        found: 2,
    });
    success(
        "VersionMismatch{1,2}",
        p,
        version,
        &[0xff, 0xff, 0x01, 0x00, 0x07, 0x01, 0x02],
    );
    let full = Refusal::Unencodable(WireError::BufferFull);
    success(
        "Unencodable(BufferFull)",
        p,
        full,
        &[0xff, 0xff, 0x01, 0x01, 0x08],
    );
}

#[test]
fn decode_failures() {
    let p = Ping::PROTOCOL;
    type Req = PingRequest;
    decode_failure::<Req>("empty", p, &[], WireError::Truncated);
    decode_failure::<Req>("half a header", p, &[0x01, 0x00], WireError::Truncated);
    decode_failure::<Req>("header only", p, &[0x01, 0x00, 0x01], WireError::Truncated);
    let short = [0x01, 0x00, 0x01, 0x00, 0x01, 0x02, 0xaa];
    decode_failure::<Req>("payload cut short", p, &short, WireError::Truncated);
    let trailing = [0x01, 0x00, 0x01, 0x01, 0x00];
    decode_failure::<Req>(
        "trailing byte",
        p,
        &trailing,
        WireError::TrailingBytes { extra: 1 },
    );
    let unknown = [0x01, 0x00, 0x01, 0x02];
    decode_failure::<Req>("unknown variant 2", p, &unknown, WireError::UnknownVariant);
    let huge = [0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f];
    decode_failure::<Req>("variant u32::MAX", p, &huge, WireError::UnknownVariant);
    let overlong = [0x01, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
    decode_failure::<Req>("seq varint too long", p, &overlong, WireError::BadValue);
    let wrong = WireError::WrongProtocol {
        expected: 1,
        found: 2,
    };
    decode_failure::<Req>("bench id", p, &[0x02, 0x00, 0x01, 0x01], wrong);
    let version = WireError::VersionMismatch {
        expected: 1,
        found: 2,
    };
    decode_failure::<Req>("version 2", p, &[0x01, 0x00, 0x02, 0x01], version);
    let mut oversize = vec![0x01, 0x00, 0x01, 0x01];
    oversize.resize(MAX_MESSAGE + 1, 0);
    let len = MAX_MESSAGE + 1;
    decode_failure::<Req>("257 bytes", p, &oversize, WireError::Oversize { len });

    let e = Events::PROTOCOL;
    type Resp = EventsResponse;
    let kind = [0x03, 0x00, 0x01, 0x01, 0x07, 0x05];
    decode_failure::<Resp>("unknown event kind", e, &kind, WireError::UnknownVariant);
    let cut = [0x03, 0x00, 0x01, 0x01, 0x07, 0x00];
    decode_failure::<Resp>("tick without n", e, &cut, WireError::Truncated);
    let task = [0x03, 0x00, 0x01, 0x01, 0x07, 0x01, 0x80, 0x02];
    decode_failure::<Resp>(
        "task index is a raw u8",
        e,
        &task,
        WireError::TrailingBytes { extra: 1 },
    );
}

#[test]
fn encode_failures() {
    let too_big = PingRequest::Ping {
        seq: u32::MAX,
        payload: (0..PAYLOAD_MAX).map(|i| i as u8).collect(),
    };
    let mut buf = [0; MAX_MESSAGE];
    assert_eq!(
        wire::encode(Ping::PROTOCOL, &too_big, &mut buf),
        Err(WireError::BufferFull)
    );
}
