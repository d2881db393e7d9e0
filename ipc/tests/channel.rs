//! Typed channels over the in-memory kernel model: the IPC rules of
//! `abi.rs` as a client and a server see them (call/reply, malformed
//! requests, single-use tokens, deferred replies, peer death and restart).
//! Each service is a thread; the test plays the supervisor.

use faultline_ipc::abi::Error;
use faultline_ipc::channel::{
    ChannelError, Client, Handle, Incoming, RecvError, Refusal, ReplyToken, Server, Transport,
    TransportError,
};
use faultline_ipc::memory::{Endpoint, Kernel, TaskId};
use faultline_ipc::protocol::ping::{Ping, PingRequest, PingResponse};
use faultline_ipc::wire::WireError;
use std::sync::mpsc;
use std::thread;

fn ping(seq: u32, payload: &[u8]) -> PingRequest {
    PingRequest::Ping {
        seq,
        payload: heapless::Vec::from_slice(payload).unwrap(),
    }
}

fn pong(seq: u32, payload: &[u8]) -> PingResponse {
    PingResponse::Pong {
        seq,
        payload: heapless::Vec::from_slice(payload).unwrap(),
    }
}

/// A kernel with a client and a server joined by one channel (badge 7).
fn pair() -> (Kernel, TaskId, TaskId, Handle) {
    let k = Kernel::new();
    let client = k.spawn("client");
    let server = k.spawn("server");
    let (h, _) = k.channel(client, server, 7);
    (k, client, server, h)
}

/// Runs an echo server for `n` calls on its own thread.
fn echo_server(ep: Endpoint, n: usize) -> thread::JoinHandle<Server<Ping, Endpoint>> {
    thread::spawn(move || {
        let mut server = Server::<Ping, _>::new(ep);
        let mut calls = 0;
        for _ in 0..n {
            match server.recv(0) {
                Ok(Incoming::Call { request, token, .. }) => {
                    calls += 1;
                    server.reply(token, &request.echo(calls)).unwrap();
                }
                Ok(_) => {}
                Err(RecvError::Malformed { .. }) => {}
                Err(e) => panic!("server: {e:?}"),
            }
        }
        server
    })
}

#[test]
fn a_call_gets_its_echo() {
    let (k, client, server, h) = pair();
    let s = echo_server(k.endpoint(server), 2);
    let mut c = Client::<Ping, _>::new(k.endpoint(client), h);
    assert_eq!(c.call(&ping(1, b"hi")), Ok(pong(1, b"hi")));
    assert_eq!(
        c.call(&PingRequest::Count),
        Ok(PingResponse::Count { calls: 2 })
    );
    s.join().unwrap();
}

#[test]
fn a_malformed_request_is_refused_not_left_hanging() {
    let (k, client, server, h) = pair();
    let s = thread::spawn({
        let ep = k.endpoint(server);
        move || Server::<Ping, _>::new(ep).recv(0).map(drop)
    });
    let mut ep = k.endpoint(client);
    let mut reply = [0u8; 256];
    let n = ep.call(h, &[0x01, 0x00], &mut reply).unwrap();
    let answer = faultline_ipc::channel::decode_reply::<Ping>(&reply[..n]);
    assert_eq!(
        answer,
        Err(ChannelError::Refused(Refusal::Malformed(
            WireError::Truncated
        )))
    );
    let seen = s.join().unwrap();
    assert!(matches!(
        seen,
        Err(RecvError::Malformed {
            badge: 7,
            error: WireError::Truncated,
            refusal: Ok(()),
            ..
        })
    ));
}

#[test]
fn a_token_answers_once_and_forged_tokens_are_stale() {
    let (k, client, server, h) = pair();
    let c = thread::spawn({
        let ep = k.endpoint(client);
        move || Client::<Ping, _>::new(ep, h).call(&ping(1, b"x"))
    });
    let mut s = Server::<Ping, _>::new(k.endpoint(server));
    let Ok(Incoming::Call { token, badge, .. }) = s.recv(0) else {
        panic!("expected a call")
    };
    assert_eq!(badge, 7);
    let raw = token.raw();
    s.reply(token, &pong(1, b"x")).unwrap();
    assert_eq!(c.join().unwrap(), Ok(pong(1, b"x")));
    let stale = ChannelError::Transport(TransportError::Kernel(Error::StaleToken));
    assert_eq!(
        s.reply(ReplyToken::from_raw(raw), &pong(1, b"x")),
        Err(stale)
    );
    assert_eq!(
        s.reply(ReplyToken::from_raw(0xdead), &pong(1, b"x")),
        Err(stale)
    );
}

#[test]
fn a_deferred_reply_lets_the_server_serve_others_meanwhile() {
    let k = Kernel::new();
    let (slow, fast, server) = (k.spawn("slow"), k.spawn("fast"), k.spawn("server"));
    let (hs, _) = k.channel(slow, server, 1);
    let (hf, _) = k.channel(fast, server, 2);
    let slow_call = thread::spawn({
        let ep = k.endpoint(slow);
        move || Client::<Ping, _>::new(ep, hs).call(&ping(10, b"later"))
    });
    let mut s = Server::<Ping, _>::new(k.endpoint(server));
    let Ok(Incoming::Call {
        token: held,
        badge: 1,
        ..
    }) = s.recv(0)
    else {
        panic!("expected the slow client's call")
    };
    // While it holds the slow client's token, it serves the fast one twice.
    let (tx, rx) = mpsc::channel();
    let fast_calls = thread::spawn({
        let ep = k.endpoint(fast);
        move || {
            let mut c = Client::<Ping, _>::new(ep, hf);
            for i in 0..2 {
                tx.send(c.call(&ping(i, b"now"))).unwrap();
            }
        }
    });
    for _ in 0..2 {
        let Ok(Incoming::Call { request, token, .. }) = s.recv(0) else {
            panic!("expected a fast call")
        };
        s.reply(token, &request.echo(0)).unwrap();
    }
    fast_calls.join().unwrap();
    assert_eq!(
        rx.iter().collect::<Vec<_>>(),
        [Ok(pong(0, b"now")), Ok(pong(1, b"now"))]
    );
    assert!(!slow_call.is_finished());
    s.reply(held, &pong(10, b"later")).unwrap();
    assert_eq!(slow_call.join().unwrap(), Ok(pong(10, b"later")));
}

#[test]
fn server_death_wakes_held_and_queued_callers_with_peer_dead() {
    let k = Kernel::new();
    let (a, b, server) = (k.spawn("a"), k.spawn("b"), k.spawn("server"));
    let (ha, _) = k.channel(a, server, 1);
    let (hb, _) = k.channel(b, server, 2);
    let first = thread::spawn({
        let ep = k.endpoint(a);
        move || Client::<Ping, _>::new(ep, ha).call(&ping(1, b""))
    });
    let mut s = Server::<Ping, _>::new(k.endpoint(server));
    let Ok(Incoming::Call { token, .. }) = s.recv(0) else {
        panic!("expected a call")
    };
    let queued = thread::spawn({
        let ep = k.endpoint(b);
        move || Client::<Ping, _>::new(ep, hb).call(&ping(2, b""))
    });
    k.wait_until("one call is held and one queued", |k| {
        k.held_by(server) == 1 && k.queued_on(server) == 1
    });
    k.stop(server);
    assert_eq!(first.join().unwrap(), Err(ChannelError::PeerDead));
    assert_eq!(queued.join().unwrap(), Err(ChannelError::PeerDead));
    // The dead server's endpoint is inert, its token useless.
    assert_eq!(
        s.reply(token, &pong(1, b"")),
        Err(ChannelError::Transport(TransportError::Kernel(
            Error::NotPermitted
        )))
    );
    // Calls while it stays down fail at once.
    let mut c = Client::<Ping, _>::new(k.endpoint(a), ha);
    assert_eq!(c.call(&ping(3, b"")), Err(ChannelError::PeerDead));
}

#[test]
fn after_a_restart_the_next_call_says_so_once_then_works() {
    let (k, client, server, h) = pair();
    let mut c = Client::<Ping, _>::new(k.endpoint(client), h);
    k.stop(server);
    assert_eq!(c.call(&ping(1, b"")), Err(ChannelError::PeerDead));
    assert_eq!(k.restart(server), 2);
    assert_eq!(
        c.call(&ping(2, b"")),
        Err(ChannelError::PeerRestarted { generation: 2 })
    );
    let s = echo_server(k.endpoint(server), 1);
    assert_eq!(c.call(&ping(3, b"ok")), Ok(pong(3, b"ok")));
    s.join().unwrap();
}

#[test]
fn a_token_from_before_the_server_restart_is_stale() {
    let (k, client, server, h) = pair();
    let c = thread::spawn({
        let ep = k.endpoint(client);
        move || Client::<Ping, _>::new(ep, h).call(&ping(1, b""))
    });
    let mut old = Server::<Ping, _>::new(k.endpoint(server));
    let Ok(Incoming::Call { token, .. }) = old.recv(0) else {
        panic!("expected a call")
    };
    let raw = token.raw();
    k.stop(server);
    assert_eq!(c.join().unwrap(), Err(ChannelError::PeerDead));
    k.restart(server);
    let mut new = Server::<Ping, _>::new(k.endpoint(server));
    assert_eq!(
        new.reply(ReplyToken::from_raw(raw), &pong(1, b"")),
        Err(ChannelError::Transport(TransportError::Kernel(
            Error::StaleToken
        )))
    );
}

#[test]
fn replying_to_a_client_that_died_is_peer_dead_for_the_server() {
    let (k, client, server, h) = pair();
    let c = thread::spawn({
        let ep = k.endpoint(client);
        move || Client::<Ping, _>::new(ep, h).call(&ping(1, b""))
    });
    let mut s = Server::<Ping, _>::new(k.endpoint(server));
    let Ok(Incoming::Call { token, .. }) = s.recv(0) else {
        panic!("expected a call")
    };
    k.stop(client);
    assert_eq!(
        c.join().unwrap(),
        Err(ChannelError::Transport(TransportError::Kernel(
            Error::NotPermitted
        )))
    );
    assert_eq!(s.reply(token, &pong(1, b"")), Err(ChannelError::PeerDead));
}

#[test]
fn notifications_reach_a_receiving_server_and_a_waiter() {
    let (k, client, server, _) = pair();
    let to_server = k.notification(client, server, 0b100);
    let to_client = k.notification(server, client, 0b1);
    let s = thread::spawn({
        let ep = k.endpoint(server);
        move || {
            let mut s = Server::<Ping, _>::new(ep);
            let Ok(Incoming::Notification { bits }) = s.recv(0b110) else {
                panic!("expected a notification")
            };
            s.transport().notify(to_client).unwrap();
            bits
        }
    });
    let mut ep = k.endpoint(client);
    ep.notify(to_server).unwrap();
    assert_eq!(ep.wait(0b1), Ok(0b1));
    assert_eq!(s.join().unwrap(), 0b100);
    assert_eq!(
        ep.notify(Handle(99)),
        Err(TransportError::Kernel(Error::BadHandle))
    );
}

#[test]
fn wrong_handles_kinds_and_lengths_are_refused() {
    let (k, client, _, h) = pair();
    let mut ep = k.endpoint(client);
    let mut reply = [0u8; 8];
    assert_eq!(
        ep.call(Handle(5), b"x", &mut reply),
        Err(TransportError::Kernel(Error::BadHandle))
    );
    assert_eq!(
        ep.call(h, &[0; 257], &mut reply),
        Err(TransportError::Kernel(Error::BadLength))
    );
    let n = k.notification(client, client, 1);
    assert_eq!(
        ep.call(n, b"x", &mut reply),
        Err(TransportError::Kernel(Error::WrongKind))
    );
}

#[test]
fn a_pair_server_takes_both_protocols_and_answers_each_in_its_own() {
    use faultline_ipc::channel::{Either, Pair};
    use faultline_ipc::protocol::faults::{Faults, FaultsError, FaultsRequest, FaultsResponse};
    let k = Kernel::new();
    let a = k.spawn("pinger");
    let b = k.spawn("handler");
    let server = k.spawn("server");
    let (ha, _) = k.channel(a, server, 1);
    let (hb, _) = k.channel(b, server, 2);
    let s = thread::spawn({
        let ep = k.endpoint(server);
        move || {
            let mut server = Server::<Pair<Ping, Faults>, _>::new(ep);
            let mut seen = Vec::new();
            for _ in 0..3 {
                match server.recv(0) {
                    Ok(Incoming::Call {
                        request: Either::First(request),
                        token,
                        badge,
                    }) => {
                        seen.push(badge);
                        server.reply_as::<Ping>(token, &request.echo(1)).unwrap();
                    }
                    Ok(Incoming::Call {
                        request: Either::Second(FaultsRequest::Next),
                        token,
                        badge,
                    }) => {
                        seen.push(badge);
                        let refused = FaultsResponse::Refused(FaultsError::NotRegistered);
                        server.reply_as::<Faults>(token, &refused).unwrap();
                    }
                    Err(RecvError::Malformed { badge, error, .. }) => {
                        assert_eq!(
                            error,
                            WireError::WrongProtocol {
                                expected: 0x0001,
                                found: 0x0003
                            }
                        );
                        seen.push(badge);
                    }
                    other => panic!("{other:?}"),
                }
            }
            seen
        }
    });
    let mut ping_client = Client::<Ping, _>::new(k.endpoint(a), ha);
    assert_eq!(ping_client.call(&ping(3, b"x")), Ok(pong(3, b"x")));
    let mut handler = Client::<Faults, _>::new(k.endpoint(b), hb);
    assert_eq!(
        handler.call(&FaultsRequest::Next),
        Ok(FaultsResponse::Refused(FaultsError::NotRegistered))
    );
    // A third protocol is refused, naming the first.
    let mut stranger = Client::<faultline_ipc::protocol::events::Events, _>::new(k.endpoint(a), ha);
    assert!(matches!(
        stranger.call(&faultline_ipc::protocol::events::EventsRequest::Subscribe),
        Err(ChannelError::Refused(Refusal::Malformed(_)))
    ));
    assert_eq!(s.join().unwrap(), [1, 2, 1]);
}
