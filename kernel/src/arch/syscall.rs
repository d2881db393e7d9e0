//! The `syscall` entry and the way back to ring 3.
//!
//! `syscall` does not switch stacks. The entry stub saves the service's
//! registers straight into its [`Regs`] (as Hubris and seL4 do: no frame on
//! the kernel stack to copy in and out), with `rcx` as RIP and `r11` as
//! RFLAGS (sanitised first), moves to the kernel stack and calls the
//! handler [`crate::services::SYSCALL_IN_PLACE`] names for the system call
//! number (past its end, [`crate::services::syscall_in_place`]). That
//! returns the [`Regs`] of whichever service runs next, which the stub
//! loads and resumes with `sysretq` (or `iretq` for a service last stopped
//! by an interrupt or fault, whose `rcx` and `r11` are live). Interrupts and faults from ring 3
//! take the IDT path: a [`TrapFrame`] on the kernel stack, saved into the
//! service by `interrupts::dispatch`.
//!
//! Until the first service runs there are no registers to save into, and
//! the stub builds the [`TrapFrame`] an interrupt from ring 3 would
//! (vector [`SYSCALL_VECTOR`]); the boot probe's system calls take that
//! path.
//!
//! Faultline runs on one CPU with interrupts disabled in the kernel, so the
//! scratch slot for the user stack pointer and the kernel stack top can be
//! plain statics; a multi-CPU kernel would reach them through `gs`.

use super::gdt;
use super::idt::TrapFrame;
use crate::kern::entry::{self, EntryFrame};
use crate::kern::task::Regs;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use x86::msr::{IA32_EFER, IA32_FMASK, IA32_LSTAR, IA32_STAR, rdmsr, wrmsr};

/// RFLAGS bits cleared on every `syscall` (IA32_FMASK): TF (8), IF (9),
/// DF (10), IOPL (12-13), NT (14), RF (16), AC (18), ID (21).
///
/// NT matters most: with NT set, the kernel's next `iretq` (to any
/// service) would be a task return, which raises #GP in long mode. DF and
/// AC would change how the kernel's string copies and user accesses behave.
/// Interrupt and exception entries clear TF, NT and RF in hardware; the
/// common stub clears DF and AC itself.
pub const ENTRY_FLAGS_CLEARED: u64 =
    (1 << 8) | (1 << 9) | (1 << 10) | (3 << 12) | (1 << 14) | (1 << 16) | (1 << 18) | (1 << 21);

/// The RFLAGS bits a service's own value keeps when the kernel saves it:
/// CF, PF, AF, ZF, SF, TF, DF and OF. IOPL, IF and the rest are the
/// kernel's ([`crate::kern::task::USER_RFLAGS`] sets IF and the reserved
/// bit 1).
pub const USER_FLAGS_KEPT: u64 = 0xcd5;

/// The pseudo-vector a syscall's frame carries.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// Where the syscall stub puts the user RSP while it switches stacks.
#[unsafe(no_mangle)]
static SYSCALL_USER_RSP: AtomicU64 = AtomicU64::new(0);
/// Top of the kernel stack every entry from ring 3 starts on.
#[unsafe(no_mangle)]
static SYSCALL_KERNEL_RSP: AtomicU64 = AtomicU64::new(0);

/// The end of the running service's saved registers ([`Regs`]), where the
/// entry stub saves them in place; 0 while no service runs (the boot probe
/// uses the frame path).
#[unsafe(no_mangle)]
static SYSCALL_SAVE_END: AtomicU64 = AtomicU64::new(0);

// Offsets the stub relies on: `Regs` is the saved-register area.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Regs, rax) == 0 && offset_of!(Regs, rbx) == 8);
    assert!(offset_of!(Regs, rcx) == 16 && offset_of!(Regs, rdx) == 24);
    assert!(offset_of!(Regs, rsi) == 32 && offset_of!(Regs, rdi) == 40);
    assert!(offset_of!(Regs, rbp) == 48 && offset_of!(Regs, r8) == 56);
    assert!(offset_of!(Regs, r9) == 64 && offset_of!(Regs, r10) == 72);
    assert!(offset_of!(Regs, r11) == 80 && offset_of!(Regs, r12) == 88);
    assert!(offset_of!(Regs, r13) == 96 && offset_of!(Regs, r14) == 104);
    assert!(offset_of!(Regs, r15) == 112 && offset_of!(Regs, rip) == 120);
    assert!(offset_of!(Regs, rsp) == 128 && offset_of!(Regs, rflags) == 136);
    assert!(size_of::<Regs>() == 144);
};

core::arch::global_asm!(
    r#"
    .section .text.syscall, "ax"
    .global syscall_entry
syscall_entry:
    mov %rsp, SYSCALL_USER_RSP(%rip)
    cmpq $0, SYSCALL_SAVE_END(%rip)
    je 3f
    /* Save the service's registers straight into its `Regs` (pushing
       down from the end: rflags, rsp, rip, r15 ... rax). */
    mov SYSCALL_SAVE_END(%rip), %rsp
    /* A service cannot set IOPL or clear IF for itself: sysret loads
       RFLAGS from r11 as it is. */
    and ${flags_kept}, %r11
    or ${flags_set}, %r11
    push %r11
    pushq SYSCALL_USER_RSP(%rip)
    push %rcx
    push %r15
    push %r14
    push %r13
    push %r12
    push %r11
    push %r10
    push %r9
    push %r8
    push %rbp
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %rbx
    push %rax
    /* FMASK cleared DF, AC, IF and TF: Rust code may run as it is. */
    mov SYSCALL_KERNEL_RSP(%rip), %rsp
    cmp ${table_len}, %rax
    jae 4f
    call *{table}(, %rax, 8)
5:
    /* rax: the `Regs` to resume; rdx: whether sysret may resume them. */
    test %rdx, %rdx
    jz 2f
    mov %rax, %rsp
    mov 8(%rsp), %rbx
    mov 24(%rsp), %rdx
    mov 32(%rsp), %rsi
    mov 40(%rsp), %rdi
    mov 48(%rsp), %rbp
    mov 56(%rsp), %r8
    mov 64(%rsp), %r9
    mov 72(%rsp), %r10
    mov 88(%rsp), %r12
    mov 96(%rsp), %r13
    mov 104(%rsp), %r14
    mov 112(%rsp), %r15
    mov 120(%rsp), %rcx     /* RIP */
    mov 136(%rsp), %r11     /* RFLAGS */
    mov 0(%rsp), %rax
    mov 128(%rsp), %rsp     /* user RSP; NMI and #MC run on IST stacks */
    sysretq
2:  /* Resume with iretq: every register exactly as saved. */
    pushq ${user_ss}
    pushq 128(%rax)
    pushq 136(%rax)
    pushq ${user_cs}
    pushq 120(%rax)
    mov 8(%rax), %rbx
    mov 16(%rax), %rcx
    mov 24(%rax), %rdx
    mov 32(%rax), %rsi
    mov 40(%rax), %rdi
    mov 48(%rax), %rbp
    mov 56(%rax), %r8
    mov 64(%rax), %r9
    mov 72(%rax), %r10
    mov 80(%rax), %r11
    mov 88(%rax), %r12
    mov 96(%rax), %r13
    mov 104(%rax), %r14
    mov 112(%rax), %r15
    mov 0(%rax), %rax
    iretq
4:  call {in_place}
    jmp 5b
3:  /* No service's registers to save into (the boot probe): build the
       frame an interrupt from ring 3 would. */
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
    flags_kept = const USER_FLAGS_KEPT,
    flags_set = const crate::kern::task::USER_RFLAGS,
    in_place = sym crate::services::syscall_in_place,
    table = sym crate::services::SYSCALL_IN_PLACE,
    table_len = const IN_PLACE_TABLE_LEN,
    options(att_syntax)
);

/// System calls below this number are dispatched by the entry stub
/// through `services::SYSCALL_IN_PLACE`; the rest (none valid) go to
/// `services::syscall_in_place`.
pub const IN_PLACE_TABLE_LEN: usize = 32;

/// What the in-place entry resumes: a service's saved registers, and
/// whether `sysretq` may resume them (else `iretq`). Returned in `rax` and
/// `rdx`.
#[repr(C)]
pub struct Resume {
    pub regs: *const Regs,
    pub sysret: u64,
}

/// Points the entry stub at the registers of the service about to run:
/// its next system call saves them there.
pub fn save_in_place(regs: *mut Regs) {
    SYSCALL_SAVE_END.store(regs as u64 + size_of::<Regs>() as u64, Ordering::Relaxed);
}

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
    // LSTAR: the entry stub; FMASK: every flag a service could set that
    // would change how kernel code runs (see [`ENTRY_FLAGS_CLEARED`]).
    // SAFETY: these values configure `syscall` as the kernel expects.
    unsafe {
        wrmsr(IA32_STAR, star);
        wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
        wrmsr(IA32_FMASK, ENTRY_FLAGS_CLEARED);
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) | 1);
    }
}

/// Set once the boot probe has seen this machine leave SYSCALL in ring 3.
static QUIRK_ARMED: AtomicBool = AtomicBool::new(false);

/// Handles SYSCALLs left in ring 3 from now on (the boot probe saw one).
pub fn arm_ring3_syscall_quirk() {
    QUIRK_ARMED.store(true, Ordering::Relaxed);
}

/// Whether the boot probe saw SYSCALL left in ring 3.
pub fn ring3_syscall_quirk() -> bool {
    QUIRK_ARMED.load(Ordering::Relaxed)
}

/// The address `syscall` jumps to (IA32_LSTAR).
pub fn entry_address() -> u64 {
    syscall_entry as *const () as u64
}

fn entry_frame(frame: &TrapFrame) -> EntryFrame {
    EntryFrame {
        vector: frame.vector,
        error_code: frame.error_code,
        rip: frame.rip,
        cs: frame.cs,
        rflags: frame.rflags,
    }
}

/// Whether `frame` is a page fault that a `syscall` left behind in ring 3
/// on a machine the boot probe showed has the quirk (see
/// [`crate::kern::entry`]); on correct hardware it never is.
pub fn is_broken_syscall(frame: &TrapFrame) -> bool {
    entry::classify(&entry_frame(frame), entry_address(), ring3_syscall_quirk())
        == entry::EntryFault::BrokenSyscall
}

/// Whether the boot probe's entry `frame` shows the quirk.
pub fn probe_shows_quirk(frame: &TrapFrame) -> bool {
    entry::probe_shows_quirk(&entry_frame(frame), entry_address())
}

/// Rewrites a frame that [`is_broken_syscall`] recognised into the frame
/// the entry stub would have built. The return RIP is the service's `rcx`,
/// unchecked here: every return to ring 3 checks it.
pub fn recover_broken_syscall(frame: &mut TrapFrame) {
    frame.rip = frame.rcx;
    frame.rflags = frame.r11;
    frame.vector = SYSCALL_VECTOR;
    frame.error_code = 0;
}

/// Marks `frame` to return with `sysretq` instead of `iretq` when that is
/// safe: the service entered with a syscall (so `rcx` and `r11` are
/// clobbered by contract and may carry RIP and RFLAGS) and RIP is a
/// canonical lower-half address clear of the canonical hole (SYSRET to a
/// non-canonical RIP faults in ring 0 on Intel CPUs).
pub fn mark_sysret(frame: &mut TrapFrame, entered_by_syscall: bool) {
    frame.vector = if entered_by_syscall && entry::sysret_safe(frame.rip) {
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
