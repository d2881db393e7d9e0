//! Call, reply, deferred replies, peer death, restarts and notifications.

use super::*;

#[test]
fn call_reply_every_length_both_orders() {
    let (mut k, mut p) = world();
    for len in 0..=MAX_MESSAGE {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        // Alternate which side arrives first.
        if len % 2 == 0 {
            recv(&mut k, &mut p, 0);
            assert!(matches!(k.tasks[SERVER].state, State::Blocked(_)));
            call(&mut k, &mut p, CLIENT, &msg);
        } else {
            call(&mut k, &mut p, CLIENT, &msg);
            assert!(matches!(k.tasks[CLIENT].state, State::Blocked(_)));
            recv(&mut k, &mut p, 0);
        }
        let (status, [kind, got, badge, token]) = result(&k, SERVER);
        assert_eq!(
            (status, kind, got, badge),
            (0, RecvKind::Call as u64, len as u64, 11)
        );
        assert_eq!(p.get(SERVER, BUF, len), msg);
        let answer: Vec<u8> = msg.iter().map(|b| !b).collect();
        p.put(SERVER, REQ, &answer);
        sys(
            &mut k,
            &mut p,
            SERVER,
            Sysnum::Reply,
            [token, REQ, len as u64, 0, 0, 0],
        );
        assert_eq!(result(&k, SERVER).0, 0);
        assert_eq!(k.tasks[CLIENT].state, State::Runnable);
        assert_eq!(result(&k, CLIENT), (0, [len as u64, 0, 0, 0]));
        assert_eq!(p.get(CLIENT, REPLY, len), answer);
        // Tokens are single-use.
        sys(
            &mut k,
            &mut p,
            SERVER,
            Sysnum::Reply,
            [token, REQ, 0, 0, 0, 0],
        );
        assert_eq!(result(&k, SERVER).0, Error::StaleToken as u64);
    }
}

#[test]
fn deferred_replies_in_any_order_and_forged_tokens() {
    let (mut k, mut p) = world();
    call(&mut k, &mut p, CLIENT, b"one");
    p.put(CLIENT2, REQ, b"two");
    sys(
        &mut k,
        &mut p,
        CLIENT2,
        Sysnum::Call,
        [0, REQ, 3, REPLY, 16, 0],
    );
    recv(&mut k, &mut p, 0);
    let t1 = result(&k, SERVER).1[3];
    recv(&mut k, &mut p, 0);
    let (_, [_, _, badge2, t2]) = result(&k, SERVER);
    assert_eq!(badge2, 22);
    // Nothing else queued: the server blocks, it is never made to wait on a
    // client.
    recv(&mut k, &mut p, 0);
    assert!(matches!(k.tasks[SERVER].state, State::Blocked(_)));
    // A token for another channel's client, a forged one, a garbage one.
    let mut forged = ReplyToken::decode(t1).unwrap();
    forged.seq += 1;
    for bad in [forged.encode(), 0, 12345, u64::MAX] {
        k.tasks[SERVER].state = State::Runnable;
        sys(
            &mut k,
            &mut p,
            SERVER,
            Sysnum::Reply,
            [bad, REQ, 0, 0, 0, 0],
        );
        assert_eq!(result(&k, SERVER).0, Error::StaleToken as u64, "{bad:#x}");
    }
    // Only the server of the channel may use the token.
    sys(&mut k, &mut p, SUP, Sysnum::Reply, [t1, REQ, 0, 0, 0, 0]);
    assert_eq!(result(&k, SUP).0, Error::StaleToken as u64);
    p.put(SERVER, REQ, b"2");
    sys(&mut k, &mut p, SERVER, Sysnum::Reply, [t2, REQ, 1, 0, 0, 0]);
    p.put(SERVER, REQ, b"1");
    sys(&mut k, &mut p, SERVER, Sysnum::Reply, [t1, REQ, 1, 0, 0, 0]);
    assert_eq!(p.get(CLIENT, REPLY, 1), b"1");
    assert_eq!(p.get(CLIENT2, REPLY, 1), b"2");
}

#[test]
fn server_death_wakes_clients_and_restart_is_visible_once() {
    let (mut k, mut p) = world();
    call(&mut k, &mut p, CLIENT, b"queued");
    recv(&mut k, &mut p, 0);
    call(&mut k, &mut p, CLIENT2, b"waiting");
    let fault = TaskFault {
        vector: 14,
        error_code: 2,
        address: 0,
        rip: 0x40_1000,
    };
    let report = k.fault(&mut p, SERVER, fault);
    assert_eq!(report.woken_clients, 2);
    for c in [CLIENT, CLIENT2] {
        assert_eq!(k.tasks[c].state, State::Runnable);
        assert_eq!(result(&k, c).0, Error::PeerDead as u64);
    }
    // The supervisor hears of it.
    assert_eq!(
        k.tasks[SUP].notifications & faultline_ipc::abi::NOTIFY_TASK_FAULT,
        faultline_ipc::abi::NOTIFY_TASK_FAULT
    );
    // Calls to the dead server fail at once.
    call(&mut k, &mut p, CLIENT, b"x");
    assert_eq!(result(&k, CLIENT).0, Error::PeerDead as u64);
    // Only the supervisor may restart it, and only while it is stopped.
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::TaskRestart,
        [0, SERVER as u64, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT).0, Error::WrongKind as u64);
    sys(
        &mut k,
        &mut p,
        SUP,
        Sysnum::TaskRestart,
        [0, SERVER as u64, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, SUP).0, 0);
    assert_eq!(k.tasks[SERVER].generation, 2);
    sys(
        &mut k,
        &mut p,
        SUP,
        Sysnum::TaskRestart,
        [0, SERVER as u64, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, SUP).0, Error::NotPermitted as u64);
    // First call after the restart: PeerRestarted with the generation.
    call(&mut k, &mut p, CLIENT, b"x");
    assert_eq!(
        result(&k, CLIENT),
        (Error::PeerRestarted as u64, [2, 0, 0, 0])
    );
    call(&mut k, &mut p, CLIENT, b"x");
    assert!(matches!(k.tasks[CLIENT].state, State::Blocked(_)));
}

#[test]
fn reply_to_a_dead_client_is_an_error_not_a_hang() {
    let (mut k, mut p) = world();
    call(&mut k, &mut p, CLIENT, b"hi");
    recv(&mut k, &mut p, 0);
    let token = result(&k, SERVER).1[3];
    k.fault(
        &mut p,
        CLIENT,
        TaskFault {
            vector: 13,
            error_code: 0,
            address: 0,
            rip: 0,
        },
    );
    sys(
        &mut k,
        &mut p,
        SERVER,
        Sysnum::Reply,
        [token, REQ, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, SERVER).0, Error::PeerDead as u64);
    assert_eq!(k.tasks[SERVER].state, State::Runnable);
    // After the client restarts, the old token is still refused.
    sys(
        &mut k,
        &mut p,
        SUP,
        Sysnum::TaskRestart,
        [0, CLIENT as u64, 0, 0, 0, 0],
    );
    call(&mut k, &mut p, CLIENT, b"again");
    sys(
        &mut k,
        &mut p,
        SERVER,
        Sysnum::Reply,
        [token, REQ, 0, 0, 0, 0],
    );
    assert_ne!(result(&k, SERVER).0, 0);
}

#[test]
fn notifications_wake_wait_and_recv() {
    let (mut k, mut p) = world();
    recv(&mut k, &mut p, 4);
    sys(&mut k, &mut p, CLIENT, Sysnum::Notify, [1, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, CLIENT).0, 0);
    assert_eq!(
        result(&k, SERVER),
        (0, [RecvKind::Notification as u64, 4, 0, 0])
    );
    // Unmasked bits stay pending until asked for.
    sys(&mut k, &mut p, SERVER, Sysnum::Wait, [1, 0, 0, 0, 0, 0]);
    sys(&mut k, &mut p, CLIENT, Sysnum::Notify, [1, 0, 0, 0, 0, 0]);
    assert!(matches!(k.tasks[SERVER].state, State::Blocked(_)));
    assert_eq!(k.tasks[SERVER].notifications, 4);
    // Timers post NOTIFY_TIMER.
    sys(
        &mut k,
        &mut p,
        CLIENT2,
        Sysnum::SetTimer,
        [1000, 0, 0, 0, 0, 0],
    );
    sys(
        &mut k,
        &mut p,
        CLIENT2,
        Sysnum::Wait,
        [u64::from(faultline_ipc::abi::NOTIFY_TIMER), 0, 0, 0, 0, 0],
    );
    k.tick(999);
    assert!(matches!(k.tasks[CLIENT2].state, State::Blocked(_)));
    k.tick(1000);
    assert_eq!(
        result(&k, CLIENT2),
        (0, [u64::from(faultline_ipc::abi::NOTIFY_TIMER), 0, 0, 0])
    );
}
