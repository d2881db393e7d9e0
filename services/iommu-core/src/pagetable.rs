//! Second-level page tables: one tree per domain, 3 levels for a 39-bit
//! AGAW and 4 for 48-bit, with 4 KiB leaves at level 1 and 2 MiB leaves at
//! level 2.
//!
//! These functions only edit memory; the caller (`unit`) decides which
//! invalidations the edits need. Every entry written is flushed through
//! [`DmaMemory::flush`] when the unit does not snoop, and so is every new
//! table frame (its zeros may still be in the CPU cache). An entry with R = W = 0
//! is not present (VT-d has no separate present bit); table entries carry
//! R and W because hardware checks access rights at every level.

use bitflags::bitflags;

use crate::entry::{PTE_ADDRESS, PTE_LARGE, PTE_READ, PTE_WRITE};
use crate::error::Error;
use crate::hw::DmaMemory;

/// 4 KiB.
pub const PAGE_SIZE: u64 = 1 << 12;
/// 2 MiB.
pub const LARGE_PAGE_SIZE: u64 = 1 << 21;

bitflags! {
    /// What a mapping lets the device do.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Access: u8 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
    }
}

impl Access {
    const fn pte_bits(self) -> u64 {
        let mut bits = 0;
        if self.contains(Self::READ) {
            bits |= PTE_READ;
        }
        if self.contains(Self::WRITE) {
            bits |= PTE_WRITE;
        }
        bits
    }

    /// The access a leaf PTE grants.
    pub const fn from_pte(pte: u64) -> Self {
        Self::from_bits_truncate((pte & (PTE_READ | PTE_WRITE)) as u8)
    }
}

/// Bytes one entry at `level` covers (level 1 = 4 KiB).
pub const fn span(level: u8) -> u64 {
    1 << (12 + 9 * (level as u32 - 1))
}

const fn slot(table: u64, iova: u64, level: u8) -> u64 {
    table + 8 * ((iova >> (12 + 9 * (level as u32 - 1))) & 0x1ff)
}

const fn present(entry: u64) -> bool {
    entry & (PTE_READ | PTE_WRITE) != 0
}

/// What the tables say about one IOVA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A leaf maps `base..base + size` to `paddr` with `access`; its PTE is
    /// at `entry`.
    Leaf {
        base: u64,
        size: u64,
        paddr: u64,
        access: Access,
        entry: u64,
    },
    /// Nothing is mapped in `base..base + size` (an empty slot at the level
    /// whose entries cover `size` bytes).
    Hole { base: u64, size: u64 },
}

/// One domain's table tree, borrowed with the memory it lives in.
pub struct Tables<'a, M> {
    pub mem: &'a mut M,
    pub root: u64,
    pub levels: u8,
    /// Whether the unit snoops table reads (ECAP.C); if not, every write is flushed.
    pub coherent: bool,
}

impl<M: DmaMemory> Tables<'_, M> {
    fn write(&mut self, paddr: u64, value: u64) {
        self.mem.write_u64(paddr, value);
        if !self.coherent {
            self.mem.flush(paddr, 8);
        }
    }

    /// Walks the tables for `iova`.
    pub fn probe(&mut self, iova: u64) -> Probe {
        let mut table = self.root;
        let mut level = self.levels;
        loop {
            let at = slot(table, iova, level);
            let entry = self.mem.read_u64(at);
            let size = span(level);
            let base = iova & !(size - 1);
            if !present(entry) {
                return Probe::Hole { base, size };
            }
            if level == 1 || entry & PTE_LARGE != 0 {
                return Probe::Leaf {
                    base,
                    size,
                    paddr: entry & PTE_ADDRESS,
                    access: Access::from_pte(entry),
                    entry: at,
                };
            }
            table = entry & PTE_ADDRESS;
            level -= 1;
        }
    }

    /// Writes a leaf for `iova` at `leaf_level` (1 or 2), creating tables on
    /// the way. The slot must be empty; on `OutOfTableMemory` nothing
    /// visible has changed but tables created on the way stay (empty).
    pub fn set_leaf(
        &mut self,
        iova: u64,
        paddr: u64,
        leaf_level: u8,
        access: Access,
    ) -> Result<(), Error> {
        let mut table = self.root;
        let mut level = self.levels;
        while level > leaf_level {
            let at = slot(table, iova, level);
            let mut entry = self.mem.read_u64(at);
            if !present(entry) {
                let frame = self.mem.alloc_frame().ok_or(Error::OutOfTableMemory)?;
                if !self.coherent {
                    self.mem.flush(frame, PAGE_SIZE as usize);
                }
                entry = frame | PTE_READ | PTE_WRITE;
                self.write(at, entry);
            }
            table = entry & PTE_ADDRESS;
            level -= 1;
        }
        let large = if leaf_level > 1 { PTE_LARGE } else { 0 };
        let at = slot(table, iova, level);
        debug_assert!(!present(self.mem.read_u64(at)));
        self.write(at, paddr & PTE_ADDRESS | large | access.pte_bits());
        Ok(())
    }

    /// Clears every leaf inside `start..end` (leaves must not straddle it).
    pub fn clear(&mut self, start: u64, end: u64) {
        let mut at = start;
        while at < end {
            match self.probe(at) {
                Probe::Leaf {
                    base, size, entry, ..
                } => {
                    self.write(entry, 0);
                    at = base + size;
                }
                Probe::Hole { base, size } => at = base + size,
            }
        }
    }

    /// Frees every table of the tree, the root included. Only call once
    /// the hardware can no longer walk or cache it.
    pub fn free_all(&mut self) {
        self.free_table(self.root, self.levels);
    }

    fn free_table(&mut self, table: u64, level: u8) {
        if level > 1 {
            for i in 0..512 {
                let entry = self.mem.read_u64(table + 8 * i);
                if present(entry) && entry & PTE_LARGE == 0 {
                    self.free_table(entry & PTE_ADDRESS, level - 1);
                }
            }
        }
        self.mem.free_frame(table);
    }
}
