//! The `bench` protocol: an echo used to time the IPC path.
//!
//! The typed form ([`BenchRequest::Echo`]) exists so the protocol has golden
//! vectors and a typed sanity check; the timing loop itself sends raw
//! message bytes of a chosen size and the server echoes them without
//! decoding, so the figures measure the kernel's call/reply path and not
//! postcard.

use super::Protocol;
use crate::abi::MAX_MESSAGE;
use crate::wire::HEADER_LEN;
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// Marker type for the protocol.
pub struct Bench;

impl Protocol for Bench {
    const ID: u16 = 0x0002;
    const VERSION: u8 = 1;
    const NAME: &'static str = "bench";
    type Request = BenchRequest;
    type Response = BenchResponse;
}

/// Largest echo: header, variant and a two-byte length prefix leave this.
pub const ECHO_MAX: usize = MAX_MESSAGE - HEADER_LEN - 1 - 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BenchRequest {
    Echo(Vec<u8, ECHO_MAX>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BenchResponse {
    Echo(Vec<u8, ECHO_MAX>),
}
