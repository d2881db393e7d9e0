//! Typed channels: a [`Client`] and a [`Server`] of one [`Protocol`], over
//! any [`Transport`] (the kernel's system calls in a service, the
//! in-memory kernel model in host tests).
//!
//! [`Transport`] is the four channel operations of [`crate::abi`] on raw
//! bytes, nothing more; everything typed lives here, so the same code is
//! exercised on the host and in the image.
//!
//! Guarantees the typed layer adds on top of the kernel's:
//!
//! - A request the server cannot decode is answered at once with a
//!   [`Refusal::Malformed`] carrying the exact [`WireError`], under the
//!   reserved protocol id [`REFUSAL`]; the client's call returns
//!   [`ChannelError::Refused`]. A malformed request never leaves its
//!   caller waiting (nor does a response too large to encode).
//! - A [`ReplyToken`] is neither `Copy` nor `Clone` and [`Server::reply`]
//!   consumes it, so answering a call twice does not compile. (The kernel
//!   still refuses a forged or reused raw token with `StaleToken`.)
//! - Peer death and restart surface as [`ChannelError::PeerDead`] and
//!   [`ChannelError::PeerRestarted`], never as a hang.

use crate::abi::{self, ErrorOrUnknown, MAX_MESSAGE, RecvKind};
use crate::protocol::Protocol;
use crate::wire::{self, Frame, ProtocolId, WireError};
use core::marker::PhantomData;
use serde::{Deserialize, Serialize};

/// An index into the caller's capability table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u64);

/// The right to answer one call. Single use: [`Transport::reply`] consumes
/// it. Dropping it leaves the caller blocked until the server dies, so
/// keep it (deferred reply) or answer it.
#[must_use = "the caller stays blocked until this call is answered"]
#[derive(Debug, PartialEq, Eq)]
pub struct ReplyToken(u64);

impl ReplyToken {
    /// Wraps the token [`abi::Sysnum::Recv`] returned. Only transports
    /// (and tests that forge tokens on purpose) call this.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The kernel's token value.
    pub const fn raw(&self) -> u64 {
        self.0
    }
}

/// What [`Transport::recv`] delivered into the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A call of `len` bytes from the client whose channel has `badge`.
    Call {
        len: usize,
        badge: u64,
        token: ReplyToken,
    },
    /// A one-way message.
    Send { len: usize, badge: u64 },
    /// Notification bits (already cleared in the kernel).
    Notification { bits: u32 },
}

/// A system call's refusal, as a transport reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportError {
    /// The kernel refused with this code (never `PeerRestarted` or
    /// `Truncated`, which carry a detail and have variants below).
    Kernel(abi::Error),
    /// The server was restarted; this call was not delivered.
    PeerRestarted { generation: u32 },
    /// The message was `len` bytes, more than the buffer held; the buffer
    /// got a prefix.
    Truncated { len: usize },
    /// A status this build does not know.
    Unknown(u64),
}

impl TransportError {
    /// Decodes a status (`rax`) and its detail register (`rdi`): `None`
    /// for success.
    pub fn from_status(status: u64, detail: u64) -> Option<Self> {
        match abi::Error::check(status) {
            Ok(()) => None,
            Err(ErrorOrUnknown::Known(abi::Error::PeerRestarted)) => Some(Self::PeerRestarted {
                generation: detail as u32,
            }),
            Err(ErrorOrUnknown::Known(abi::Error::Truncated)) => Some(Self::Truncated {
                len: detail as usize,
            }),
            Err(ErrorOrUnknown::Known(e)) => Some(Self::Kernel(e)),
            Err(ErrorOrUnknown::Unknown(code)) => Some(Self::Unknown(code)),
        }
    }

    /// The ABI code, if it is one this build knows.
    pub const fn code(&self) -> Option<abi::Error> {
        match self {
            Self::Kernel(e) => Some(*e),
            Self::PeerRestarted { .. } => Some(abi::Error::PeerRestarted),
            Self::Truncated { .. } => Some(abi::Error::Truncated),
            Self::Unknown(_) => None,
        }
    }
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Kernel(e) => e.fmt(f),
            Self::PeerRestarted { generation } => {
                write!(f, "peer restarted (generation {generation})")
            }
            Self::Truncated { len } => write!(f, "truncated ({len}-byte message)"),
            Self::Unknown(code) => write!(f, "unknown error {code}"),
        }
    }
}

/// The channel operations of the ABI, on raw bytes.
pub trait Transport {
    /// [`abi::Sysnum::Call`]: send `request` on client channel `handle` and
    /// block until the reply is in `reply`; returns its length.
    fn call(
        &mut self,
        handle: Handle,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, TransportError>;

    /// [`abi::Sysnum::Send`]: a one-way message; blocks until the server
    /// has received it.
    fn send(&mut self, handle: Handle, message: &[u8]) -> Result<(), TransportError>;

    /// [`abi::Sysnum::Recv`]: block until a message arrives on one of the
    /// caller's server channels or a notification bit in `notify_mask` is
    /// pending.
    fn recv(&mut self, buf: &mut Frame, notify_mask: u32) -> Result<Received, TransportError>;

    /// [`abi::Sysnum::Reply`]: answer a call. Never blocks.
    fn reply(&mut self, token: ReplyToken, message: &[u8]) -> Result<(), TransportError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn call(&mut self, h: Handle, req: &[u8], reply: &mut [u8]) -> Result<usize, TransportError> {
        (**self).call(h, req, reply)
    }
    fn send(&mut self, h: Handle, message: &[u8]) -> Result<(), TransportError> {
        (**self).send(h, message)
    }
    fn recv(&mut self, buf: &mut Frame, mask: u32) -> Result<Received, TransportError> {
        (**self).recv(buf, mask)
    }
    fn reply(&mut self, token: ReplyToken, message: &[u8]) -> Result<(), TransportError> {
        (**self).reply(token, message)
    }
}

/// The envelope of a server's refusal; reserved for the channel layer.
pub const REFUSAL: ProtocolId = ProtocolId {
    id: 0xffff,
    version: 1,
};

/// Why a server answered a call with a refusal instead of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The request did not decode as this server's protocol.
    Malformed(WireError),
    /// The server's response did not encode (a server bug).
    Unencodable(WireError),
}

/// Why a typed operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The kernel refused the operation (bad handle, pointer, token, ...).
    Transport(TransportError),
    /// Our message did not encode, or the peer's did not decode.
    Wire(WireError),
    /// The server answered with a refusal (e.g. it could not decode our
    /// request).
    Refused(Refusal),
    /// The peer is not running (it faulted, exited, or is held).
    PeerDead,
    /// The server restarted since we last talked to it; the request was
    /// not delivered (its state is new: start over, then call again).
    PeerRestarted { generation: u32 },
}

impl From<TransportError> for ChannelError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Kernel(abi::Error::PeerDead) => Self::PeerDead,
            TransportError::PeerRestarted { generation } => Self::PeerRestarted { generation },
            e => Self::Transport(e),
        }
    }
}

impl From<WireError> for ChannelError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

impl core::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "kernel refused: {e}"),
            Self::Wire(e) => write!(f, "wire: {e}"),
            Self::Refused(Refusal::Malformed(e)) => write!(f, "server refused the request: {e}"),
            Self::Refused(Refusal::Unencodable(e)) => write!(f, "server could not answer: {e}"),
            Self::PeerDead => write!(f, "peer dead"),
            Self::PeerRestarted { generation } => {
                write!(f, "peer restarted (generation {generation})")
            }
        }
    }
}

/// Decodes a server's answer: a response of `P`, or a [`Refusal`].
pub fn decode_reply<P: Protocol>(bytes: &[u8]) -> Result<P::Response, ChannelError> {
    // Plain matches rather than `?`/`map_err` keep unoptimised builds from
    // holding extra copies of the response on the stack.
    match wire::header(bytes) {
        Ok(REFUSAL) => Err(match wire::decode(REFUSAL, bytes) {
            Ok(refusal) => ChannelError::Refused(refusal),
            Err(e) => ChannelError::Wire(e),
        }),
        Ok(_) => match wire::decode(P::PROTOCOL, bytes) {
            Ok(response) => Ok(response),
            Err(e) => Err(ChannelError::Wire(e)),
        },
        Err(e) => Err(ChannelError::Wire(e)),
    }
}

/// The client end of a channel of protocol `P`.
pub struct Client<P, T> {
    transport: T,
    handle: Handle,
    protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol, T: Transport> Client<P, T> {
    pub const fn new(transport: T, handle: Handle) -> Self {
        Self {
            transport,
            handle,
            protocol: PhantomData,
        }
    }

    pub const fn handle(&self) -> Handle {
        self.handle
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Sends `request` and blocks until the server answers.
    pub fn call(&mut self, request: &P::Request) -> Result<P::Response, ChannelError> {
        let mut out = [0; MAX_MESSAGE];
        let n = wire::encode(P::PROTOCOL, request, &mut out)?;
        let mut reply = [0; MAX_MESSAGE];
        let m = self.transport.call(self.handle, &out[..n], &mut reply)?;
        decode_reply::<P>(&reply[..m])
    }

    /// Sends `request` one way; returns once the server has received it.
    pub fn send(&mut self, request: &P::Request) -> Result<(), ChannelError> {
        let mut out = [0; MAX_MESSAGE];
        let n = wire::encode(P::PROTOCOL, request, &mut out)?;
        Ok(self.transport.send(self.handle, &out[..n])?)
    }
}

/// What a [`Server`] decodes: one protocol's requests (every
/// [`Protocol`]), or either of two protocols' ([`Pair`]).
pub trait Serves {
    type Request;
    /// Decodes a request, strictly (see [`wire::decode`]).
    fn decode(bytes: &[u8]) -> Result<Self::Request, WireError>;
}

impl<P: Protocol> Serves for P {
    type Request = P::Request;
    fn decode(bytes: &[u8]) -> Result<P::Request, WireError> {
        wire::decode::<P::Request>(P::PROTOCOL, bytes)
    }
}

/// Two protocols served on the same channels, told apart by the protocol
/// id in each request's header (a server whose clients speak different
/// protocols: drivers and fault handlers at the IOMMU service). Answer
/// with [`Server::reply_as`] in the protocol of the request.
pub struct Pair<P, Q>(PhantomData<fn() -> (P, Q)>);

impl<P: Protocol, Q: Protocol> core::fmt::Debug for Pair<P, Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pair<{}, {}>", P::NAME, Q::NAME)
    }
}

/// A request of a [`Pair`]: of its first or its second protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    First(A),
    Second(B),
}

impl<P: Protocol, Q: Protocol> Serves for Pair<P, Q> {
    type Request = Either<P::Request, Q::Request>;
    /// A request of `Q` when its header says so; anything else decodes
    /// (or fails to, with `WrongProtocol` naming `P`) as `P`.
    fn decode(bytes: &[u8]) -> Result<Self::Request, WireError> {
        if wire::header(bytes)?.id == Q::ID {
            wire::decode::<Q::Request>(Q::PROTOCOL, bytes).map(Either::Second)
        } else {
            wire::decode::<P::Request>(P::PROTOCOL, bytes).map(Either::First)
        }
    }
}

/// What a [`Server`] received.
#[derive(Debug)]
pub enum Incoming<P: Serves> {
    /// A call: answer it with [`Server::reply`], now or later.
    Call {
        request: P::Request,
        badge: u64,
        token: ReplyToken,
    },
    /// A one-way message.
    Send { request: P::Request, badge: u64 },
    /// Notification bits.
    Notification { bits: u32 },
}

/// Why [`Server::recv`] has no request to hand over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// A client sent something that does not decode. A call has already
    /// been answered with [`Refusal::Malformed`]; `refusal` says whether
    /// that answer got through (the client may have died meanwhile).
    Malformed {
        badge: u64,
        kind: RecvKind,
        error: WireError,
        refusal: Result<(), TransportError>,
    },
    /// The kernel refused the receive itself.
    Transport(TransportError),
}

/// The server end of protocol `P` (or of a [`Pair`]), on every server
/// channel the caller holds (the badge tells clients apart).
pub struct Server<P, T> {
    transport: T,
    buf: Frame,
    protocol: PhantomData<fn() -> P>,
}

impl<P: Serves, T: Transport> Server<P, T> {
    pub const fn new(transport: T) -> Self {
        Self {
            transport,
            buf: [0; MAX_MESSAGE],
            protocol: PhantomData,
        }
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Blocks for the next request or notification (bits in `notify_mask`).
    pub fn recv(&mut self, notify_mask: u32) -> Result<Incoming<P>, RecvError> {
        let received = self
            .transport
            .recv(&mut self.buf, notify_mask)
            .map_err(RecvError::Transport)?;
        let (len, badge, token) = match received {
            Received::Notification { bits } => return Ok(Incoming::Notification { bits }),
            Received::Call { len, badge, token } => (len, badge, Some(token)),
            Received::Send { len, badge } => (len, badge, None),
        };
        let decoded = match self.buf.get(..len) {
            Some(bytes) => P::decode(bytes),
            None => Err(WireError::Oversize { len }),
        };
        let error = match decoded {
            Ok(request) => {
                return Ok(match token {
                    Some(token) => Incoming::Call {
                        request,
                        badge,
                        token,
                    },
                    None => Incoming::Send { request, badge },
                });
            }
            Err(error) => error,
        };
        let (kind, refusal) = match token {
            Some(token) => (
                RecvKind::Call,
                self.refuse(token, Refusal::Malformed(error)),
            ),
            None => (RecvKind::Send, Ok(())),
        };
        Err(RecvError::Malformed {
            badge,
            kind,
            error,
            refusal,
        })
    }

    /// Answers a call with a response of protocol `R` (for a [`Pair`], the
    /// protocol of the request). If the response does not encode (a server
    /// bug: it is larger than a message), the caller gets
    /// [`Refusal::Unencodable`] instead, so it is never left waiting.
    pub fn reply_as<R: Protocol>(
        &mut self,
        token: ReplyToken,
        response: &R::Response,
    ) -> Result<(), ChannelError> {
        let mut out = [0; MAX_MESSAGE];
        match wire::encode(R::PROTOCOL, response, &mut out) {
            Ok(n) => Ok(self.transport.reply(token, &out[..n])?),
            Err(e) => {
                self.refuse(token, Refusal::Unencodable(e))?;
                Err(ChannelError::Wire(e))
            }
        }
    }

    /// Answers a call with a refusal instead of a response.
    pub fn refuse(&mut self, token: ReplyToken, refusal: Refusal) -> Result<(), TransportError> {
        let mut out = [0; MAX_MESSAGE];
        let n = wire::encode(REFUSAL, &refusal, &mut out).expect("a refusal is a few bytes");
        self.transport.reply(token, &out[..n])
    }
}

impl<P: Protocol, T: Transport> Server<P, T> {
    /// Answers a call (see [`Server::reply_as`]).
    pub fn reply(&mut self, token: ReplyToken, response: &P::Response) -> Result<(), ChannelError> {
        self.reply_as::<P>(token, response)
    }
}
