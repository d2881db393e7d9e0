//! A typed client or server may borrow its transport (`&mut T`) instead of
//! owning it, and then behaves exactly as over `T`: every operation reaches
//! the transport underneath with the same bytes and brings back its
//! answer.

use faultline_ipc::abi::Error;
use faultline_ipc::channel::{
    Client, Handle, Incoming, Received, ReplyToken, Server, Transport, TransportError,
};
use faultline_ipc::protocol::Protocol;
use faultline_ipc::protocol::ping::{Ping, PingRequest, PingResponse};
use faultline_ipc::wire::{self, Frame};

/// A transport that answers every call with `answer`, hands `incoming` to
/// `recv`, and records what was sent and replied.
#[derive(Default)]
struct Scripted {
    answer: Vec<u8>,
    incoming: Vec<u8>,
    calls: Vec<(u64, Vec<u8>)>,
    sends: Vec<(u64, Vec<u8>)>,
    replies: Vec<(u64, Vec<u8>)>,
    refuse_sends: bool,
}

impl Transport for Scripted {
    fn call(&mut self, h: Handle, req: &[u8], reply: &mut [u8]) -> Result<usize, TransportError> {
        self.calls.push((h.0, req.to_vec()));
        reply[..self.answer.len()].copy_from_slice(&self.answer);
        Ok(self.answer.len())
    }
    fn send(&mut self, h: Handle, message: &[u8]) -> Result<(), TransportError> {
        if self.refuse_sends {
            return Err(TransportError::Kernel(Error::BadHandle));
        }
        self.sends.push((h.0, message.to_vec()));
        Ok(())
    }
    fn recv(&mut self, buf: &mut Frame, _: u32) -> Result<Received, TransportError> {
        buf[..self.incoming.len()].copy_from_slice(&self.incoming);
        Ok(Received::Call {
            len: self.incoming.len(),
            badge: 6,
            token: ReplyToken::from_raw(0x8000_0000_0000_0042),
        })
    }
    fn reply(&mut self, token: ReplyToken, message: &[u8]) -> Result<(), TransportError> {
        self.replies.push((token.raw(), message.to_vec()));
        Ok(())
    }
}

fn encoded<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut frame = [0; 256];
    let n = wire::encode(Ping::PROTOCOL, value, &mut frame).unwrap();
    frame[..n].to_vec()
}

#[test]
fn a_client_over_a_borrowed_transport_calls_and_sends_through_it() {
    let pong = PingResponse::Count { calls: 3 };
    let mut t = Scripted {
        answer: encoded(&pong),
        ..Scripted::default()
    };
    {
        let mut c = Client::<Ping, _>::new(&mut t, Handle(4));
        assert_eq!(c.handle(), Handle(4));
        assert_eq!(c.call(&PingRequest::Count), Ok(pong));
        assert_eq!(c.send(&PingRequest::Count), Ok(()));
        // The transport is reachable through the client.
        c.transport().refuse_sends = true;
        assert!(c.send(&PingRequest::Count).is_err());
    }
    assert_eq!(t.calls, [(4, encoded(&PingRequest::Count))]);
    assert_eq!(t.sends, [(4, encoded(&PingRequest::Count))]);
}

#[test]
fn a_server_over_a_borrowed_transport_receives_and_replies_through_it() {
    let mut t = Scripted {
        incoming: encoded(&PingRequest::Count),
        ..Scripted::default()
    };
    {
        let mut s = Server::<Ping, _>::new(&mut t);
        let Ok(Incoming::Call {
            request,
            badge,
            token,
        }) = s.recv(0)
        else {
            panic!("a call was scripted");
        };
        assert_eq!((request, badge), (PingRequest::Count, 6));
        assert_eq!(token.raw(), 0x8000_0000_0000_0042);
        s.reply(token, &PingResponse::Count { calls: 1 }).unwrap();
        assert_eq!(s.transport().replies.len(), 1);
    }
    assert_eq!(
        t.replies,
        [(
            0x8000_0000_0000_0042,
            encoded(&PingResponse::Count { calls: 1 })
        )]
    );
}
