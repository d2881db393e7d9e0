//! The IDT: one entry-stub per vector, all funnelling into
//! [`interrupts::dispatch`](super::interrupts).
//!
//! The stubs are generated in assembly, 16 bytes apart, so entry `v` lives at
//! `isr_stub_table + 16 * v`. Each pushes a zero error code for vectors where
//! the CPU pushes none (keeping one frame layout), then the vector number,
//! saves the general registers and calls the Rust dispatcher with a pointer
//! to the resulting [`TrapFrame`].

use super::gdt;
use hermit_sync::InterruptSpinMutex;
use x86::Ring;
use x86::bits64::segmentation::Descriptor64;
use x86::dtables::{DescriptorTablePointer, lidt};
use x86::segmentation::{BuildDescriptor, DescriptorBuilder, GateDescriptorBuilder};

/// The registers saved on every kernel entry through the IDT, in stack
/// order (lowest address first).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

core::arch::global_asm!(
    r#"
    .section .text.isr, "ax"
    .balign 16
    .global isr_stub_table
    .global isr_common
isr_stub_table:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
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
    mov %rsp, %rdi
    /* No flag a service set survives into Rust code: the CPU cleared TF,
       NT and RF (and IF: interrupt gates); DF is cleared here, and AC
       (which would switch SMAP off) through the stack. Not with CLAC:
       nested hypervisors that emulate instructions (seen with KVM without
       EPT) fail on it, and POPF clears AC on every CPU, SMAP or not. */
    cld
    pushfq
    andq $~(1 << 18), (%rsp)
    popfq
    call {dispatch}
    .global isr_restore
isr_restore:
    pop %rax
    pop %rbx
    pop %rcx
    pop %rdx
    pop %rsi
    pop %rdi
    pop %rbp
    pop %r8
    pop %r9
    pop %r10
    pop %r11
    pop %r12
    pop %r13
    pop %r14
    pop %r15
    /* A frame marked with the syscall vector returns with sysretq (the
       flags this compare sets are replaced by the return either way). */
    cmpq ${sysret_mark}, (%rsp)
    je 1f
    add $16, %rsp
    iretq
1:  mov 16(%rsp), %rcx      /* RIP */
    mov 32(%rsp), %r11      /* RFLAGS */
    mov 40(%rsp), %rsp      /* user RSP; NMI and #MC run on IST stacks */
    sysretq
    .text
    "#,
    dispatch = sym super::interrupts::dispatch,
    sysret_mark = const super::syscall::SYSCALL_VECTOR,
    options(att_syntax)
);

unsafe extern "C" {
    static isr_stub_table: [u8; 256 * 16];
}

#[repr(C, align(16))]
struct Idt([Descriptor64; 256]);

static IDT: InterruptSpinMutex<Idt> = InterruptSpinMutex::new(Idt([Descriptor64::NULL; 256]));

/// Fills and loads the IDT. Every vector gets an interrupt gate (interrupts
/// stay disabled inside the kernel); double fault, NMI and machine check run
/// on their own IST stacks.
pub fn init() {
    let stubs = &raw const isr_stub_table as u64;
    let mut idt = IDT.lock();
    for (vector, entry) in idt.0.iter_mut().enumerate() {
        let ist = match vector {
            2 => gdt::IST_NMI,
            8 => gdt::IST_DOUBLE_FAULT,
            18 => gdt::IST_MACHINE_CHECK,
            _ => 0,
        };
        // Breakpoint may later be raised from ring 3 on purpose; nothing
        // else may be invoked with `int` from user mode.
        let dpl = if vector == 3 {
            Ring::Ring3
        } else {
            Ring::Ring0
        };
        *entry = <DescriptorBuilder as GateDescriptorBuilder<u64>>::interrupt_descriptor(
            gdt::KERNEL_CS,
            stubs + 16 * vector as u64,
        )
        .present()
        .dpl(dpl)
        .ist(ist)
        .finish();
    }
    let pointer = DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: &*idt as *const Idt,
    };
    // SAFETY: the IDT is a static and every gate points at a stub above that
    // saves state and calls the dispatcher.
    unsafe { lidt(&pointer) };
}
