//! Host tests of the kernel core: IPC rules, refusals, faults, restarts and
//! scheduling, over a [`Platform`] made of plain buffers.

use super::task::{ReplyToken, State};
use super::*;
use faultline_ipc::abi::{CapKind, MAX_MESSAGE, RecvKind, Sysnum};
use faultline_ipc::kconfig::{
    CONFIG_VERSION, CapConfig, ChannelConfig, KernelConfig, RestartPolicy, ServiceConfig, TaskFault,
};
use proptest::prelude::*;
use std::vec::Vec;

/// Each service's memory: `[USER_BASE, USER_BASE + USER_SIZE)`, all writable.
const USER_BASE: u64 = 0x40_0000;
const USER_SIZE: usize = 0x4000;

struct FakePlatform {
    mem: Vec<Vec<u8>>,
    logs: Vec<(String, String)>,
    loads: Vec<usize>,
    now: u64,
}

impl FakePlatform {
    fn new(n: usize) -> Self {
        FakePlatform {
            mem: vec![vec![0; USER_SIZE]; n],
            logs: Vec::new(),
            loads: Vec::new(),
            now: 0,
        }
    }

    fn range(&self, task: usize, ptr: u64, len: usize) -> Result<std::ops::Range<usize>, Error> {
        let start = ptr.checked_sub(USER_BASE).ok_or(Error::BadPointer)? as usize;
        let end = start.checked_add(len).ok_or(Error::BadPointer)?;
        if end > self.mem[task].len() {
            return Err(Error::BadPointer);
        }
        Ok(start..end)
    }

    fn put(&mut self, task: usize, ptr: u64, data: &[u8]) {
        let r = self.range(task, ptr, data.len()).unwrap();
        self.mem[task][r].copy_from_slice(data);
    }

    fn get(&self, task: usize, ptr: u64, len: usize) -> Vec<u8> {
        self.mem[task][self.range(task, ptr, len).unwrap()].to_vec()
    }
}

impl Platform for FakePlatform {
    fn read_user(&mut self, task: usize, ptr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let r = self.range(task, ptr, buf.len())?;
        buf.copy_from_slice(&self.mem[task][r]);
        Ok(())
    }
    fn write_user(&mut self, task: usize, ptr: u64, data: &[u8]) -> Result<(), Error> {
        let r = self.range(task, ptr, data.len())?;
        self.mem[task][r].copy_from_slice(data);
        Ok(())
    }
    fn check_writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<(), Error> {
        self.range(task, ptr, len as usize).map(|_| ())
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
    fn tsc(&self) -> (u64, u64) {
        (self.now, 1_000_000_000)
    }
    fn log(&mut self, name: &str, line: &[u8]) {
        self.logs
            .push((name.into(), String::from_utf8_lossy(line).into()));
    }
    fn map_mmio(&mut self, _: usize, base: u64, _: u64) -> Result<u64, Error> {
        Ok(0x7000_0000_0000 | base)
    }
    fn alloc_dma(&mut self, _: usize, _: u64) -> Result<(u64, u64), Error> {
        Ok((0x6000_0000_0000, 0x1234_5000))
    }
    fn pci_read(&mut self, _: (u8, u8, u8), offset: u16, _: u8) -> u32 {
        u32::from(offset)
    }
    fn pci_write(&mut self, _: (u8, u8, u8), _: u16, _: u8, _: u32) {}
    fn irq_msi(&self, irq: u8) -> (u64, u32) {
        (0xfee0_0000, u32::from(irq))
    }
    fn irq_unmask(&mut self, _: u8) {}
    fn load(&mut self, task: usize) -> Result<Regs, Error> {
        self.loads.push(task);
        self.mem[task].fill(0);
        Ok(Regs::entry(USER_BASE, USER_BASE + USER_SIZE as u64))
    }
}

struct NoDevices;
impl Resolver for NoDevices {
    fn pci(&mut self, _: u16, _: u16, _: u8) -> Option<(u8, u8, u8)> {
        None
    }
    fn vtd_unit(&mut self, _: u8) -> Option<(u64, u64)> {
        Some((0xfed9_0000, 0x1000))
    }
    fn irq(&mut self, _: u8, _: u32) -> Option<u8> {
        Some(0x50)
    }
}

fn cap(name: &str, kind: CapSpec) -> CapConfig {
    CapConfig {
        name: name.try_into().unwrap(),
        kind,
    }
}

fn service(name: &str, priority: u8, caps: &[CapConfig]) -> ServiceConfig {
    ServiceConfig {
        name: name.try_into().unwrap(),
        image: 0,
        priority,
        memory_pages: 16,
        stack_pages: 1,
        restart: RestartPolicy::Restart {
            backoff_ms: 1,
            max_restarts: 3,
        },
        caps: caps.iter().cloned().collect(),
    }
}

const SUP: usize = 0;
const SERVER: usize = 1;
const CLIENT: usize = 2;
const CLIENT2: usize = 3;

/// supervisor, a server, two clients (channels 0 and 1), plus a notification
/// from the client to the server.
fn world() -> (Kernel, FakePlatform) {
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "t".try_into().unwrap(),
        services: [
            service("sup", 0, &[cap("supervisor", CapSpec::Supervisor)]),
            service(
                "server",
                1,
                &[
                    cap(
                        "c1",
                        CapSpec::Server {
                            channel: 0,
                            badge: 11,
                        },
                    ),
                    cap(
                        "c2",
                        CapSpec::Server {
                            channel: 1,
                            badge: 22,
                        },
                    ),
                    cap(
                        "edu",
                        CapSpec::Pci {
                            vendor: 0x1234,
                            device: 0x11e8,
                            index: 0,
                        },
                    ),
                    cap("vtd", CapSpec::VtdMmio { unit: 0 }),
                ],
            ),
            service(
                "client",
                2,
                &[
                    cap("server", CapSpec::Client { channel: 0 }),
                    cap("poke", CapSpec::Notification { target: 1, bits: 4 }),
                    cap("dma", CapSpec::Dma { bytes: 8192 }),
                ],
            ),
            service(
                "client2",
                2,
                &[cap("server", CapSpec::Client { channel: 1 })],
            ),
        ]
        .into_iter()
        .collect(),
        channels: [
            ChannelConfig {
                name: "c1".try_into().unwrap(),
                client: 2,
                server: 1,
            },
            ChannelConfig {
                name: "c2".try_into().unwrap(),
                client: 3,
                server: 1,
            },
        ]
        .into_iter()
        .collect(),
    };
    let mut k = Kernel::new(&config, &mut NoDevices).unwrap();
    let mut p = FakePlatform::new(4);
    k.start_all(&mut p).unwrap();
    (k, p)
}

fn sys(k: &mut Kernel, p: &mut FakePlatform, task: usize, nr: Sysnum, args: [u64; 6]) -> After {
    k.tasks[task].regs.rax = nr as u64;
    [
        k.tasks[task].regs.rdi,
        k.tasks[task].regs.rsi,
        k.tasks[task].regs.rdx,
        k.tasks[task].regs.r10,
        k.tasks[task].regs.r8,
        k.tasks[task].regs.r9,
    ] = args;
    k.syscall(p, task)
}

/// Status and the four result registers of `task`.
fn result(k: &Kernel, task: usize) -> (u64, [u64; 4]) {
    let r = &k.tasks[task].regs;
    (r.rax, [r.rdi, r.rsi, r.rdx, r.r10])
}

const BUF: u64 = USER_BASE + 0x1000;
const REQ: u64 = USER_BASE + 0x2000;
const REPLY: u64 = USER_BASE + 0x3000;

fn recv(k: &mut Kernel, p: &mut FakePlatform, mask: u64) -> After {
    sys(
        k,
        p,
        SERVER,
        Sysnum::Recv,
        [BUF, MAX_MESSAGE as u64, mask, 0, 0, 0],
    )
}

fn call(k: &mut Kernel, p: &mut FakePlatform, client: usize, msg: &[u8]) -> After {
    p.put(client, REQ, msg);
    sys(
        k,
        p,
        client,
        Sysnum::Call,
        [0, REQ, msg.len() as u64, REPLY, MAX_MESSAGE as u64, 0],
    )
}

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
    let report = k.fault(SERVER, fault);
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
    k.tasks[CLIENT].regs.rax = 20;
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
    assert!(!k.quiescent());
    for c in [CLIENT, CLIENT2] {
        sys(&mut k, &mut p, c, Sysnum::Exit, [0, 0, 0, 0, 0, 0]);
    }
    assert_eq!(k.schedule(false), None);
    assert!(k.quiescent());
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
