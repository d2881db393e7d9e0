//! One edu DMA transfer, from command to completion interrupt.
//!
//! `bits` are the notification bits edu's interrupt may arrive as: a
//! driver whose only other notification source is its timer passes every
//! user bit, and need not know which one the manifest chose. A transfer that has not
//! finished within [`TIMEOUT_NS`] (edu takes about 100 ms of virtual time)
//! is reported as such rather than waited for forever.

use crate::device::{BUFFER_LEN, Direction, Edu, IRQ_DMA_DONE};
use faultline_ipc::abi::NOTIFY_TIMER;
use faultline_ipc::channel::Handle;
use userlib::{SysError, irq_ack, set_timer, time, wait};

/// How long a transfer may take: edu's 100 ms with room for a slow host.
pub const TIMEOUT_NS: u64 = 10_000_000_000;

/// Why a transfer did not finish.
#[derive(Debug)]
pub enum Stalled {
    /// No completion interrupt within [`TIMEOUT_NS`].
    Timeout,
    /// The kernel refused a wait, timer or acknowledgement.
    Kernel(SysError),
}

impl core::fmt::Display for Stalled {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Timeout => write!(
                f,
                "no completion interrupt in {} s",
                TIMEOUT_NS / 1_000_000_000
            ),
            Self::Kernel(e) => write!(f, "kernel refused: {e}"),
        }
    }
}

impl From<SysError> for Stalled {
    fn from(e: SysError) -> Self {
        Stalled::Kernel(e)
    }
}

/// Runs one 4 KiB transfer between edu's buffer and bus address `iova`
/// and waits for its completion interrupt.
pub fn run(
    edu: &Edu,
    irq: Handle,
    bits: u32,
    direction: Direction,
    iova: u64,
) -> Result<(), Stalled> {
    run_len(edu, irq, bits, direction, iova, BUFFER_LEN)
}

/// Runs one transfer of `len` bytes and waits for its completion interrupt.
pub fn run_len(
    edu: &Edu,
    irq: Handle,
    bits: u32,
    direction: Direction,
    iova: u64,
    len: u64,
) -> Result<(), Stalled> {
    edu.take_interrupt();
    edu.start_dma(direction, iova, len);
    let deadline = time().ns.saturating_add(TIMEOUT_NS);
    set_timer(deadline)?;
    loop {
        let woke = wait(bits | NOTIFY_TIMER)?;
        if woke & bits != 0 {
            let status = edu.take_interrupt();
            irq_ack(irq)?;
            if status & IRQ_DMA_DONE != 0 {
                set_timer(0)?;
                return Ok(());
            }
        }
        if woke & NOTIFY_TIMER != 0 && time().ns >= deadline {
            return Err(Stalled::Timeout);
        }
    }
}

/// Waits `ns` with nothing expected from edu; returns how many times the
/// driver's interrupt arrived meanwhile with nothing pending in edu (an
/// interrupt edu did not raise itself).
pub fn quiet(edu: &Edu, irq: Handle, bits: u32, ns: u64) -> Result<u32, Stalled> {
    let deadline = time().ns.saturating_add(ns);
    set_timer(deadline)?;
    let mut foreign = 0;
    loop {
        let woke = wait(bits | NOTIFY_TIMER)?;
        if woke & bits != 0 {
            if edu.take_interrupt() == 0 {
                foreign += 1;
            }
            irq_ack(irq)?;
        }
        if woke & NOTIFY_TIMER != 0 && time().ns >= deadline {
            return Ok(foreign);
        }
    }
}
