//! The message envelope every typed channel uses, and strict decoding.
//!
//! A message is at most [`MAX_MESSAGE`] bytes:
//!
//! ```text
//! [protocol id: u16 little-endian][protocol version: u8][body: postcard]
//! ```
//!
//! The kernel moves these bytes without looking at them; only the two ends
//! of a channel interpret them. The header lets a receiver refuse a message
//! meant for another protocol (or another version of its own) before it
//! reads the body, and the body is decoded strictly: every byte must be
//! used, and every way a body can be wrong is a distinct [`WireError`] (the
//! conformance vectors in `ipc/vectors/`, run by `ipc/tests/vectors.rs`, pin
//! each one).
//!
//! Encoding goes into a caller-provided [`Frame`] with postcard's
//! `to_slice`; nothing here allocates.

use crate::abi::MAX_MESSAGE;
use crate::strict::{self, Fault, StrictError};
use serde::{Deserialize, Serialize};

/// Bytes of the envelope before the body.
pub const HEADER_LEN: usize = 3;

/// A buffer that holds any message.
pub type Frame = [u8; MAX_MESSAGE];

/// Names a protocol and the version of its types, as carried in the
/// envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolId {
    pub id: u16,
    pub version: u8,
}

impl ProtocolId {
    /// The three header bytes.
    pub const fn header(self) -> [u8; HEADER_LEN] {
        let [lo, hi] = self.id.to_le_bytes();
        [lo, hi, self.version]
    }
}

/// Why a message could not be encoded or decoded.
///
/// It is also what a server sends back when it refuses a request (see
/// [`crate::channel::Refusal`]), so it has a wire form of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WireError {
    /// The message ends before the header or the body does.
    Truncated,
    /// The body decoded with `extra` bytes left over.
    TrailingBytes { extra: usize },
    /// An enum discriminant names no variant of its type.
    UnknownVariant,
    /// A value is malformed: a bool that is not 0 or 1, invalid UTF-8, an
    /// overlong varint, an integer out of its type's range.
    BadValue,
    /// The message is `len` bytes, more than [`MAX_MESSAGE`].
    Oversize { len: usize },
    /// A bounded field (a `heapless` vector or string) holds more elements
    /// than its capacity; `len` is the length found (at least capacity + 1).
    FieldTooLong { len: usize },
    /// The header names another protocol.
    WrongProtocol { expected: u16, found: u16 },
    /// The header names another version of this protocol.
    VersionMismatch { expected: u8, found: u8 },
    /// The encoded message does not fit in [`MAX_MESSAGE`] bytes.
    BufferFull,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Truncated => write!(f, "truncated"),
            Self::TrailingBytes { extra } => write!(f, "{extra} trailing bytes"),
            Self::UnknownVariant => write!(f, "unknown variant"),
            Self::BadValue => write!(f, "bad value"),
            Self::Oversize { len } => write!(f, "{len}-byte message exceeds {MAX_MESSAGE}"),
            Self::FieldTooLong { len } => write!(f, "field of {len}+ elements exceeds capacity"),
            Self::WrongProtocol { expected, found } => {
                write!(f, "protocol {found:#06x}, expected {expected:#06x}")
            }
            Self::VersionMismatch { expected, found } => {
                write!(f, "version {found}, expected {expected}")
            }
            Self::BufferFull => write!(f, "message does not fit in {MAX_MESSAGE} bytes"),
        }
    }
}

impl WireError {
    /// Maps a postcard error onto the envelope's error kinds.
    ///
    /// postcard 1.1 reports an unknown enum discriminant that fits a u32 as
    /// `SerdeDeCustom` (the type raises it, not postcard); [`decode`] sees
    /// those through its strict adapter before they collapse, so here
    /// `SerdeDeCustom` only means "some other value refused".
    pub fn from_postcard(e: &postcard::Error) -> Self {
        use postcard::Error as P;
        match e {
            P::DeserializeUnexpectedEnd => Self::Truncated,
            P::DeserializeBadEnum => Self::UnknownVariant,
            P::SerializeBufferFull => Self::BufferFull,
            // Bad bool, UTF-8, char, option tag, varint, encoding, CRC;
            // SerdeDeCustom without a parked fault; and the "won't
            // implement" codes, which only a type that needs a
            // self-describing format can raise.
            _ => Self::BadValue,
        }
    }

    pub(crate) fn from_strict(e: StrictError<postcard::Error>) -> Self {
        match e {
            StrictError::Fault(Fault::UnknownVariant) => Self::UnknownVariant,
            StrictError::Fault(Fault::TooLong { len }) => Self::FieldTooLong { len },
            StrictError::Fault(Fault::BadValue) => Self::BadValue,
            StrictError::Inner(e) => Self::from_postcard(&e),
        }
    }
}

/// Encodes `value` as a message of protocol `proto` into `buf`, returning
/// the message length.
pub fn encode<T: Serialize + ?Sized>(
    proto: ProtocolId,
    value: &T,
    buf: &mut Frame,
) -> Result<usize, WireError> {
    let (header, body) = buf.split_at_mut(HEADER_LEN);
    header.copy_from_slice(&proto.header());
    let used = postcard::to_slice(value, body)
        .map_err(|e| WireError::from_postcard(&e))?
        .len();
    Ok(HEADER_LEN + used)
}

/// Reads a message's header without checking it against a protocol.
pub fn header(bytes: &[u8]) -> Result<ProtocolId, WireError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(WireError::Oversize { len: bytes.len() });
    }
    match *bytes {
        [lo, hi, version, ..] => Ok(ProtocolId {
            id: u16::from_le_bytes([lo, hi]),
            version,
        }),
        _ => Err(WireError::Truncated),
    }
}

/// Decodes a message of protocol `proto`: the whole of `bytes`, nothing
/// more, nothing less.
///
/// Checks, in order: length ([`WireError::Oversize`], [`WireError::Truncated`]),
/// protocol id, version, body, trailing bytes.
pub fn decode<'de, T: Deserialize<'de>>(
    proto: ProtocolId,
    bytes: &'de [u8],
) -> Result<T, WireError> {
    let found = header(bytes)?;
    if found.id != proto.id {
        return Err(WireError::WrongProtocol {
            expected: proto.id,
            found: found.id,
        });
    }
    if found.version != proto.version {
        return Err(WireError::VersionMismatch {
            expected: proto.version,
            found: found.version,
        });
    }
    strict::decode_exact(&bytes[HEADER_LEN..])
}

/// Decodes a bare postcard value, without an envelope, as strictly as
/// [`decode`] does a body: all of `bytes`, with the same errors. (The
/// kernel's [`crate::kconfig::TaskStatus`] comes this way.)
pub fn decode_body<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, WireError> {
    strict::decode_exact(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapless::{String, Vec};

    const P: ProtocolId = ProtocolId {
        id: 0x1234,
        version: 2,
    };

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Unit,
        Bytes(Vec<u8, 4>),
        Named { flag: bool, text: String<3> },
        Maybe(Option<u16>),
    }

    fn frame(body: &[u8]) -> std::vec::Vec<u8> {
        let mut v = P.header().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn header_is_little_endian_id_then_version() {
        let mut buf = [0; MAX_MESSAGE];
        let n = encode(P, &Msg::Unit, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x34, 0x12, 2, 0]);
        assert_eq!(decode::<Msg>(P, &buf[..n]), Ok(Msg::Unit));
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let d = |b: &[u8]| decode::<Msg>(P, b);
        assert_eq!(d(&[0x34, 0x12]), Err(WireError::Truncated));
        assert_eq!(d(&frame(&[])), Err(WireError::Truncated));
        assert_eq!(d(&frame(&[1, 2, 7])), Err(WireError::Truncated));
        assert_eq!(
            d(&frame(&[0, 9])),
            Err(WireError::TrailingBytes { extra: 1 })
        );
        assert_eq!(d(&frame(&[4])), Err(WireError::UnknownVariant));
        assert_eq!(
            d(&frame(&[0x80, 0x80, 0x80, 0x80, 0x10])),
            Err(WireError::BadValue)
        );
        assert_eq!(d(&frame(&[2, 2, 0])), Err(WireError::BadValue));
        assert_eq!(d(&frame(&[2, 1, 1, 0xff])), Err(WireError::BadValue));
        assert_eq!(d(&frame(&[3, 2])), Err(WireError::BadValue));
        assert_eq!(
            d(&frame(&[1, 5, 1, 2, 3, 4, 5])),
            Err(WireError::FieldTooLong { len: 5 })
        );
        assert_eq!(
            d(&frame(&[2, 1, 4, b'a', b'b', b'c', b'd'])),
            Err(WireError::FieldTooLong { len: 4 })
        );
        assert_eq!(
            d(&[0x35, 0x12, 2, 0]),
            Err(WireError::WrongProtocol {
                expected: 0x1234,
                found: 0x1235
            })
        );
        assert_eq!(
            d(&[0x34, 0x12, 3, 0]),
            Err(WireError::VersionMismatch {
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            d(&[0; MAX_MESSAGE + 1]),
            Err(WireError::Oversize {
                len: MAX_MESSAGE + 1
            })
        );
    }

    #[test]
    fn nested_values_round_trip() {
        let mut buf = [0; MAX_MESSAGE];
        for m in [
            Msg::Bytes(Vec::from_slice(&[1, 2, 3, 4]).unwrap()),
            Msg::Named {
                flag: true,
                text: "abc".try_into().unwrap(),
            },
            Msg::Maybe(Some(300)),
            Msg::Maybe(None),
        ] {
            let n = encode(P, &m, &mut buf).unwrap();
            assert_eq!(decode::<Msg>(P, &buf[..n]), Ok(m));
        }
    }

    #[test]
    fn encoding_past_the_frame_is_buffer_full() {
        let big: Vec<u8, 300> = (0..300).map(|i| i as u8).collect();
        let mut buf = [0; MAX_MESSAGE];
        assert_eq!(encode(P, &big, &mut buf), Err(WireError::BufferFull));
    }
}
