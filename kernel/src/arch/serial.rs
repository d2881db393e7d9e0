//! The COM1 16550 UART: the kernel's console.
//!
//! Polled output only (115200 8N1, FIFO on). Writes wait for the transmit
//! side with a bounded spin, so a missing UART cannot hang the kernel. With
//! the 16550A's 16-byte FIFO on (the interrupt identification register
//! says so), one "transmitter empty" status admits 16 bytes, so the line
//! status is read once per 16 bytes rather than once per byte: under a
//! hypervisor each port access is an exit, and the console is most of the
//! boot's exits.

use x86::io::{inb, outb};

const COM1: u16 = 0x3f8;
const DATA: u16 = COM1;
const INT_ENABLE: u16 = COM1 + 1;
const FIFO_CTRL: u16 = COM1 + 2;
const LINE_CTRL: u16 = COM1 + 3;
const MODEM_CTRL: u16 = COM1 + 4;
const LINE_STATUS: u16 = COM1 + 5;
/// Read at `FIFO_CTRL`'s address: the interrupt identification register.
const INT_IDENT: u16 = FIFO_CTRL;
/// IIR bits 7:6 both set: the FIFOs are enabled (a 16550A or later).
const IIR_FIFO_ENABLED: u8 = 0xc0;
/// Bytes a 16550A's transmit FIFO holds.
const FIFO_BYTES: u8 = 16;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_TX_IDLE: u8 = 1 << 6;
/// Polls of the line status register before a byte is dropped. An absent
/// UART reads 0xff (always ready), so this bounds only a stuck one.
const TX_SPIN_LIMIT: u32 = 1_000_000;

/// The COM1 port. Only one exists; the logger owns it behind a lock.
pub struct Serial {
    /// Bytes the transmitter takes without another status read.
    room: u8,
    /// What an empty transmitter takes: the FIFO's size, or 1 without one.
    burst: u8,
}

impl Serial {
    /// Programs COM1 for 115200 8N1 with FIFOs enabled and interrupts off.
    pub fn init() -> Self {
        // SAFETY: COM1's registers are I/O ports with no memory side effects;
        // the kernel owns the UART (no service is granted these ports).
        let ident = unsafe {
            outb(INT_ENABLE, 0x00);
            outb(LINE_CTRL, 0x80); // DLAB on
            outb(DATA, 0x01); // divisor low: 115200 baud
            outb(INT_ENABLE, 0x00); // divisor high
            outb(LINE_CTRL, 0x03); // 8N1, DLAB off
            outb(FIFO_CTRL, 0xc7); // enable and clear FIFOs
            outb(MODEM_CTRL, 0x03); // DTR | RTS
            inb(INT_IDENT)
        };
        // An absent UART reads 0xff, which looks like a FIFO; its bytes go
        // nowhere either way.
        let burst = if ident & IIR_FIFO_ENABLED == IIR_FIFO_ENABLED {
            FIFO_BYTES
        } else {
            1
        };
        Serial { room: 0, burst }
    }

    /// Sends one byte, giving up after a bounded wait.
    pub fn write_byte(&mut self, byte: u8) {
        if self.room == 0 {
            wait_for(LSR_THR_EMPTY);
            self.room = self.burst;
        }
        self.room -= 1;
        // SAFETY: writing the data register transmits one byte.
        unsafe { outb(DATA, byte) }
    }
}

/// Waits (bounded) until everything written has left the UART, so that
/// ending the machine right after does not cut the console short.
pub fn drain() {
    wait_for(LSR_TX_IDLE);
}

fn wait_for(status_bit: u8) {
    for _ in 0..TX_SPIN_LIMIT {
        // SAFETY: reading the line status register has no side effects.
        if unsafe { inb(LINE_STATUS) } & status_bit != 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}
