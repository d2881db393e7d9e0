//! The PVH entry point: 32-bit protected mode to 64-bit long mode.
//!
//! QEMU (and any PVH loader) enters at `pvh_start32` with paging off, a flat
//! 32-bit code segment, `EBX` pointing at the `hvm_start_info` structure, an
//! unusable IDT, no TSS and a firmware stack we must not trust. This code
//! needs no stack at all until long mode. It
//!
//! 1. reads the TSC first, so the boot report can say how long boot took;
//! 2. loads its own GDT;
//! 3. checks the CPU has long mode and NX, and otherwise prints why on COM1
//!    and exits through `isa-debug-exit` with the failure status;
//! 4. builds the early page tables: the low 4 GiB identity-mapped (so the
//!    loader's `start_info` can be read), the same 4 GiB at the kernel's
//!    physical-map window, and the first GiB at the top-2-GiB kernel window
//!    the image is linked for (2 MiB pages, but 4 KiB pages for the first
//!    2 MiB, whose MTRR memory types are mixed);
//! 5. turns on PAE, long mode, NX and write protection, enables paging, and
//!    far-jumps into 64-bit code, which zeroes the kernel `.bss`, switches to
//!    the boot stack and calls `faultline_entry64(start_info, entry_tsc)`.
//!
//! The kernel replaces these tables with its own as soon as it can; they only
//! have to be correct, not fine-grained. The ELF note that names the entry is
//! emitted here too, in `.note.pvh`, which the linker script places in a
//! `PT_NOTE` segment with 4-byte alignment (QEMU reads the descriptor at an
//! offset aligned to the segment's `p_align`).

use crate::pvh::{PhysRead, StartInfoError};

/// Size of the stack `faultline_entry64` starts on.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

core::arch::global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4              /* namesz: "Xen\0" */
    .long 4              /* descsz */
    .long 18             /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start32

    .section .boot.data, "aw"
    .balign 8
    .global boot_entry_tsc
boot_entry_tsc:
    .quad 0
boot_start_info:
    .quad 0
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff   /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff   /* 0x10: flat data */
    .quad 0x00cf9a000000ffff   /* 0x18: flat 32-bit code */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
boot_no_lm_msg:
    .ascii "Faultline: this CPU has no long mode or no NX; cannot boot\r\n\0"

    .section .boot.bss, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt_low:
    .skip 4096
boot_pdpt_high:
    .skip 4096
boot_pd:
    .skip 4096 * 4
boot_pt_low:
    .skip 4096

    .section .boot.text, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %edi                 /* keep start_info; rdtsc clobbers edx */
    rdtsc
    mov %eax, boot_entry_tsc
    mov %edx, boot_entry_tsc + 4
    mov %edi, boot_start_info

    lgdt boot_gdt_ptr
    ljmp $0x18, $1f
1:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs

    /* Long mode (CPUID 0x80000001 EDX bit 29) and NX (bit 20). */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb boot_no_long_mode
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz boot_no_long_mode
    test $(1 << 20), %edx
    jz boot_no_long_mode

    /* 2 MiB pages for the low 4 GiB: boot_pd[i] = i << 21 | P | RW | PS. */
    mov $boot_pd, %edi
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, (%edi, %ecx, 8)
    movl $0, 4(%edi, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    /* The first 2 MiB in 4 KiB pages: the fixed-range MTRRs make part of it
       uncached (the legacy VGA window), and a 2 MiB page spanning several
       memory types may be treated as uncached as a whole, which would run
       the kernel image from uncached memory. */
    mov $boot_pt_low, %edi
    xor %ecx, %ecx
8:  mov %ecx, %eax
    shl $12, %eax
    or $0x03, %eax
    mov %eax, (%edi, %ecx, 8)
    movl $0, 4(%edi, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jne 8b
    movl $boot_pt_low + 3, boot_pd

    /* boot_pdpt_low[k] -> boot_pd + k * 4 KiB, for the four GiB. */
    mov $boot_pdpt_low, %edi
    mov $boot_pd + 3, %eax
    mov %eax, 0(%edi)
    add $4096, %eax
    mov %eax, 8(%edi)
    add $4096, %eax
    mov %eax, 16(%edi)
    add $4096, %eax
    mov %eax, 24(%edi)

    /* The top 2 GiB window: boot_pdpt_high[510] -> first GiB. */
    mov $boot_pdpt_high, %edi
    movl $boot_pd + 3, 510 * 8(%edi)

    /* PML4: [0] identity, [256] physical-map window, [511] kernel window. */
    mov $boot_pml4, %edi
    movl $boot_pdpt_low + 3, 0(%edi)
    movl $boot_pdpt_low + 3, 256 * 8(%edi)
    movl $boot_pdpt_high + 3, 511 * 8(%edi)

    mov %cr4, %eax
    or $(1 << 5), %eax             /* PAE */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx          /* IA32_EFER */
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax   /* LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16)), %eax  /* PG | WP */
    mov %eax, %cr0
    ljmp $0x08, $boot_long_mode

boot_no_long_mode:
    mov $boot_no_lm_msg, %esi
3:  movb (%esi), %al
    test %al, %al
    jz 5f
    mov $0x3fd, %dx                /* COM1 line status */
4:  inb %dx, %al
    test $0x20, %al
    jz 4b
    movb (%esi), %al
    mov $0x3f8, %dx
    outb %al, %dx
    inc %esi
    jmp 3b
5:  mov $0xf4, %dx                 /* isa-debug-exit */
    mov ${fail}, %eax
    outl %eax, %dx
6:  hlt
    jmp 6b

    .code64
boot_long_mode:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs

    movabs $__bss_start, %rdi
    movabs $__bss_end, %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb

    movabs $boot_stack_top, %rsp
    xor %ebp, %ebp
    mov boot_start_info, %edi
    mov boot_entry_tsc, %rsi
    movabs $faultline_entry64, %rax
    call *%rax
7:  hlt
    jmp 7b

    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
boot_stack_bottom:
    .skip {stack_size}
boot_stack_top:
    .text
    "#,
    fail = const faultline_ipc::harness::ExitCode::BootFailure as u32,
    stack_size = const BOOT_STACK_SIZE,
    options(att_syntax)
);

/// Reads physical memory through the boot identity map of the low 4 GiB.
///
/// Valid only until the kernel switches to its own page tables; the kernel
/// uses it to copy `start_info` out of low memory first thing.
pub struct IdentityMapped;

impl PhysRead for IdentityMapped {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), StartInfoError> {
        let end = paddr
            .checked_add(buf.len() as u64)
            .ok_or(StartInfoError::Unreadable { paddr })?;
        if paddr == 0 || end > 1 << 32 {
            return Err(StartInfoError::Unreadable { paddr });
        }
        // SAFETY: the boot page tables identity-map [0, 4 GiB) with present,
        // readable 2 MiB pages, the range was checked to lie inside it and to
        // exclude the null address, and `buf` is a distinct Rust buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(paddr as *const u8, buf.as_mut_ptr(), buf.len());
        }
        Ok(())
    }
}

/// Defines the kernel's 64-bit entry point, which the boot code calls as
/// `faultline_entry64(start_info_paddr, entry_tsc)` on the boot stack.
///
/// The function named must have type `fn(u64, u64) -> !`.
#[macro_export]
macro_rules! entry_point {
    ($path:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn faultline_entry64(start_info_paddr: u64, entry_tsc: u64) -> ! {
            let entry: fn(u64, u64) -> ! = $path;
            entry(start_info_paddr, entry_tsc)
        }
    };
}
