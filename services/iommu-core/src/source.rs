//! PCI source ids (requester ids): the bus:device.function a DMA request
//! carries and the index into the root (bus) and context (devfn) tables.

use core::fmt;

/// A PCI requester id, `bus << 8 | device << 3 | function`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u16);

impl SourceId {
    /// `None` if `device > 31` or `function > 7`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > 31 || function > 7 {
            return None;
        }
        Some(Self(
            ((bus as u16) << 8) | ((device as u16) << 3) | function as u16,
        ))
    }

    /// Index into the root table.
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Index into the bus's context table.
    pub const fn devfn(self) -> u8 {
        self.0 as u8
    }

    pub const fn device(self) -> u8 {
        self.devfn() >> 3
    }

    pub const fn function(self) -> u8 {
        self.devfn() & 7
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{}",
            self.bus(),
            self.device(),
            self.function()
        )
    }
}
