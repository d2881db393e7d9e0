//! Property tests of the wire format: decoding never panics, whatever the
//! bytes; every request and response round-trips; decoding is strict
//! (every prefix of a message is `Truncated`, every extension
//! `TrailingBytes`); and what decodes re-encodes to something that decodes
//! to the same value.

use faultline_ipc::abi::MAX_MESSAGE;
use faultline_ipc::channel::{REFUSAL, Refusal, decode_reply};
use faultline_ipc::protocol::Protocol;
use faultline_ipc::protocol::bench::{Bench, BenchRequest, ECHO_MAX};
use faultline_ipc::protocol::events::{EventKind, Events, EventsRequest, EventsResponse};
use faultline_ipc::protocol::ping::{PAYLOAD_MAX, Ping, PingRequest, PingResponse};
use faultline_ipc::wire::{self, HEADER_LEN, ProtocolId, WireError};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

fn ping_request() -> impl Strategy<Value = PingRequest> {
    prop_oneof![
        (
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..=PAYLOAD_MAX)
        )
            .prop_map(|(seq, p)| PingRequest::Ping {
                seq,
                payload: heapless::Vec::from_slice(&p).unwrap(),
            }),
        Just(PingRequest::Count),
    ]
}

fn events_response() -> impl Strategy<Value = EventsResponse> {
    let kind = prop_oneof![
        any::<u32>().prop_map(|n| EventKind::Tick { n }),
        any::<u8>().prop_map(|task| EventKind::TaskStopped { task }),
    ];
    prop_oneof![
        any::<u32>().prop_map(|next_seq| EventsResponse::Subscribed { next_seq }),
        (any::<u32>(), kind).prop_map(|(seq, kind)| EventsResponse::Event { seq, kind }),
        Just(EventsResponse::NotSubscribed),
        Just(EventsResponse::Full),
    ]
}

/// Encodes `value`; checks it decodes back, and that the encoding is
/// strict at both ends.
fn round_trip<T>(proto: ProtocolId, value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut buf = [0; MAX_MESSAGE];
    let n = match wire::encode(proto, value, &mut buf) {
        Ok(n) => n,
        // Only a message past MAX_MESSAGE may refuse to encode.
        Err(e) => {
            prop_assert_eq!(e, WireError::BufferFull);
            return Ok(());
        }
    };
    prop_assert_eq!(&wire::decode::<T>(proto, &buf[..n]).unwrap(), value);
    for cut in 0..n {
        prop_assert_eq!(
            wire::decode::<T>(proto, &buf[..cut]),
            Err(WireError::Truncated)
        );
    }
    if n < MAX_MESSAGE {
        prop_assert_eq!(
            wire::decode::<T>(proto, &buf[..n + 1]),
            Err(WireError::TrailingBytes { extra: 1 })
        );
    }
    Ok(())
}

/// Decodes arbitrary bytes (which must not panic); if they decode,
/// re-encoding gives a message that decodes to the same value.
fn decode_any<T>(proto: ProtocolId, bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    if let Ok(value) = wire::decode::<T>(proto, bytes) {
        let mut buf = [0; MAX_MESSAGE];
        let n = wire::encode(proto, &value, &mut buf).unwrap();
        prop_assert!(n <= bytes.len(), "canonical form is never longer");
        prop_assert_eq!(wire::decode::<T>(proto, &buf[..n]).unwrap(), value);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ping_requests_round_trip(request in ping_request()) {
        round_trip(Ping::PROTOCOL, &request)?;
        round_trip(Ping::PROTOCOL, &request.echo(7))?;
    }

    #[test]
    fn bench_echoes_round_trip(p in prop::collection::vec(any::<u8>(), 0..=ECHO_MAX)) {
        let request = BenchRequest::Echo(heapless::Vec::from_slice(&p).unwrap());
        round_trip(Bench::PROTOCOL, &request)?;
    }

    #[test]
    fn events_round_trip(response in events_response(), pull in any::<bool>()) {
        round_trip(Events::PROTOCOL, &response)?;
        let request = if pull { EventsRequest::NextEvent } else { EventsRequest::Subscribe };
        round_trip(Events::PROTOCOL, &request)?;
    }

    #[test]
    fn refusals_round_trip(extra in any::<usize>(), expected in any::<u16>(), found in any::<u16>()) {
        round_trip(REFUSAL, &Refusal::Malformed(WireError::TrailingBytes { extra }))?;
        round_trip(REFUSAL, &Refusal::Malformed(WireError::WrongProtocol { expected, found }))?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=MAX_MESSAGE + 8)) {
        decode_any::<PingRequest>(Ping::PROTOCOL, &bytes)?;
        decode_any::<PingResponse>(Ping::PROTOCOL, &bytes)?;
        decode_any::<BenchRequest>(Bench::PROTOCOL, &bytes)?;
        decode_any::<EventsResponse>(Events::PROTOCOL, &bytes)?;
        let _ = decode_reply::<Ping>(&bytes);
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..=MAX_MESSAGE - HEADER_LEN),
        which in 0..4u8,
    ) {
        let proto = match which {
            0 => Ping::PROTOCOL,
            1 => Bench::PROTOCOL,
            2 => Events::PROTOCOL,
            _ => REFUSAL,
        };
        let mut bytes = proto.header().to_vec();
        bytes.extend_from_slice(&body);
        decode_any::<PingRequest>(Ping::PROTOCOL, &bytes)?;
        decode_any::<PingResponse>(Ping::PROTOCOL, &bytes)?;
        decode_any::<BenchRequest>(Bench::PROTOCOL, &bytes)?;
        decode_any::<EventsRequest>(Events::PROTOCOL, &bytes)?;
        decode_any::<EventsResponse>(Events::PROTOCOL, &bytes)?;
        decode_any::<Refusal>(REFUSAL, &bytes)?;
        let _ = decode_reply::<Events>(&bytes);
    }
}
