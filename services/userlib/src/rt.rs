//! Service start-up, panics, and deliberate faults.
//!
//! The kernel starts a service at its ELF entry (`_start`, which
//! [`crate::service_entry!`] defines) with `rsp` at the top of its stack and
//! every other register zero; `.bss` is already zero (the kernel maps
//! fresh zeroed pages beyond each segment's file size). Nothing else needs
//! setting up: no relocations (services are linked static at a fixed
//! address), no FPU/SSE state (the target is soft-float), no heap.
//! `_start` only realigns the stack and calls the service's `main`; if
//! `main` returns, the service exits with code 0.
//!
//! A panic logs `panicked at <file>:<line>: <message>` and exits with code
//! [`PANIC_EXIT_CODE`], which the supervisor treats like a fault.

/// Exit code of a service that panicked.
pub const PANIC_EXIT_CODE: u32 = 101;

/// Defines the service's entry point, calling `main` (`fn main()` or
/// `fn main() -> !`); returning from `main` exits with code 0.
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// userlib::service_entry!(main);
/// fn main() { userlib::log!("hello"); }
/// ```
#[macro_export]
macro_rules! service_entry {
    ($main:path) => {
        /// The ELF entry point. The kernel enters with `rsp` 16-byte
        /// aligned and no return address; `call` then gives main the
        /// alignment the C ABI promises at function entry (`rsp + 8`
        /// aligned). The `and` keeps that true even if a kernel hands over
        /// a less aligned stack, and `rbp = 0` ends frame-pointer walks.
        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        #[unsafe(naked)]
        #[allow(unsafe_code)]
        pub extern "C" fn _start() -> ! {
            ::core::arch::naked_asm!(
                "xor ebp, ebp",
                "and rsp, -16",
                "call {main}",
                "ud2",
                main = sym __faultline_service_main,
            )
        }

        #[cfg(target_os = "none")]
        #[allow(unreachable_code)]
        extern "C" fn __faultline_service_main() -> ! {
            $main();
            $crate::exit(0)
        }
    };
}

/// Logs the panic and exits with [`PANIC_EXIT_CODE`].
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    report_panic(info);
    crate::exit(PANIC_EXIT_CODE)
}

/// Formats and logs `panicked at <file>:<line>: <message>`.
pub fn report_panic(info: &core::panic::PanicInfo<'_>) {
    use core::fmt::Write;
    let mut line = crate::logging::Line::new();
    let _ = line.write_str("panicked at ");
    if let Some(loc) = info.location() {
        let _ = write!(line, "{}:{}: ", loc.file(), loc.line());
    }
    let _ = write!(line, "{}", info.message());
    let _ = crate::log(line.as_str());
}

/// Stops this service with a page fault by writing to `addr`, which must
/// not be mapped writable (address 0 never is: services are linked at
/// 0x400000 and page 0 is never mapped).
#[cfg(target_os = "none")]
pub fn fault_by_write(addr: u64) -> ! {
    // SAFETY: the address is not mapped writable here, so the store faults
    // before changing memory; the kernel stops this service and never
    // resumes it (a restart starts afresh), so no state is observed after.
    unsafe {
        core::arch::asm!("mov byte ptr [{0}], 0x42", in(reg) addr, options(nostack));
    }
    unreachable!("a write to {addr:#x} did not fault")
}

/// Stops this service with a page fault by reading `addr`, which must not
/// be mapped readable for user mode (a kernel address, for instance).
#[cfg(target_os = "none")]
pub fn fault_by_read(addr: u64) -> ! {
    let value: u64;
    // SAFETY: the load only reads and targets an address the kernel does
    // not map for user mode, so it faults; as in `fault_by_write`, the
    // service never resumes after the fault.
    unsafe {
        core::arch::asm!(
            "mov {0}, qword ptr [{1}]",
            out(reg) value,
            in(reg) addr,
            options(nostack, readonly),
        );
    }
    unreachable!("a read of {addr:#x} did not fault (read {value:#x})")
}
