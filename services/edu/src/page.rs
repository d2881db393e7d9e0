//! A 4 KiB DMA page as the driver sees it: filled and compared through
//! volatile accesses, since the device writes it behind the compiler's
//! back.

use userlib::DmaRegion;

/// The size of every page this driver maps.
pub const PAGE: u64 = 4096;

/// One page of DMA memory from the driver's budget.
pub struct Page {
    pub region: DmaRegion,
}

impl Page {
    fn byte(&self, i: u64) -> *mut u8 {
        debug_assert!(i < PAGE);
        (self.region.vaddr + i) as *mut u8
    }

    /// Byte `i`.
    #[allow(unsafe_code)]
    pub fn get(&self, i: u64) -> u8 {
        // SAFETY: the page is this service's DMA allocation of `PAGE`
        // bytes, mapped read-write for as long as the service runs, and
        // never borrowed as a Rust reference.
        unsafe { core::ptr::read_volatile(self.byte(i)) }
    }

    /// Writes `f(i)` to every byte `i`.
    #[allow(unsafe_code)]
    pub fn fill(&self, f: impl Fn(u64) -> u8) {
        for i in 0..PAGE {
            // SAFETY: as in `get`.
            unsafe { core::ptr::write_volatile(self.byte(i), f(i)) }
        }
    }

    /// The first byte `i` where the page is not `f(i)`: `(i, found)`.
    pub fn first_difference(&self, f: impl Fn(u64) -> u8) -> Option<(u64, u8)> {
        (0..PAGE)
            .map(|i| (i, self.get(i)))
            .find(|&(i, b)| b != f(i))
    }
}

/// The pattern the round trip carries: no byte is 0, 0x5a or 0xa5 (the
/// fills of the isolation checks), and it does not repeat within a page,
/// so a shifted or partial copy shows.
pub fn pattern(i: u64) -> u8 {
    let b = (i.wrapping_mul(7) ^ (i >> 8)) as u8;
    match b {
        0 | 0x5a | 0xa5 => 0x11,
        b => b,
    }
}
