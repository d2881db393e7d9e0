//! The fast path's cases one by one: the common ones it must take, the
//! uncertain ones it must leave alone, and refusal edges the property test
//! (`fastpath`) reaches too rarely to rely on.

use super::fastpath::{A, Arg, B, Ptr, Step, Token, compare, run, snapshot, system};
use super::*;

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
    load(&mut k, A, Sysnum::Recv, [buf, 256, 0xff, 0, 0, 0]);
    assert_eq!(k.fastpath(&mut p, A), None);
    k.syscall(&mut p, A);
    assert_eq!(k.schedule(false), Some(B));
    for round in 0..3u8 {
        p.put(B, req, &[round, 1, 2, 3, 4]);
        load(&mut k, B, Sysnum::Call, [0, req, 5, reply, 256, 0]);
        assert_eq!(k.fastpath(&mut p, B), Some(A), "call, round {round}");
        let (status, [kind, len, badge, token]) = result(&k, A);
        assert_eq!(
            (status, kind, len, badge),
            (0, RecvKind::Call as u64, 5, 11)
        );
        assert_eq!(p.get(A, buf, 5), [round, 1, 2, 3, 4]);
        p.put(A, req, &[round, 9]);
        load(
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
    load(&mut k, B, Sysnum::NotifyWait, [1, 1, 0, 0, 0, 0]);
    assert_eq!(k.fastpath(&mut p, B), Some(A));
    assert_eq!(result(&k, A), (0, [RecvKind::Notification as u64, 4, 0, 0]));
    load(&mut k, A, Sysnum::NotifyRecv, [2, buf, 256, 0xff, 0, 0]);
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

/// Only a message queued for the service about to receive keeps a receive
/// off the fast path: one queued for another server does not (the queue
/// scan moves past it), and one queued for the receiver itself does (the
/// general path delivers it at once).
#[test]
fn only_the_receivers_own_queue_keeps_it_off_the_fast_path() {
    use Arg::{Ptr as P, Val as V};
    let (v0, buf, req, reply) = (
        V(0),
        P(Ptr::At(0x1000)),
        P(Ptr::At(0x2000)),
        P(Ptr::At(0x2800)),
    );
    // a (1) waits for bit 4; c (2) calls a, which is not receiving: queued.
    // b (3) wakes a and receives: c's call is not b's to take.
    let others = [
        Step::Sys(Sysnum::Wait, [V(4), v0, v0, v0, v0, v0]),
        Step::Sys(Sysnum::Call, [v0, req, V(5), reply, V(256), v0]),
        Step::Sys(Sysnum::NotifyRecv, [V(1), buf, V(256), V(0xff), v0, v0]),
    ];
    assert_eq!(compare([1, 3, 2, 4], &others).unwrap(), 1);
    // a (1) waits for bits 0x14, b (2) for bit 1; c (3) calls a: queued.
    // d (4) wakes a, which wakes b and receives: c's call is a's own.
    let own = [
        Step::Sys(Sysnum::Wait, [V(0x14), v0, v0, v0, v0, v0]),
        Step::Sys(Sysnum::Wait, [V(1), v0, v0, v0, v0, v0]),
        Step::Sys(Sysnum::Call, [v0, req, V(5), reply, V(256), v0]),
        Step::Sys(Sysnum::Notify, [v0, v0, v0, v0, v0, v0]),
        Step::Sys(Sysnum::NotifyRecv, [V(2), buf, V(256), V(0xff), v0, v0]),
    ];
    let (mut k, mut p) = system([1, 2, 3, 4]);
    k.schedule(false);
    for (i, &s) in own.iter().enumerate() {
        let fast = run(&mut k, &mut p, s, true);
        assert!(!fast, "step {i} took the fast path");
    }
    // The general path handed a c's call and woke b.
    let (status, [kind, len, badge, _]) = result(&k, A);
    assert_eq!(
        (status, kind, len, badge),
        (0, RecvKind::Call as u64, 5, 22)
    );
    assert_eq!(result(&k, B), (0, [1, 0, 0, 0]));
    assert_eq!(compare([1, 2, 3, 4], &own).unwrap(), 0);
}

/// Where the outcome is not certain, the fast path leaves it to the general
/// path and changes nothing.
#[test]
fn uncertain_cases_are_left_to_the_general_path() {
    let (mut k, mut p) = system([1, 2, 2, 3]);
    let buf = USER_BASE + 0x1000;
    k.schedule(false);
    load(&mut k, A, Sysnum::Recv, [buf, 16, 0xff, 0, 0, 0]);
    k.syscall(&mut p, A);
    k.schedule(false);
    let unchanged = |k: &mut Kernel, p: &mut FakePlatform, nr: Sysnum, args: [u64; 6]| {
        load(k, B, nr, args);
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
