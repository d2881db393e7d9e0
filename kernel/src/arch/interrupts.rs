//! Where every IDT entry lands: exceptions are reported, the LAPIC timer
//! ticks, anything else is logged as unexpected.
//!
//! An exception in the kernel is a kernel bug, so it ends the run: the report
//! names the vector, decodes the error code, and prints RIP, CR2 and every
//! register, then the machine exits with [`ExitCode::Exception`]. A second
//! exception while reporting the first prints one line and exits at once.

use super::apic;
use super::exit::exit;
use super::idt::TrapFrame;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use faultline_ipc::harness::ExitCode;

/// The vector the LAPIC timer is programmed with.
pub const TIMER_VECTOR: u8 = 0x40;
/// The LAPIC spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;

static TICKS: AtomicU64 = AtomicU64::new(0);
static REPORTING: AtomicBool = AtomicBool::new(false);

/// LAPIC timer interrupts taken since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

const EXCEPTIONS: [(&str, &str); 32] = [
    ("#DE", "divide error"),
    ("#DB", "debug"),
    ("NMI", "non-maskable interrupt"),
    ("#BP", "breakpoint"),
    ("#OF", "overflow"),
    ("#BR", "bound range exceeded"),
    ("#UD", "invalid opcode"),
    ("#NM", "device not available"),
    ("#DF", "double fault"),
    ("#CSO", "coprocessor segment overrun"),
    ("#TS", "invalid TSS"),
    ("#NP", "segment not present"),
    ("#SS", "stack-segment fault"),
    ("#GP", "general protection"),
    ("#PF", "page fault"),
    ("#15", "reserved"),
    ("#MF", "x87 floating-point error"),
    ("#AC", "alignment check"),
    ("#MC", "machine check"),
    ("#XM", "SIMD floating-point"),
    ("#VE", "virtualization exception"),
    ("#CP", "control protection"),
    ("#22", "reserved"),
    ("#23", "reserved"),
    ("#24", "reserved"),
    ("#25", "reserved"),
    ("#26", "reserved"),
    ("#27", "reserved"),
    ("#HV", "hypervisor injection"),
    ("#VC", "VMM communication"),
    ("#SX", "security exception"),
    ("#31", "reserved"),
];

/// The mnemonic and name of exception `vector` (< 32).
pub fn exception_name(vector: u8) -> (&'static str, &'static str) {
    EXCEPTIONS[usize::from(vector & 31)]
}

/// NMIs taken since boot. An NMI is never a fault of whoever was running:
/// it is counted here (the handler runs on its own stack and takes no
/// lock) and reported by the scheduler as a kernel line.
static NMIS: AtomicU64 = AtomicU64::new(0);

/// NMIs taken since boot.
pub fn nmis() -> u64 {
    NMIS.load(Ordering::Relaxed)
}

/// The NMI vector.
pub const NMI_VECTOR: u64 = 2;

/// Called by the IDT stubs with interrupts disabled.
pub(super) extern "C" fn dispatch(frame: &mut TrapFrame) {
    if frame.vector == NMI_VECTOR {
        // In ring 0 or ring 3 alike: counted, then back to exactly where
        // the CPU was (the frame is untouched, so `iretq` resumes it).
        NMIS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if frame.cs & 3 == 3 {
        return crate::services::user_entry(frame);
    }
    match frame.vector as u8 {
        v if v < 32 => kernel_exception(frame),
        v if crate::services::is_irq_vector(v) => crate::services::irq_fired(v),
        TIMER_VECTOR => {
            TICKS.fetch_add(1, Ordering::Relaxed);
            apic::eoi();
        }
        SPURIOUS_VECTOR => {}
        v => {
            log::warn!("unexpected interrupt vector {v:#x}");
            apic::eoi();
        }
    }
}

fn kernel_exception(frame: &TrapFrame) -> ! {
    let vector = frame.vector as u8;
    let (mnemonic, name) = exception_name(vector);
    if REPORTING.swap(true, Ordering::SeqCst) {
        crate::console::emergency_line(format_args!(
            "EXCEPTION {mnemonic} while reporting an exception, RIP {:#018x}",
            frame.rip
        ));
        exit(ExitCode::Exception);
    }
    // SAFETY: reading CR2 and CR3 has no side effects.
    let (cr2, cr3) = unsafe { (x86::controlregs::cr2() as u64, x86::controlregs::cr3()) };
    crate::console::report(|out| {
        let _ = writeln!(
            out,
            "EXCEPTION {mnemonic} {name} (vector {vector}) in the kernel"
        );
        let _ = write!(out, "  error code {:#x}", frame.error_code);
        if vector == 14 {
            let e = frame.error_code;
            let _ = write!(
                out,
                " [{} {} {}{}{}]",
                if e & 1 != 0 {
                    "protection"
                } else {
                    "not-present"
                },
                if e & 2 != 0 { "write" } else { "read" },
                if e & 4 != 0 { "user" } else { "supervisor" },
                if e & 8 != 0 { " reserved-bit" } else { "" },
                if e & 16 != 0 {
                    " instruction-fetch"
                } else {
                    ""
                },
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  RIP {:#018x}  CS {:#06x}  RFLAGS {:#010x}",
            frame.rip, frame.cs, frame.rflags
        );
        let _ = writeln!(out, "  RSP {:#018x}  SS {:#06x}", frame.rsp, frame.ss);
        let _ = writeln!(out, "  CR2 {cr2:#018x}  CR3 {cr3:#018x}");
        let regs = [
            ("RAX", frame.rax),
            ("RBX", frame.rbx),
            ("RCX", frame.rcx),
            ("RDX", frame.rdx),
            ("RSI", frame.rsi),
            ("RDI", frame.rdi),
            ("RBP", frame.rbp),
            ("R8 ", frame.r8),
            ("R9 ", frame.r9),
            ("R10", frame.r10),
            ("R11", frame.r11),
            ("R12", frame.r12),
            ("R13", frame.r13),
            ("R14", frame.r14),
            ("R15", frame.r15),
        ];
        for row in regs.chunks(3) {
            let _ = write!(out, " ");
            for (n, v) in row {
                let _ = write!(out, " {n} {v:#018x}");
            }
            let _ = writeln!(out);
        }
    });
    exit(ExitCode::Exception)
}
