//! Addressing a PCI function and reading its configuration space.
//!
//! [`ConfigSpace`] is the one hardware seam of the PCI code: the kernel
//! implements it over ECAM MMIO (the MCFG window), the tests over an
//! in-memory model, so everything above it is plain logic. It deals only in
//! aligned dwords, the one access size every config mechanism supports; the
//! narrower reads are provided on top. The header register offsets used by
//! enumeration live here too, with the COMMAND-write helper that knows the
//! STATUS half of that dword is write-one-to-clear.

use core::fmt;

use bitflags::bitflags;

/// Bus, device and function number of one PCI function (one segment).
///
/// `device` is 0..=31 and `function` 0..=7; [`Bdf::new`] checks that, and
/// [`Bdf::rid`] masks out-of-range values rather than letting them overlap
/// a neighbouring field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl Bdf {
    /// A BDF, or `None` if `device` > 31 or `function` > 7.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device < 32 && function < 8 {
            Some(Self {
                bus,
                device,
                function,
            })
        } else {
            None
        }
    }

    /// Decodes a 16-bit requester ID (bus 15:8, device 7:3, function 2:0),
    /// the form VT-d source IDs and DMAR device scopes use.
    pub const fn from_rid(rid: u16) -> Self {
        Self {
            bus: (rid >> 8) as u8,
            device: ((rid >> 3) & 0x1f) as u8,
            function: (rid & 0x7) as u8,
        }
    }

    /// The 16-bit requester ID.
    pub const fn rid(self) -> u16 {
        ((self.bus as u16) << 8)
            | (((self.device & 0x1f) as u16) << 3)
            | (self.function & 0x7) as u16
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Access to the configuration space of one PCI segment.
///
/// `offset` is always dword-aligned and below 4096. A function that is not
/// present reads as all-ones and ignores writes, as on real hardware.
pub trait ConfigSpace {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32);

    /// The 16-bit register at `offset` (2-byte aligned), read as part of its dword.
    fn read16(&self, bdf: Bdf, offset: u16) -> u16 {
        (self.read32(bdf, offset & !3) >> ((offset & 2) * 8)) as u16
    }

    /// The byte at `offset`, read as part of its dword.
    fn read8(&self, bdf: Bdf, offset: u16) -> u8 {
        (self.read32(bdf, offset & !3) >> ((offset & 3) * 8)) as u8
    }
}

/// Vendor ID (16 bits; 0xffff = no function) and device ID above it.
pub const VENDOR_ID: u16 = 0x00;
/// COMMAND (16 bits) with STATUS (16 bits, RW1C) above it.
pub const COMMAND: u16 = 0x04;
/// STATUS (16 bits).
pub const STATUS: u16 = 0x06;
/// Revision ID (8 bits), then prog-if, subclass, base class.
pub const REVISION_ID: u16 = 0x08;
/// Header type (8 bits): layout in 6:0, multi-function in bit 7.
pub const HEADER_TYPE: u16 = 0x0e;
/// First base address register; type 0 has six, type 1 two.
pub const BAR0: u16 = 0x10;
/// Type 1: primary, secondary and subordinate bus numbers (bytes 0-2).
pub const BRIDGE_BUS_NUMBERS: u16 = 0x18;
/// Type 0 and 1: capabilities pointer (8 bits).
pub const CAPABILITIES_POINTER: u16 = 0x34;
/// Type 2 (CardBus): capabilities pointer.
pub const CARDBUS_CAPABILITIES_POINTER: u16 = 0x14;
/// Interrupt line (8 bits) and, above it, interrupt pin.
pub const INTERRUPT_LINE: u16 = 0x3c;
/// Interrupt pin (8 bits): 0 none, 1..=4 INTA#..INTD#.
pub const INTERRUPT_PIN: u16 = 0x3d;

bitflags! {
    /// The COMMAND register.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Command: u16 {
        const IO_SPACE = 1 << 0;
        const MEMORY_SPACE = 1 << 1;
        const BUS_MASTER = 1 << 2;
        const PARITY_ERROR_RESPONSE = 1 << 6;
        const SERR = 1 << 8;
        const INTX_DISABLE = 1 << 10;
    }
}

bitflags! {
    /// The STATUS register (error bits are write-one-to-clear).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Status: u16 {
        const INTERRUPT = 1 << 3;
        const CAPABILITIES_LIST = 1 << 4;
        const MASTER_DATA_PARITY_ERROR = 1 << 8;
        const SIGNALED_TARGET_ABORT = 1 << 11;
        const RECEIVED_TARGET_ABORT = 1 << 12;
        const RECEIVED_MASTER_ABORT = 1 << 13;
        const SIGNALED_SYSTEM_ERROR = 1 << 14;
        const DETECTED_PARITY_ERROR = 1 << 15;
    }
}

/// Reads COMMAND, keeping unnamed bits.
pub fn read_command(cfg: &impl ConfigSpace, bdf: Bdf) -> Command {
    Command::from_bits_retain(cfg.read16(bdf, COMMAND))
}

/// Writes COMMAND. The dword write carries zeros in the STATUS half, so it
/// cannot clear STATUS's write-one-to-clear error bits as a
/// read-modify-write of the whole dword would.
pub fn write_command(cfg: &mut impl ConfigSpace, bdf: Bdf, command: Command) {
    cfg.write32(bdf, COMMAND, u32::from(command.bits()));
}
