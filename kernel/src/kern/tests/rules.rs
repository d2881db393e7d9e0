//! Refusals, grants, supervision, scheduling, and random syscalls.

use super::*;
use crate::kern::task::Blocked;

#[test]
fn refusals_are_typed_and_leave_the_caller_running() {
    let (mut k, mut p) = world();
    let cases: &[(usize, Sysnum, [u64; 6], Error)] = &[
        (
            CLIENT,
            Sysnum::Call,
            [7, REQ, 1, REPLY, 8, 0],
            Error::BadHandle,
        ),
        (
            CLIENT,
            Sysnum::Call,
            [1, REQ, 1, REPLY, 8, 0],
            Error::WrongKind,
        ),
        (
            CLIENT,
            Sysnum::Call,
            [0, 0xffff_ffff_8010_0000, 8, REPLY, 8, 0],
            Error::BadPointer,
        ),
        (
            CLIENT,
            Sysnum::Call,
            [0, REQ, 257, REPLY, 8, 0],
            Error::BadLength,
        ),
        (
            CLIENT,
            Sysnum::Call,
            [0, REQ, 1, 0x10, 8, 0],
            Error::BadPointer,
        ),
        (
            CLIENT,
            Sysnum::Send,
            [u64::MAX, REQ, 1, 0, 0, 0],
            Error::BadHandle,
        ),
        (
            CLIENT,
            Sysnum::Log,
            [0xffff_8000_0000_0000, 10, 0, 0, 0, 0],
            Error::BadPointer,
        ),
        (
            CLIENT,
            Sysnum::Log,
            [REQ, 100_000, 0, 0, 0, 0],
            Error::BadLength,
        ),
        (
            CLIENT,
            Sysnum::MmioMap,
            [0, 0, 0, 0, 0, 0],
            Error::WrongKind,
        ),
        (
            CLIENT,
            Sysnum::MmioMap,
            [9, 0, 0, 0, 0, 0],
            Error::BadHandle,
        ),
        (
            CLIENT,
            Sysnum::DmaAlloc,
            [2, 1 << 20, 0, 0, 0, 0],
            Error::OutOfMemory,
        ),
        (
            CLIENT,
            Sysnum::DmaAlloc,
            [2, 0, 0, 0, 0, 0],
            Error::BadLength,
        ),
        (
            CLIENT,
            Sysnum::PciConfigRead,
            [0, 0, 4, 0, 0, 0],
            Error::WrongKind,
        ),
        (
            SERVER,
            Sysnum::PciConfigRead,
            [2, 0, 4, 0, 0, 0],
            Error::NotFound,
        ),
        (
            CLIENT,
            Sysnum::TaskStatus,
            [0, 0, BUF, 64, 0, 0],
            Error::WrongKind,
        ),
        (
            SUP,
            Sysnum::TaskStatus,
            [0, 99, BUF, 64, 0, 0],
            Error::NotFound,
        ),
        (CLIENT, Sysnum::Notify, [0, 0, 0, 0, 0, 0], Error::WrongKind),
        (CLIENT, Sysnum::IrqAck, [1, 0, 0, 0, 0, 0], Error::WrongKind),
        (
            SERVER,
            Sysnum::Recv,
            [0xdead_0000, 16, 0, 0, 0, 0],
            Error::BadPointer,
        ),
    ];
    for &(task, nr, args, want) in cases {
        sys(&mut k, &mut p, task, nr, args);
        assert_eq!(result(&k, task).0, want as u64, "{nr:?} {args:x?}");
        assert_eq!(k.tasks[task].state, State::Runnable, "{nr:?}");
    }
    k.tasks[CLIENT].regs.rax = Sysnum::ALL.len() as u64;
    k.syscall(&mut p, CLIENT);
    assert_eq!(result(&k, CLIENT).0, Error::BadSyscall as u64);
    assert!(
        p.logs
            .iter()
            .any(|(who, l)| who == "kernel" && l.contains("refused syscall"))
    );
}

#[test]
fn grants_are_exactly_the_config() {
    let (mut k, mut p) = world();
    // The client can look up its own caps and nothing else.
    p.put(CLIENT, REQ, b"dma");
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::CapLookup,
        [REQ, 3, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT), (0, [2, CapKind::Dma as u64, 0, 0]));
    p.put(CLIENT, REQ, b"vtd");
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::CapLookup,
        [REQ, 3, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT).0, Error::NotFound as u64);
    // The server's VT-d grant resolved to the unit's registers.
    sys(&mut k, &mut p, SERVER, Sysnum::MmioMap, [3, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, SERVER), (0, [0x7000_fed9_0000, 0x1000, 0, 0]));
    // DMA within budget.
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::DmaAlloc,
        [2, 4096, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT).0, 0);
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::DmaAlloc,
        [2, 8192, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT).0, Error::OutOfMemory as u64);
}

#[test]
fn supervisor_reads_status() {
    let (mut k, mut p) = world();
    k.fault(
        &mut p,
        CLIENT,
        TaskFault {
            vector: 14,
            error_code: 4,
            address: 0xdead,
            rip: 0x40_0010,
        },
    );
    sys(
        &mut k,
        &mut p,
        SUP,
        Sysnum::TaskStatus,
        [0, CLIENT as u64, BUF, 128, 0, 0],
    );
    let (status, [len, ..]) = result(&k, SUP);
    assert_eq!(status, 0);
    let s: faultline_ipc::kconfig::TaskStatus =
        postcard::from_bytes(&p.get(SUP, BUF, len as usize)).unwrap();
    assert_eq!(s.name.as_str(), "client");
    assert_eq!(s.state, faultline_ipc::kconfig::TaskState::Faulted);
    assert_eq!(s.fault.unwrap().address, 0xdead);
}

#[test]
fn scheduling_by_priority_then_round_robin() {
    let (mut k, mut p) = world();
    assert_eq!(k.schedule(false), Some(SUP));
    sys(&mut k, &mut p, SUP, Sysnum::Wait, [1, 0, 0, 0, 0, 0]);
    assert_eq!(k.schedule(false), Some(SERVER));
    recv(&mut k, &mut p, 0);
    let a = k.schedule(false).unwrap();
    let b = k.schedule(true).unwrap();
    assert_ne!(a, b);
    assert!([CLIENT, CLIENT2].contains(&a) && [CLIENT, CLIENT2].contains(&b));
    assert!(!k.quiescent(0));
    for c in [CLIENT, CLIENT2] {
        sys(&mut k, &mut p, c, Sysnum::Exit, [0, 0, 0, 0, 0, 0]);
    }
    assert_eq!(k.schedule(false), None);
    assert!(k.quiescent(0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any sequence of syscalls with any arguments from any service keeps the
    /// kernel consistent: no panic, every refused caller runnable.
    #[test]
    fn random_syscalls_never_break_the_kernel(
        ops in proptest::collection::vec((0usize..4, 0u64..22, proptest::array::uniform6(prop_oneof![
            Just(0u64), Just(1), Just(2), Just(BUF), Just(REQ), Just(REPLY), Just(u64::MAX),
            Just(0xffff_ffff_8000_0000), Just(256), Just(257), any::<u64>(),
        ])), 1..200)
    ) {
        let (mut k, mut p) = world();
        for (task, nr, args) in ops {
            if k.tasks[task].state != State::Runnable {
                continue;
            }
            k.tasks[task].regs.rax = nr;
            [k.tasks[task].regs.rdi, k.tasks[task].regs.rsi, k.tasks[task].regs.rdx, k.tasks[task].regs.r10, k.tasks[task].regs.r8, k.tasks[task].regs.r9] = args;
            let _ = k.syscall(&mut p, task);
            k.tick(p.now);
            p.now += 100;
        }
        let _ = k.schedule(true);
    }
}

#[test]
fn a_call_held_for_a_deferred_reply_ends_well_and_an_untaken_one_does_not() {
    let (mut k, mut p) = world();
    sys(&mut k, &mut p, SUP, Sysnum::Wait, [1, 0, 0, 0, 0, 0]);
    // The server is not receiving: a call stays queued, a deadlock.
    sys(&mut k, &mut p, SERVER, Sysnum::Wait, [1, 0, 0, 0, 0, 0]);
    call(&mut k, &mut p, CLIENT, b"pull");
    assert!(!k.ended_well(CLIENT), "never received");
    // The server takes it and keeps the token, back in recv: parked.
    sys(&mut k, &mut p, CLIENT, Sysnum::Notify, [1, 0, 0, 0, 0, 0]);
    recv(&mut k, &mut p, 0);
    recv(&mut k, &mut p, 0);
    assert!(matches!(
        k.tasks[CLIENT].state,
        State::Blocked(Blocked::AwaitingReply { .. })
    ));
    assert!(k.ended_well(CLIENT), "held for a deferred reply");
    // The server is stuck in a call of its own: the held call is stuck too.
    k.tasks[SERVER].state = State::Blocked(Blocked::Wait { mask: 1 });
    assert!(!k.ended_well(CLIENT));
    for (task, well) in [(SUP, true), (SERVER, true), (CLIENT2, true)] {
        assert_eq!(k.ended_well(task), well, "task {task}");
    }
    k.tasks[CLIENT2].state = State::Exited { code: 3 };
    assert!(!k.ended_well(CLIENT2), "a failure code");
    k.tasks[CLIENT2].state = State::Exited { code: 0 };
    assert!(k.ended_well(CLIENT2));
}
