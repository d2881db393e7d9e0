//! The `ping` protocol: an echo server, used to check that every message
//! length crosses a channel intact.
//!
//! A [`PingRequest::Ping`] and the [`PingResponse::Pong`] that echoes it
//! have the same variant index and field layout, so a correct echo is the
//! request's bytes, byte for byte. [`PAYLOAD_MAX`] is chosen so the whole
//! message reaches exactly [`MAX_MESSAGE`] bytes, and [`ping_of_len`]
//! builds the ping whose message is exactly `len` bytes, for every `len`
//! from [`MIN_LEN`] to [`MAX_MESSAGE`]; [`frame_of_len`] extends that to
//! every length from 0 (below [`MIN_LEN`] the bytes are a truncated ping,
//! which a server must refuse with a typed error rather than leave the
//! caller hanging).

use super::{Protocol, varint_len};
use crate::abi::MAX_MESSAGE;
use crate::wire::{self, Frame, HEADER_LEN};
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// Marker type for the protocol.
pub struct Ping;

impl Protocol for Ping {
    const ID: u16 = 0x0001;
    const VERSION: u8 = 1;
    const NAME: &'static str = "ping";
    type Request = PingRequest;
    type Response = PingResponse;
}

/// Largest payload: header, variant (1 byte), a `seq` below 128 (1 byte)
/// and a two-byte length prefix leave this much of [`MAX_MESSAGE`].
pub const PAYLOAD_MAX: usize = MAX_MESSAGE - HEADER_LEN - 1 - 1 - 2;

/// Length of the smallest ping message (empty payload, `seq` < 128).
pub const MIN_LEN: usize = HEADER_LEN + 3;

/// The payload that asks a crash-test server to fault.
pub const CRASH: &[u8] = b"crash";

/// A ping payload.
pub type Payload = Vec<u8, PAYLOAD_MAX>;

// Messages are bounded and unboxed by design (no allocation): the size of
// the largest variant is the point.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PingRequest {
    /// Echo `payload` back, with `seq`.
    Ping { seq: u32, payload: Payload },
    /// How many pings has the server answered since it started?
    Count,
}

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PingResponse {
    /// The echo of a [`PingRequest::Ping`].
    Pong { seq: u32, payload: Payload },
    /// Pings answered by this instance of the server.
    Count { calls: u32 },
}

impl PingRequest {
    /// The answer a correct echo server gives.
    pub fn echo(&self, calls: u32) -> PingResponse {
        match self {
            Self::Ping { seq, payload } => PingResponse::Pong {
                seq: *seq,
                payload: payload.clone(),
            },
            Self::Count => PingResponse::Count { calls },
        }
    }
}

/// The byte at `index` of the sweep payload for message length `len`
/// (varies with both, so a shifted or mixed-up echo shows).
pub const fn payload_byte(len: usize, index: usize) -> u8 {
    (len.wrapping_mul(31) ^ index.wrapping_mul(7)) as u8
}

/// The ping whose encoded message is exactly `len` bytes, for
/// `MIN_LEN <= len <= MAX_MESSAGE`; `None` outside that range.
///
/// `seq` is `len` where that works; otherwise `len` with its varint
/// shortened (`len & 0x7f`) or lengthened (`len | 0x80`), which is what
/// makes the lengths next to a length-prefix boundary reachable.
pub fn ping_of_len(len: usize) -> Option<PingRequest> {
    if !(MIN_LEN..=MAX_MESSAGE).contains(&len) {
        return None;
    }
    let tag = len as u32;
    for seq in [tag, tag & 0x7f, tag | 0x80] {
        let fixed = HEADER_LEN + 1 + varint_len(u64::from(seq));
        for prefix in [1, 2] {
            let Some(n) = len.checked_sub(fixed + prefix) else {
                continue;
            };
            if n <= PAYLOAD_MAX && varint_len(n as u64) == prefix {
                let payload = (0..n).map(|i| payload_byte(len, i)).collect();
                return Some(PingRequest::Ping { seq, payload });
            }
        }
    }
    None
}

/// Writes a message of exactly `len` bytes (`len <= MAX_MESSAGE`) into
/// `buf` and returns `len`: the [`ping_of_len`] message, or for `len` below
/// [`MIN_LEN`] the first `len` bytes of the smallest ping (a truncated
/// message).
///
/// # Panics
///
/// If `len > MAX_MESSAGE`.
pub fn frame_of_len(len: usize, buf: &mut Frame) -> usize {
    assert!(len <= MAX_MESSAGE, "no message is {len} bytes");
    let request = ping_of_len(len.max(MIN_LEN)).expect("every length from MIN_LEN is reachable");
    let n = wire::encode(Ping::PROTOCOL, &request, buf).expect("a sweep ping fits");
    debug_assert_eq!(n, len.max(MIN_LEN));
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{WireError, decode, encode};

    #[test]
    fn every_length_is_reachable_and_echoes_byte_for_byte() {
        for len in 0..=MAX_MESSAGE {
            let mut buf = [0; MAX_MESSAGE];
            assert_eq!(frame_of_len(len, &mut buf), len);
            let decoded = decode::<PingRequest>(Ping::PROTOCOL, &buf[..len]);
            if len < MIN_LEN {
                assert_eq!(decoded, Err(WireError::Truncated), "{len}");
                continue;
            }
            let request = decoded.unwrap();
            assert_eq!(Some(&request), ping_of_len(len).as_ref());
            let mut echo = [0; MAX_MESSAGE];
            let m = encode(Ping::PROTOCOL, &request.echo(0), &mut echo).unwrap();
            assert_eq!(&echo[..m], &buf[..len], "{len}");
        }
        assert_eq!(ping_of_len(MAX_MESSAGE + 1), None);
        assert_eq!(ping_of_len(MIN_LEN - 1), None);
    }

    #[test]
    fn a_full_payload_with_a_long_seq_does_not_fit() {
        let request = PingRequest::Ping {
            seq: u32::MAX,
            payload: (0..PAYLOAD_MAX).map(|i| i as u8).collect(),
        };
        let mut buf = [0; MAX_MESSAGE];
        assert_eq!(
            encode(Ping::PROTOCOL, &request, &mut buf),
            Err(WireError::BufferFull)
        );
    }
}
