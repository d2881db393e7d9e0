//! edu transfers with this driver's interrupt bits ([`crate::IRQ_BITS`]).

use edu::device::{Direction, Edu};
use faultline_ipc::channel::Handle;

pub use edu::transfer::Stalled;

/// Runs one 4 KiB transfer and waits for its completion interrupt.
pub fn run(edu: &Edu, irq: Handle, direction: Direction, iova: u64) -> Result<(), Stalled> {
    edu::transfer::run(edu, irq, crate::IRQ_BITS, direction, iova)
}

/// Runs one transfer of `len` bytes and waits for its completion interrupt.
pub fn run_len(
    edu: &Edu,
    irq: Handle,
    direction: Direction,
    iova: u64,
    len: u64,
) -> Result<(), Stalled> {
    edu::transfer::run_len(edu, irq, crate::IRQ_BITS, direction, iova, len)
}

/// Waits `ns` with nothing expected from edu; how many interrupts edu did
/// not raise itself arrived meanwhile.
pub fn quiet(edu: &Edu, irq: Handle, ns: u64) -> Result<u32, Stalled> {
    edu::transfer::quiet(edu, irq, crate::IRQ_BITS, ns)
}
