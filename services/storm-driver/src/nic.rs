//! The part of QEMU's e1000 (82540EM) the storm needs: the transmit ring
//! registers. Moving the transmit tail makes the NIC fetch every
//! descriptor from its head to the new tail by DMA (16 bytes each), at
//! once, inside the register write.

use faultline_ipc::channel::Handle;
use userlib::{SysError, mmio_map};

const TCTL: u64 = 0x0400;
const TDBAL: u64 = 0x3800;
const TDBAH: u64 = 0x3804;
const TDLEN: u64 = 0x3808;
const TDH: u64 = 0x3810;
const TDT: u64 = 0x3818;
/// TCTL: transmit enable, pad short packets.
const TCTL_EN: u32 = 1 << 1;
const TCTL_PSP: u32 = 1 << 3;
/// Descriptors in the ring (16 bytes each, 4 KiB).
const RING_DESCRIPTORS: u32 = 256;

/// The NIC's registers, mapped.
pub struct Nic {
    base: u64,
}

impl Nic {
    pub fn map(bar0: Handle) -> Result<Nic, SysError> {
        Ok(Nic {
            base: mmio_map(bar0)?.vaddr,
        })
    }

    #[allow(unsafe_code)]
    fn write32(&self, offset: u64, value: u32) {
        // SAFETY: `base` is the kernel's uncached mapping of the e1000's
        // 128 KiB BAR0 and `offset` one of its 4-byte registers.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Points the transmit ring at `ring` (head and tail 0) and enables
    /// transmission.
    pub fn start_transmit(&self, ring: u64) {
        self.write32(TDBAL, ring as u32);
        self.write32(TDBAH, (ring >> 32) as u32);
        self.write32(TDLEN, RING_DESCRIPTORS * 16);
        self.write32(TDH, 0);
        self.write32(TDT, 0);
        self.write32(TCTL, TCTL_EN | TCTL_PSP);
    }

    /// Moves the tail to `n` (modulo the ring): one descriptor fetch.
    pub fn set_tail(&self, n: u32) {
        self.write32(TDT, n % RING_DESCRIPTORS);
    }

    pub fn stop_transmit(&self) {
        self.write32(TCTL, 0);
    }
}
