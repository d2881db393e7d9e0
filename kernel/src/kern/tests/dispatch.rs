//! The small system calls: time, timers, yield, exit, logging, interrupts,
//! notifications and capability lookup, each with what it returns.

use super::*;

#[test]
fn time_reports_the_tsc_its_rate_and_nanoseconds_since_boot() {
    let (mut k, mut p) = world();
    p.now = 12_345;
    let after = sys(&mut k, &mut p, CLIENT, Sysnum::Time, [0; 6]);
    assert_eq!(after, After::Continue);
    assert_eq!(result(&k, CLIENT), (0, [12_345, 1_000_000_000, 12_345, 0]));
}

#[test]
fn a_timer_is_armed_by_a_deadline_and_disarmed_by_zero() {
    let (mut k, mut p) = world();
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::SetTimer,
        [500, 0, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT), (0, [0; 4]));
    assert_eq!(k.tasks[CLIENT].timer, Some(500));
    sys(&mut k, &mut p, CLIENT, Sysnum::SetTimer, [0; 6]);
    assert_eq!(k.tasks[CLIENT].timer, None);
    k.tick(u64::MAX);
    assert_eq!(k.tasks[CLIENT].notifications, 0);
}

#[test]
fn yield_and_exit_tell_the_glue_what_to_do() {
    let (mut k, mut p) = world();
    k.tasks[CLIENT].regs.rax = 0;
    let after = sys(&mut k, &mut p, CLIENT, Sysnum::Yield, [0; 6]);
    assert_eq!(after, After::Yield);
    assert_eq!(result(&k, CLIENT), (0, [0; 4]));
    assert_eq!(k.tasks[CLIENT].state, State::Runnable);
    call(&mut k, &mut p, CLIENT2, b"waiting");
    let after = sys(&mut k, &mut p, SERVER, Sysnum::Exit, [3, 0, 0, 0, 0, 0]);
    assert_eq!(
        after,
        After::Exited(StopReport {
            task: SERVER,
            generation: 1,
            woken_clients: 1
        })
    );
    assert_eq!(k.tasks[SERVER].state, State::Exited { code: 3 });
}

#[test]
fn a_log_line_carries_the_service_name_up_to_the_length_limit() {
    let (mut k, mut p) = world();
    p.put(CLIENT, REQ, b"hello");
    sys(&mut k, &mut p, CLIENT, Sysnum::Log, [REQ, 5, 0, 0, 0, 0]);
    assert_eq!(result(&k, CLIENT), (0, [0; 4]));
    assert_eq!(p.logs, [("client".to_string(), "hello".to_string())]);
    // The longest line is logged whole; one byte more is refused.
    let max = faultline_ipc::abi::MAX_LOG;
    p.put(CLIENT, REQ, &vec![b'x'; max]);
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::Log,
        [REQ, max as u64, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT).0, 0);
    assert_eq!(p.logs[1].1.len(), max);
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::Log,
        [REQ, max as u64 + 1, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT).0, Error::BadLength as u64);
}

/// A driver holding edu, its IRQ (vector 0x50 from [`OneDevice`]) and a
/// notification to a second service: handles 0, 1 and 2.
fn irq_world() -> (Kernel, FakePlatform) {
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "i".try_into().unwrap(),
        services: [
            service(
                "driver",
                1,
                &[
                    edu(),
                    cap("irq", CapSpec::Irq { bits: 2, pci: 0 }),
                    cap("wake", CapSpec::Notification { target: 1, bits: 8 }),
                ],
            ),
            service("other", 1, &[]),
        ]
        .into_iter()
        .collect(),
        channels: heapless::Vec::new(),
    };
    let mut k = Kernel::new(&config, &mut OneDevice::new()).unwrap();
    let mut p = FakePlatform::new(2);
    k.start_all(&mut p).unwrap();
    (k, p)
}

#[test]
fn an_irq_capability_gives_its_msi_fields_and_acks_its_own_vector() {
    let (mut k, mut p) = irq_world();
    sys(&mut k, &mut p, 0, Sysnum::IrqInfo, [1, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, 0), (0, [0xfee0_0000, 0x50, 0, 0]));
    assert!(p.unmasked.is_empty());
    sys(&mut k, &mut p, 0, Sysnum::IrqAck, [1, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, 0), (0, [0; 4]));
    assert_eq!(p.unmasked, [0x50]);
    // Not with another kind of capability, nor a missing one.
    for (handle, e) in [(2, Error::WrongKind), (3, Error::BadHandle)] {
        for nr in [Sysnum::IrqAck, Sysnum::IrqInfo] {
            sys(&mut k, &mut p, 0, nr, [handle, 0, 0, 0, 0, 0]);
            assert_eq!(result(&k, 0).0, e as u64, "{nr:?}");
        }
    }
    assert_eq!(p.unmasked, [0x50]);
}

#[test]
fn a_notification_posts_its_bits_to_a_live_target_only() {
    let (mut k, mut p) = irq_world();
    sys(&mut k, &mut p, 0, Sysnum::Notify, [2, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, 0), (0, [0; 4]));
    assert_eq!(k.tasks[1].notifications, 8);
    k.exit(&mut p, 1, 0);
    sys(&mut k, &mut p, 0, Sysnum::Notify, [2, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, 0).0, Error::PeerDead as u64);
    assert_eq!(k.tasks[1].notifications, 0);
    sys(&mut k, &mut p, 0, Sysnum::Notify, [5, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, 0).0, Error::BadHandle as u64);
}

#[test]
fn cap_lookup_reads_the_name_from_the_caller_up_to_the_limit() {
    let (mut k, mut p) = world();
    p.put(SERVER, REQ, b"c2");
    sys(
        &mut k,
        &mut p,
        SERVER,
        Sysnum::CapLookup,
        [REQ, 2, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, SERVER), (0, [1, CapKind::Server as u64, 0, 0]));
    // A name longer than any capability's is refused before it is read.
    let long = faultline_ipc::abi::MAX_CAP_NAME as u64 + 1;
    sys(
        &mut k,
        &mut p,
        SERVER,
        Sysnum::CapLookup,
        [REQ, long, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, SERVER).0, Error::BadLength as u64);
    sys(
        &mut k,
        &mut p,
        SERVER,
        Sysnum::CapLookup,
        [0x10, 2, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, SERVER).0, Error::BadPointer as u64);
}
