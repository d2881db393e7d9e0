//! The fast path has no semantics of its own: every system call, in every
//! reachable state, must leave the kernel exactly as the general path plus
//! a scheduler pass would. Two kernels run the same random system; one
//! tries the fast path first, the other never does, and after each step
//! the whole state of both (every task, the scheduler, every byte of
//! service memory, every log line) must be the same.

use super::*;

pub(super) const A: usize = 0;
pub(super) const B: usize = 1;
pub(super) const C: usize = 2;

/// A server `a` (channels 0 from `b` and 1 from `c`) that can notify `b`
/// and `c`, two clients that can notify it, and a bystander `d` that
/// notifies `a` (two bits at once: 0x10, which the masks the tests use
/// wait for, and 0x100, which they do not) and `b`; priorities as given.
pub(super) fn system(prio: [u8; 4]) -> (Kernel, FakePlatform) {
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
pub(super) enum Ptr {
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
pub(super) enum Token {
    Received,
    Tampered(u8),
    Garbage(u64),
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
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
pub(super) enum Arg {
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

pub(super) fn step() -> impl Strategy<Value = Step> {
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
pub(super) fn snapshot(k: &Kernel, p: &FakePlatform) -> String {
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
pub(super) fn run(k: &mut Kernel, p: &mut FakePlatform, s: Step, fast: bool) -> bool {
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
            load(k, cur, nr, args);
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
pub(super) fn compare(prio: [u8; 4], steps: &[Step]) -> Result<usize, TestCaseError> {
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

pub(super) fn priorities() -> impl Strategy<Value = [u8; 4]> {
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
