//! The edu device as this driver uses it: its registers through the BAR0
//! mapping the kernel granted, and its config space through the PCI
//! capability.
//!
//! Registers (QEMU's `hw/misc/edu.c`): 0x00 identification, 0x60 raise
//! interrupt, 0x64 acknowledge interrupt, 0x80/0x88/0x90/0x98 DMA source,
//! destination, count and command. A DMA runs from a 4 KiB buffer inside
//! the device at 0x40000, about 100 ms after it is started.

use faultline_ipc::channel::Handle;
use userlib::{SysError, mmio_map, pci_config_read, pci_config_write};

/// What edu's identification register reads (version 1.0).
pub const EDU_IDENT: u32 = 0x0100_00ed;
/// The MSI capability ID.
pub const CAP_MSI: u8 = 0x05;

const IDENT: u64 = 0x00;
const RAISE: u64 = 0x60;
const ACK: u64 = 0x64;
const DMA_SRC: u64 = 0x80;
const DMA_DST: u64 = 0x88;
const DMA_COUNT: u64 = 0x90;
const DMA_CMD: u64 = 0x98;
/// DMA command: start, from the device to RAM.
const DMA_START_TO_RAM: u64 = 0b011;
/// The device's DMA buffer.
const DMA_BUFFER: u64 = 0x4_0000;

/// edu's registers, mapped.
pub struct Edu {
    base: u64,
}

impl Edu {
    /// Maps BAR0 and turns on memory decoding and bus mastering.
    pub fn map(bar0: Handle, pci: Handle) -> Result<Edu, SysError> {
        let region = mmio_map(bar0)?;
        pci_config_write(pci, 0x04, 2, 0x0406)?;
        Ok(Edu { base: region.vaddr })
    }

    /// Where BAR0 is mapped in this service.
    pub fn base(&self) -> u64 {
        self.base
    }

    #[allow(unsafe_code)]
    fn read32(&self, offset: u64) -> u32 {
        // SAFETY: `base` is the kernel's uncached mapping of edu's 1 MiB
        // BAR0 and `offset` one of its 4-byte registers.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    #[allow(unsafe_code)]
    fn write32(&self, offset: u64, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    #[allow(unsafe_code)]
    fn write64(&self, offset: u64, value: u64) {
        // SAFETY: as in `read32`; edu's DMA registers take 8-byte writes.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u64, value) }
    }

    pub fn ident(&self) -> u32 {
        self.read32(IDENT)
    }

    pub fn raise_interrupt(&self) {
        self.write32(RAISE, 1);
    }

    pub fn ack_interrupt(&self) {
        self.write32(ACK, 1);
    }

    /// Starts a device-to-RAM transfer of 4 KiB to bus address `target`;
    /// returns it.
    pub fn start_dma_to_ram(&self, target: u64) -> u64 {
        self.write64(DMA_SRC, DMA_BUFFER);
        self.write64(DMA_DST, target);
        self.write64(DMA_COUNT, 4096);
        self.write64(DMA_CMD, DMA_START_TO_RAM);
        target
    }
}

/// The config-space offset of capability `id`, following the list.
pub fn find_capability(pci: Handle, id: u8) -> Option<u16> {
    let mut at = (pci_config_read(pci, 0x34, 1).ok()? & 0xfc) as u16;
    for _ in 0..48 {
        if at < 0x40 {
            return None;
        }
        let header = pci_config_read(pci, at, 2).ok()?;
        if header as u8 == id {
            return Some(at);
        }
        at = ((header >> 8) & 0xfc) as u16;
    }
    None
}
