//! The model's physical memory, with a CPU cache in front of it.
//!
//! Frames are handed out zeroed and 4 KiB-aligned. When the unit does not
//! snoop (ECAP.C = 0), CPU writes land in dirty 64-byte cache lines that the
//! unit's table walks do not see until [`Memory::flush`] writes them back:
//! a driver that forgets to flush a table entry walks stale memory and the
//! test faults. The invalidation queue and wait-status writes are coherent
//! (the spec snoops them), so they use the CPU view; the unit's own writes
//! (wait status, page request descriptors) are snooped too and update
//! both memory and any cached line. A new frame is zero
//! for the CPU but, on a non-snooping unit, stale for the walk until the
//! driver flushes it. Touching memory that is
//! not an allocated frame (or a freed one) is a driver bug and panics.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const FRAME: u64 = 4096;
const LINE: u64 = 64;
/// What a non-coherent unit sees in a new frame that was not flushed.
const STALE: u8 = 0xa5;

pub(crate) struct Memory {
    frames: BTreeMap<u64, Box<[u8; 4096]>>,
    dirty: BTreeMap<u64, [u8; 64]>,
    pub coherent: bool,
    next: u64,
    free: Vec<u64>,
    pub budget: Option<usize>,
    pub flushes: usize,
}

impl Memory {
    pub fn new(coherent: bool) -> Self {
        Self {
            frames: BTreeMap::new(),
            dirty: BTreeMap::new(),
            coherent,
            next: 0x4000_0000,
            free: Vec::new(),
            budget: None,
            flushes: 0,
        }
    }

    pub fn frames_in_use(&self) -> usize {
        self.frames.len()
    }

    pub fn alloc(&mut self) -> Option<u64> {
        if let Some(left) = self.budget.as_mut() {
            if *left == 0 {
                return None;
            }
            *left -= 1;
        }
        let frame = self.free.pop().unwrap_or_else(|| {
            self.next += FRAME;
            self.next - FRAME
        });
        if self.coherent {
            self.frames.insert(frame, Box::new([0; 4096]));
        } else {
            // Zeroed by the CPU, but the zeros sit in its cache: memory
            // still holds what was there before until the frame is flushed.
            self.frames.insert(frame, Box::new([STALE; 4096]));
            for line in (frame..frame + FRAME).step_by(LINE as usize) {
                self.dirty.insert(line, [0; 64]);
            }
        }
        Some(frame)
    }

    pub fn free(&mut self, frame: u64) {
        assert!(
            self.frames.remove(&frame).is_some(),
            "model: freeing {frame:#x}, which is not an allocated frame"
        );
        self.dirty.retain(|line, _| line & !(FRAME - 1) != frame);
        self.free.push(frame);
    }

    fn locate(&self, paddr: u64) -> (u64, usize) {
        assert!(
            paddr.is_multiple_of(8),
            "model: unaligned access at {paddr:#x}"
        );
        let frame = paddr & !(FRAME - 1);
        assert!(
            self.frames.contains_key(&frame),
            "model: access to {paddr:#x}, outside every allocated frame"
        );
        (frame, (paddr - frame) as usize)
    }

    /// What the CPU reads.
    pub fn cpu_read(&self, paddr: u64) -> u64 {
        let (frame, offset) = self.locate(paddr);
        let line = paddr & !(LINE - 1);
        let bytes = match self.dirty.get(&line) {
            Some(cached) => &cached[(paddr - line) as usize..][..8],
            None => &self.frames[&frame][offset..offset + 8],
        };
        u64::from_le_bytes(bytes.try_into().unwrap())
    }

    /// A CPU write: into a dirty cache line unless the unit snoops.
    pub fn cpu_write(&mut self, paddr: u64, value: u64) {
        let (frame, offset) = self.locate(paddr);
        if self.coherent {
            self.frames.get_mut(&frame).unwrap()[offset..offset + 8]
                .copy_from_slice(&value.to_le_bytes());
            return;
        }
        let line = paddr & !(LINE - 1);
        let memory = &self.frames[&frame];
        let start = (line - frame) as usize;
        let cached = self
            .dirty
            .entry(line)
            .or_insert_with(|| memory[start..start + 64].try_into().unwrap());
        let at = (paddr - line) as usize;
        cached[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// Writes dirty lines in `paddr..paddr + len` back to memory.
    pub fn flush(&mut self, paddr: u64, len: usize) {
        self.flushes += 1;
        let start = paddr & !(LINE - 1);
        let end = paddr + len as u64;
        let lines: Vec<u64> = self.dirty.range(start..end).map(|(l, _)| *l).collect();
        for line in lines {
            let data = self.dirty.remove(&line).unwrap();
            let frame = line & !(FRAME - 1);
            let at = (line - frame) as usize;
            self.frames.get_mut(&frame).unwrap()[at..at + 64].copy_from_slice(&data);
        }
    }

    /// What the unit's table walk reads: memory, not the CPU cache. `None`
    /// outside allocated frames (a table pointer to nowhere).
    pub fn device_read(&self, paddr: u64) -> Option<u64> {
        let frame = paddr & !(FRAME - 1);
        let offset = (paddr - frame) as usize;
        let bytes = &self.frames.get(&frame)?[offset..offset + 8];
        Some(u64::from_le_bytes(bytes.try_into().unwrap()))
    }

    /// A snooped 4-byte device write (a wait descriptor's status).
    pub fn device_write32(&mut self, paddr: u64, value: u32) {
        assert!(paddr.is_multiple_of(4));
        self.device_write_bytes(paddr, &value.to_le_bytes(), "status");
    }

    /// A snooped 8-byte device write (`what`: a page request descriptor).
    pub fn device_write(&mut self, paddr: u64, value: u64, what: &str) {
        assert!(paddr.is_multiple_of(8));
        self.device_write_bytes(paddr, &value.to_le_bytes(), what);
    }

    /// Writes memory and, the write being snooped, any cached copy.
    fn device_write_bytes(&mut self, paddr: u64, bytes: &[u8], what: &str) {
        let frame = paddr & !(FRAME - 1);
        let offset = (paddr - frame) as usize;
        let memory = self
            .frames
            .get_mut(&frame)
            .unwrap_or_else(|| panic!("model: {what} write to unallocated {paddr:#x}"));
        memory[offset..offset + bytes.len()].copy_from_slice(bytes);
        let line = paddr & !(LINE - 1);
        if let Some(cached) = self.dirty.get_mut(&line) {
            let at = (paddr - line) as usize;
            cached[at..at + bytes.len()].copy_from_slice(bytes);
        }
    }
}
