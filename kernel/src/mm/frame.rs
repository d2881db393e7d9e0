//! The physical frame allocator: 4 KiB frames from a [`PhysMap`]'s
//! allocatable ranges, one bitmap per range.
//!
//! A bitmap (one bit per frame, set = free) is small (32 KiB per GiB), has no
//! per-frame metadata to corrupt, answers "is this frame free?" exactly (so
//! double frees and foreign frames are caught, not absorbed), and finds
//! physically contiguous, aligned runs, which DMA buffers and IOMMU tables
//! need. Single allocations stay fast through a per-range hint: the word where
//! the last search succeeded, so a fresh allocator hands out frames in address
//! order without rescanning the full words behind it.
//!
//! The bitmap lives in RAM the allocator itself manages, so it is set up in
//! two steps: [`plan_bitmap`] picks a place at the start of the lowest
//! allocatable range big enough and excludes it from the map; the kernel then
//! makes that memory addressable (the direct map) and passes it as `storage`
//! to [`FrameAllocator::new`], which initialises every word.

use core::fmt;

use heapless::Vec;

use super::PAGE_SIZE;
use super::memory_map::{MAX_PHYS_REGIONS, PhysMap, PhysMapError, PhysRange};
use super::paging::FrameSource;

const PAGE: u64 = PAGE_SIZE as u64;

/// One 4 KiB physical frame, named by its (aligned) start address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysFrame(u64);

impl PhysFrame {
    /// The frame holding `paddr`.
    pub const fn containing(paddr: u64) -> Self {
        Self(paddr & !(PAGE - 1))
    }

    /// The frame starting at `paddr`, or `None` if `paddr` is not aligned.
    pub const fn from_start(paddr: u64) -> Option<Self> {
        if paddr.is_multiple_of(PAGE) {
            Some(Self(paddr))
        } else {
            None
        }
    }

    /// First byte of the frame.
    pub const fn start(self) -> u64 {
        self.0
    }

    /// The frame number (`start / 4096`).
    pub const fn number(self) -> u64 {
        self.0 / PAGE
    }
}

/// Why the frame allocator refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// `storage` has `provided` words; the map needs `needed`.
    StorageTooSmall { needed: usize, provided: usize },
    /// The frame at `paddr` is already free.
    DoubleFree { paddr: u64 },
    /// The frame at `paddr` is not one this allocator manages.
    ForeignFrame { paddr: u64 },
    /// No allocatable range can hold a bitmap of `bytes`.
    NoRoomForBitmap { bytes: u64 },
    /// Excluding the bitmap from the map failed.
    Map(PhysMapError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::StorageTooSmall { needed, provided } => write!(
                f,
                "frame bitmap needs {needed} words, storage has {provided}"
            ),
            Self::DoubleFree { paddr } => write!(f, "frame {paddr:#x} freed twice"),
            Self::ForeignFrame { paddr } => {
                write!(f, "frame {paddr:#x} is not managed by the allocator")
            }
            Self::NoRoomForBitmap { bytes } => {
                write!(
                    f,
                    "no allocatable range holds the {bytes}-byte frame bitmap"
                )
            }
            Self::Map(e) => write!(f, "placing the frame bitmap: {e}"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Where [`plan_bitmap`] put the frame bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitmapPlan {
    /// Physical address of the first word (page-aligned).
    pub paddr: u64,
    /// Bytes set aside (whole pages, now excluded from the map).
    pub bytes: u64,
    /// Words [`FrameAllocator::new`] needs for the map as it now is.
    pub words: usize,
}

/// Picks a home for the frame bitmap at the start of the lowest allocatable
/// range that can hold it, and excludes it from `map`.
///
/// Excluding a range can only lower the words needed (the cut is at a range
/// start, so no range splits), so the plan's `words` always fit its `bytes`.
pub fn plan_bitmap(map: &mut PhysMap) -> Result<BitmapPlan, FrameError> {
    let words = FrameAllocator::bitmap_words_needed(map);
    let bytes = (words as u64 * 8).div_ceil(PAGE).max(1) * PAGE;
    let home = map.allocatable().iter().find(|r| r.len() >= bytes);
    let paddr = home.ok_or(FrameError::NoRoomForBitmap { bytes })?.start;
    map.exclude(PhysRange::from_base_len(paddr, bytes))
        .map_err(FrameError::Map)?;
    let words = FrameAllocator::bitmap_words_needed(map);
    Ok(BitmapPlan {
        paddr,
        bytes,
        words,
    })
}

/// One allocatable range and its slice of the bitmap.
#[derive(Clone, Copy, Debug)]
struct Span {
    /// Frame number of the first frame.
    first: u64,
    /// Frames in the range.
    frames: u64,
    /// Index of the range's first word in the bitmap.
    word_base: usize,
    /// Free frames in the range.
    free: u64,
    /// Word (relative to `word_base`) where the next search starts.
    hint: usize,
}

impl Span {
    fn words(&self) -> usize {
        self.frames.div_ceil(64) as usize
    }

    /// Frames of the span that end at or below frame number `limit`.
    fn frames_below(&self, limit: u64) -> u64 {
        limit.saturating_sub(self.first).min(self.frames)
    }
}

/// Hands out 4 KiB physical frames; see the module documentation.
pub struct FrameAllocator<'a> {
    spans: Vec<Span, MAX_PHYS_REGIONS>,
    bits: &'a mut [u64],
    free: u64,
    total: u64,
}

impl<'a> FrameAllocator<'a> {
    /// Words of bitmap storage [`FrameAllocator::new`] needs for `map`.
    pub fn bitmap_words_needed(map: &PhysMap) -> usize {
        let frames = map.allocatable().iter().map(|r| r.len() / PAGE);
        frames.map(|f| f.div_ceil(64) as usize).sum()
    }

    /// An allocator with every allocatable frame of `map` free, keeping its
    /// bitmap in `storage` (at least [`Self::bitmap_words_needed`] words).
    pub fn new(map: &PhysMap, storage: &'a mut [u64]) -> Result<Self, FrameError> {
        let needed = Self::bitmap_words_needed(map);
        if storage.len() < needed {
            let provided = storage.len();
            return Err(FrameError::StorageTooSmall { needed, provided });
        }
        storage.fill(0);
        let mut spans = Vec::new();
        let mut word_base = 0;
        for range in map.allocatable() {
            let frames = range.len() / PAGE;
            let span = Span {
                first: range.start / PAGE,
                frames,
                word_base,
                free: frames,
                hint: 0,
            };
            let words = &mut storage[word_base..word_base + span.words()];
            words.fill(u64::MAX);
            if !frames.is_multiple_of(64) {
                words[words.len() - 1] = (1 << (frames % 64)) - 1;
            }
            word_base += span.words();
            // Cannot fail: a map has at most MAX_PHYS_REGIONS ranges.
            let _ = spans.push(span);
        }
        let total = spans.iter().map(|s| s.frames).sum();
        Ok(Self {
            spans,
            bits: storage,
            free: total,
            total,
        })
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames the allocator manages, free or not.
    pub fn total_frames(&self) -> u64 {
        self.total
    }

    /// Allocates one frame, lowest-addressed first from each range's hint.
    pub fn allocate(&mut self) -> Option<PhysFrame> {
        self.allocate_below(u64::MAX)
    }

    /// Allocates one frame that ends at or below physical address `limit`
    /// (e.g. `1 << 32` for devices that only address 32 bits).
    pub fn allocate_below(&mut self, limit: u64) -> Option<PhysFrame> {
        let limit = limit / PAGE;
        for s in 0..self.spans.len() {
            let span = self.spans[s];
            let usable = span.frames_below(limit);
            if span.free == 0 || usable == 0 {
                continue;
            }
            let hint = (span.hint as u64 * 64).min(usable);
            let found = self
                .first_with(s, true, hint, usable)
                .or_else(|| self.first_with(s, true, 0, hint));
            if let Some(index) = found {
                self.spans[s].hint = (index / 64) as usize;
                self.take(s, index, 1);
                return Some(PhysFrame((span.first + index) * PAGE));
            }
        }
        None
    }

    /// Allocates `count` physically contiguous frames whose first frame
    /// number is a multiple of `align_frames` (0 and 1 mean no alignment).
    /// Returns the first frame; `None` if `count` is 0 or no run fits.
    pub fn allocate_contiguous(&mut self, count: u64, align_frames: u64) -> Option<PhysFrame> {
        self.allocate_contiguous_below(count, align_frames, u64::MAX)
    }

    /// [`Self::allocate_contiguous`], with the whole run at or below `limit`.
    pub fn allocate_contiguous_below(
        &mut self,
        count: u64,
        align_frames: u64,
        limit: u64,
    ) -> Option<PhysFrame> {
        let align = align_frames.max(1);
        let limit = limit / PAGE;
        if count == 0 {
            return None;
        }
        for s in 0..self.spans.len() {
            let span = self.spans[s];
            if span.free < count {
                continue;
            }
            if let Some(start) = self.find_run(s, count, align, span.frames_below(limit)) {
                self.take(s, start, count);
                return Some(PhysFrame((span.first + start) * PAGE));
            }
        }
        None
    }

    /// The first index in `[0, usable)` of span `s` that starts `count` free
    /// frames and whose frame number is a multiple of `align`.
    fn find_run(&self, s: usize, count: u64, align: u64, usable: u64) -> Option<u64> {
        let first = self.spans[s].first;
        let mut start = first.checked_next_multiple_of(align)? - first;
        while start.checked_add(count)? <= usable {
            match self.first_with(s, false, start, start + count) {
                None => return Some(start),
                Some(used) => start = (first + used + 1).checked_next_multiple_of(align)? - first,
            }
        }
        None
    }

    /// Returns `frame` to the allocator.
    pub fn deallocate(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        self.deallocate_contiguous(frame, 1)
    }

    /// Returns `count` frames starting at `first`; either all are freed or,
    /// on error, none.
    pub fn deallocate_contiguous(
        &mut self,
        first: PhysFrame,
        count: u64,
    ) -> Result<(), FrameError> {
        let number = first.number();
        let foreign = FrameError::ForeignFrame {
            paddr: first.start(),
        };
        let s = self.span_of(number).ok_or(foreign)?;
        let span = self.spans[s];
        let index = number - span.first;
        if index.checked_add(count).is_none_or(|end| end > span.frames) {
            let paddr = (span.first + span.frames) * PAGE; // first frame past the range
            return Err(FrameError::ForeignFrame { paddr });
        }
        if let Some(free) = self.first_with(s, true, index, index + count) {
            let paddr = (span.first + free) * PAGE;
            return Err(FrameError::DoubleFree { paddr });
        }
        for i in index..index + count {
            let word = span.word_base + (i / 64) as usize;
            self.bits[word] |= 1 << (i % 64);
        }
        let span = &mut self.spans[s];
        span.free += count;
        span.hint = span.hint.min((index / 64) as usize);
        self.free += count;
        Ok(())
    }

    /// Whether `frame` is free: `None` if the allocator does not manage it.
    pub fn is_free(&self, frame: PhysFrame) -> Option<bool> {
        let s = self.span_of(frame.number())?;
        let index = frame.number() - self.spans[s].first;
        Some(self.bit(s, index))
    }

    fn span_of(&self, number: u64) -> Option<usize> {
        let s = self
            .spans
            .partition_point(|sp| sp.first <= number)
            .checked_sub(1)?;
        (number - self.spans[s].first < self.spans[s].frames).then_some(s)
    }

    fn bit(&self, s: usize, index: u64) -> bool {
        let word = self.spans[s].word_base + (index / 64) as usize;
        self.bits[word] & (1 << (index % 64)) != 0
    }

    /// The first frame index in `[from, to)` of span `s` whose bit equals
    /// `free`, scanning a word at a time.
    fn first_with(&self, s: usize, free: bool, from: u64, to: u64) -> Option<u64> {
        let base = self.spans[s].word_base;
        let mut index = from;
        while index < to {
            let raw = self.bits[base + (index / 64) as usize];
            let word = if free { raw } else { !raw };
            let masked = word & (u64::MAX << (index % 64));
            if masked != 0 {
                let found = index - index % 64 + u64::from(masked.trailing_zeros());
                return (found < to).then_some(found);
            }
            index = index - index % 64 + 64;
        }
        None
    }

    /// Marks `count` free frames from `index` of span `s` allocated.
    fn take(&mut self, s: usize, index: u64, count: u64) {
        let base = self.spans[s].word_base;
        for i in index..index + count {
            self.bits[base + (i / 64) as usize] &= !(1 << (i % 64));
        }
        self.spans[s].free -= count;
        self.free -= count;
    }
}

/// Page-table frames straight from the allocator. The page-table builder
/// clears each table itself, so the frame need not be zeroed here.
impl FrameSource for FrameAllocator<'_> {
    fn allocate_table(&mut self) -> Option<u64> {
        self.allocate().map(PhysFrame::start)
    }
}

/// Page-table frames from the allocator, all below a physical limit (before
/// the kernel's own direct map is live, only the first 4 GiB are reachable).
pub struct TableFramesBelow<'f, 'a> {
    /// The allocator to draw from.
    pub frames: &'f mut FrameAllocator<'a>,
    /// Every frame handed out ends at or below this physical address.
    pub limit: u64,
}

impl FrameSource for TableFramesBelow<'_, '_> {
    fn allocate_table(&mut self) -> Option<u64> {
        self.frames.allocate_below(self.limit).map(PhysFrame::start)
    }
}
