//! Attacks on the kernel's entry and exit paths that need no capability:
//!
//! - (1) RFLAGS: NT, AC and DF set while making a blocking syscall (the
//!   kernel then resumes other services with `iretq`, which faults in ring
//!   0 if NT survived into the kernel), and while a timer interrupt
//!   arrives (DF set in the kernel would run its copies backwards);
//! - (8) the console: a line with embedded newlines and control
//!   characters that imitates kernel lines, then a flood far beyond the
//!   per-service budget;
//! - (10) floating point, as the last act: an x87 instruction, which
//!   faults (no FPU or SSE state is ever switched between services).

use faultline_ipc::abi::{NOTIFY_TIMER, Sysnum};
use userlib::{log, set_timer, sleep_ms, time};

/// RFLAGS bits: DF, NT, AC.
pub const DF: u64 = 1 << 10;
pub const NT: u64 = 1 << 14;
pub const AC: u64 = 1 << 18;
const HOSTILE: u64 = DF | NT | AC;

/// (1): a blocking `recv` with NT, AC and DF set; returns its status and
/// the flags this service had when the kernel resumed it.
#[allow(unsafe_code)]
pub fn blocking_syscall_with_flags() -> (u64, u64) {
    let mut buf = [0u8; 16];
    let _ = set_timer(time().ns + 5_000_000);
    let status: u64;
    let flags: u64;
    // Flags are set and cleared inside the block, around one `recv`;
    // `syscall` clobbers rcx and r11 and returns in rdi, rsi, rdx, r10.
    // SAFETY: `buf` is ours, 16 bytes as the call says; every register
    // the call touches is declared; DF is clear again before Rust runs.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "or qword ptr [rsp], {hostile}",
            "popfq",
            "syscall",
            "pushfq",
            "pop {flags}",
            "pushfq",
            "and qword ptr [rsp], {keep}",
            "popfq",
            hostile = in(reg) HOSTILE,
            keep = in(reg) !HOSTILE,
            flags = out(reg) flags,
            inout("rax") Sysnum::Recv as u64 => status,
            inout("rdi") buf.as_mut_ptr() as u64 => _,
            inout("rsi") buf.len() as u64 => _,
            inout("rdx") u64::from(NOTIFY_TIMER) => _,
            out("r10") _,
            out("rcx") _,
            out("r11") _,
        );
    }
    let _ = set_timer(0);
    (status, flags)
}

/// (1): spins with NT, AC and DF set until at least one timer interrupt
/// has entered the kernel (30 ms, three scheduling quanta); returns the
/// flags it still had.
#[allow(unsafe_code)]
pub fn interrupted_with_flags() -> u64 {
    let t = time();
    let until = t.tsc + t.tsc_hz / 1000 * 30;
    let flags: u64;
    // SAFETY: flags are set and restored inside the block; the loop only
    // reads the TSC (rdtsc is allowed in ring 3) and touches no memory.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "or qword ptr [rsp], {hostile}",
            "popfq",
            "2:",
            "rdtsc",
            "shl rdx, 32",
            "or rax, rdx",
            "cmp rax, {until}",
            "jb 2b",
            "pushfq",
            "pop {flags}",
            "pushfq",
            "and qword ptr [rsp], {keep}",
            "popfq",
            hostile = in(reg) HOSTILE,
            keep = in(reg) !HOSTILE,
            until = in(reg) until,
            flags = out(reg) flags,
            out("rax") _,
            out("rdx") _,
        );
    }
    flags
}

/// (8): kernel lines forged inside one log call, then a flood far beyond
/// the console budget (the kernel drops and counts what does not fit).
pub fn console_attacks() {
    let _ = userlib::log(
        "rogue: (8) forged lines follow\nfaultline: shutdown\nEXCEPTION #GP general protection (vector 13) in the kernel\r\x1b[2J",
    );
    let line = [b'x'; 200];
    let text = core::str::from_utf8(&line).unwrap_or("");
    for _ in 0..200 {
        let _ = userlib::log(text);
    }
    // Let the budget refill before the next lines that matter.
    let _ = sleep_ms(400);
    log!("rogue: (8) flooded the console with 200 lines of 200 bytes");
}

/// (10): an x87 instruction. The kernel keeps CR0.EM set, so it raises
/// #NM and this service stops. On a hypervisor that runs it anyway (the
/// kernel's boot probe finds out and then switches floating-point registers
/// per service instead), the value loaded must survive a call to pong,
/// during which other services run; then this service stops itself with
/// `ud2`. Never returns.
#[allow(unsafe_code)]
pub fn use_the_fpu(still_there: impl FnOnce() -> bool) -> ! {
    // SAFETY: `fld1` either faults (#NM) before doing anything, and the
    // kernel stops this service, or pushes 1.0 on the x87 stack, which no
    // Rust code here uses (the service is soft-float).
    unsafe { core::arch::asm!("fld1", options(nostack, nomem)) };
    let answered = still_there();
    let mut bits = 0u64;
    // SAFETY: stores the x87 top of stack into `bits`, ours and 8 bytes.
    unsafe {
        core::arch::asm!("fstp qword ptr [{}]", in(reg) &mut bits as *mut u64, options(nostack))
    };
    if answered && bits == 1.0f64.to_bits() {
        log!(
            "rogue: (10) x87 code ran here (this hypervisor ignores CR0.EM); its registers were its own across a call to pong"
        );
    } else {
        log!("rogue: UNEXPECTED x87 state after a call to pong: {bits:#x}");
        userlib::exit(1)
    }
    // SAFETY: `ud2` raises #UD; the kernel stops this service there.
    unsafe { core::arch::asm!("ud2", options(noreturn, nostack, nomem)) }
}
