//! The edu device as a driver uses it: its DMA engine, its interrupt
//! and its command register.
//!
//! Registers (QEMU's `hw/misc/edu.c`): 0x00 identification, 0x24 interrupt
//! status, 0x64 acknowledge, 0x80/0x88/0x90/0x98 DMA source, destination,
//! count and command. The DMA engine copies between a 4 KiB buffer inside
//! the device (at device address 0x40000) and a bus address, about 100 ms
//! of virtual time after the command is written, through the IOMMU with
//! the device's requester id. It raises interrupt status 0x100 when it is
//! done if the command asked for it, whether or not the transfer faulted
//! (a faulting write is dropped, a faulting read yields zeros), so every
//! transfer ends with an interrupt.

use faultline_ipc::channel::Handle;
use userlib::{SysError, mmio_map, pci_config_write};

/// What edu's identification register reads (version 1.0).
pub const EDU_IDENT: u32 = 0x0100_00ed;
/// The device address of edu's DMA buffer.
pub const BUFFER: u64 = 0x4_0000;
/// The size of edu's DMA buffer.
pub const BUFFER_LEN: u64 = 4096;
/// Interrupt status bit of a finished DMA.
pub const IRQ_DMA_DONE: u32 = 0x100;

/// Command register: memory decoding and INTx off (MSI is used).
pub const COMMAND_MEMORY: u32 = 0x0402;
/// Command register: memory decoding, bus mastering, INTx off.
pub const COMMAND_BUS_MASTER: u32 = 0x0406;

const IDENT: u64 = 0x00;
const IRQ_STATUS: u64 = 0x24;
const IRQ_ACK: u64 = 0x64;
const DMA_SRC: u64 = 0x80;
const DMA_DST: u64 = 0x88;
const DMA_COUNT: u64 = 0x90;
const DMA_CMD: u64 = 0x98;
/// DMA command bits: start, direction (set: device to RAM), raise the
/// interrupt when done.
const CMD_START: u64 = 1 << 0;
const CMD_TO_RAM: u64 = 1 << 1;
const CMD_IRQ: u64 = 1 << 2;

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From memory at a bus address into edu's buffer.
    ToDevice,
    /// From edu's buffer to memory at a bus address.
    ToRam,
}

/// Sets the PCI command register (memory decoding, bus mastering).
pub fn set_command(pci: Handle, value: u32) -> Result<(), SysError> {
    pci_config_write(pci, 0x04, 2, value)
}

/// edu's registers, mapped.
pub struct Edu {
    base: u64,
}

impl Edu {
    /// Maps BAR0.
    pub fn map(bar0: Handle) -> Result<Edu, SysError> {
        Ok(Edu {
            base: mmio_map(bar0)?.vaddr,
        })
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
        // SAFETY: as in `read32`; edu's DMA registers take 8-byte writes
        // (a 4-byte write would leave the upper half of an address zero).
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u64, value) }
    }

    pub fn ident(&self) -> u32 {
        self.read32(IDENT)
    }

    /// Starts copying `len` bytes (at most `BUFFER_LEN`) between the start
    /// of edu's buffer and bus address `iova`; the interrupt says when it
    /// is done.
    pub fn start_dma(&self, direction: Direction, iova: u64, len: u64) {
        let (src, dst, to_ram) = match direction {
            Direction::ToDevice => (iova, BUFFER, 0),
            Direction::ToRam => (BUFFER, iova, CMD_TO_RAM),
        };
        self.write64(DMA_SRC, src);
        self.write64(DMA_DST, dst);
        self.write64(DMA_COUNT, len);
        self.write64(DMA_CMD, CMD_START | to_ram | CMD_IRQ);
    }

    /// Reads and acknowledges the interrupt status; returns what was set.
    pub fn take_interrupt(&self) -> u32 {
        let status = self.read32(IRQ_STATUS);
        if status != 0 {
            self.write32(IRQ_ACK, status);
        }
        status
    }
}
