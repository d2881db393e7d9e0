//! A VT-d unit's register page as the driver core's [`Registers`]: volatile
//! loads and stores at exactly the width the core asks for (QEMU aborts on
//! a 64-bit access to a 32-bit register), inside the page the kernel
//! mapped. One of the image's two `unsafe` modules.

use core::sync::atomic::{AtomicU64, Ordering};

use faultline_iommu_core::Registers;
use userlib::MmioRegion;

/// Register accesses made so far, over all units (a figure for
/// `cargo xtask bench`: VT-d MMIO accesses per fault).
static ACCESSES: AtomicU64 = AtomicU64::new(0);

/// Register accesses made so far, over all units.
pub fn accesses() -> u64 {
    ACCESSES.load(Ordering::Relaxed)
}

/// One unit's registers, mapped uncached by the kernel.
pub struct MmioRegisters {
    base: u64,
    len: u64,
}

impl MmioRegisters {
    pub fn new(region: MmioRegion) -> Self {
        Self {
            base: region.vaddr,
            len: region.len,
        }
    }

    /// The address of the `width`-byte register at `offset`; a register
    /// outside the mapping or misaligned is a driver bug and panics rather
    /// than touch memory it does not name.
    fn at(&self, offset: usize, width: u64) -> u64 {
        let offset = offset as u64;
        ACCESSES.fetch_add(1, Ordering::Relaxed);
        assert!(
            offset.is_multiple_of(width) && offset + width <= self.len,
            "iommu: register access {offset:#x}/{width} outside the unit's page"
        );
        self.base + offset
    }
}

#[allow(unsafe_code)]
impl Registers for MmioRegisters {
    fn read32(&mut self, offset: usize) -> u32 {
        let addr = self.at(offset, 4);
        // SAFETY: `addr` is inside the kernel's uncached mapping of this
        // unit's register page (checked by `at`), 4-byte aligned; a load
        // from a VT-d register has no effect on memory.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }

    fn write32(&mut self, offset: usize, value: u32) {
        let addr = self.at(offset, 4);
        // SAFETY: as in `read32`; the core writes only registers it owns
        // (the unit's registers are this service's alone).
        unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
    }

    fn read64(&mut self, offset: usize) -> u64 {
        let addr = self.at(offset, 8);
        // SAFETY: as in `read32`, 8-byte aligned.
        unsafe { core::ptr::read_volatile(addr as *const u64) }
    }

    fn write64(&mut self, offset: usize, value: u64) {
        let addr = self.at(offset, 8);
        // SAFETY: as in `write32`, 8-byte aligned.
        unsafe { core::ptr::write_volatile(addr as *mut u64, value) }
    }
}
