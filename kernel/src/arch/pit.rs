//! The legacy 8254 PIT, used once to measure the TSC frequency, and the
//! legacy 8259 PICs, which are remapped away from the exception vectors and
//! masked (Faultline uses the LAPIC and MSIs).
//!
//! Calibration uses channel 2 in mode 0 with its gate controlled through port
//! 0x61, and polls OUT2, so it needs no interrupts.

use x86::io::{inb, outb};

/// The PIT input clock, in Hz.
pub const PIT_HZ: u64 = 1_193_182;
const PORT_CH2: u16 = 0x42;
const PORT_CMD: u16 = 0x43;
const PORT_GATE: u16 = 0x61;
const GATE_OUT2: u8 = 1 << 5;

/// The PIT did not count down within the expected time.
#[derive(Clone, Copy, Debug)]
pub struct PitTimeout;

/// Runs channel 2 for `pit_ticks` (< 65536) and returns the TSC cycles that
/// elapsed, giving up after `max_cycles`.
pub fn measure_tsc(pit_ticks: u16, max_cycles: u64) -> Result<u64, PitTimeout> {
    // SAFETY: ports 0x42/0x43/0x61 belong to the PIT and the speaker gate;
    // the kernel owns them and channel 2 drives nothing but the speaker,
    // whose output we keep disabled (bit 1 clear).
    unsafe {
        let gate = inb(PORT_GATE);
        outb(PORT_GATE, (gate & !0x02) | 0x01);
        outb(PORT_CMD, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        outb(PORT_CH2, (pit_ticks & 0xff) as u8);
        outb(PORT_CH2, (pit_ticks >> 8) as u8);
        let start = super::tsc::read();
        loop {
            let now = super::tsc::read();
            if inb(PORT_GATE) & GATE_OUT2 != 0 {
                return Ok(now - start);
            }
            if now - start > max_cycles {
                return Err(PitTimeout);
            }
            core::hint::spin_loop();
        }
    }
}

/// Remaps the 8259 PICs to vectors 0x20-0x2f and masks every line.
pub fn disable_legacy_pic() {
    // SAFETY: the standard ICW sequence on the PIC ports; afterwards both
    // controllers are fully masked and raise nothing.
    unsafe {
        outb(0x20, 0x11);
        outb(0xa0, 0x11);
        outb(0x21, 0x20);
        outb(0xa1, 0x28);
        outb(0x21, 0x04);
        outb(0xa1, 0x02);
        outb(0x21, 0x01);
        outb(0xa1, 0x01);
        outb(0x21, 0xff);
        outb(0xa1, 0xff);
    }
}
