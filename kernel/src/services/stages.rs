//! The instrumented build's breakdown of the IPC fast path (kernel feature
//! `ipc-stages`, built by `cargo xtask bench` alongside the plain one).
//!
//! Each fast-path system call reads the TSC at the kernel's first Rust
//! instruction and at the end of each [`Stage`]; when the run ends the kernel
//! prints, per system call and message size (`payload`: 0, up to 64, up to
//! 256 bytes), the mean of each stage as a `BENCH` line:
//!
//! ```text
//! BENCH {"name":"ipc_stage","syscall":"call","payload":64,"stage":"checks","unit":"cycles","mean":..,"count":..}
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
    /// Message sizes, by the largest of each class.
    const SIZES: [u64; 3] = [0, 64, faultline_ipc::abi::MAX_MESSAGE as u64];
    const CLASSES: usize = KINDS.len() * SIZES.len();

    static LAST: AtomicU64 = AtomicU64::new(0);
    /// This entry's stages so far (kept only if the fast path took it).
    static PENDING: [AtomicU64; STAGES] = [const { AtomicU64::new(0) }; STAGES];
    static SUMS: [[AtomicU64; STAGES]; CLASSES] =
        [const { [const { AtomicU64::new(0) }; STAGES] }; CLASSES];
    static COUNTS: [AtomicU64; CLASSES] = [const { AtomicU64::new(0) }; CLASSES];

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

    pub fn end(nr: u64, len: u64) {
        mark(Stage::Exit);
        let Some(kind) = KINDS.iter().position(|s| *s as u64 == nr) else {
            return;
        };
        // Only a call and a reply carry a message (`rdx` is its length).
        let len = if kind < 2 { len } else { 0 };
        let size = SIZES
            .iter()
            .position(|&s| len <= s)
            .unwrap_or(SIZES.len() - 1);
        let k = kind * SIZES.len() + size;
        for (sum, p) in SUMS[k].iter().zip(&PENDING) {
            sum.fetch_add(p.load(Relaxed), Relaxed);
        }
        COUNTS[k].fetch_add(1, Relaxed);
    }

    pub fn report() {
        for k in 0..CLASSES {
            let (nr, payload) = (KINDS[k / SIZES.len()], SIZES[k % SIZES.len()]);
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
                    "BENCH {{\"name\":\"ipc_stage\",\"syscall\":\"{name}\",\"payload\":{payload},\"stage\":\"{}\",\"unit\":\"cycles\",\"mean\":{mean},\"count\":{count}}}",
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

/// The fast path handled system call `nr`, whose message (for `call` and
/// `reply_recv`) was `len` bytes: its stages count.
#[inline(always)]
pub fn end(nr: u64, len: u64) {
    #[cfg(feature = "ipc-stages")]
    on::end(nr, len);
    #[cfg(not(feature = "ipc-stages"))]
    let _ = (nr, len);
}

/// Prints the breakdown (when the run ends).
pub fn report() {
    #[cfg(feature = "ipc-stages")]
    on::report();
}
