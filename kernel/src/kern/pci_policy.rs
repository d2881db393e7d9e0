//! Which bits of a PCI function's configuration space its driver may write.
//!
//! An allow-list, not a deny-list: a driver holding a PCI capability may
//! turn its function's decoders and bus mastering on and off, clear its
//! error status, and write device-specific registers, and nothing else.
//! Everything that decides where the device lives or how it behaves toward
//! the rest of the machine stays with the kernel: BARs and the expansion
//! ROM, the interrupt pin, power management (a D3 to D0 transition resets
//! BARs), PCI Express device control (function-level reset, max payload),
//! MSI and MSI-X (the kernel programs them for the vector the deployment
//! granted), SR-IOV and every other extended capability, BIST. Bridges
//! (header type 1) and other header types are not writable at all; the
//! kernel never grants them either.
//!
//! A write is checked byte by byte: a byte with no writable bit refuses the
//! whole write; otherwise bits outside the mask keep their current value.

/// Command register bits a driver may set: I/O space, memory space, bus
/// master, parity error response (low byte); SERR# enable, INTx disable
/// (high byte).
pub const COMMAND_LOW: u8 = 0x47;
pub const COMMAND_HIGH: u8 = 0x05;
/// Status register, high byte: the write-1-to-clear error bits.
pub const STATUS_HIGH_W1C: u8 = 0xf9;

/// Capability IDs (PCI Local Bus 3.0, PCI Code and ID Assignment).
pub const CAP_PM: u8 = 0x01;
pub const CAP_MSI: u8 = 0x05;
pub const CAP_VENDOR: u8 = 0x09;
pub const CAP_PCIE: u8 = 0x10;
pub const CAP_MSIX: u8 = 0x11;

/// Most capabilities followed in one list (a looping list is cut here).
const MAX_CAPS: usize = 48;

/// Reads `width` bytes at `offset` of the function's config space.
pub trait ConfigRead {
    fn read(&mut self, offset: u16, width: u8) -> u32;
}

impl<F: FnMut(u16, u8) -> u32> ConfigRead for F {
    fn read(&mut self, offset: u16, width: u8) -> u32 {
        self(offset, width)
    }
}

/// The bits of config byte `offset` a driver may write.
pub fn writable_bits(cfg: &mut impl ConfigRead, offset: u16) -> u8 {
    if cfg.read(0x0e, 1) & 0x7f != 0 {
        return 0; // bridges and anything but a plain endpoint header
    }
    match offset {
        0x04 => COMMAND_LOW,
        0x05 => COMMAND_HIGH,
        0x07 => STATUS_HIGH_W1C,
        0x0c | 0x0d => 0xff, // cache line size, latency timer
        0x3c => 0xff,        // interrupt line: a scratch byte for software
        0x40..=0xff => device_specific(cfg, offset),
        _ => 0,
    }
}

/// Whether byte `offset` (0x40..0x100) is outside every standard
/// capability structure (or in a vendor-specific capability's body).
fn device_specific(cfg: &mut impl ConfigRead, offset: u16) -> u8 {
    for cap in capabilities(cfg) {
        if (cap.start..cap.end).contains(&offset) {
            return if cap.id == CAP_VENDOR && offset >= cap.start + 3 {
                0xff
            } else {
                0
            };
        }
    }
    0xff
}

/// One capability structure in the legacy list: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRange {
    pub id: u8,
    pub start: u16,
    pub end: u16,
}

/// The function's legacy capabilities, with the extent of each.
///
/// Sizes come from the structure where it says (MSI's control word, the
/// vendor capability's length byte) and from the specification otherwise;
/// a capability of unknown size is taken to extend to the next one above
/// it (or to the end of the legacy space), so nothing inside an unknown
/// structure is writable.
pub fn capabilities(cfg: &mut impl ConfigRead) -> heapless::Vec<CapRange, MAX_CAPS> {
    let mut found: heapless::Vec<(u8, u16), MAX_CAPS> = heapless::Vec::new();
    if cfg.read(0x06, 2) & (1 << 4) != 0 {
        let mut at = (cfg.read(0x34, 1) & 0xfc) as u16;
        while at >= 0x40 && found.len() < MAX_CAPS && !found.iter().any(|&(_, a)| a == at) {
            let id = cfg.read(at, 1) as u8;
            let _ = found.push((id, at));
            at = (cfg.read(at + 1, 1) & 0xfc) as u16;
        }
    }
    let mut out = heapless::Vec::new();
    for &(id, start) in &found {
        let next = found
            .iter()
            .map(|&(_, a)| a)
            .filter(|&a| a > start)
            .min()
            .unwrap_or(0x100);
        let len = match id {
            CAP_PM => 8,
            CAP_MSI => msi_len(cfg.read(start + 2, 2) as u16),
            CAP_PCIE => 0x3c,
            CAP_MSIX => 12,
            CAP_VENDOR => (cfg.read(start + 2, 1) as u16).max(3),
            _ => next - start,
        };
        let _ = out.push(CapRange {
            id,
            start,
            end: (start + len).min(0x100),
        });
    }
    out
}

/// Bytes in an MSI capability with message control `control`.
pub fn msi_len(control: u16) -> u16 {
    let wide = control & (1 << 7) != 0;
    let masking = control & (1 << 8) != 0;
    10 + if wide { 4 } else { 0 } + if masking { 10 } else { 0 }
}

/// Why a config write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The first byte no bit of which a driver may write.
    pub offset: u16,
}

/// The value to write for a driver's write of `value` (`width` bytes at
/// `offset`), given the current contents `current`: bits outside the
/// allow-list keep their current value. Refused if any byte is entirely
/// the kernel's.
pub fn merge_write(
    cfg: &mut impl ConfigRead,
    offset: u16,
    width: u8,
    value: u32,
    current: u32,
) -> Result<u32, Refused> {
    let mut merged = 0u32;
    for i in 0..u16::from(width) {
        let mask = writable_bits(cfg, offset + i);
        if mask == 0 {
            return Err(Refused { offset: offset + i });
        }
        let shift = 8 * u32::from(i);
        let (v, c) = ((value >> shift) as u8, (current >> shift) as u8);
        merged |= u32::from((c & !mask) | (v & mask)) << shift;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A type-0 header with the capability list bit and `pointer` at 0x34.
    fn space(pointer: u8) -> [u8; 256] {
        let mut c = [0u8; 256];
        c[0x06] = 1 << 4;
        c[0x34] = pointer;
        c
    }

    fn reader(c: &[u8; 256]) -> impl FnMut(u16, u8) -> u32 + '_ {
        |offset, width| {
            (0..u16::from(width)).fold(0, |v, i| {
                v | (u32::from(c[usize::from(offset + i)]) << (8 * i))
            })
        }
    }

    #[test]
    fn the_list_ends_at_a_null_pointer_and_pointers_are_dword_aligned() {
        // The pointer's two low bits are reserved: 0x43 means 0x40.
        let mut c = space(0x43);
        c[0x40..0x42].copy_from_slice(&[CAP_PM, 0x00]);
        let caps = capabilities(&mut reader(&c));
        assert_eq!(
            caps.as_slice(),
            [CapRange {
                id: CAP_PM,
                start: 0x40,
                end: 0x48
            }]
        );
        // Byte 0x48 is outside the capability: the driver's.
        assert_eq!(writable_bits(&mut reader(&c), 0x48), 0xff);
        assert_eq!(writable_bits(&mut reader(&c), 0x47), 0);
    }

    #[test]
    fn a_looping_list_is_followed_once() {
        let mut c = space(0x40);
        c[0x40..0x42].copy_from_slice(&[CAP_MSI, 0x50]);
        c[0x50..0x52].copy_from_slice(&[CAP_PCIE, 0x40]);
        let caps = capabilities(&mut reader(&c));
        let ids: std::vec::Vec<u8> = caps.iter().map(|c| c.id).collect();
        assert_eq!(ids, [CAP_MSI, CAP_PCIE]);
    }

    #[test]
    fn without_the_list_bit_there_are_no_capabilities() {
        let mut c = space(0x40);
        c[0x06] = 0;
        c[0x40..0x42].copy_from_slice(&[CAP_MSI, 0x00]);
        assert!(capabilities(&mut reader(&c)).is_empty());
        assert_eq!(writable_bits(&mut reader(&c), 0x40), 0xff);
    }

    #[test]
    fn status_errors_cache_line_and_latency_are_writable() {
        let c = space(0);
        let mut r = reader(&c);
        assert_eq!(
            writable_bits(&mut r, 0x06),
            0,
            "status low byte is read-only"
        );
        assert_eq!(writable_bits(&mut r, 0x07), STATUS_HIGH_W1C);
        assert_eq!(writable_bits(&mut r, 0x0c), 0xff);
        assert_eq!(writable_bits(&mut r, 0x0d), 0xff);
        assert_eq!(writable_bits(&mut r, 0x0e), 0);
        // Writing 1s to the error bits clears them; the read-only bits of
        // the byte keep their value.
        assert_eq!(merge_write(&mut r, 0x07, 1, 0xff, 0x06), Ok(0xff));
        assert_eq!(
            merge_write(&mut r, 0x06, 2, 0xf900, 0x0610),
            Err(Refused { offset: 0x06 })
        );
    }

    /// The first byte at or after 0x40 a driver may write, with one
    /// capability `id` at 0x40 (its byte 2 set to `byte2`).
    fn first_free(id: u8, byte2: u8) -> u16 {
        let mut c = space(0x40);
        c[0x40..0x43].copy_from_slice(&[id, 0x00, byte2]);
        (0x40..0x100)
            .find(|&o| writable_bits(&mut reader(&c), o) != 0)
            .unwrap_or(0x100)
    }

    #[test]
    fn each_capability_covers_its_architectural_size() {
        assert_eq!(first_free(CAP_PM, 0), 0x48);
        assert_eq!(first_free(CAP_MSI, 0x80), 0x4e); // 64-bit MSI
        assert_eq!(first_free(CAP_PCIE, 0), 0x7c);
        assert_eq!(first_free(CAP_MSIX, 0), 0x4c);
        // A vendor capability's length is its byte 2; its body (from byte
        // 3) is the driver's.
        assert_eq!(first_free(CAP_VENDOR, 0x10), 0x43);
        let mut c = space(0x40);
        c[0x40..0x43].copy_from_slice(&[CAP_VENDOR, 0x00, 0x10]);
        assert_eq!(
            capabilities(&mut reader(&c)).as_slice(),
            [CapRange {
                id: CAP_VENDOR,
                start: 0x40,
                end: 0x50
            }]
        );
        // A capability of unknown size runs to the end of the legacy space.
        assert_eq!(first_free(0x0d, 0), 0x100);
    }

    #[test]
    fn an_unknown_capability_runs_to_the_next_one_above_it() {
        // Listed out of address order: unknown at 0x60, PM at 0x80, MSI-X
        // at 0x40. The unknown one ends where PM starts, not at MSI-X.
        let mut c = space(0x60);
        c[0x60..0x62].copy_from_slice(&[0x0d, 0x80]);
        c[0x80..0x82].copy_from_slice(&[CAP_PM, 0x40]);
        c[0x40..0x42].copy_from_slice(&[CAP_MSIX, 0x00]);
        let caps = capabilities(&mut reader(&c));
        assert_eq!(
            caps.as_slice(),
            [
                CapRange {
                    id: 0x0d,
                    start: 0x60,
                    end: 0x80
                },
                CapRange {
                    id: CAP_PM,
                    start: 0x80,
                    end: 0x88
                },
                CapRange {
                    id: CAP_MSIX,
                    start: 0x40,
                    end: 0x4c
                },
            ]
        );
    }

    #[test]
    fn bits_outside_the_allow_list_keep_their_value_in_every_byte() {
        let c = space(0);
        let mut r = reader(&c);
        // Fast back-to-back (command bit 9) is set and not the driver's;
        // the driver writes memory and bus master only.
        assert_eq!(merge_write(&mut r, 0x04, 2, 0x0006, 0x0200), Ok(0x0206));
        assert_eq!(merge_write(&mut r, 0x04, 2, 0xffff, 0x0000), Ok(0x0547));
        assert_eq!(
            merge_write(&mut r, 0x0c, 2, 0x1234, 0xffff),
            Ok(0x1234),
            "cache line size and latency timer are wholly the driver's"
        );
    }

    #[test]
    fn msi_size_follows_its_control_word() {
        assert_eq!(msi_len(0), 10);
        assert_eq!(msi_len(1 << 7), 14);
        assert_eq!(msi_len(1 << 8), 20);
        assert_eq!(msi_len((1 << 7) | (1 << 8)), 24);
    }
}
