//! Who gets delivered first, one-way sends, truncation on both sides, and
//! notification bits being taken exactly once.

use super::*;

fn send(k: &mut Kernel, p: &mut FakePlatform, client: usize, msg: &[u8]) -> After {
    p.put(client, REQ, msg);
    sys(
        k,
        p,
        client,
        Sysnum::Send,
        [0, REQ, msg.len() as u64, 0, 0, 0],
    )
}

fn recv_into(k: &mut Kernel, p: &mut FakePlatform, cap: u64) {
    sys(k, p, SERVER, Sysnum::Recv, [BUF, cap, 0, 0, 0, 0]);
}

#[test]
fn a_send_queued_before_recv_is_delivered_and_frees_the_sender() {
    let (mut k, mut p) = world();
    send(&mut k, &mut p, CLIENT, b"event");
    assert!(matches!(
        k.tasks[CLIENT].state,
        State::Blocked(task::Blocked::SendQueued { .. })
    ));
    recv(&mut k, &mut p, 0);
    assert_eq!(
        result(&k, SERVER),
        (0, [RecvKind::Send as u64, 5, 11, 0]),
        "a send carries no reply token"
    );
    assert_eq!(p.get(SERVER, BUF, 5), b"event");
    // The sender does not wait for any reply.
    assert_eq!(k.tasks[CLIENT].state, State::Runnable);
    assert_eq!(result(&k, CLIENT), (0, [0; 4]));
}

#[test]
fn a_send_to_a_waiting_server_is_delivered_at_once() {
    let (mut k, mut p) = world();
    recv(&mut k, &mut p, 0);
    p.put(CLIENT2, REQ, &[0xaa; 40]);
    sys(&mut k, &mut p, CLIENT2, Sysnum::Send, [0, REQ, 40, 0, 0, 0]);
    assert_eq!(k.tasks[SERVER].state, State::Runnable);
    assert_eq!(result(&k, SERVER), (0, [RecvKind::Send as u64, 40, 22, 0]));
    assert_eq!(p.get(SERVER, BUF, 40), [0xaa; 40]);
    assert_eq!(result(&k, CLIENT2), (0, [0; 4]));
    assert_eq!(k.tasks[CLIENT2].state, State::Runnable);
}

#[test]
fn queued_clients_are_served_oldest_first_among_equals() {
    let (mut k, mut p) = world();
    // CLIENT2 comes first although CLIENT has the lower index.
    send(&mut k, &mut p, CLIENT2, b"first");
    call(&mut k, &mut p, CLIENT, b"second");
    recv(&mut k, &mut p, 0);
    assert_eq!(result(&k, SERVER).1[..3], [RecvKind::Send as u64, 5, 22]);
    recv(&mut k, &mut p, 0);
    assert_eq!(result(&k, SERVER).1[..3], [RecvKind::Call as u64, 6, 11]);
    // Same again the other way round.
    let (mut k, mut p) = world();
    call(&mut k, &mut p, CLIENT, b"first");
    send(&mut k, &mut p, CLIENT2, b"second");
    recv(&mut k, &mut p, 0);
    assert_eq!(result(&k, SERVER).1[..3], [RecvKind::Call as u64, 5, 11]);
}

#[test]
fn a_more_important_client_is_served_before_an_older_one() {
    let (mut k, mut p) = world();
    k.tasks[CLIENT2].priority = 1;
    send(&mut k, &mut p, CLIENT, b"old");
    send(&mut k, &mut p, CLIENT2, b"urgent");
    recv(&mut k, &mut p, 0);
    assert_eq!(result(&k, SERVER).1[..3], [RecvKind::Send as u64, 6, 22]);
    recv(&mut k, &mut p, 0);
    assert_eq!(result(&k, SERVER).1[..3], [RecvKind::Send as u64, 3, 11]);
    // Nothing is left: the server now blocks.
    recv(&mut k, &mut p, 0);
    assert!(matches!(k.tasks[SERVER].state, State::Blocked(_)));
}

#[test]
fn a_message_longer_than_the_receive_buffer_is_truncated_and_says_so() {
    for (len, cap) in [
        (10usize, 4u64),
        (1, 0),
        (MAX_MESSAGE, MAX_MESSAGE as u64 - 1),
    ] {
        let (mut k, mut p) = world();
        p.put(SERVER, BUF, &[0x55; MAX_MESSAGE]);
        let msg: Vec<u8> = (0..len).map(|i| (i % 200) as u8 + 1).collect();
        call(&mut k, &mut p, CLIENT, &msg);
        recv_into(&mut k, &mut p, cap);
        let (status, [kind, got, badge, token]) = result(&k, SERVER);
        assert_eq!(status, Error::Truncated as u64, "{len}/{cap}");
        // The length reported is the message's, so the server knows what it lost.
        assert_eq!((kind, got, badge), (RecvKind::Call as u64, len as u64, 11));
        assert_ne!(token, 0);
        let cap = cap as usize;
        assert_eq!(p.get(SERVER, BUF, cap), msg[..cap]);
        assert_eq!(
            p.get(SERVER, BUF + cap as u64, 1),
            [0x55],
            "written past the cap"
        );
    }
    // A message that fits exactly is not truncated.
    let (mut k, mut p) = world();
    call(&mut k, &mut p, CLIENT, b"four");
    recv_into(&mut k, &mut p, 4);
    assert_eq!(result(&k, SERVER).0, 0);
}

#[test]
fn a_reply_longer_than_the_reply_buffer_is_truncated_and_says_so() {
    let (mut k, mut p) = world();
    p.put(CLIENT, REPLY, &[0x55; 16]);
    p.put(CLIENT, REQ, b"q");
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::Call,
        [0, REQ, 1, REPLY, 3, 0],
    );
    recv(&mut k, &mut p, 0);
    let token = result(&k, SERVER).1[3];
    p.put(SERVER, REQ, b"answer");
    sys(
        &mut k,
        &mut p,
        SERVER,
        Sysnum::Reply,
        [token, REQ, 6, 0, 0, 0],
    );
    // The server's reply went through; the client learns it was cut.
    assert_eq!(result(&k, SERVER).0, 0);
    assert_eq!(result(&k, CLIENT), (Error::Truncated as u64, [6, 0, 0, 0]));
    assert_eq!(p.get(CLIENT, REPLY, 4), b"ans\x55");
    // One that fits exactly is not.
    p.put(CLIENT, REQ, b"q");
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::Call,
        [0, REQ, 1, REPLY, 3, 0],
    );
    recv(&mut k, &mut p, 0);
    let token = result(&k, SERVER).1[3];
    sys(
        &mut k,
        &mut p,
        SERVER,
        Sysnum::Reply,
        [token, REQ, 3, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT), (0, [3, 0, 0, 0]));
}

#[test]
fn recv_takes_pending_masked_bits_once_and_leaves_the_rest() {
    let (mut k, mut p) = world();
    k.post(SERVER, 4 | 1);
    recv(&mut k, &mut p, 4 | 2);
    assert_eq!(
        result(&k, SERVER),
        (0, [RecvKind::Notification as u64, 4, 0, 0])
    );
    assert_eq!(k.tasks[SERVER].state, State::Runnable);
    assert_eq!(k.tasks[SERVER].notifications, 1);
    // Taken: asking again blocks.
    recv(&mut k, &mut p, 4);
    assert!(matches!(k.tasks[SERVER].state, State::Blocked(_)));
}

#[test]
fn wait_takes_pending_masked_bits_once_and_leaves_the_rest() {
    let (mut k, mut p) = world();
    k.post(CLIENT2, 8 | 2 | 1);
    sys(
        &mut k,
        &mut p,
        CLIENT2,
        Sysnum::Wait,
        [8 | 1, 0, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT2), (0, [9, 0, 0, 0]));
    assert_eq!(k.tasks[CLIENT2].state, State::Runnable);
    assert_eq!(k.tasks[CLIENT2].notifications, 2);
    sys(&mut k, &mut p, CLIENT2, Sysnum::Wait, [8, 0, 0, 0, 0, 0]);
    assert!(matches!(k.tasks[CLIENT2].state, State::Blocked(_)));
    // A post wakes it with only the bits it waits for, taken.
    k.post(CLIENT2, 8 | 4);
    assert_eq!(result(&k, CLIENT2), (0, [8, 0, 0, 0]));
    assert_eq!(k.tasks[CLIENT2].state, State::Runnable);
    assert_eq!(k.tasks[CLIENT2].notifications, 2 | 4);
}

#[test]
fn a_post_to_a_receiving_server_wakes_it_with_the_bits_taken() {
    let (mut k, mut p) = world();
    recv(&mut k, &mut p, 4);
    k.post(SERVER, 1);
    assert!(matches!(k.tasks[SERVER].state, State::Blocked(_)));
    k.post(SERVER, 4);
    assert_eq!(
        result(&k, SERVER),
        (0, [RecvKind::Notification as u64, 4, 0, 0])
    );
    assert_eq!(k.tasks[SERVER].notifications, 1);
    // Posting to a stopped service or past the last one does nothing.
    k.exit(&mut p, CLIENT2, 0);
    k.post(CLIENT2, 1);
    assert_eq!(k.tasks[CLIENT2].notifications, 0);
    k.post(99, 1);
}

#[test]
fn delivery_works_whichever_end_comes_first_in_the_deployment() {
    // Here the client is service 0 and its server service 1 (in `world` the
    // server comes first).
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "o".try_into().unwrap(),
        services: [
            service("client", 1, &[cap("s", CapSpec::Client { channel: 0 })]),
            service(
                "server",
                1,
                &[cap(
                    "c",
                    CapSpec::Server {
                        channel: 0,
                        badge: 9,
                    },
                )],
            ),
        ]
        .into_iter()
        .collect(),
        channels: [ChannelConfig {
            name: "c".try_into().unwrap(),
            client: 0,
            server: 1,
        }]
        .into_iter()
        .collect(),
    };
    let mut k = Kernel::new(&config, &mut NoDevices).unwrap();
    let mut p = FakePlatform::new(2);
    k.start_all(&mut p).unwrap();
    call(&mut k, &mut p, 0, b"low");
    sys(&mut k, &mut p, 1, Sysnum::Recv, [BUF, 16, 0, 0, 0, 0]);
    let (status, [kind, len, badge, token]) = result(&k, 1);
    assert_eq!((status, kind, len, badge), (0, RecvKind::Call as u64, 3, 9));
    assert_eq!(p.get(1, BUF, 3), b"low");
    p.put(1, REQ, b"high");
    sys(&mut k, &mut p, 1, Sysnum::Reply, [token, REQ, 4, 0, 0, 0]);
    assert_eq!(result(&k, 0), (0, [4, 0, 0, 0]));
    assert_eq!(p.get(0, REPLY, 4), b"high");
}
