//! Protocols: each is a pair of Rust enums (requests and responses) plus an
//! id and a version that travel in every message's header.
//!
//! A protocol is a zero-sized marker type implementing [`Protocol`]; the
//! typed [`crate::channel::Client`] and [`crate::channel::Server`] are
//! generic over it, so a client of one protocol cannot send another's
//! requests. Bumping [`Protocol::VERSION`] whenever a type changes shape
//! makes an old peer's messages fail with
//! [`crate::wire::WireError::VersionMismatch`] instead of decoding as
//! something else.
//!
//! Protocol ids are assigned here, in one place:
//!
//! | id | protocol |
//! | --- | --- |
//! | `0x0000` | reserved (never valid) |
//! | `0x0001` | [`ping`] |
//! | `0x0002` | [`bench`] |
//! | `0x0003` | [`events`] |
//! | `0x0004` | [`iommu`] |
//! | `0x0005` | [`faults`] |
//! | `0xffff` | channel refusals ([`crate::channel::REFUSAL`]) |

use crate::wire::ProtocolId;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod bench;
pub mod events;
pub mod faults;
pub mod iommu;
pub mod ping;

/// A request/response protocol.
pub trait Protocol {
    /// The id in every message's header.
    const ID: u16;
    /// The version of the types below; bump it when they change shape.
    const VERSION: u8;
    /// A short name for logs.
    const NAME: &'static str;
    /// The id and version together, as [`crate::wire`] takes them.
    const PROTOCOL: ProtocolId = ProtocolId {
        id: Self::ID,
        version: Self::VERSION,
    };
    /// What a client sends (an enum: one variant per operation).
    type Request: Serialize + DeserializeOwned;
    /// What a server answers (an enum).
    type Response: Serialize + DeserializeOwned;
}

/// Bytes a varint takes for `v` (postcard's integer encoding).
pub const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::varint_len;

    #[test]
    fn varint_lengths_match_postcard() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut buf = [0u8; 16];
            let n = postcard::to_slice(&v, &mut buf).unwrap().len();
            assert_eq!(varint_len(v), n, "{v}");
        }
    }
}
