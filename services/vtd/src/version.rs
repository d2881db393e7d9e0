//! The VER register (offset 0x00, 32-bit): the architecture version the
//! remapping hardware implements. QEMU reports 1.0 whatever its `version`
//! property says, so the version is informative only; features are decided
//! from CAP and ECAP, never from the version number.

use core::fmt;

/// Decoded VER register: major version in bits 7:4, minor in bits 3:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

impl Version {
    /// Decodes a raw VER value; bits 31:8 are reserved and ignored.
    pub const fn from_register(raw: u32) -> Self {
        Self {
            major: ((raw >> 4) & 0xf) as u8,
            minor: (raw & 0xf) as u8,
        }
    }

    /// The raw VER value this version encodes to.
    pub const fn to_register(self) -> u32 {
        ((self.major as u32 & 0xf) << 4) | (self.minor as u32 & 0xf)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}
