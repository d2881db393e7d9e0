//! What the kernel IPC conformance suite's driver
//! (`faultline-conformance-kernel`) and its peers
//! (`faultline-conformance-peer`) agree on: the badges the deployment
//! gives each channel, the notification bits, and a small raw message
//! format (an opcode byte, then little-endian fields).
//!
//! The messages are raw on purpose: the suite checks the kernel, so
//! nothing between the two ends may hide what the kernel did (no typed
//! layer, no postcard). The only typed traffic is the `events` protocol of
//! the publisher case, which is what that case checks.
//!
//! The echo channel carries no opcode at all: every byte of a request is
//! payload, so its lengths run 0..=[`MAX_MESSAGE`], and the reply is
//! [`echo_reply`] of the request, derived from every byte and differing
//! from it in every byte, so an echo of the request shows.
#![cfg_attr(not(test), no_std)]

use faultline_ipc::abi::MAX_MESSAGE;
use faultline_ipc::channel::TransportError;

/// Channel badges, as `conformance-kernel.toml` sets them.
pub mod badge {
    /// Driver → peer, raw payload echo.
    pub const ECHO: u64 = 0x11;
    /// Driver → peer, control requests.
    pub const CTL: u64 = 0x12;
    /// Second client → peer.
    pub const PAIR: u64 = 0x21;
    /// Victim → peer.
    pub const VECHO: u64 = 0x22;
    /// Driver → second client.
    pub const GO: u64 = 0x31;
    /// Peer → second client (the foreign token).
    pub const FOREIGN: u64 = 0x32;
    /// Driver → victim.
    pub const VICTIM: u64 = 0x41;
    /// Driver → publisher, `events` protocol.
    pub const EVENTS: u64 = 0x51;
    /// Driver → publisher, control requests.
    pub const PUBCTL: u64 = 0x52;
}

/// Notification bits, as the deployment grants them.
pub mod bit {
    /// Peer → driver (`note-a`).
    pub const A: u32 = 1 << 1;
    /// Peer → driver (`note-b`).
    pub const B: u32 = 1 << 2;
    /// Victim → driver (`note-back`).
    pub const BACK: u32 = 1 << 3;
    /// Driver → victim (`poke-victim`), driver → doomed (`poke-doomed`).
    pub const POKE: u32 = 1 << 1;
    /// Driver → nudger (`nudge`): nudge the doomed victim.
    pub const NUDGE: u32 = 1 << 1;
    /// Driver → nudger (`nudge-pub`): nudge the publisher.
    pub const NUDGE_PUB: u32 = 1 << 2;
    /// Nudger → doomed (`nudge-doomed`).
    pub const NUDGED: u32 = 1 << 2;
    /// Nudger → publisher (`nudge-publisher`): publish one event.
    pub const PUBLISH: u32 = 1 << 1;
}

/// Opcodes (the first byte of every request but the echo channel's).
pub mod op {
    /// `[claim: u64]` → `[seen badge: u64, claim: u64]`.
    pub const WHOAMI: u8 = 1;
    /// One-way: `[seq: u32]`, appended to the peer's log.
    pub const SEQ: u8 = 2;
    /// → `[count: u8, seq: u32 ...]`, and the log is cleared.
    pub const SEQ_LOG: u8 = 3;
    /// `[nonce: u32]`: held until a second `HOLD` arrives, then both are
    /// answered newest first with `[caller's badge: u64, its nonce: u32]`.
    pub const HOLD: u8 = 4;
    /// → the statuses the peer saw while answering the held calls, one
    /// `u64` each, in [`HoldReport`] order; cleared.
    pub const REPORT: u8 = 5;
    /// `[a: u8, b: u8]`: the peer posts bit A `a` times and bit B `b`
    /// times, then answers `[status: u64]` (of the last post).
    pub const NOTIFY: u8 = 6;
    /// → statuses of the peer's misuses of its own server end: `call`,
    /// `send` and `notify` on it.
    pub const RIGHTS: u8 = 7;
    /// `[token: u64]`: the second client replies with a token it was never
    /// given, then answers `[status: u64]`.
    pub const TRY_REPLY: u8 = 8;
    /// → `[0]` if the second client's held call came back as its own,
    /// `[1, reason...]` otherwise; cleared.
    pub const VERDICT: u8 = 9;
    /// `[claim: u64]`: the second client asks the peer `WHOAMI` with this
    /// claim and answers with the peer's answer.
    pub const WHOAMI_VIA_PAIR: u8 = 10;
    /// The victim faults while holding this call.
    pub const DIE: u8 = 11;
    /// `[x: u32]` → `[calls this instance answered: u32, x: u32]`.
    pub const PING: u8 = 12;
    /// The victim posts `note-back` → `[status: u64]`.
    pub const NOTIFY_BACK: u8 = 13;
    /// The victim calls the peer's `WHOAMI` → `[status: u64, seen: u64]`.
    pub const CALL_PEER: u8 = 14;
    /// → `[notifications this instance received: u32]`.
    pub const NOTIFIED: u8 = 15;
    /// `[n: u16]`: the publisher publishes `n` events at once →
    /// `[delivered: u32, dropped: u32]`.
    pub const BURST: u8 = 16;
    /// The victim answers `[0]`, then waits (not in `recv`) for
    /// [`bit::NUDGED`](super::bit::NUDGED) and faults: a call made
    /// meanwhile is queued, never received.
    pub const DIE_ON_NUDGE: u8 = 18;
    /// → `[pulls the last nudged publish answered: u32]` (a parked pull
    /// answered by that event counts 1).
    pub const NUDGED_DELIVERED: u8 = 19;
    /// `[n: u16, stir: u8]`: the echo server answers with the echo reply
    /// of the length-`n` echo request ([`fill_request`](super::fill_request))
    /// through `ReplyRecv`, after having the second client do what `stir`
    /// says ([`STIR`]; 0: nothing). What that `ReplyRecv` received is kept
    /// for [`REPLY_RECV_REPORT`].
    pub const REPLY_RECV: u8 = 20;
    /// → `[status: u64, kind: u64, len: u64, badge: u64]`: what the echo
    /// server's last [`REPLY_RECV`] answer's `ReplyRecv` returned (status
    /// 0 and the `RecvKind`, length and badge of the message it received);
    /// cleared (all `u64::MAX`).
    pub const REPLY_RECV_REPORT: u8 = 21;
    /// The echo server, holding this call, tries `ReplyRecv` with the token
    /// of the call it answered before (used), then with its own token and a
    /// kernel address as the receive buffer, then answers with a plain
    /// `Reply`: `[status of the first: u64, of the second: u64]`.
    pub const REPLY_RECV_REFUSED: u8 = 22;
    /// On `foreign` (echo server → second client) `[how: u8]`: the second
    /// client answers `[0]`, then yields the CPU (`how` 1: it stays
    /// runnable while the echo server runs) or sends a one-way
    /// [`QUEUED`] message on `pair` (`how` 2: queued at the echo server,
    /// which is not receiving).
    pub const STIR: u8 = 23;
    /// One-way, second client → echo server: ignored.
    pub const QUEUED: u8 = 24;
    /// `[on: u8]`: while on, the victim posts `note-back` for every
    /// `poke` it receives → `[0]`. Off in a new instance.
    pub const ECHO_POKES: u8 = 25;
}

/// A kernel-half address (the kernel image): never writable for a
/// service, so the kernel must refuse it as a receive buffer.
pub const KERNEL_ADDRESS: u64 = 0xffff_ffff_8010_0000;

/// What [`op::STIR`] asks: the second client yields after answering.
pub const STIR_RUNNABLE: u8 = 1;
/// What [`op::STIR`] asks: the second client queues a one-way message.
pub const STIR_QUEUED: u8 = 2;

/// Events the publisher keeps for subscribers that fall behind.
pub const BACKLOG: usize = 8;

/// Statuses the peer reports for [`op::REPORT`], in order.
pub const HOLD_REPORT: [&str; 5] = [
    "reply with a token issued for another server's channel",
    "reply with a token already used",
    "reply with a token whose top bit is clear",
    "reply with a live token's sequence number changed",
    "reply of MAX_MESSAGE + 1 bytes",
];

/// The status word of a result, as peers report it: 0 for success, the
/// ABI's error code, or `u64::MAX` for a code this build does not know.
pub fn status<T>(r: &Result<T, TransportError>) -> u64 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code().map_or(u64::MAX, |c| c as u64),
    }
}

/// A status word for a log line.
pub fn status_name(s: u64) -> &'static str {
    if s == 0 {
        return "success";
    }
    faultline_ipc::abi::Error::ALL
        .into_iter()
        .find(|e| *e as u64 == s)
        .map_or("unknown status", |e| e.name())
}

/// An optional field for a log line: `0x..` in hex, or `none`.
pub struct Hex<T>(pub Option<T>);

impl<T: core::fmt::LowerHex> core::fmt::Display for Hex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "{v:#x}"),
            None => f.write_str("none"),
        }
    }
}

/// Byte `i` of the echo request of length `len`.
pub fn request_byte(len: usize, i: usize) -> u8 {
    ((len * 31 + i * 7) as u8) ^ 0x3c
}

/// Fills `buf` with the echo request of its length.
pub fn fill_request(buf: &mut [u8]) {
    let len = buf.len();
    for (i, b) in buf.iter_mut().enumerate() {
        *b = request_byte(len, i);
    }
}

/// The echo reply to `request`: every byte inverted, so no reply byte
/// equals the request's (an echo shows), and each depends on the request
/// byte at its place (which [`request_byte`] varies with the length and
/// the place, so a shifted or another length's copy shows).
pub fn echo_reply(request: &[u8], reply: &mut [u8]) -> usize {
    let n = request.len().min(reply.len());
    for (b, r) in reply[..n].iter_mut().zip(request) {
        *b = !r;
    }
    n
}

/// A message under construction: an opcode and little-endian fields.
pub struct Msg {
    buf: [u8; MAX_MESSAGE],
    len: usize,
}

impl Msg {
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_MESSAGE],
            len: 0,
        }
    }

    pub fn op(op: u8) -> Self {
        Self::new().u8(op)
    }

    pub fn u8(mut self, v: u8) -> Self {
        self.put(&[v]);
        self
    }

    pub fn u16(mut self, v: u16) -> Self {
        self.put(&v.to_le_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.put(&v.to_le_bytes());
        self
    }

    pub fn u64(mut self, v: u64) -> Self {
        self.put(&v.to_le_bytes());
        self
    }

    /// Appends raw bytes (cut at [`MAX_MESSAGE`]).
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.put(v);
        self
    }

    fn put(&mut self, v: &[u8]) {
        let n = v.len().min(MAX_MESSAGE - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&v[..n]);
        self.len += n;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Msg {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads little-endian fields from a message, in order; a field past the
/// end reads as `None`.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let v = self.bytes.get(self.at..self.at + N)?.try_into().ok()?;
        self.at += N;
        Some(v)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_ipc::abi::Error;

    #[test]
    fn echo_reply_differs_from_the_request_in_every_byte() {
        for len in 0..=MAX_MESSAGE {
            let mut req = vec![0; len];
            fill_request(&mut req);
            let mut reply = [0; MAX_MESSAGE];
            assert_eq!(echo_reply(&req, &mut reply), len);
            for i in 0..len {
                assert_ne!(reply[i], req[i]);
                assert_eq!(reply[i], !request_byte(len, i));
            }
        }
    }

    #[test]
    fn fields_round_trip() {
        let m = Msg::op(op::WHOAMI).u64(0x1122).u32(7).u16(3).u8(9);
        let mut r = Reader::new(m.as_bytes());
        assert_eq!(r.u8(), Some(op::WHOAMI));
        assert_eq!(r.u64(), Some(0x1122));
        assert_eq!(r.u32(), Some(7));
        assert_eq!(r.u16(), Some(3));
        assert_eq!(r.u8(), Some(9));
        assert_eq!(r.u8(), None);
        let full = Msg::new().bytes(&[1; 300]);
        assert_eq!(full.as_bytes().len(), MAX_MESSAGE);
    }

    #[test]
    fn statuses() {
        assert_eq!(status::<()>(&Ok(())), 0);
        let e = TransportError::Kernel(Error::StaleToken);
        assert_eq!(status::<()>(&Err(e)), Error::StaleToken as u64);
        assert_eq!(status::<()>(&Err(TransportError::Unknown(99))), u64::MAX);
        assert_eq!(status_name(Error::PeerDead as u64), "peer dead");
        assert_eq!(status_name(0), "success");
        assert_eq!(format!("{}", Hex(Some(0x21u64))), "0x21");
        assert_eq!(format!("{}", Hex::<u32>(None)), "none");
    }
}
