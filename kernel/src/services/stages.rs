//! The instrumented build's breakdown of the IPC fast path (kernel feature
//! `ipc-stages`, built by `cargo xtask bench` alongside the plain one).
//!
//! Each fast-path system call reads the TSC at the kernel's first Rust
//! instruction and at the end of each [`Stage`]; when the run ends the kernel
//! prints, per system call, the mean of each stage as a `BENCH` line:
//!
//! ```text
//! BENCH {"name":"ipc_stage","syscall":"call","stage":"checks","unit":"cycles","mean":..,"count":..}
//! ```
//!
//! Under `-icount` a TSC tick is one instruction, so the figures count
//! instructions exactly, each including the one `rdtsc` that closes it (and
//! its store). The entry and exit stubs are straight-line assembly outside
//! these marks (see `arch::syscall`). Without the feature every function
//! here is empty and compiles to nothing.

use crate::kern::fastpath::Stage;

#[cfg(feature = "ipc-stages")]
mod on {
    use super::Stage;
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use faultline_ipc::abi::Sysnum;

    const KINDS: [Sysnum; 4] = [
        Sysnum::Call,
        Sysnum::ReplyRecv,
        Sysnum::NotifyWait,
        Sysnum::NotifyRecv,
    ];
    const STAGES: usize = Stage::ALL.len();

    static LAST: AtomicU64 = AtomicU64::new(0);
    /// This entry's stages so far (kept only if the fast path took it).
    static PENDING: [AtomicU64; STAGES] = [const { AtomicU64::new(0) }; STAGES];
    static SUMS: [[AtomicU64; STAGES]; KINDS.len()] =
        [const { [const { AtomicU64::new(0) }; STAGES] }; KINDS.len()];
    static COUNTS: [AtomicU64; KINDS.len()] = [const { AtomicU64::new(0) }; KINDS.len()];

    pub fn begin() {
        for p in &PENDING {
            p.store(0, Relaxed);
        }
        LAST.store(crate::arch::tsc::read(), Relaxed);
    }

    pub fn mark(stage: Stage) {
        let now = crate::arch::tsc::read();
        let last = LAST.swap(now, Relaxed);
        PENDING[stage as usize].fetch_add(now.wrapping_sub(last), Relaxed);
    }

    pub fn end(nr: u64) {
        mark(Stage::Exit);
        let Some(k) = KINDS.iter().position(|s| *s as u64 == nr) else {
            return;
        };
        for (sum, p) in SUMS[k].iter().zip(&PENDING) {
            sum.fetch_add(p.load(Relaxed), Relaxed);
        }
        COUNTS[k].fetch_add(1, Relaxed);
    }

    pub fn report() {
        for (k, nr) in KINDS.iter().enumerate() {
            let count = COUNTS[k].load(Relaxed);
            if count == 0 {
                continue;
            }
            let name = match nr {
                Sysnum::Call => "call",
                Sysnum::ReplyRecv => "reply_recv",
                Sysnum::NotifyWait => "notify_wait",
                _ => "notify_recv",
            };
            for s in Stage::ALL {
                let mean = SUMS[k][s as usize].load(Relaxed) / count;
                crate::kprintln!(
                    "BENCH {{\"name\":\"ipc_stage\",\"syscall\":\"{name}\",\"stage\":\"{}\",\"unit\":\"cycles\",\"mean\":{mean},\"count\":{count}}}",
                    s.name()
                );
            }
        }
    }
}

/// The kernel's first Rust instruction of a system call.
#[inline(always)]
pub fn begin() {
    #[cfg(feature = "ipc-stages")]
    on::begin();
}

/// The end of `stage`.
#[inline(always)]
pub fn mark(stage: Stage) {
    #[cfg(feature = "ipc-stages")]
    on::mark(stage);
    #[cfg(not(feature = "ipc-stages"))]
    let _ = stage;
}

/// The fast path handled system call `nr`: its stages count.
#[inline(always)]
pub fn end(nr: u64) {
    #[cfg(feature = "ipc-stages")]
    on::end(nr);
    #[cfg(not(feature = "ipc-stages"))]
    let _ = nr;
}

/// Prints the breakdown (when the run ends).
pub fn report() {
    #[cfg(feature = "ipc-stages")]
    on::report();
}
