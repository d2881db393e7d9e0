//! The hardware traits the driver core is generic over, and the one
//! accessor that touches registers.
//!
//! [`Registers`] is raw: it reads and writes at whatever offset and width it
//! is asked. [`Mmio`] wraps it and takes a `faultline_vtd::Register`, so the
//! width always comes from the register map and never from the caller. The
//! IOMMU service implements `Registers` over its granted MMIO page (the only
//! place that needs `unsafe`) and [`DmaMemory`] over the DMA frames the
//! kernel gives it; the host tests implement both over the model.

use faultline_vtd::{Register, Width};

/// Raw access to one remapping unit's register page.
pub trait Registers {
    /// 4-byte read at `offset` from the unit's base.
    fn read32(&mut self, offset: usize) -> u32;
    /// 4-byte write at `offset`.
    fn write32(&mut self, offset: usize, value: u32);
    /// 8-byte read at `offset`.
    fn read64(&mut self, offset: usize) -> u64;
    /// 8-byte write at `offset`.
    fn write64(&mut self, offset: usize, value: u64);
}

/// Memory the remapping hardware reads (tables, invalidation queue) and
/// writes (wait status).
pub trait DmaMemory {
    /// A 4 KiB-aligned frame that reads as zero from the CPU; `None` when
    /// the budget is spent. On a unit that does not snoop, the core flushes
    /// it before the hardware can walk it.
    fn alloc_frame(&mut self) -> Option<u64>;
    /// Gives back a frame from [`DmaMemory::alloc_frame`]. The core only
    /// frees a table after the IOTLB no longer refers to it.
    fn free_frame(&mut self, paddr: u64);
    /// Reads the 8-byte-aligned `u64` at `paddr` inside an allocated frame.
    fn read_u64(&mut self, paddr: u64) -> u64;
    /// Writes the 8-byte-aligned `u64` at `paddr` inside an allocated frame.
    fn write_u64(&mut self, paddr: u64, value: u64);
    /// Writes back CPU cache lines covering `paddr..paddr + len` to memory
    /// (`clflush`); the core calls it after every table write when the unit
    /// does not snoop (ECAP.C = 0).
    fn flush(&mut self, paddr: u64, len: usize);
}

/// Register access at architectural width.
pub struct Mmio<R> {
    raw: R,
}

impl<R: Registers> Mmio<R> {
    pub fn new(raw: R) -> Self {
        Self { raw }
    }

    /// Reads `reg` at its width, zero-extended.
    pub fn read(&mut self, reg: Register) -> u64 {
        match reg.width {
            Width::W32 => u64::from(self.raw.read32(reg.offset)),
            Width::W64 => self.raw.read64(reg.offset),
        }
    }

    /// Reads a 32-bit register.
    pub fn read32(&mut self, reg: Register) -> u32 {
        debug_assert_eq!(reg.width, Width::W32, "{} is not 32-bit", reg.name);
        self.read(reg) as u32
    }

    /// Writes `value` to `reg` at its width. A 32-bit register gets the
    /// low half; the core never passes more.
    pub fn write(&mut self, reg: Register, value: u64) {
        match reg.width {
            Width::W32 => {
                debug_assert!(value <= u64::from(u32::MAX), "{} is 32-bit", reg.name);
                self.raw.write32(reg.offset, value as u32)
            }
            Width::W64 => self.raw.write64(reg.offset, value),
        }
    }

    /// The wrapped accessor.
    pub fn into_inner(self) -> R {
        self.raw
    }
}
