//! The `syscall` entry and the way back to ring 3.
//!
//! `syscall` does not switch stacks, so the entry stub saves the user stack
//! pointer, moves to the kernel stack, and builds the same [`TrapFrame`] an
//! interrupt from ring 3 would (vector [`SYSCALL_VECTOR`], user selectors,
//! `rcx` as RIP and `r11` as RFLAGS). From there both paths are one:
//! `interrupts::dispatch` saves the frame into the running service, the
//! kernel acts, and the frame is overwritten with the registers of whichever
//! service runs next, then restored with `iretq`.
//!
//! Faultline runs on one CPU with interrupts disabled in the kernel, so the
//! scratch slot for the user stack pointer and the kernel stack top can be
//! plain statics; a multi-CPU kernel would reach them through `gs`.

use super::gdt;
use super::idt::TrapFrame;
use core::sync::atomic::{AtomicU64, Ordering};
use x86::msr::{IA32_EFER, IA32_FMASK, IA32_LSTAR, IA32_STAR, rdmsr, wrmsr};

/// The pseudo-vector a syscall's frame carries.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// Where the syscall stub puts the user RSP while it switches stacks.
#[unsafe(no_mangle)]
static SYSCALL_USER_RSP: AtomicU64 = AtomicU64::new(0);
/// Top of the kernel stack every entry from ring 3 starts on.
#[unsafe(no_mangle)]
static SYSCALL_KERNEL_RSP: AtomicU64 = AtomicU64::new(0);

core::arch::global_asm!(
    r#"
    .section .text.syscall, "ax"
    .global syscall_entry
syscall_entry:
    mov %rsp, SYSCALL_USER_RSP(%rip)
    mov SYSCALL_KERNEL_RSP(%rip), %rsp
    pushq ${user_ss}
    pushq SYSCALL_USER_RSP(%rip)
    push %r11
    pushq ${user_cs}
    push %rcx
    pushq $0
    pushq ${vector}
    jmp isr_common

    .global return_to_user
return_to_user:
    mov %rdi, %rsp
    jmp isr_restore
    .text
    "#,
    user_ss = const gdt::USER_SS.bits() as u64,
    user_cs = const gdt::USER_CS.bits() as u64,
    vector = const SYSCALL_VECTOR,
    options(att_syntax)
);

unsafe extern "C" {
    fn syscall_entry();
    fn return_to_user(frame: *const TrapFrame) -> !;
}

/// Enables `syscall`/`sysret` with the kernel stack at `kernel_stack_top`.
pub fn init(kernel_stack_top: u64) {
    SYSCALL_KERNEL_RSP.store(kernel_stack_top, Ordering::Relaxed);
    gdt::set_kernel_stack(kernel_stack_top);
    // SYSRET takes SS from base + 8 and CS from base + 16; the base carries
    // RPL 3 so both come out as ring-3 selectors whether or not the CPU ORs
    // the RPL in itself.
    let sysret_base = (u64::from(gdt::USER_SS.bits() & !3) - 8) | 3;
    let star = (u64::from(gdt::KERNEL_CS.bits()) << 32) | (sysret_base << 48);
    // STAR: kernel selectors, and the SYSRET base the GDT is laid out for;
    // LSTAR: the entry stub; FMASK: IF, DF, TF, AC cleared on entry.
    // SAFETY: these values configure `syscall` as the kernel expects.
    unsafe {
        wrmsr(IA32_STAR, star);
        wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
        wrmsr(IA32_FMASK, (1 << 9) | (1 << 10) | (1 << 8) | (1 << 18));
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) | 1);
    }
}

/// Whether `frame` is a page fault that a `syscall` left behind in ring 3.
///
/// Some hypervisors (seen with a nested KVM that emulates SYSCALL) move RIP
/// to LSTAR and apply FMASK but leave CS at the user selector, so the CPU
/// fetches the kernel's entry stub in ring 3 and page-faults there with
/// `rcx`/`r11` already holding the return RIP and RFLAGS. Such a fault can
/// only come from a `syscall` instruction, so the kernel treats it as one
/// (see [`recover_broken_syscall`]); on correct hardware it never happens.
pub fn is_broken_syscall(frame: &TrapFrame) -> bool {
    frame.vector == 14
        && frame.cs & 3 == 3
        && frame.rip == syscall_entry as *const () as u64
        && frame.error_code & 0x10 != 0
}

/// Rewrites a frame that [`is_broken_syscall`] recognised into the frame
/// the entry stub would have built.
pub fn recover_broken_syscall(frame: &mut TrapFrame) {
    frame.rip = frame.rcx;
    frame.rflags = frame.r11;
    frame.vector = SYSCALL_VECTOR;
    frame.error_code = 0;
}

/// Marks `frame` to return with `sysretq` instead of `iretq` when that is
/// safe: the service entered with a syscall (so `rcx` and `r11` are
/// clobbered by contract and may carry RIP and RFLAGS) and RIP is a
/// canonical lower-half address (SYSRET to a non-canonical RIP faults in
/// ring 0 on Intel CPUs).
pub fn mark_sysret(frame: &mut TrapFrame, entered_by_syscall: bool) {
    let canonical_user = frame.rip < 0x0000_7fff_ffff_f000;
    frame.vector = if entered_by_syscall && canonical_user {
        SYSCALL_VECTOR
    } else {
        0
    };
}

/// Enters ring 3 with the registers in `frame` (which must carry the user
/// code and stack selectors). The kernel stack is reset: everything on it
/// is abandoned.
pub fn enter_user(frame: &TrapFrame) -> ! {
    let top = SYSCALL_KERNEL_RSP.load(Ordering::Relaxed);
    let slot = (top - size_of::<TrapFrame>() as u64) as *mut TrapFrame;
    // SAFETY: the slot is the top of the kernel stack, unused once we leave
    // (this never returns); `return_to_user` restores exactly a TrapFrame
    // from it, whose ring-3 selectors make iretq drop to user mode.
    unsafe {
        slot.write(*frame);
        return_to_user(slot)
    }
}
