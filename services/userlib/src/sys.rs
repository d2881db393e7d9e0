//! The raw system call: the only place a service executes `syscall`.
//!
//! Register convention (see [`faultline_ipc::abi`]): number in `rax`,
//! arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`; on return `rax` is
//! the status and `rdi`, `rsi`, `rdx`, `r10` the results. `rcx` and `r11`
//! are clobbered by the instruction; the kernel preserves everything else.
//!
//! On the host (unit tests, `cargo clippy` of the workspace) there is no
//! kernel: [`syscall6`] answers every call with `BadSyscall`.

/// `rax`, `rdi`, `rsi`, `rdx`, `r10` after a system call.
pub type RawResult = [u64; 5];

/// Issues system call `nr` with six raw arguments.
///
/// This is how the rogue service hands the kernel garbage on purpose; every
/// other caller goes through the typed wrappers at the crate root.
///
/// # Safety
///
/// The kernel writes through some arguments (`Recv`'s and `Call`'s
/// buffers, `TaskStatus`'s buffer). Every pointer the call writes through
/// must either be refused by the kernel (not mapped writable for this
/// service: kernel addresses, unmapped ranges) or point to memory the
/// caller owns exclusively for the duration of the call, with room for
/// what the call may write. Calls that only read memory (`Log`, `Send`,
/// `CapLookup`, ...) and calls without pointers have no requirement.
#[cfg(target_os = "none")]
pub unsafe fn syscall6(nr: u64, args: [u64; 6]) -> RawResult {
    let (rax, rdi, rsi, rdx, r10);
    // The kernel preserves all but the five outputs and rcx/r11 (declared
    // clobbered) and never touches our stack.
    // SAFETY: it writes our memory only through pointer arguments, which the
    // caller guarantees are refused or exclusively ours (the contract above).
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => rax,
            inlateout("rdi") args[0] => rdi,
            inlateout("rsi") args[1] => rsi,
            inlateout("rdx") args[2] => rdx,
            inlateout("r10") args[3] => r10,
            in("r8") args[4],
            in("r9") args[5],
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    [rax, rdi, rsi, rdx, r10]
}

/// Host stand-in: there is no kernel, so every call is refused.
///
/// # Safety
///
/// None needed on the host; the signature matches the bare-metal one.
#[cfg(not(target_os = "none"))]
pub unsafe fn syscall6(nr: u64, args: [u64; 6]) -> RawResult {
    let _ = (nr, args);
    [faultline_ipc::abi::Error::BadSyscall as u64, 0, 0, 0, 0]
}

/// Issues a system call whose pointer arguments the kernel only reads (or
/// that has none).
pub(crate) fn read_only(nr: faultline_ipc::abi::Sysnum, args: [u64; 6]) -> RawResult {
    // SAFETY: callers pass only calls that do not write through pointers
    // (checked by review of each use in `syscalls.rs`).
    unsafe { syscall6(nr as u64, args) }
}
