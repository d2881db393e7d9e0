//! Base address registers: where a function's MMIO and I/O windows are and
//! how large they are.
//!
//! Sizing is the classic all-ones probe, done so that it is invisible to
//! the rest of the system: COMMAND's memory and I/O decode are turned off
//! while a BAR holds all-ones (otherwise the device would briefly claim
//! whatever address range that decodes to), and the BAR and COMMAND are put
//! back exactly as firmware left them. Host bridges keep decode on, as Linux
//! does (`mmio_always_on`): turning it off there can cut the CPU off from
//! memory on real chipsets, and their BARs are rarely implemented anyway.

use core::fmt;

use super::config::{BAR0, Bdf, Command, ConfigSpace, read_command, write_command};

/// Whether a BAR decodes I/O ports or memory, and how wide its address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarKind {
    Io,
    /// 32-bit memory (also the legacy "below 1 MiB" type).
    Mem32,
    /// 64-bit memory: occupies this slot and the next.
    Mem64,
}

/// One implemented BAR, as firmware programmed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bar {
    /// Slot number (0..=5); a 64-bit BAR has the lower of its two slots.
    pub index: u8,
    pub kind: BarKind,
    pub prefetchable: bool,
    /// Base address (bus address; equal to the CPU physical address on x86).
    pub base: u64,
    /// Size in bytes, a power of two.
    pub size: u64,
}

impl fmt::Display for Bar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BarKind::Io => "io",
            BarKind::Mem32 => "mem32",
            BarKind::Mem64 => "mem64",
        };
        let prefetch = if self.prefetchable {
            " prefetchable"
        } else {
            ""
        };
        write!(
            f,
            "BAR{} {kind} {:#x} size {:#x}{prefetch}",
            self.index, self.base, self.size
        )
    }
}

/// A BAR that cannot be decoded. Sizing of the function's other BARs
/// stops or skips past it, and enumeration goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarError {
    /// A 64-bit memory BAR in the last slot has no upper half.
    Mem64InLastSlot { index: u8 },
    /// Memory type 0b11 is reserved.
    ReservedMemoryType { index: u8 },
}

impl fmt::Display for BarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mem64InLastSlot { index } => write!(f, "64-bit BAR{index} in the last slot"),
            Self::ReservedMemoryType { index } => write!(f, "BAR{index} has reserved memory type"),
        }
    }
}

/// Sizes the first `slots` BARs of `bdf` and returns the implemented ones,
/// with the first decoding problem met, if any.
pub(super) fn probe_bars(
    cfg: &mut impl ConfigSpace,
    bdf: Bdf,
    slots: u8,
    keep_decode_enabled: bool,
) -> (heapless::Vec<Bar, 6>, Option<BarError>) {
    let mut bars = heapless::Vec::new();
    let mut error = None;
    let mut index = 0;
    while index < slots.min(6) {
        let offset = BAR0 + 4 * u16::from(index);
        let low = cfg.read32(bdf, offset);
        let (kind, width) = if low & 1 != 0 {
            (BarKind::Io, 1)
        } else {
            match (low >> 1) & 0b11 {
                0b10 => (BarKind::Mem64, 2),
                0b11 => {
                    error.get_or_insert(BarError::ReservedMemoryType { index });
                    index += 1;
                    continue;
                }
                _ => (BarKind::Mem32, 1),
            }
        };
        if index + width > slots {
            error.get_or_insert(BarError::Mem64InLastSlot { index });
            break;
        }
        let high = if width == 2 {
            cfg.read32(bdf, offset + 4)
        } else {
            0
        };
        let (low_mask, high_mask) =
            size_probe(cfg, bdf, offset, [low, high], width, keep_decode_enabled);
        let flag_bits = if kind == BarKind::Io { 0x3 } else { 0xf };
        let address_mask = (u64::from(high_mask) << 32) | u64::from(low_mask & !flag_bits);
        // The lowest writable address bit is the size; none means "not implemented".
        let size = address_mask & address_mask.wrapping_neg();
        if size != 0 {
            let bar = Bar {
                index,
                kind,
                prefetchable: kind != BarKind::Io && low & 0x8 != 0,
                base: (u64::from(high) << 32) | u64::from(low & !flag_bits),
                size,
            };
            // Six slots, at most one BAR each: cannot overflow.
            let _ = bars.push(bar);
        }
        index += width;
    }
    (bars, error)
}

/// Writes all-ones to the BAR's `width` dwords at `offset`, reads back the
/// writable bits, and restores `original`, with decode off unless asked
/// to keep it. Returns the read-back (low, high) dwords.
fn size_probe(
    cfg: &mut impl ConfigSpace,
    bdf: Bdf,
    offset: u16,
    original: [u32; 2],
    width: u8,
    keep_decode_enabled: bool,
) -> (u32, u32) {
    let command = read_command(cfg, bdf);
    let decode = Command::IO_SPACE | Command::MEMORY_SPACE;
    let disable = !keep_decode_enabled && command.intersects(decode);
    if disable {
        write_command(cfg, bdf, command.difference(decode));
    }
    let dwords = usize::from(width);
    let mut read_back = [0u32; 2];
    for (i, slot) in read_back.iter_mut().take(dwords).enumerate() {
        let at = offset + 4 * i as u16;
        cfg.write32(bdf, at, u32::MAX);
        *slot = cfg.read32(bdf, at);
    }
    for (i, &value) in original.iter().take(dwords).enumerate() {
        cfg.write32(bdf, offset + 4 * i as u16, value);
    }
    if disable {
        write_command(cfg, bdf, command);
    }
    (read_back[0], read_back[1])
}
