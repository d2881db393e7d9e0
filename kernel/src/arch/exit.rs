//! Ending a run: QEMU's `isa-debug-exit` device.
//!
//! `xtask` always attaches the device at [`DEBUG_EXIT_PORT`]. Writing an
//! [`ExitCode`] there ends QEMU with a status the host maps back to the code.
//! If the device is missing (real hardware, or QEMU started by hand), the CPU
//! halts with interrupts off instead.

use faultline_ipc::harness::{DEBUG_EXIT_PORT, ExitCode};

/// Stops the machine with `code`. Never returns.
pub fn exit(code: ExitCode) -> ! {
    super::serial::drain();
    // SAFETY: writing the debug-exit port has no effect other than ending
    // the emulator; on machines without the device the write is ignored.
    unsafe { x86::io::outl(DEBUG_EXIT_PORT, code as u32) };
    halt_forever()
}

/// Halts this CPU with interrupts disabled.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: disabling interrupts and halting only stops this CPU.
        unsafe {
            x86::irq::disable();
            x86::halt();
        }
    }
}
