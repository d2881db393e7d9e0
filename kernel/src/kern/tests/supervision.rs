//! What the supervisor reads and hears, how refusals are logged, and the
//! capability table's handle rules.

use super::*;
use faultline_ipc::abi::NOTIFY_TASK_FAULT;
use faultline_ipc::kconfig::{TaskState, TaskStatus};

fn status(k: &mut Kernel, p: &mut FakePlatform, index: u64, cap: u64) -> (u64, [u64; 4]) {
    sys(k, p, SUP, Sysnum::TaskStatus, [0, index, BUF, cap, 0, 0]);
    result(k, SUP)
}

fn decoded(p: &FakePlatform, len: u64) -> TaskStatus {
    postcard::from_bytes(&p.get(SUP, BUF, len as usize)).unwrap()
}

#[test]
fn task_status_reports_running_exited_and_restarted_services() {
    let (mut k, mut p) = world();
    let (st, [len, ..]) = status(&mut k, &mut p, SERVER as u64, 128);
    assert_eq!(st, 0);
    let s = decoded(&p, len);
    assert_eq!(s.name.as_str(), "server");
    assert_eq!(
        (s.state, s.generation, s.restarts),
        (TaskState::Running, 1, 0)
    );
    assert_eq!(s.fault, None);
    assert_eq!(
        s.policy,
        RestartPolicy::Restart {
            backoff_ms: 1,
            max_restarts: 3
        }
    );
    // An exited service reports its exit code.
    sys(&mut k, &mut p, CLIENT2, Sysnum::Exit, [7, 0, 0, 0, 0, 0]);
    let (_, [len, ..]) = status(&mut k, &mut p, CLIENT2 as u64, 128);
    assert_eq!(decoded(&p, len).state, TaskState::Exited { code: 7 });
    // A restart shows in the generation and count.
    sys(
        &mut k,
        &mut p,
        SUP,
        Sysnum::TaskRestart,
        [0, CLIENT2 as u64, 0, 0, 0, 0],
    );
    let (_, [len, ..]) = status(&mut k, &mut p, CLIENT2 as u64, 128);
    let s = decoded(&p, len);
    assert_eq!(
        (s.state, s.generation, s.restarts),
        (TaskState::Running, 2, 1)
    );
}

#[test]
fn task_status_bounds_the_index_and_the_buffer() {
    let (mut k, mut p) = world();
    // The last service is there; one past it is not.
    let last = k.tasks.len() as u64 - 1;
    assert_eq!(status(&mut k, &mut p, last, 128).0, 0);
    let (st, vals) = status(&mut k, &mut p, last + 1, 128);
    assert_eq!((st, vals), (Error::NotFound as u64, [0; 4]));
    assert_eq!(
        status(&mut k, &mut p, u64::MAX, 128).0,
        Error::NotFound as u64
    );
    // A buffer one byte short is refused with the size needed, and nothing
    // is written; one of exactly that size is enough.
    let (_, [need, ..]) = status(&mut k, &mut p, last, 128);
    p.put(SUP, BUF, &[0xee; 128]);
    assert_eq!(
        status(&mut k, &mut p, last, need - 1),
        (Error::BadLength as u64, [need, 0, 0, 0])
    );
    assert_eq!(p.get(SUP, BUF, 1), [0xee]);
    assert_eq!(status(&mut k, &mut p, last, need), (0, [need, 0, 0, 0]));
    // An unmapped buffer is refused.
    sys(
        &mut k,
        &mut p,
        SUP,
        Sysnum::TaskStatus,
        [0, last, 0x10, 128, 0, 0],
    );
    assert_eq!(result(&k, SUP).0, Error::BadPointer as u64);
}

fn refusal_lines(p: &FakePlatform) -> Vec<&str> {
    p.logs
        .iter()
        .filter(|(who, l)| who == "kernel" && l.contains("refused syscall"))
        .map(|(_, l)| l.as_str())
        .collect()
}

#[test]
fn refusals_are_logged_up_to_a_limit_and_the_last_one_says_so() {
    let (mut k, mut p) = world();
    for _ in 0..40 {
        sys(&mut k, &mut p, CLIENT, Sysnum::MmioMap, [0, 0, 0, 0, 0, 0]);
        assert_eq!(result(&k, CLIENT).0, Error::WrongKind as u64);
    }
    let lines = refusal_lines(&p);
    assert_eq!(lines.len(), 32);
    assert!(
        lines[0].starts_with(&format!(
            "kernel: refused syscall {} from client:",
            Sysnum::MmioMap as u64
        )),
        "{}",
        lines[0]
    );
    let quiet: Vec<_> = lines
        .iter()
        .filter(|l| l.ends_with("(further refusals not logged)"))
        .collect();
    assert_eq!(quiet, [&lines[31]]);
    // Another service's refusals are counted apart.
    sys(&mut k, &mut p, CLIENT2, Sysnum::MmioMap, [0, 0, 0, 0, 0, 0]);
    assert_eq!(refusal_lines(&p).len(), 33);
}

#[test]
fn expected_ipc_outcomes_are_not_logged_as_refusals() {
    let (mut k, mut p) = world();
    // NotFound: a name the service does not hold.
    p.put(CLIENT, REQ, b"nope");
    sys(
        &mut k,
        &mut p,
        CLIENT,
        Sysnum::CapLookup,
        [REQ, 4, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, CLIENT).0, Error::NotFound as u64);
    // PeerDead: the server is gone.
    k.exit(&mut p, SERVER, 0);
    call(&mut k, &mut p, CLIENT, b"x");
    assert_eq!(result(&k, CLIENT).0, Error::PeerDead as u64);
    // PeerRestarted: it came back.
    k.restart(&mut p, SERVER).unwrap();
    call(&mut k, &mut p, CLIENT, b"x");
    assert_eq!(result(&k, CLIENT).0, Error::PeerRestarted as u64);
    assert!(refusal_lines(&p).is_empty(), "{:?}", p.logs);
    assert_eq!(k.tasks[CLIENT].refusals, 0);
    // They do not eat into the budget of logged refusals either.
    for _ in 0..32 {
        sys(&mut k, &mut p, CLIENT, Sysnum::MmioMap, [0, 0, 0, 0, 0, 0]);
    }
    assert_eq!(refusal_lines(&p).len(), 32);
}

/// Two services and no supervisor: service 1 serves service 0.
fn unsupervised() -> (Kernel, FakePlatform) {
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "u".try_into().unwrap(),
        services: [
            service(
                "client",
                1,
                &[
                    cap("poke", CapSpec::Notification { target: 1, bits: 2 }),
                    cap("server", CapSpec::Client { channel: 0 }),
                ],
            ),
            service(
                "server",
                1,
                &[cap(
                    "client",
                    CapSpec::Server {
                        channel: 0,
                        badge: 5,
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
    (k, p)
}

#[test]
fn without_a_supervisor_a_fault_notifies_nobody() {
    let (mut k, mut p) = unsupervised();
    assert_eq!(k.supervisor(), None);
    k.exit(&mut p, 1, 3);
    assert_eq!(k.tasks[0].notifications, 0);
    // With one, the supervisor (and only it) is told.
    let (mut k, mut p) = world();
    assert_eq!(k.supervisor(), Some(SUP));
    k.exit(&mut p, CLIENT2, 3);
    assert_eq!(k.tasks[SUP].notifications, NOTIFY_TASK_FAULT);
    assert_eq!(k.tasks[SERVER].notifications, 0);
}

#[test]
fn a_restarted_client_knows_its_server_as_it_is_now() {
    // The client's channel is its second handle: every handle is refreshed,
    // not just the first.
    let (mut k, mut p) = unsupervised();
    k.exit(&mut p, 1, 0);
    k.restart(&mut p, 1).unwrap();
    k.exit(&mut p, 0, 0);
    k.restart(&mut p, 0).unwrap();
    p.put(0, REQ, b"hello");
    sys(&mut k, &mut p, 0, Sysnum::Call, [1, REQ, 5, REPLY, 16, 0]);
    assert!(
        matches!(k.tasks[0].state, State::Blocked(_)),
        "{:?}",
        result(&k, 0)
    );
}

#[test]
fn cap_table_length_counts_every_grant_and_names_up_to_the_limit_match() {
    let mut t = caps::CapTable::default();
    assert!(t.is_empty());
    assert_eq!(t.len(), 0);
    let long = "n".repeat(faultline_ipc::abi::MAX_CAP_NAME);
    t.push(long.as_str().try_into().unwrap(), Cap::Supervisor)
        .unwrap();
    t.push(
        "gone".try_into().unwrap(),
        Cap::Unresolved { kind: CapKind::Pci },
    )
    .unwrap();
    assert!(!t.is_empty());
    // Unresolved grants keep their handle, so they count.
    assert_eq!(t.len(), 2);
    // A name of exactly the longest length is looked up, one longer is not.
    assert_eq!(t.lookup(long.as_bytes()), Ok((0, CapKind::Supervisor)));
    assert_eq!(
        t.lookup(format!("{long}n").as_bytes()),
        Err(Error::BadLength)
    );
    assert_eq!(t.lookup(b"gone"), Ok((1, CapKind::Pci)));
}
