//! Decoding the PVH `hvm_start_info` structure into a [`BootInfo`].
//!
//! A PVH loader (QEMU `-kernel`) enters with `EBX` = the physical address of
//! an `hvm_start_info`. It, the command line and the E820 map sit in memory
//! the map calls usable, so the kernel copies them out before allocating any
//! frame. This is that copy, pure code over [`PhysRead`] so host tests can
//! feed it QEMU's live layout, bad magic, truncation and random bytes.
//!
//! Layout (little-endian; Xen `start_info.h`): `hvm_start_info` is magic
//! u32 @0, version u32 @4, flags u32 @8, nr_modules u32 @12, modlist u64 @16,
//! cmdline u64 @24, rsdp u64 @32 and, from version 1, memmap u64 @40,
//! memmap_entries u32 @48, reserved u32 @52. A memory map entry is 24 bytes:
//! addr u64, size u64, E820 type u32, reserved u32.
//!
//! Choices: version 0 (no memory map) is an error, since Faultline cannot run
//! without one; later versions only append fields and are read as version 1.
//! The command line is cut at [`CMDLINE_MAX`] bytes (`cmdline_truncated`),
//! and bytes that are not UTF-8 are an error, not replaced: a command line
//! configures the kernel, and guessing at a mangled one is worse than refusing
//! it (a character split by truncation is dropped). More than [`MAX_REGIONS`]
//! entries, or one that wraps past 2^64, is an error; empty entries are
//! dropped. Modules are unused by Faultline and ignored.

use core::fmt;

use crate::info::{BootInfo, CMDLINE_MAX, MAX_REGIONS, MemoryKind, MemoryRegion};

/// `hvm_start_info.magic`: "xEn3" with the high bit of each byte set.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Bytes of `hvm_start_info` that version 1 defines.
pub const START_INFO_SIZE: usize = 56;
/// Bytes of one `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;

/// Read access to physical memory, as the boot environment provides it.
pub trait PhysRead {
    /// Fills `buf` with the bytes at `[paddr, paddr + buf.len())`, or fails
    /// with [`StartInfoError::Unreadable`] if any of them cannot be read.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), StartInfoError>;
}

/// Why the PVH `start_info` could not be turned into a [`BootInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// Physical memory at `paddr` (the first address of the failed read)
    /// could not be read, or the range wrapped past 2^64.
    Unreadable { paddr: u64 },
    /// `magic` was `found`, not [`START_INFO_MAGIC`]: `EBX` did not point at
    /// a `start_info`, or the loader is not PVH.
    BadMagic { found: u32 },
    /// Version 0 has no memory map fields.
    NoMemoryMap,
    /// `memmap_entries` is zero, or every entry is empty.
    EmptyMemoryMap,
    /// The loader's map has `entries` entries, more than [`MAX_REGIONS`].
    TooManyRegions { entries: u32 },
    /// Memory map entry `index` (`base` + `len`) ends past 2^64.
    RegionWraps { index: usize, base: u64, len: u64 },
    /// The command line is not UTF-8 from byte `offset` on.
    CmdlineNotUtf8 { offset: usize },
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PVH: &str = "PVH start_info";
        match *self {
            Self::Unreadable { paddr } => write!(f, "cannot read physical memory at {paddr:#x}"),
            Self::BadMagic { found } => write!(f, "{PVH} magic is {found:#010x}, not 0x336ec578"),
            Self::NoMemoryMap => write!(f, "{PVH} version 0 carries no memory map"),
            Self::EmptyMemoryMap => write!(f, "{PVH} memory map has no non-empty entries"),
            Self::TooManyRegions { entries } => {
                write!(
                    f,
                    "{PVH} memory map has {entries} entries, over {MAX_REGIONS}"
                )
            }
            Self::RegionWraps { index, base, len } => {
                write!(
                    f,
                    "{PVH} memory map entry {index} ({base:#x}+{len:#x}) wraps"
                )
            }
            Self::CmdlineNotUtf8 { offset } => {
                write!(f, "kernel command line is not UTF-8 at byte {offset}")
            }
        }
    }
}

impl core::error::Error for StartInfoError {}

/// The `N` bytes at `at`; callers index within fixed-size buffers.
fn le<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut raw = [0u8; N];
    raw.copy_from_slice(&bytes[at..at + N]);
    raw
}

/// `base + offset`, or [`StartInfoError::Unreadable`] at `base` if it wraps.
fn offset(base: u64, offset: u64) -> Result<u64, StartInfoError> {
    base.checked_add(offset)
        .ok_or(StartInfoError::Unreadable { paddr: base })
}

/// Copies the PVH `start_info` at `start_info_paddr` and everything it
/// points to into a [`BootInfo`]; `entry_tsc` is only recorded.
pub fn read_start_info(
    mem: &impl PhysRead,
    start_info_paddr: u64,
    entry_tsc: u64,
) -> Result<BootInfo, StartInfoError> {
    // Read the version-0 part first: a version-0 structure is only 40 bytes
    // long and what follows it need not be readable.
    let mut header = [0u8; START_INFO_SIZE];
    mem.read(start_info_paddr, &mut header[..40])?;
    let magic = u32::from_le_bytes(le(&header, 0));
    if magic != START_INFO_MAGIC {
        return Err(StartInfoError::BadMagic { found: magic });
    }
    let version = u32::from_le_bytes(le(&header, 4));
    if version == 0 {
        return Err(StartInfoError::NoMemoryMap);
    }
    mem.read(offset(start_info_paddr, 40)?, &mut header[40..])?;

    let cmdline_paddr = u64::from_le_bytes(le(&header, 24));
    let rsdp_paddr = u64::from_le_bytes(le(&header, 32));
    let memmap_paddr = u64::from_le_bytes(le(&header, 40));
    let memmap_entries = u32::from_le_bytes(le(&header, 48));

    let mut info = BootInfo {
        rsdp_paddr: (rsdp_paddr != 0).then_some(rsdp_paddr),
        entry_tsc,
        start_info_paddr,
        ..BootInfo::default()
    };
    read_memory_map(mem, memmap_paddr, memmap_entries, &mut info)?;
    if cmdline_paddr != 0 {
        info.cmdline_truncated = read_cmdline(mem, cmdline_paddr, &mut info.cmdline)?;
    }
    Ok(info)
}

fn read_memory_map(
    mem: &impl PhysRead,
    memmap_paddr: u64,
    entries: u32,
    info: &mut BootInfo,
) -> Result<(), StartInfoError> {
    if entries as usize > MAX_REGIONS {
        return Err(StartInfoError::TooManyRegions { entries });
    }
    for index in 0..entries as usize {
        // Cannot overflow: index < 128.
        let paddr = offset(memmap_paddr, (index * MEMMAP_ENTRY_SIZE) as u64)?;
        let mut raw = [0u8; MEMMAP_ENTRY_SIZE];
        mem.read(paddr, &mut raw)?;
        let base = u64::from_le_bytes(le(&raw, 0));
        let len = u64::from_le_bytes(le(&raw, 8));
        let kind = MemoryKind::from_e820(u32::from_le_bytes(le(&raw, 16)));
        if len == 0 {
            continue;
        }
        if base.checked_add(len).is_none() {
            return Err(StartInfoError::RegionWraps { index, base, len });
        }
        // Cannot fail: at most MAX_REGIONS entries were admitted above.
        let _ = info.memory_map.push(MemoryRegion { base, len, kind });
    }
    if info.memory_map.is_empty() {
        return Err(StartInfoError::EmptyMemoryMap);
    }
    Ok(())
}

/// Reads the NUL-terminated command line into `out`; returns whether it was
/// cut at [`CMDLINE_MAX`] bytes. It is read a byte at a time so nothing past
/// the NUL is touched, and one byte past the limit is looked at, so a command
/// line of exactly `CMDLINE_MAX` bytes is not reported as truncated.
fn read_cmdline(
    mem: &impl PhysRead,
    paddr: u64,
    out: &mut heapless::String<CMDLINE_MAX>,
) -> Result<bool, StartInfoError> {
    let mut bytes = [0u8; CMDLINE_MAX + 1];
    let mut len = 0;
    while len < bytes.len() {
        mem.read(offset(paddr, len as u64)?, &mut bytes[len..=len])?;
        if bytes[len] == 0 {
            break;
        }
        len += 1;
    }
    let truncated = len > CMDLINE_MAX;
    let text = &bytes[..len.min(CMDLINE_MAX)];
    let valid = match core::str::from_utf8(text) {
        Ok(s) => s,
        // A character cut in half by truncation is dropped, not an error.
        Err(e) if truncated && e.error_len().is_none() => {
            core::str::from_utf8(&text[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(e) => {
            let offset = e.valid_up_to();
            return Err(StartInfoError::CmdlineNotUtf8 { offset });
        }
    };
    out.clear();
    // Cannot fail: `valid` is at most CMDLINE_MAX bytes.
    let _ = out.push_str(valid);
    Ok(truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use StartInfoError as E;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Sparse byte-addressed memory; bytes never written are unreadable.
    #[derive(Default)]
    struct FakeMemory(BTreeMap<u64, u8>);

    impl FakeMemory {
        fn put(&mut self, paddr: u64, bytes: &[u8]) {
            self.0.extend((paddr..).zip(bytes.iter().copied()));
        }
    }

    impl PhysRead for FakeMemory {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), StartInfoError> {
            for (i, b) in (0..).zip(buf.iter_mut()) {
                let byte = paddr.checked_add(i).and_then(|a| self.0.get(&a));
                *b = *byte.ok_or(E::Unreadable { paddr })?;
            }
            Ok(())
        }
    }

    // Where QEMU put things in the live boot of reference §6.
    const START: u64 = 0x21e0;
    const CMDLINE: u64 = 0x11c0;
    const MEMMAP: u64 = 0x5a8;
    const RSDP: u64 = 0xf5250;
    const KIB: u64 = 1024;

    /// The live E820 of a 256 MiB q35 guest (reference §6).
    #[rustfmt::skip]
    const LIVE_E820: [(u64, u64, u32); 9] = [
        (0, 0x9fc00, 1), (0x9fc00, KIB, 2), (0xf0000, 64 * KIB, 2),
        (0x10_0000, 0xffe_0000 - 0x10_0000, 1), (0xffe_0000, 128 * KIB, 2),
        (0xb000_0000, 256 << 20, 2), (0xfed1_c000, 16 * KIB, 2),
        (0xfffc_0000, 256 * KIB, 2), (0xfd_0000_0000, 12 << 30, 2),
    ];

    fn region((base, len, ty): (u64, u64, u32)) -> MemoryRegion {
        let kind = MemoryKind::from_e820(ty);
        MemoryRegion { base, len, kind }
    }

    fn header(version: u32, cmdline: u64, memmap: u64, entries: u32) -> Vec<u8> {
        let head = [START_INFO_MAGIC, version, 0, 0, 0, 0].map(u32::to_le_bytes);
        let addresses = [cmdline, RSDP, memmap].map(u64::to_le_bytes);
        let tail = [entries, 0].map(u32::to_le_bytes);
        [head.concat(), addresses.concat(), tail.concat()].concat()
    }

    fn memory(cmdline: &[u8], e820: &[(u64, u64, u32)]) -> FakeMemory {
        let mut mem = FakeMemory::default();
        mem.put(START, &header(1, CMDLINE, MEMMAP, e820.len() as u32));
        mem.put(CMDLINE, cmdline);
        for (i, &(base, len, ty)) in (0..).zip(e820) {
            let raw = [base, len, u64::from(ty)].map(u64::to_le_bytes).concat();
            mem.put(MEMMAP + i * MEMMAP_ENTRY_SIZE as u64, &raw);
        }
        mem
    }

    fn decode(mem: &FakeMemory) -> Result<BootInfo, StartInfoError> {
        read_start_info(mem, START, 1234)
    }

    fn map_error(e820: &[(u64, u64, u32)]) -> StartInfoError {
        decode(&memory(b"\0", e820)).unwrap_err()
    }

    /// (length, truncated) of the command line decoded from `bytes`.
    fn cmdline(bytes: &[u8]) -> (usize, bool) {
        let info = decode(&memory(bytes, &LIVE_E820)).unwrap();
        (info.cmdline.len(), info.cmdline_truncated)
    }

    #[test]
    fn decodes_live_qemu_start_info() {
        let info = decode(&memory(b"console=ttyS0 scenario=edu\0", &LIVE_E820)).unwrap();
        assert_eq!(info.cmdline.as_str(), "console=ttyS0 scenario=edu");
        assert!(!info.cmdline_truncated);
        assert_eq!(info.rsdp_paddr, Some(RSDP));
        assert_eq!((info.entry_tsc, info.start_info_paddr), (1234, START));
        assert_eq!(info.memory_map.as_slice(), LIVE_E820.map(region).as_slice());
    }

    #[test]
    fn zero_rsdp_no_cmdline_later_version_and_empty_regions() {
        let mut mem = memory(b"\0", &[(0, 0, 1), (0x1000, 0x1000, 1)]);
        let mut h = header(2, 0, MEMMAP, 2);
        h[32..40].fill(0);
        mem.put(START, &h);
        let info = decode(&mem).unwrap();
        assert_eq!((info.rsdp_paddr, info.cmdline.as_str()), (None, ""));
        assert_eq!(info.memory_map.len(), 1);
    }

    #[test]
    fn bad_magic_and_version_zero() {
        let mut mem = memory(b"\0", &LIVE_E820);
        mem.put(START, &0xdead_beef_u32.to_le_bytes());
        let err = decode(&mem).unwrap_err();
        assert_eq!(err, E::BadMagic { found: 0xdead_beef });
        let mut mem = FakeMemory::default();
        mem.put(START, &header(0, CMDLINE, 0, 0)[..40]); // only 40 bytes exist
        let err = decode(&mem).unwrap_err();
        assert_eq!(err, E::NoMemoryMap);
        let text = "PVH start_info version 0 carries no memory map";
        assert_eq!(err.to_string(), text);
    }

    #[test]
    fn cmdline_truncation_and_utf8() {
        assert_eq!(cmdline(&[b'a'; CMDLINE_MAX + 100]), (CMDLINE_MAX, true));
        let exact = [[b'b'; CMDLINE_MAX].as_slice(), b"\0"].concat();
        assert_eq!(cmdline(&exact), (CMDLINE_MAX, false));
        // A two-byte character straddling the limit is dropped, not an error.
        let split = [[b'c'; CMDLINE_MAX - 1].as_slice(), "é and more".as_bytes()].concat();
        assert_eq!(cmdline(&split), (CMDLINE_MAX - 1, true));
        let err = decode(&memory(b"ok \xff\xfe\0", &LIVE_E820)).unwrap_err();
        assert_eq!(err, E::CmdlineNotUtf8 { offset: 3 });
    }

    #[test]
    fn unreadable_memory() {
        let empty = FakeMemory::default();
        assert_eq!(decode(&empty).unwrap_err(), E::Unreadable { paddr: START });
        assert!(read_start_info(&empty, u64::MAX - 8, 0).is_err());
        let mut mem = memory(b"\0", &LIVE_E820);
        mem.put(START, &header(1, CMDLINE, 0x9_0000, 9)); // map points nowhere
        assert_eq!(decode(&mem).unwrap_err(), E::Unreadable { paddr: 0x9_0000 });
        let (unterminated, paddr) = (memory(b"no terminator", &LIVE_E820), CMDLINE + 13);
        assert_eq!(decode(&unterminated).unwrap_err(), E::Unreadable { paddr });
    }

    #[test]
    fn too_many_empty_and_wrapping_maps() {
        let entries = MAX_REGIONS as u32 + 1;
        let many = [(0x1000, 0x1000, 1); MAX_REGIONS + 1];
        assert_eq!(map_error(&many), E::TooManyRegions { entries });
        let full = decode(&memory(b"\0", &many[1..])).unwrap();
        assert_eq!(full.memory_map.len(), MAX_REGIONS);
        assert_eq!(map_error(&[]), E::EmptyMemoryMap);
        assert_eq!(map_error(&[(0, 0, 1)]), E::EmptyMemoryMap);
        let (index, base, len) = (1, u64::MAX - 5, 0x10);
        let err = map_error(&[(0, 0x1000, 1), (base, len, 2)]);
        assert_eq!(err, E::RegionWraps { index, base, len });
        assert!(err.to_string().contains("entry 1"));
    }

    proptest! {
        /// Arbitrary bytes everywhere the decoder might look: never a panic.
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..0x400),
            start in 0u64..0x400,
            (magic, entries) in (any::<bool>(), 0u32..8),
        ) {
            let mut mem = FakeMemory::default();
            mem.put(0, &bytes);
            if magic {
                mem.put(start, &START_INFO_MAGIC.to_le_bytes());
                mem.put(start + 48, &entries.to_le_bytes());
            }
            let _ = read_start_info(&mem, start, 0).map_err(|e| e.to_string());
        }

        /// Well-formed maps decode to exactly their non-empty entries.
        #[test]
        fn maps_round_trip(
            e820 in proptest::collection::vec((any::<u32>(), 0u64..1 << 40, 1u32..9), 1..MAX_REGIONS),
        ) {
            let e820: Vec<_> = e820.into_iter().map(|(b, l, t)| (u64::from(b) << 12, l, t)).collect();
            let want: Vec<_> = e820.iter().filter(|e| e.1 != 0).copied().map(region).collect();
            match decode(&memory(b"x\0", &e820)) {
                Ok(info) => prop_assert_eq!(info.memory_map.as_slice(), want.as_slice()),
                Err(e) => prop_assert!(e == E::EmptyMemoryMap && want.is_empty()),
            }
        }
    }
}
