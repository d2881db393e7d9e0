//! Class codes: what kind of device a function says it is.
//!
//! Names follow the PCI Code and ID Assignment specification (and match
//! what `lspci` prints closely enough to compare boot logs by eye). Only
//! the classes a boot report is likely to meet are named; the rest fall
//! back to the base class's name.

use core::fmt;

/// The three class-code bytes at config offset 0x09..0x0b.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassCode {
    pub base: u8,
    pub sub: u8,
    pub prog_if: u8,
}

impl ClassCode {
    /// Decodes the class code from the dword at offset 0x08 (revision in the low byte).
    pub const fn from_register(dword: u32) -> Self {
        Self {
            base: (dword >> 24) as u8,
            sub: (dword >> 16) as u8,
            prog_if: (dword >> 8) as u8,
        }
    }

    /// See [`class_name`].
    pub const fn name(self) -> &'static str {
        class_name(self.base, self.sub)
    }
}

impl fmt::Display for ClassCode {
    /// `[0106.01] SATA controller`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:02x}{:02x}.{:02x}] {}",
            self.base,
            self.sub,
            self.prog_if,
            self.name()
        )
    }
}

/// A human-readable name for a base class and subclass.
pub const fn class_name(base: u8, sub: u8) -> &'static str {
    match (base, sub) {
        (0x00, 0x00) => "non-VGA unclassified device",
        (0x00, 0x01) => "VGA-compatible unclassified device",
        (0x00, _) => "unclassified device",
        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x04) => "RAID bus controller",
        (0x01, 0x05) => "ATA controller",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x07) => "serial attached SCSI controller",
        (0x01, 0x08) => "non-volatile memory controller",
        (0x01, _) => "mass storage controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x02, _) => "network controller",
        (0x03, 0x00) => "VGA compatible controller",
        (0x03, 0x02) => "3D controller",
        (0x03, _) => "display controller",
        (0x04, 0x01) => "multimedia audio controller",
        (0x04, 0x03) => "audio device",
        (0x04, _) => "multimedia controller",
        (0x05, _) => "memory controller",
        (0x06, 0x00) => "host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x07) => "CardBus bridge",
        (0x06, _) => "bridge",
        (0x07, 0x00) => "serial controller",
        (0x07, _) => "communication controller",
        (0x08, 0x00) => "PIC",
        (0x08, 0x03) => "RTC",
        (0x08, 0x05) => "SD host controller",
        (0x08, 0x06) => "IOMMU",
        (0x08, _) => "system peripheral",
        (0x09, _) => "input device controller",
        (0x0a, _) => "docking station",
        (0x0b, _) => "processor",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x05) => "SMBus",
        (0x0c, 0x07) => "IPMI interface",
        (0x0c, _) => "serial bus controller",
        (0x0d, _) => "wireless controller",
        (0x0e, _) => "intelligent controller",
        (0x0f, _) => "satellite communications controller",
        (0x10, _) => "encryption controller",
        (0x11, _) => "signal processing controller",
        (0x12, _) => "processing accelerator",
        (0x13, _) => "non-essential instrumentation",
        (0x40, _) => "coprocessor",
        (0xff, _) => "unassigned class",
        _ => "unknown class",
    }
}
