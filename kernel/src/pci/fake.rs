//! An in-memory PCI configuration space for host tests, modelled on how
//! real (and QEMU's) config space behaves rather than on what the
//! enumerator happens to do: each function is 4 KiB of dwords with a
//! per-dword writable mask (so a BAR written with all-ones reads back its
//! size mask and read-only fields ignore writes) and a write-one-to-clear
//! mask (STATUS error bits); absent functions read all-ones.
//!
//! It also watches the enumerator: it records which buses were read, every
//! write, and each time a BAR was written with all-ones while its
//! function's memory or I/O decode was still on. It panics on a misaligned
//! or out-of-range offset, which the [`ConfigSpace`] contract forbids.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::config::{Bdf, ConfigSpace};

const DWORDS: usize = 1024;
const COMMAND_WRITABLE: u32 = 0x0547;
const STATUS_WRITE_ONE_TO_CLEAR: u32 = 0xf900 << 16;

/// One function's configuration space.
#[derive(Clone)]
pub struct FakeFunction {
    pub value: Vec<u32>,
    pub writable: Vec<u32>,
    pub clear_on_write_one: Vec<u32>,
}

impl FakeFunction {
    /// A type 0 function with memory, I/O and bus-master enabled.
    pub fn new(vendor: u16, device: u16) -> Self {
        let mut function = Self::raw(vec![0; DWORDS], vec![0; DWORDS]);
        function.value[0] = u32::from(vendor) | (u32::from(device) << 16);
        function.value[1] = 0x0007;
        function.writable[1] = COMMAND_WRITABLE;
        function.clear_on_write_one[1] = STATUS_WRITE_ONE_TO_CLEAR;
        function
    }

    /// A function with exactly these contents and writable masks.
    pub fn raw(value: Vec<u32>, writable: Vec<u32>) -> Self {
        assert_eq!((value.len(), writable.len()), (DWORDS, DWORDS));
        Self {
            value,
            writable,
            clear_on_write_one: vec![0; DWORDS],
        }
    }

    pub fn set32(mut self, offset: u16, value: u32) -> Self {
        self.value[usize::from(offset / 4)] = value;
        self
    }

    fn set8(mut self, offset: u16, byte: u8) -> Self {
        let (dword, shift) = (usize::from(offset / 4), (offset % 4) * 8);
        self.value[dword] = (self.value[dword] & !(0xff << shift)) | (u32::from(byte) << shift);
        self
    }

    pub fn class(self, base: u8, sub: u8, prog_if: u8, revision: u8) -> Self {
        let dword = u32::from_be_bytes([base, sub, prog_if, revision]);
        self.set32(0x08, dword)
    }

    pub fn header_type(self, header_type: u8) -> Self {
        self.set8(0x0e, header_type)
    }

    /// Sets STATUS bits (on top of what capabilities set).
    pub fn status(mut self, bits: u16) -> Self {
        self.value[1] |= u32::from(bits) << 16;
        self
    }

    pub fn interrupt(self, pin: u8, line: u8) -> Self {
        self.set8(0x3d, pin).set8(0x3c, line)
    }

    /// A type 1 header with these bus numbers (read-write, as on real bridges).
    pub fn bridge(mut self, primary: u8, secondary: u8, subordinate: u8) -> Self {
        self.writable[0x18 / 4] = 0x00ff_ffff;
        self.header_type(0x01).set32(
            0x18,
            u32::from_le_bytes([primary, secondary, subordinate, 0]),
        )
    }

    fn bar_slot(&mut self, index: u8, value: u32, writable: u32) {
        let dword = usize::from(0x10 / 4 + index);
        self.value[dword] = value;
        self.writable[dword] = writable;
    }

    pub fn io_bar(mut self, index: u8, base: u16, size: u16) -> Self {
        // A 16-bit I/O decoder: the upper half reads zero even after all-ones.
        self.bar_slot(index, u32::from(base) | 1, u32::from(!(size - 1)) & 0xfffc);
        self
    }

    pub fn mem32_bar(mut self, index: u8, base: u32, size: u32, prefetchable: bool) -> Self {
        let flags = u32::from(prefetchable) << 3;
        self.bar_slot(index, base | flags, !(size - 1) & 0xffff_fff0);
        self
    }

    pub fn mem64_bar(mut self, index: u8, base: u64, size: u64, prefetchable: bool) -> Self {
        let mask = !(size - 1);
        let flags = 0b100 | (u32::from(prefetchable) << 3);
        self.bar_slot(index, base as u32 | flags, mask as u32 & 0xffff_fff0);
        self.bar_slot(index + 1, (base >> 32) as u32, (mask >> 32) as u32);
        self
    }

    /// A legacy capability at `offset`; the first one also becomes the list head.
    pub fn capability(mut self, offset: u8, id: u8, next: u8, control: u16, body: &[u32]) -> Self {
        if self.value[0x34 / 4] & 0xff == 0 {
            self = self.set8(0x34, offset);
        }
        let at = u16::from(offset);
        self = self.status(1 << 4);
        self = self.set32(
            at,
            u32::from(id) | (u32::from(next) << 8) | (u32::from(control) << 16),
        );
        for (i, &dword) in body.iter().enumerate() {
            self = self.set32(at + 4 * (i as u16 + 1), dword);
        }
        self
    }

    /// An extended capability at `offset`.
    pub fn extended(mut self, offset: u16, id: u16, next: u16, body: &[u32]) -> Self {
        self = self.set32(offset, u32::from(id) | (1 << 16) | (u32::from(next) << 20));
        for (i, &dword) in body.iter().enumerate() {
            self = self.set32(offset + 4 * (i as u16 + 1), dword);
        }
        self
    }
}

/// A segment's worth of functions plus a record of how it was accessed.
#[derive(Default)]
pub struct FakeConfigSpace {
    pub functions: BTreeMap<Bdf, FakeFunction>,
    pub buses_read: RefCell<BTreeSet<u8>>,
    pub writes: Vec<(Bdf, u16, u32)>,
    pub sized_with_decode_on: Vec<(Bdf, u16)>,
}

impl FakeConfigSpace {
    pub fn with(mut self, bus: u8, device: u8, function: u8, contents: FakeFunction) -> Self {
        self.functions.insert(
            Bdf {
                bus,
                device,
                function,
            },
            contents,
        );
        self
    }

    /// The current contents of every function, for before/after comparisons.
    pub fn snapshot(&self) -> BTreeMap<Bdf, Vec<u32>> {
        self.functions
            .iter()
            .map(|(bdf, f)| (*bdf, f.value.clone()))
            .collect()
    }
}

fn check_offset(offset: u16) -> usize {
    assert!(
        offset.is_multiple_of(4) && offset < 4096,
        "bad config offset {offset:#x}"
    );
    usize::from(offset / 4)
}

impl ConfigSpace for FakeConfigSpace {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        let dword = check_offset(offset);
        self.buses_read.borrow_mut().insert(bdf.bus);
        self.functions
            .get(&bdf)
            .map_or(u32::MAX, |f| f.value[dword])
    }

    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) {
        let dword = check_offset(offset);
        self.writes.push((bdf, offset, value));
        let Some(f) = self.functions.get_mut(&bdf) else {
            return;
        };
        let is_bar = (0x10..0x28).contains(&offset) && f.writable[dword] != 0;
        if is_bar && value == u32::MAX && f.value[1] & 0b11 != 0 {
            self.sized_with_decode_on.push((bdf, offset));
        }
        let kept = f.value[dword] & !f.writable[dword];
        let written = (kept | (value & f.writable[dword])) & !(value & f.clear_on_write_one[dword]);
        f.value[dword] = written;
    }
}
