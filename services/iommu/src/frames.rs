//! The frame pool the driver core's tables and queues come from.
//!
//! The kernel hands out DMA memory in contiguous, zeroed chunks and never
//! takes it back, while the core allocates and frees single 4 KiB frames
//! (a detached domain's tables go back). The pool keeps the chunks it got
//! (virtual and physical base, at most 64 frames each) with a bitmap of
//! free frames, and translates the physical addresses the core uses into
//! the service's virtual addresses. Only bookkeeping lives here; the image
//! reads and writes the memory (`memory.rs`).

use heapless::Vec;

/// 4 KiB.
pub const FRAME: u64 = 4096;
/// Most chunks the pool keeps.
pub const MAX_CHUNKS: usize = 32;
/// Most frames in one chunk (one bit each in a `u64`).
pub const CHUNK_FRAMES: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    vaddr: u64,
    paddr: u64,
    frames: u32,
    /// Bit `i` set: frame `i` is free.
    free: u64,
}

impl Chunk {
    fn contains(&self, paddr: u64) -> bool {
        paddr >= self.paddr && paddr - self.paddr < u64::from(self.frames) * FRAME
    }
}

/// Why [`FramePool::add`] refused a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// [`MAX_CHUNKS`] chunks already.
    Full,
    /// Not 4 KiB-aligned, empty, or more than [`CHUNK_FRAMES`] frames.
    Malformed,
}

#[derive(Debug, Default)]
pub struct FramePool {
    chunks: Vec<Chunk, MAX_CHUNKS>,
}

impl FramePool {
    pub const fn new() -> Self {
        Self { chunks: Vec::new() }
    }

    /// Adds `frames` free frames at `vaddr`/`paddr`.
    pub fn add(&mut self, vaddr: u64, paddr: u64, frames: u32) -> Result<(), AddError> {
        if frames == 0
            || frames > CHUNK_FRAMES
            || !vaddr.is_multiple_of(FRAME)
            || !paddr.is_multiple_of(FRAME)
        {
            return Err(AddError::Malformed);
        }
        let free = if frames == 64 {
            u64::MAX
        } else {
            (1 << frames) - 1
        };
        self.chunks
            .push(Chunk {
                vaddr,
                paddr,
                frames,
                free,
            })
            .map_err(|_| AddError::Full)
    }

    /// Whether another chunk fits.
    pub fn can_grow(&self) -> bool {
        !self.chunks.is_full()
    }

    /// A free frame's physical address, now taken; `None` when none is free.
    pub fn take(&mut self) -> Option<u64> {
        let chunk = self.chunks.iter_mut().find(|c| c.free != 0)?;
        let i = chunk.free.trailing_zeros();
        chunk.free &= !(1 << i);
        Some(chunk.paddr + u64::from(i) * FRAME)
    }

    /// Gives a taken frame back; false if `paddr` is not a taken frame of
    /// the pool (a double free, or not ours).
    pub fn give_back(&mut self, paddr: u64) -> bool {
        if !paddr.is_multiple_of(FRAME) {
            return false;
        }
        let Some(chunk) = self.chunks.iter_mut().find(|c| c.contains(paddr)) else {
            return false;
        };
        let bit = 1 << ((paddr - chunk.paddr) / FRAME);
        if chunk.free & bit != 0 {
            return false;
        }
        chunk.free |= bit;
        true
    }

    /// Where the service sees physical address `paddr` of the pool.
    pub fn vaddr(&self, paddr: u64) -> Option<u64> {
        self.chunks
            .iter()
            .find(|c| c.contains(paddr))
            .map(|c| c.vaddr + (paddr - c.paddr))
    }

    /// Frames taken now.
    pub fn in_use(&self) -> u32 {
        self.chunks
            .iter()
            .map(|c| c.frames - c.free.count_ones())
            .sum()
    }
}
