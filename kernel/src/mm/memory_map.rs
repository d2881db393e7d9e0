//! The normalised physical memory map and the ranges the kernel may allocate.
//!
//! Firmware E820 maps come unsorted, overlapping and with neighbouring entries
//! of the same kind; the frame allocator and the direct map want a clean
//! picture. [`PhysMap::new`] builds one by sweeping over every region
//! boundary: each elementary interval takes the kind of the *most
//! restrictive* region covering it, holes stay holes, and neighbours of the
//! same kind merge. Restrictiveness, least to most:
//!
//! `Usable` < `AcpiReclaimable` < `AcpiNvs` < `Persistent` < `Reserved` <
//! `Other(_)` < `Disabled` < `Unusable`
//!
//! so any non-usable kind wins over `Usable`; reclaimable ACPI data yields to
//! anything that must be preserved forever; kinds we cannot interpret are
//! treated as stricter than plain reserved; memory the firmware says is
//! broken or switched off wins over everything. (Linux instead lets the
//! higher E820 type number win; that would let "ACPI reclaimable" override
//! "reserved", which is the wrong way round for a kernel that reclaims.)
//!
//! The *allocatable* set is the usable regions, shrunk inward to whole 4 KiB
//! pages, minus exclusions the caller names (the first MiB, the kernel image,
//! the frame bitmap, ...), which are widened outward to whole pages.
//! Everything is fixed-capacity so it can be built before any allocator.

use core::fmt;

use faultline_boot::{MemoryKind, MemoryRegion};
use heapless::Vec;

use super::PAGE_SIZE;

/// Most regions (normalised) and most allocatable ranges a [`PhysMap`] keeps.
pub const MAX_PHYS_REGIONS: usize = 128;

const PAGE: u64 = PAGE_SIZE as u64;

/// A half-open range of physical addresses, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// `[start, end)`; an `end` below `start` gives an empty range.
    pub const fn new(start: u64, end: u64) -> Self {
        let end = if end < start { start } else { end };
        Self { start, end }
    }

    /// `[base, base + len)`, saturating at `u64::MAX`.
    pub const fn from_base_len(base: u64, len: u64) -> Self {
        Self::new(base, base.saturating_add(len))
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `paddr` lies in the range.
    pub const fn contains(&self, paddr: u64) -> bool {
        self.start <= paddr && paddr < self.end
    }

    /// Whether the two ranges share a byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end && !self.is_empty() && !other.is_empty()
    }

    /// The whole pages inside the range (start up, end down to 4 KiB).
    pub const fn pages_inside(&self) -> Self {
        let start = self.start.saturating_add(PAGE - 1) & !(PAGE - 1);
        Self::new(start, self.end & !(PAGE - 1))
    }

    /// The whole pages touching the range (start down, end up to 4 KiB,
    /// saturating at the last page boundary).
    pub const fn pages_around(&self) -> Self {
        if self.is_empty() {
            return *self;
        }
        let end = match self.end.checked_add(PAGE - 1) {
            Some(end) => end & !(PAGE - 1),
            None => !(PAGE - 1),
        };
        Self::new(self.start & !(PAGE - 1), end)
    }
}

/// Why a [`PhysMap`] could not be built or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysMapError {
    /// More than [`MAX_PHYS_REGIONS`] non-empty firmware regions, or more
    /// normalised regions than that; `count` is how many were needed.
    TooManyRegions { count: usize },
    /// Exclusions split the allocatable set into more than
    /// [`MAX_PHYS_REGIONS`] ranges.
    TooManyRanges,
}

impl fmt::Display for PhysMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyRegions { count } => write!(
                f,
                "memory map needs {count} regions, at most {MAX_PHYS_REGIONS} are supported"
            ),
            Self::TooManyRanges => write!(
                f,
                "exclusions split usable memory into more than {MAX_PHYS_REGIONS} ranges"
            ),
        }
    }
}

impl core::error::Error for PhysMapError {}

/// How strongly a kind must be kept away from the allocator; see the module
/// documentation. Ties between `Other` kinds go to the higher number, so the
/// result does not depend on input order.
const fn restrictiveness(kind: MemoryKind) -> (u8, u32) {
    match kind {
        MemoryKind::Usable => (0, 0),
        MemoryKind::AcpiReclaimable => (1, 0),
        MemoryKind::AcpiNvs => (2, 0),
        MemoryKind::Persistent => (3, 0),
        MemoryKind::Reserved => (4, 0),
        MemoryKind::Other(n) => (5, n),
        MemoryKind::Disabled => (6, 0),
        MemoryKind::Unusable => (7, 0),
    }
}

/// The firmware memory map, normalised, and the allocatable ranges in it.
#[derive(Clone, Debug, Default)]
pub struct PhysMap {
    regions: Vec<MemoryRegion, MAX_PHYS_REGIONS>,
    allocatable: Vec<PhysRange, MAX_PHYS_REGIONS>,
}

impl PhysMap {
    /// Normalises `firmware` and derives the allocatable set, minus
    /// `exclusions`. A region that runs to `u64::MAX` ends there.
    pub fn new(firmware: &[MemoryRegion], exclusions: &[PhysRange]) -> Result<Self, PhysMapError> {
        let count = firmware.iter().filter(|r| r.len != 0).count();
        if count > MAX_PHYS_REGIONS {
            return Err(PhysMapError::TooManyRegions { count });
        }
        let mut points: Vec<u64, { 2 * MAX_PHYS_REGIONS }> = Vec::new();
        for region in firmware.iter().filter(|r| r.len != 0) {
            // Cannot fail: at most 2 * MAX_PHYS_REGIONS points.
            let _ = points.push(region.base);
            let _ = points.push(region.end());
        }
        points.sort_unstable();
        let mut map = Self::default();
        for pair in points.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            if start == end {
                continue;
            }
            let winner = firmware
                .iter()
                .filter(|r| r.len != 0 && r.base <= start && r.end() >= end)
                .map(|r| r.kind)
                .max_by_key(|&kind| restrictiveness(kind));
            if let Some(kind) = winner {
                map.push_region(start, end, kind)?;
            }
        }
        for region in map.regions.iter().filter(|r| r.kind == MemoryKind::Usable) {
            let pages = PhysRange::from_base_len(region.base, region.len).pages_inside();
            if !pages.is_empty() {
                // Cannot fail: at most one range per normalised region.
                let _ = map.allocatable.push(pages);
            }
        }
        for &exclusion in exclusions {
            map.exclude(exclusion)?;
        }
        Ok(map)
    }

    /// Builds the map from the boot protocol's memory map.
    pub fn from_boot_info(
        info: &faultline_boot::BootInfo,
        exclusions: &[PhysRange],
    ) -> Result<Self, PhysMapError> {
        Self::new(&info.memory_map, exclusions)
    }

    fn push_region(&mut self, start: u64, end: u64, kind: MemoryKind) -> Result<(), PhysMapError> {
        if let Some(last) = self.regions.last_mut()
            && last.kind == kind
            && last.end() == start
        {
            last.len = end - last.base;
            return Ok(());
        }
        let region = MemoryRegion {
            base: start,
            len: end - start,
            kind,
        };
        let count = self.regions.len() + 1;
        self.regions
            .push(region)
            .map_err(|_| PhysMapError::TooManyRegions { count })
    }

    /// Removes `range` (widened to whole pages) from the allocatable set.
    /// On error the map is unchanged.
    pub fn exclude(&mut self, range: PhysRange) -> Result<(), PhysMapError> {
        let cut = range.pages_around();
        if cut.is_empty() {
            return Ok(());
        }
        let mut kept: Vec<PhysRange, MAX_PHYS_REGIONS> = Vec::new();
        for &r in &self.allocatable {
            let pieces = if r.overlaps(&cut) {
                [
                    PhysRange::new(r.start, cut.start),
                    PhysRange::new(cut.end, r.end),
                ]
            } else {
                [r, PhysRange::new(0, 0)]
            };
            for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
                kept.push(piece).map_err(|_| PhysMapError::TooManyRanges)?;
            }
        }
        self.allocatable = kept;
        Ok(())
    }

    /// The normalised regions: sorted, non-overlapping, non-empty, and no two
    /// neighbours of the same kind. Holes are absent.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions
    }

    /// The allocatable ranges: sorted, disjoint, page-aligned, non-empty.
    pub fn allocatable(&self) -> &[PhysRange] {
        &self.allocatable
    }

    /// Bytes of usable RAM in the normalised map (before page alignment and
    /// exclusions).
    pub fn usable_bytes(&self) -> u64 {
        self.usable().map(|r| r.len).sum()
    }

    /// Bytes in the allocatable ranges.
    pub fn allocatable_bytes(&self) -> u64 {
        self.allocatable.iter().map(PhysRange::len).sum()
    }

    /// One past the highest usable byte, or `None` without usable RAM.
    pub fn highest_usable_end(&self) -> Option<u64> {
        self.usable().last().map(MemoryRegion::end)
    }

    /// One past the highest byte of any region (how far the direct map must
    /// reach to cover everything the firmware described).
    pub fn highest_end(&self) -> Option<u64> {
        self.regions.last().map(MemoryRegion::end)
    }

    /// The kind of memory at `paddr`, or `None` in a hole.
    pub fn kind_at(&self, paddr: u64) -> Option<MemoryKind> {
        let after = self.regions.partition_point(|r| r.base <= paddr);
        let region = self.regions.get(after.checked_sub(1)?)?;
        (paddr < region.end()).then_some(region.kind)
    }

    /// Whether the whole of `range` may be allocated.
    pub fn is_allocatable(&self, range: PhysRange) -> bool {
        !range.is_empty()
            && self
                .allocatable
                .iter()
                .any(|r| r.start <= range.start && range.end <= r.end)
    }

    fn usable(&self) -> impl Iterator<Item = &MemoryRegion> {
        self.regions.iter().filter(|r| r.kind == MemoryKind::Usable)
    }
}
