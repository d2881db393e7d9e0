//! The fast path has no semantics of its own: every system call, in every
//! reachable state, must leave the kernel exactly as the general path plus
//! a scheduler pass would. Two kernels run the same random system; one
//! tries the fast path first, the other never does, and after each step
//! the whole state of both (every task, the scheduler, every byte of
//! service memory, every log line) must be the same.

use super::*;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// A server `a` (channels 0 from `b` and 1 from `c`) that can notify `b`
/// and `c`, two clients that can notify it, and a bystander `d` that
/// notifies `a` (two bits at once: 0x10, which the masks the tests use
/// wait for, and 0x100, which they do not) and `b`; priorities as given.
fn system(prio: [u8; 4]) -> (Kernel, FakePlatform) {
    let n = |name, target, bits| cap(name, CapSpec::Notification { target, bits });
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "fast".try_into().unwrap(),
        services: [
            service(
                "a",
                prio[0],
                &[
                    cap(
                        "b",
                        CapSpec::Server {
                            channel: 0,
                            badge: 11,
                        },
                    ),
                    cap(
                        "c",
                        CapSpec::Server {
                            channel: 1,
                            badge: 22,
                        },
                    ),
                    n("wake-b", 1, 1),
                    n("wake-c", 2, 2),
                ],
            ),
            service(
                "b",
                prio[1],
                &[cap("a", CapSpec::Client { channel: 0 }), n("wake-a", 0, 4)],
            ),
            service(
                "c",
                prio[2],
                &[cap("a", CapSpec::Client { channel: 1 }), n("wake-a", 0, 8)],
            ),
            service("d", prio[3], &[n("wake-a", 0, 0x110), n("wake-b", 1, 1)]),
        ]
        .into_iter()
        .collect(),
        channels: [
            ChannelConfig {
                name: "ab".try_into().unwrap(),
                client: B as u8,
                server: A as u8,
            },
            ChannelConfig {
                name: "ac".try_into().unwrap(),
                client: C as u8,
                server: A as u8,
            },
        ]
        .into_iter()
        .collect(),
    };
    let mut k = Kernel::new(&config, &mut NoDevices).unwrap();
    let mut p = FakePlatform::new(4);
    k.start_all(&mut p).unwrap();
    for t in 0..4 {
        let fill: Vec<u8> = (0..USER_SIZE).map(|i| (i * 7 + t * 13) as u8).collect();
        p.put(t, USER_BASE, &fill);
    }
    (k, p)
}

/// A pointer argument: in the service's memory at some offset, or not
/// mapped at all.
#[derive(Clone, Copy, Debug)]
enum Ptr {
    At(u16),
    Bad,
}

impl Ptr {
    fn raw(self) -> u64 {
        match self {
            Ptr::At(off) => USER_BASE + u64::from(off) % (USER_SIZE as u64 - 0x200),
            Ptr::Bad => 0xffff_8000_0000_0000,
        }
    }
}

/// A reply token: the last one the caller received (in its `r10`), that
/// one tampered with, or garbage.
#[derive(Clone, Copy, Debug)]
enum Token {
    Received,
    Tampered(u8),
    Garbage(u64),
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// The running service makes a system call.
    Sys(Sysnum, [Arg; 6]),
    /// Something outside posts notification bits (an interrupt, a timer).
    Post(usize, u32),
    /// The running service does what its role suggests ([`in_role`]).
    InRole(u8),
    /// The running service faults.
    Fault,
    Restart(usize),
}

#[derive(Clone, Copy, Debug)]
enum Arg {
    Val(u64),
    Ptr(Ptr),
    Token(Token),
}

fn arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        3 => (0u64..6).prop_map(Arg::Val),
        1 => prop_oneof![Just(64u64), Just(256), Just(300), Just(0xffff_ffff)].prop_map(Arg::Val),
        3 => (0u16..0x3000).prop_map(|o| Arg::Ptr(Ptr::At(o))),
        1 => Just(Arg::Ptr(Ptr::Bad)),
        2 => Just(Arg::Token(Token::Received)),
        1 => (0u8..64).prop_map(|b| Arg::Token(Token::Tampered(b))),
        1 => any::<u64>().prop_map(|g| Arg::Token(Token::Garbage(g))),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let nr = prop_oneof![
        4 => Just(Sysnum::Call),
        4 => Just(Sysnum::ReplyRecv),
        3 => Just(Sysnum::NotifyWait),
        3 => Just(Sysnum::NotifyRecv),
        2 => Just(Sysnum::Recv),
        1 => Just(Sysnum::Reply),
        1 => Just(Sysnum::Notify),
        1 => Just(Sysnum::Wait),
        1 => Just(Sysnum::Send),
        1 => Just(Sysnum::Yield),
    ];
    prop_oneof![
        10 => (nr, [arg(), arg(), arg(), arg(), arg(), arg()]).prop_map(|(n, a)| Step::Sys(n, a)),
        20 => well_formed(),
        30 => any::<u8>().prop_map(Step::InRole),
        2 => (0usize..4, 1u32..32).prop_map(|(t, b)| Step::Post(t, b)),
        1 => Just(Step::Fault),
        1 => (0usize..4).prop_map(Step::Restart),
    ]
}

/// A system call a correct service would make: a handle it holds, its
/// own buffers, a token it received.
fn well_formed() -> impl Strategy<Value = Step> {
    use Arg::{Ptr as P, Token as T, Val as V};
    let len = prop_oneof![Just(0u64), Just(5), Just(64), Just(256), Just(257)];
    let cap = prop_oneof![3 => Just(256u64), 1 => Just(8), 1 => Just(0)];
    let mask = prop_oneof![Just(0u64), Just(0xff), Just(4), Just(0xffff_ffff)];
    let (buf, req, reply) = (P(Ptr::At(0x1000)), P(Ptr::At(0x2000)), P(Ptr::At(0x2800)));
    prop_oneof![
        (0u64..2, len.clone(), cap.clone()).prop_map(move |(h, l, c)| {
            Step::Sys(Sysnum::Call, [V(h), req, V(l), reply, V(c), V(0)])
        }),
        (len, cap.clone(), mask.clone()).prop_map(move |(l, c, m)| {
            let args = [T(Token::Received), req, V(l), buf, V(c), V(m)];
            Step::Sys(Sysnum::ReplyRecv, args)
        }),
        (0u64..4, mask.clone()).prop_map(|(h, m)| {
            Step::Sys(Sysnum::NotifyWait, [V(h), V(m), V(0), V(0), V(0), V(0)])
        }),
        (0u64..4, cap.clone(), mask.clone()).prop_map(move |(h, c, m)| {
            Step::Sys(Sysnum::NotifyRecv, [V(h), buf, V(c), V(m), V(0), V(0)])
        }),
        (cap, mask).prop_map(move |(c, m)| {
            Step::Sys(Sysnum::Recv, [buf, V(c), V(m), V(0), V(0), V(0)])
        }),
    ]
}

/// What the running service's role suggests: a client calls or notifies
/// and waits, the server answers and receives (`pick` chooses among them).
fn in_role(caller: usize, pick: u8) -> Step {
    use Arg::{Ptr as P, Token as T, Val as V};
    let (buf, req, reply) = (P(Ptr::At(0x1000)), P(Ptr::At(0x2000)), P(Ptr::At(0x2800)));
    let len = V([0, 5, 64, 256][usize::from(pick >> 4) % 4]);
    let (v0, all) = (V(0), V(0xffff_ffff));
    match (caller, pick % 4) {
        (A, 0 | 1) => Step::Sys(
            Sysnum::ReplyRecv,
            [T(Token::Received), req, len, buf, V(256), all],
        ),
        (A, 2) => Step::Sys(
            Sysnum::NotifyRecv,
            [V(2 + u64::from(pick >> 7)), buf, V(256), all, v0, v0],
        ),
        (A, _) => Step::Sys(Sysnum::Recv, [buf, V(256), all, v0, v0, v0]),
        (B | C, 0 | 1) => Step::Sys(Sysnum::Call, [v0, req, len, reply, V(256), v0]),
        (_, _) => Step::Sys(
            Sysnum::NotifyWait,
            [V(u64::from(pick >> 7)), V(0xff), v0, v0, v0, v0],
        ),
    }
}

/// The arguments a step's symbolic ones stand for in `caller`'s state.
fn resolve(k: &Kernel, caller: usize, args: [Arg; 6]) -> [u64; 6] {
    let received = k.tasks[caller].regs.r10;
    args.map(|a| match a {
        Arg::Val(v) => v,
        Arg::Ptr(p) => p.raw(),
        Arg::Token(Token::Received) => received,
        Arg::Token(Token::Tampered(bit)) => received ^ (1 << bit),
        Arg::Token(Token::Garbage(g)) => g,
    })
}

/// Everything the kernel and the platform hold that a service could ever
/// observe, plus the scheduler's own state (service memory is compared
/// apart, as bytes).
fn snapshot(k: &Kernel, p: &FakePlatform) -> String {
    let tasks: Vec<String> = k
        .tasks
        .iter()
        .map(|t| {
            format!(
                "{:?} {:?} gen {} restarts {} notif {:#x} timer {:?} outbox_len {} seq {} refusals {} caps {:?}",
                t.state,
                t.regs,
                t.generation,
                t.restarts,
                t.notifications,
                t.timer,
                t.outbox_len,
                t.call_seq,
                t.refusals,
                t.caps
            )
        })
        .collect();
    format!(
        "{tasks:#?}\ncurrent {:?} stamp {} last_run {}\nlogs {:?}",
        k.current, k.stamp, k.last_run, p.logs
    )
}

/// Runs one step on a kernel; `fast` tries the fast path first. Returns
/// whether the fast path took it.
fn run(k: &mut Kernel, p: &mut FakePlatform, s: Step, fast: bool) -> bool {
    let Some(cur) = k.current.filter(|&c| k.tasks[c].state == State::Runnable) else {
        return false;
    };
    let s = match s {
        Step::InRole(pick) => in_role(cur, pick),
        s => s,
    };
    match s {
        Step::InRole(_) => unreachable!("resolved above"),
        Step::Sys(nr, args) => {
            let args = resolve(k, cur, args);
            let r = &mut k.tasks[cur].regs;
            r.rax = nr as u64;
            [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
            if fast && let Some(next) = k.fastpath(p, cur) {
                assert_eq!(k.current, Some(next));
                return true;
            }
            let rotate = k.syscall(p, cur) == After::Yield;
            k.schedule(rotate);
        }
        Step::Post(t, bits) => {
            k.post(t, bits);
            k.schedule(false);
        }
        Step::Fault => {
            let fault = TaskFault {
                vector: 13,
                error_code: 0,
                address: 0,
                rip: 0x40_0000,
            };
            k.fault(p, cur, fault);
            k.schedule(false);
        }
        Step::Restart(t) => {
            if k.tasks[t].state.is_stopped() {
                let _ = k.restart(p, t);
            }
            k.schedule(false);
        }
    }
    false
}

/// Runs `steps` on both kernels, comparing after each; returns how many
/// the fast path took.
fn compare(prio: [u8; 4], steps: &[Step]) -> Result<usize, TestCaseError> {
    let (mut fast, mut pf) = system(prio);
    let (mut slow, mut ps) = system(prio);
    fast.schedule(false);
    slow.schedule(false);
    let mut taken = 0;
    for &s in steps {
        // A fresh start if everything blocked: post every service a bit.
        if fast
            .current
            .is_none_or(|c| fast.tasks[c].state != State::Runnable)
        {
            for t in 0..4 {
                fast.post(t, 0xffff_ffff);
                slow.post(t, 0xffff_ffff);
            }
            fast.schedule(false);
            slow.schedule(false);
        }
        taken += usize::from(run(&mut fast, &mut pf, s, true));
        run(&mut slow, &mut ps, s, false);
        prop_assert_eq!(snapshot(&fast, &pf), snapshot(&slow, &ps), "after {:?}", s);
        prop_assert!(pf.mem == ps.mem, "service memory differs after {:?}", s);
        prop_assert!(
            fast.masks_agree() && slow.masks_agree(),
            "runnable/queued masks stale after {:?}",
            s
        );
    }
    Ok(taken)
}

fn priorities() -> impl Strategy<Value = [u8; 4]> {
    [1u8..4, 1u8..4, 1u8..4, 1u8..4]
}

proptest! {
    // `FASTPATH_CASES` sets fewer cases for quicker runs (mutation
    // testing); `random_systems_reach_the_fast_path` keeps its fixed 200.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("FASTPATH_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
    ))]

    #[test]
    fn the_fast_path_changes_nothing_but_speed(
        prio in priorities(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        compare(prio, &steps)?;
    }
}

/// The property above is not vacuous: its random systems take the fast
/// path hundreds of times (about 3% of all steps; most are refusals, ties
/// and other calls, which exercise the fast path's refusals instead).
#[test]
fn random_systems_reach_the_fast_path() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut taken, mut total) = (0, 0);
    for _ in 0..200 {
        let prio = priorities().new_tree(&mut runner).unwrap().current();
        let steps = proptest::collection::vec(step(), 60)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        taken += compare(prio, &steps).unwrap();
        total += steps.len();
    }
    assert!(
        taken >= 200,
        "fast path taken {taken} times in {total} steps"
    );
}

/// The bench's loop: a call to a more important server waiting in `recv`,
/// answered with `ReplyRecv`, and the notification round trip, all on the
/// fast path, with the results the general path gives.
#[test]
fn the_common_cases_take_the_fast_path() {
    let (mut k, mut p) = system([1, 2, 3, 3]);
    let buf = USER_BASE + 0x1000;
    let (req, reply) = (USER_BASE + 0x2000, USER_BASE + 0x3000);
    // a waits in recv (general path: nothing to deliver yet).
    k.schedule(false);
    assert_eq!(k.current, Some(A));
    let set = |k: &mut Kernel, t: usize, nr: Sysnum, args: [u64; 6]| {
        let r = &mut k.tasks[t].regs;
        r.rax = nr as u64;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
    };
    set(&mut k, A, Sysnum::Recv, [buf, 256, 0xff, 0, 0, 0]);
    assert_eq!(k.fastpath(&mut p, A), None);
    k.syscall(&mut p, A);
    assert_eq!(k.schedule(false), Some(B));
    for round in 0..3u8 {
        p.put(B, req, &[round, 1, 2, 3, 4]);
        set(&mut k, B, Sysnum::Call, [0, req, 5, reply, 256, 0]);
        assert_eq!(k.fastpath(&mut p, B), Some(A), "call, round {round}");
        let (status, [kind, len, badge, token]) = result(&k, A);
        assert_eq!(
            (status, kind, len, badge),
            (0, RecvKind::Call as u64, 5, 11)
        );
        assert_eq!(p.get(A, buf, 5), [round, 1, 2, 3, 4]);
        p.put(A, req, &[round, 9]);
        set(
            &mut k,
            A,
            Sysnum::ReplyRecv,
            [token, req, 2, buf, 256, 0xff],
        );
        assert_eq!(k.fastpath(&mut p, A), Some(B), "reply, round {round}");
        assert_eq!(result(&k, B), (0, [2, 0, 0, 0]));
        assert_eq!(p.get(B, reply, 2), [round, 9]);
        // The token was single-use.
        assert!(k.pending_call(A, token).is_err());
    }
    // Notification round trip: b wakes a (in recv), a wakes b (in wait).
    set(&mut k, B, Sysnum::NotifyWait, [1, 1, 0, 0, 0, 0]);
    assert_eq!(k.fastpath(&mut p, B), Some(A));
    assert_eq!(result(&k, A), (0, [RecvKind::Notification as u64, 4, 0, 0]));
    set(&mut k, A, Sysnum::NotifyRecv, [2, buf, 256, 0xff, 0, 0]);
    assert_eq!(k.fastpath(&mut p, A), Some(B));
    assert_eq!(result(&k, B), (0, [1, 0, 0, 0]));
    assert_eq!(
        k.tasks[A].state,
        State::Blocked(task::Blocked::Recv {
            hint: hint(A, buf),
            buf,
            cap: 256,
            mask: 0xff
        })
    );
}

/// A message that exactly fills the buffer it goes into is not truncated:
/// a request as long as the server's buffer and a reply as long as the
/// client's both take the fast path, with the general path's results.
#[test]
fn a_message_that_exactly_fills_its_buffer_is_fast() {
    use Arg::{Ptr as P, Token as T, Val as V};
    let (buf, req, reply) = (P(Ptr::At(0x1000)), P(Ptr::At(0x2000)), P(Ptr::At(0x2800)));
    let steps = [
        // a waits for requests of at most 16 bytes.
        Step::Sys(Sysnum::Recv, [buf, V(16), V(0xff), V(0), V(0), V(0)]),
        // b asks 16 bytes, with room for an 8-byte answer.
        Step::Sys(Sysnum::Call, [V(0), req, V(16), reply, V(8), V(0)]),
        // a answers 8 bytes and waits again.
        Step::Sys(
            Sysnum::ReplyRecv,
            [T(Token::Received), req, V(8), buf, V(16), V(0xff)],
        ),
    ];
    assert_eq!(compare([1, 2, 3, 3], &steps).unwrap(), 2);
}

/// The caller blocks, so its own priority does not count against the
/// service it wakes: a client more important than its server still calls
/// it on the fast path, and is answered on it.
#[test]
fn a_more_important_caller_does_not_keep_the_fast_path_away() {
    use Arg::{Ptr as P, Token as T, Val as V};
    let (buf, req, reply) = (P(Ptr::At(0x1000)), P(Ptr::At(0x2000)), P(Ptr::At(0x2800)));
    let v0 = V(0);
    let steps = [
        // b (priority 1) runs first and waits; then a (2) waits in recv.
        Step::Sys(Sysnum::Wait, [V(1), v0, v0, v0, v0, v0]),
        Step::Sys(Sysnum::Recv, [buf, V(256), V(0xff), v0, v0, v0]),
        // b is woken, and calls a; c and d (3) are runnable.
        Step::Post(B, 1),
        Step::Sys(Sysnum::Call, [v0, req, V(5), reply, V(256), v0]),
        Step::Sys(
            Sysnum::ReplyRecv,
            [T(Token::Received), req, V(2), buf, V(256), V(0xff)],
        ),
    ];
    assert_eq!(compare([2, 1, 3, 3], &steps).unwrap(), 2);
}

/// A notification that wakes its target delivers only the bits the target
/// waits for; the others it carries stay pending, with those already
/// pending, exactly as the general path leaves them.
#[test]
fn bits_a_woken_target_does_not_wait_for_stay_pending() {
    use Arg::{Ptr as P, Val as V};
    let v0 = V(0);
    let steps = [
        // a waits in recv for bits 0..7; bit 8 arrives and stays pending.
        Step::Sys(
            Sysnum::Recv,
            [P(Ptr::At(0x1000)), V(256), V(0xff), v0, v0, v0],
        ),
        Step::Post(A, 0x100),
        // d sends bits 0x110: a gets 0x10, and 0x100 is still pending.
        Step::Sys(Sysnum::NotifyWait, [v0, V(1), v0, v0, v0, v0]),
    ];
    let (mut k, mut p) = system([1, 3, 3, 2]);
    k.schedule(false);
    for &s in &steps {
        run(&mut k, &mut p, s, true);
    }
    assert_eq!(
        result(&k, A),
        (0, [RecvKind::Notification as u64, 0x10, 0, 0])
    );
    assert_eq!(k.tasks[A].notifications, 0x100);
    assert_eq!(compare([1, 3, 3, 2], &steps).unwrap(), 1);
}

/// Where the outcome is not certain, the fast path leaves it to the general
/// path and changes nothing.
#[test]
fn uncertain_cases_are_left_to_the_general_path() {
    let (mut k, mut p) = system([1, 2, 2, 3]);
    let buf = USER_BASE + 0x1000;
    k.schedule(false);
    let set = |k: &mut Kernel, t: usize, nr: Sysnum, args: [u64; 6]| {
        let r = &mut k.tasks[t].regs;
        r.rax = nr as u64;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
    };
    set(&mut k, A, Sysnum::Recv, [buf, 16, 0xff, 0, 0, 0]);
    k.syscall(&mut p, A);
    k.schedule(false);
    let unchanged = |k: &mut Kernel, p: &mut FakePlatform, nr: Sysnum, args: [u64; 6]| {
        set(k, B, nr, args);
        let before = (snapshot(k, p), p.mem.clone());
        assert_eq!(k.fastpath(p, B), None, "{nr:?} {args:x?}");
        assert_eq!((snapshot(k, p), p.mem.clone()), before);
    };
    // A message longer than the server's buffer (truncation).
    unchanged(
        &mut k,
        &mut p,
        Sysnum::Call,
        [0, USER_BASE, 17, USER_BASE, 256, 0],
    );
    // A bad request pointer, a bad reply buffer, a bad handle.
    unchanged(
        &mut k,
        &mut p,
        Sysnum::Call,
        [0, 0xdead_0000, 4, USER_BASE, 256, 0],
    );
    unchanged(
        &mut k,
        &mut p,
        Sysnum::Call,
        [0, USER_BASE, 4, 0xdead_0000, 256, 0],
    );
    unchanged(
        &mut k,
        &mut p,
        Sysnum::Call,
        [1, USER_BASE, 4, USER_BASE, 256, 0],
    );
    // c is as important as b and runnable: a tie the scheduler settles.
    k.tasks[A].priority = 2;
    unchanged(
        &mut k,
        &mut p,
        Sysnum::Call,
        [0, USER_BASE, 4, USER_BASE, 256, 0],
    );
    k.tasks[A].priority = 1;
    // A server less important than something else runnable.
    k.tasks[A].priority = 3;
    unchanged(
        &mut k,
        &mut p,
        Sysnum::Call,
        [0, USER_BASE, 4, USER_BASE, 256, 0],
    );
    k.tasks[A].priority = 1;
    // Other system calls are never fast.
    unchanged(&mut k, &mut p, Sysnum::Send, [0, USER_BASE, 4, 0, 0, 0]);
}

/// A platform that keeps [`Platform`]'s default `writable`, `copy_between`
/// and `stage` (the fake platform overrides the first two), for a
/// platform without hints or direct copies; everything else is the fake
/// platform's.
struct Plain(FakePlatform);

impl Platform for Plain {
    fn read_user(&mut self, task: usize, ptr: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.0.read_user(task, ptr, buf)
    }
    fn write_user(&mut self, task: usize, ptr: u64, data: &[u8]) -> Result<(), Error> {
        self.0.write_user(task, ptr, data)
    }
    fn check_writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<(), Error> {
        self.0.check_writable(task, ptr, len)
    }
    fn now_ns(&self) -> u64 {
        self.0.now_ns()
    }
    fn tsc(&self) -> (u64, u64) {
        self.0.tsc()
    }
    fn log(&mut self, task: Option<usize>, name: &str, line: &[u8]) {
        self.0.log(task, name, line)
    }
    fn map_mmio(
        &mut self,
        task: usize,
        base: u64,
        len: u64,
        hole: Option<(u64, u64)>,
    ) -> Result<u64, Error> {
        self.0.map_mmio(task, base, len, hole)
    }
    fn alloc_dma(&mut self, task: usize, bytes: u64) -> Result<(u64, u64), Error> {
        self.0.alloc_dma(task, bytes)
    }
    fn pci_read(&mut self, bdf: (u8, u8, u8), offset: u16, width: u8) -> u32 {
        self.0.pci_read(bdf, offset, width)
    }
    fn pci_write(&mut self, bdf: (u8, u8, u8), offset: u16, width: u8, value: u32) {
        self.0.pci_write(bdf, offset, width, value)
    }
    fn irq_msi(&self, irq: u8) -> (u64, u32) {
        self.0.irq_msi(irq)
    }
    fn irq_unmask(&mut self, irq: u8) {
        self.0.irq_unmask(irq)
    }
    fn irq_rearm(&mut self, irq: u8) {
        self.0.irq_rearm(irq)
    }
    fn quiesce(&mut self, task: usize, bdf: (u8, u8, u8)) {
        self.0.quiesce(task, bdf)
    }
    fn load(&mut self, task: usize) -> Result<Regs, Error> {
        self.0.load(task)
    }
    fn dma_keep(&mut self, task: usize, vaddr: u64, bytes: u64) {
        self.0.dma_keep(task, vaddr, bytes)
    }
    fn dma_free(&mut self, paddr: u64) {
        self.0.dma_free(paddr)
    }
    fn bus_master_off(&mut self, bdf: (u8, u8, u8)) {
        self.0.bus_master_off(bdf)
    }
    fn irq_route(&self, irq: u8) -> Result<IrqRouteInfo, Error> {
        self.0.irq_route(irq)
    }
    fn vtd_unit_of(&self, bdf: (u8, u8, u8)) -> Option<u8> {
        self.0.vtd_unit_of(bdf)
    }
    fn vtd_info(&self, unit: u8) -> Option<(u8, u16, bool)> {
        self.0.vtd_info(unit)
    }
    fn irq_remap(&mut self, irq: u8, irte: Option<u16>) -> Result<(), Error> {
        self.0.irq_remap(irq, irte)
    }
}

/// Without hints of its own, a platform's `writable` is its
/// `check_writable` with hint 0, and `copy_between` reads the source and
/// writes the destination through a bounce buffer of at most
/// `MAX_MESSAGE` bytes, refusing (and writing nothing) when either side is
/// not mapped.
#[test]
fn default_writable_and_copy_between_check_then_copy() {
    let mut p = Plain(FakePlatform::new(2));
    let (src, dst) = (USER_BASE + 0x100, USER_BASE + 0x200);
    let bad = 0xdead_0000;
    assert_eq!(p.writable(A, dst, 16), Ok(0));
    assert_eq!(p.writable(A, bad, 16), Err(Error::BadPointer));
    assert_eq!(
        p.writable(A, USER_BASE, USER_SIZE as u64 + 1),
        Err(Error::BadPointer)
    );

    p.0.put(B, src, b"hello");
    assert_eq!(p.copy_between(B, src, A, dst, 0, 5), Ok(()));
    assert_eq!(p.0.get(A, dst, 5), b"hello");
    let before = p.0.mem.clone();
    assert_eq!(p.copy_between(B, bad, A, dst, 0, 5), Err(Error::BadPointer));
    assert_eq!(p.copy_between(B, src, A, bad, 0, 5), Err(Error::BadPointer));
    assert_eq!(
        p.copy_between(B, src, A, dst, 0, MAX_MESSAGE + 1),
        Err(Error::BadLength)
    );
    assert!(p.0.mem == before, "a refused copy wrote something");
}
