//! `faultline-rogue`: a hostile service. Capabilities are the only
//! authority; this service holds exactly one, `pong` (a client end to
//! `faultline-pong`), and tries everything else. Every attempt must be
//! refused with an error, and pong must keep answering (checked after each
//! group):
//!
//! - (a) make the kernel read kernel memory for it (pointer arguments into
//!   the kernel half) → `BadPointer`;
//! - (b) make the kernel write outside its memory (reply and receive
//!   buffers in the kernel, unmapped, or its own read-only text) →
//!   `BadPointer`; and scribble over its own data, which lives at the same
//!   virtual addresses as pong's (both are linked at 0x400000) yet never
//!   touches pong's;
//! - (c) MMIO, PCI, DMA, IRQ and supervisor calls on handles it does not
//!   hold → `WrongKind` (its one handle is a client end) or `BadHandle`;
//!   looking up other services' capability names → `NotFound`;
//! - (d) every system call but `Exit`, 16 times each, with garbage
//!   arguments, and numbers that name no call → errors or harmless
//!   successes, never a stop of anything;
//! - (e) `call`/`send`/`notify` on handles it does not hold → `BadHandle` /
//!   `WrongKind`; a forged reply token → `StaleToken`.
//!
//! - (1) RFLAGS.NT, AC and DF set across a blocking syscall and timer
//!   interrupts: the kernel clears them on entry and runs on;
//! - (8) forged kernel lines inside a log call (escaped, attributed) and a
//!   flood (dropped and counted beyond the console budget).
//!
//! Then it logs `rogue: all attempts refused` and dies on purpose with an
//! x87 instruction (10: no service may use floating point, so no register
//! state is ever shared; where a hypervisor runs it anyway, the kernel
//! switches the registers per service, which it checks, then dies with
//! `ud2`): the kernel stops it alone, and a supervisor with the default
//! `hold` policy holds it. If anything was not refused it logs
//! `rogue: UNEXPECTED ...` lines and exits with 1 instead.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod entry;
mod garbage;

use core::sync::atomic::{AtomicU64, Ordering};
use faultline_ipc::abi::{CapKind, Error, MAX_MESSAGE, NOTIFY_TIMER, Sysnum};
use faultline_ipc::channel::{Client, Handle, ReplyToken};
use faultline_ipc::protocol::Protocol;
use faultline_ipc::protocol::ping::{Ping, PingRequest, PingResponse};
use garbage::{Tally, XorShift};
use userlib::sys::syscall6;
use userlib::{
    KernelTransport, call, cap_lookup, check, dma_alloc, exit, irq_ack, irq_info, log, mmio_map,
    notify, pci_config_read, pci_config_write, reply, send, set_timer, task_restart, time,
};

userlib::service_entry!(main);

/// A kernel-half address (the kernel image).
const KERNEL: u64 = 0xffff_ffff_8010_0000;
/// Never mapped: page 1.
const UNMAPPED: u64 = 0x1000;

/// Our own data, scribbled over in (b).
static SCRATCH: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];

fn main() {
    let pong = match cap_lookup("pong") {
        Ok((h, CapKind::Client)) => h,
        other => {
            log!("rogue: no client capability `pong` ({other:?})");
            exit(1)
        }
    };
    let mut t = Tally::default();
    let mut seq = 0;
    kernel_reads(pong, &mut t);
    check_group(pong, &mut seq, &t, "(a) kernel read refused: bad pointer");
    writes_outside(pong, &mut t);
    check_group(
        pong,
        &mut seq,
        &t,
        "(b) kernel writes outside its memory refused: bad pointer",
    );
    scribble_own(pong, &mut seq);
    devices(pong, &mut t);
    check_group(
        pong,
        &mut seq,
        &t,
        "(c) devices and supervision without capabilities refused",
    );
    let mut d = Tally::default();
    garbage::every_syscall(&mut XorShift(0x9e37_79b9_7f4a_7c15), &mut d);
    d.log_codes("(d) garbage refusals:");
    let (calls, ok) = (d.calls, d.successes);
    log!(
        "rogue: (d) {calls} garbage syscalls: {} refused, {ok} harmless successes",
        d.refused()
    );
    t.unexpected += d.unexpected;
    check_group(pong, &mut seq, &t, "(d) garbage never stopped anything");
    foreign_handles(pong, &mut t);
    check_group(
        pong,
        &mut seq,
        &t,
        "(e) calls on handles it does not hold refused: bad handle",
    );
    let (status, flags) = entry::blocking_syscall_with_flags();
    if status != 0 || flags & (entry::NT | entry::AC) != 0 {
        log!("rogue: UNEXPECTED (1) recv with NT, AC, DF: status {status}, flags back {flags:#x}");
        t.unexpected += 1;
    }
    let flags = entry::interrupted_with_flags();
    log!("rogue: (1) spun with RFLAGS {flags:#x} (NT, AC, DF) through timer interrupts");
    check_group(
        pong,
        &mut seq,
        &t,
        "(1) NT, AC and DF set across a blocking syscall and interrupts: the kernel runs on",
    );
    entry::console_attacks();
    check_group(
        pong,
        &mut seq,
        &t,
        "(8) forged kernel lines escaped, flood held to the console budget",
    );
    log!("rogue: all attempts refused");
    entry::use_the_fpu(|| pong_answers(pong, &mut seq))
}

/// Raw call whose pointer arguments are never mapped writable for us
/// (kernel half, below 0x400000, our read-only text), or buffers of ours
/// the call only reads, or `scratch`, which it may write.
#[allow(unsafe_code)]
fn raw(nr: Sysnum, args: [u64; 6]) -> Result<[u64; 4], userlib::SysError> {
    // SAFETY: per the contract above, the kernel either refuses a write
    // through a pointer argument or writes into memory no Rust reference
    // is reading at the time (callers pass buffers they own exclusively).
    check(unsafe { syscall6(nr as u64, args) })
}

fn kernel_reads(pong: Handle, t: &mut Tally) {
    use Error::BadPointer;
    let r = raw(Sysnum::Log, [KERNEL, 16, 0, 0, 0, 0]);
    t.count(
        format_args!("(a) log from a kernel pointer"),
        r,
        &[BadPointer],
        false,
    );
    let r = raw(Sysnum::CapLookup, [KERNEL, 8, 0, 0, 0, 0]);
    t.count(
        format_args!("(a) cap_lookup from a kernel pointer"),
        r,
        &[BadPointer],
        false,
    );
    let mut reply_buf = [0u8; MAX_MESSAGE];
    let reply_at = reply_buf.as_mut_ptr() as u64;
    let r = raw(Sysnum::Call, [pong.0, KERNEL, 16, reply_at, 256, 0]);
    t.count(
        format_args!("(a) call with a kernel request"),
        r,
        &[BadPointer],
        false,
    );
    let r = raw(Sysnum::Send, [pong.0, KERNEL, 64, 0, 0, 0]);
    t.count(
        format_args!("(a) send from a kernel pointer"),
        r,
        &[BadPointer],
        false,
    );
}

fn writes_outside(pong: Handle, t: &mut Tally) {
    use Error::BadPointer;
    let request = ping_bytes(0);
    let text = (main as fn()) as usize as u64;
    for (what, buf) in [
        ("kernel", KERNEL),
        ("unmapped", UNMAPPED),
        ("read-only text", text),
    ] {
        let args = [
            pong.0,
            request.as_ptr() as u64,
            request.len() as u64,
            buf,
            256,
            0,
        ];
        let r = raw(Sysnum::Call, args);
        t.count(
            format_args!("(b) call replying into {what} memory"),
            r,
            &[BadPointer],
            false,
        );
    }
    // Recv into kernel memory; the timer guarantees a return even if the
    // kernel accepted (it must not).
    let _ = set_timer(time().ns + 10_000_000);
    let r = raw(
        Sysnum::Recv,
        [KERNEL, 256, u64::from(NOTIFY_TIMER), 0, 0, 0],
    );
    t.count(
        format_args!("(b) recv into kernel memory"),
        r,
        &[BadPointer],
        false,
    );
    let _ = set_timer(0);
    let r = raw(Sysnum::TaskStatus, [pong.0, 0, KERNEL, 256, 0, 0]);
    t.count(
        format_args!("(b) task_status into kernel memory"),
        r,
        &[Error::WrongKind],
        false,
    );
}

/// Writes all over our own data page. Pong's data sits at the same
/// virtual addresses in its own address space; pong keeps answering
/// correctly, so none of this reached it.
fn scribble_own(pong: Handle, seq: &mut u32) {
    for (i, word) in SCRATCH.iter().enumerate() {
        word.store(0xdead_beef_0000_0000 | i as u64, Ordering::Relaxed);
    }
    let at = SCRATCH.as_ptr() as u64;
    if !pong_answers(pong, seq) {
        exit(1)
    }
    log!(
        "rogue: (b) wrote 4096 bytes at {at:#x} in its own space; pong (same addresses, own space) unaffected"
    );
}

fn devices(pong: Handle, t: &mut Tally) {
    use Error::{BadHandle, NotFound, WrongKind};
    let not_held = Handle(7);
    t.count(
        format_args!("(c) mmio_map(pong)"),
        mmio_map(pong),
        &[WrongKind],
        false,
    );
    t.count(
        format_args!("(c) mmio_map(7)"),
        mmio_map(not_held),
        &[BadHandle],
        false,
    );
    let r = pci_config_read(pong, 0, 4);
    t.count(
        format_args!("(c) pci_config_read(pong)"),
        r,
        &[WrongKind],
        false,
    );
    let r = pci_config_read(not_held, 0, 4);
    t.count(
        format_args!("(c) pci_config_read(7)"),
        r,
        &[BadHandle],
        false,
    );
    let r = pci_config_write(Handle(1), 4, 2, 0x7);
    t.count(
        format_args!("(c) pci_config_write(1)"),
        r,
        &[BadHandle],
        false,
    );
    t.count(
        format_args!("(c) dma_alloc(pong)"),
        dma_alloc(pong, 4096),
        &[WrongKind],
        false,
    );
    t.count(
        format_args!("(c) irq_ack(pong)"),
        irq_ack(pong),
        &[WrongKind],
        false,
    );
    t.count(
        format_args!("(c) irq_info(2)"),
        irq_info(Handle(2)),
        &[BadHandle],
        false,
    );
    t.count(
        format_args!("(c) task_restart(pong)"),
        task_restart(pong, 1),
        &[WrongKind],
        false,
    );
    for name in ["edu", "edu-bar0", "supervisor", "rogue", "vtd", "dma"] {
        let r = cap_lookup(name);
        t.count(
            format_args!("(c) cap_lookup({name})"),
            r,
            &[NotFound],
            false,
        );
    }
}

fn foreign_handles(pong: Handle, t: &mut Tally) {
    use Error::{BadHandle, StaleToken, WrongKind};
    let request = ping_bytes(0);
    let mut reply_buf = [0u8; MAX_MESSAGE];
    for h in [1, 2, 23, 24, 1000, u64::MAX] {
        let r = call(Handle(h), &request, &mut reply_buf);
        t.count(format_args!("(e) call({h})"), r, &[BadHandle], false);
        let r = send(Handle(h), &request);
        t.count(format_args!("(e) send({h})"), r, &[BadHandle], false);
    }
    t.count(
        format_args!("(e) notify(pong)"),
        notify(pong),
        &[WrongKind],
        false,
    );
    t.count(
        format_args!("(e) notify(3)"),
        notify(Handle(3)),
        &[BadHandle],
        false,
    );
    let r = reply(ReplyToken::from_raw(0x1234_5678), &request);
    t.count(
        format_args!("(e) reply with a forged token"),
        r,
        &[StaleToken],
        false,
    );
}

/// A small ping message.
fn ping_bytes(seq: u32) -> heapless::Vec<u8, MAX_MESSAGE> {
    let request = PingRequest::Ping {
        seq,
        payload: heapless::Vec::from_slice(b"rogue").unwrap_or_default(),
    };
    let mut buf = [0u8; MAX_MESSAGE];
    let n = faultline_ipc::wire::encode(Ping::PROTOCOL, &request, &mut buf).unwrap_or(0);
    heapless::Vec::from_slice(&buf[..n]).unwrap_or_default()
}

/// Whether pong still echoes a ping.
fn pong_answers(pong: Handle, seq: &mut u32) -> bool {
    *seq += 1;
    let payload = heapless::Vec::from_slice(b"still there?").unwrap_or_default();
    let request = PingRequest::Ping { seq: *seq, payload };
    let answer = Client::<Ping, _>::new(KernelTransport, pong).call(&request);
    let ok = matches!(&answer, Ok(PingResponse::Pong { seq: s, payload })
        if *s == *seq && payload.as_slice() == b"still there?");
    if !ok {
        log!("rogue: UNEXPECTED pong did not answer: {answer:?}");
    }
    ok
}

/// Ends a group: pong must answer and nothing may have been unexpected.
fn check_group(pong: Handle, seq: &mut u32, t: &Tally, line: &str) {
    if t.unexpected > 0 || !pong_answers(pong, seq) {
        log!(
            "rogue: some attempts were NOT refused ({} unexpected)",
            t.unexpected
        );
        exit(1)
    }
    log!("rogue: {line}; pong still answers");
}
