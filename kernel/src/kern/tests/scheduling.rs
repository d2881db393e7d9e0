//! Who runs next, and when the machine has nothing left to do.

use super::*;

/// `n` services of priority 3 plus one of priority `lead`; the last one
/// holds an IRQ.
fn flat(n: usize, lead: u8) -> (Kernel, FakePlatform) {
    let mut services: heapless::Vec<ServiceConfig, 16> =
        (0..n).map(|i| service(&format!("s{i}"), 3, &[])).collect();
    services
        .push(service(
            "irq",
            lead,
            &[edu(), cap("irq", CapSpec::Irq { bits: 1, pci: 0 })],
        ))
        .unwrap();
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "f".try_into().unwrap(),
        services,
        channels: heapless::Vec::new(),
    };
    let mut k = Kernel::new(&config, &mut OneDevice::new()).unwrap();
    let mut p = FakePlatform::new(n + 1);
    k.start_all(&mut p).unwrap();
    (k, p)
}

#[test]
fn equals_take_turns_in_order_when_rotated() {
    let (mut k, mut p) = flat(3, 7);
    let irq = 3;
    // The IRQ holder is less important; it waits.
    sys(&mut k, &mut p, irq, Sysnum::Wait, [1, 0, 0, 0, 0, 0]);
    let picks: Vec<usize> = (0..7).map(|_| k.schedule(true).unwrap()).collect();
    assert_eq!(picks, [1, 2, 0, 1, 2, 0, 1]);
    assert_eq!(k.current, Some(1));
}

#[test]
fn without_rotation_the_current_service_keeps_the_cpu() {
    let (mut k, _) = flat(3, 3);
    assert_eq!(k.schedule(true), Some(1));
    for _ in 0..3 {
        assert_eq!(k.schedule(false), Some(1));
    }
    // Once it blocks, the next one in turn runs, not the first.
    k.tasks[1].state = State::Blocked(task::Blocked::Wait { mask: 1 });
    assert_eq!(k.schedule(false), Some(2));
    assert_eq!(k.schedule(false), Some(2));
    // A more important service preempts it even without rotation.
    k.tasks[1].state = State::Runnable;
    k.tasks[1].priority = 0;
    assert_eq!(k.schedule(false), Some(1));
    // And a current service that became less important gives way to the
    // next in turn after the last one picked.
    k.tasks[1].priority = 9;
    assert_eq!(k.schedule(false), Some(2));
}

#[test]
fn the_most_important_runnable_service_runs() {
    let (mut k, mut p) = flat(2, 1);
    let irq = 2;
    for _ in 0..3 {
        assert_eq!(k.schedule(true), Some(irq));
    }
    sys(&mut k, &mut p, irq, Sysnum::Wait, [1, 0, 0, 0, 0, 0]);
    assert_eq!(k.schedule(false), Some(0));
    k.post(irq, 1);
    assert_eq!(k.schedule(false), Some(irq));
}

#[test]
fn quiet_only_with_nothing_runnable_no_timer_and_irq_holders_quiet_for_a_while() {
    let (mut k, mut p) = flat(1, 3);
    let irq = 1;
    assert!(!k.quiescent(0), "services are runnable");
    assert!(!k.quiescent(u64::MAX), "services are runnable");
    let timer = u64::from(faultline_ipc::abi::NOTIFY_TIMER);
    sys(&mut k, &mut p, 0, Sysnum::Wait, [timer, 0, 0, 0, 0, 0]);
    sys(&mut k, &mut p, irq, Sysnum::Wait, [1, 0, 0, 0, 0, 0]);
    assert_eq!(k.schedule(false), None);
    // Everyone waits, but an interrupt can still wake the IRQ holder,
    // until nothing has run for the quiet period.
    assert!(!k.quiescent(0), "an IRQ holder is alive");
    assert!(!k.quiescent(super::super::sched::QUIET_NS - 1));
    assert!(k.quiescent(super::super::sched::QUIET_NS));
    k.fault(
        &mut p,
        irq,
        TaskFault {
            vector: 6,
            error_code: 0,
            address: 0,
            rip: 0,
        },
    );
    assert!(k.quiescent(0));
    // An armed timer will wake service 0, however long the wait.
    k.tasks[0].timer = Some(5);
    assert!(!k.quiescent(0), "a timer is armed");
    assert!(!k.quiescent(u64::MAX), "a timer is armed");
    k.tick(5);
    assert_eq!(k.tasks[0].timer, None);
    assert_eq!(k.tasks[0].state, State::Runnable);
    assert!(!k.quiescent(0));
}

#[test]
fn a_stopping_service_stops_being_current_and_no_other_does() {
    let (mut k, mut p) = flat(3, 3);
    assert_eq!(k.schedule(true), Some(1));
    // Another service stopping leaves the current one on the CPU.
    sys(&mut k, &mut p, 0, Sysnum::Exit, [0; 6]);
    assert_eq!(k.current, Some(1));
    assert_eq!(k.schedule(false), Some(1));
    // The current one stopping leaves no service's registers live.
    k.fault(
        &mut p,
        1,
        TaskFault {
            vector: 13,
            error_code: 0,
            address: 0,
            rip: 0,
        },
    );
    assert_eq!(k.current, None);
    assert_eq!(k.schedule(false), Some(2));
}
