//! A generic x86-64 4-level page-table builder.
//!
//! The kernel builds its own tables with it, and later each service's. It
//! reaches tables only through [`TableMemory`] ("the table at physical address
//! p") and gets new ones from a [`FrameSource`], so it assumes nothing about
//! identity or direct mapping and runs unchanged on the host over a hash map.
//!
//! Policy kept here, because every caller wants it:
//! - Leaves carry exactly what [`MapAttrs`] says: NX unless executable, U/S
//!   only for user pages, PCD|PWT for uncached (PAT entry 3 in the power-on
//!   PAT), G for global. Writable *and* executable is refused (W^X), and so
//!   is a user page in the kernel half.
//! - Intermediate entries are P|RW (plus U/S once a user page sits below) and
//!   never NX, so the leaf alone decides permissions.
//! - [`AddressSpace::map`] uses the largest page both addresses' alignment,
//!   the remaining length and the attributes allow (1 GiB only when the CPU
//!   has them too), checks the whole range before changing anything, refuses
//!   to replace a different mapping, and accepts an identical one as a no-op.
//!   Large pages are never split: unmapping part of one is an error.
//! - The builder does not flush TLBs and does not free emptied tables; the
//!   caller that owns the CPU does the former, and tables are kept for reuse.

use core::fmt;

/// The 512-entry tables of an address space, by physical address.
pub trait TableMemory {
    /// The 512-entry table at physical address `paddr`.
    fn table(&mut self, paddr: u64) -> &mut [u64; 512];
}

/// Where new page tables come from.
pub trait FrameSource {
    /// A fresh 4 KiB frame's physical address, or `None` when out of memory.
    /// The builder zeroes it before linking it in.
    fn allocate_table(&mut self) -> Option<u64>;
}

mod attrs;

pub use attrs::{Cache, MapAttrs, PageSize, Translation, bits};
use bits::{ACCESSED, ADDR_MASK, DIRTY, HUGE, PRESENT, USER, WRITABLE};

/// First address of the kernel (upper canonical) half.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

/// Why a map or unmap was refused. Nothing was changed, except after
/// [`MapError::OutOfTables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// `virt` is not canonical (bits 63..47 differ).
    NonCanonical { virt: u64 },
    /// The range starting at `virt` wraps or crosses the canonical hole.
    RangeOutsideHalf { virt: u64, len: u64 },
    /// An address or length (`value`) is not a multiple of 4 KiB.
    Unaligned { value: u64 },
    /// The physical range reaches `phys`, past the 52-bit limit.
    PhysOutOfRange { phys: u64 },
    /// A user mapping was asked for at kernel-half address `virt`.
    UserInKernelHalf { virt: u64 },
    /// Writable and executable at once (W^X).
    WritableAndExecutable { virt: u64 },
    /// `virt` already maps something else.
    AlreadyMapped { virt: u64 },
    /// The range covers part of the large page of `size` holding `virt`.
    WouldSplitLargePage { virt: u64, size: PageSize },
    /// No frame for a new table while mapping `virt`. Pages before `virt`
    /// are mapped; the caller may unmap them.
    OutOfTables { virt: u64 },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NonCanonical { virt } => write!(f, "virtual address {virt:#x} is not canonical"),
            Self::RangeOutsideHalf { virt, len } => {
                write!(f, "range {virt:#x}+{len:#x} leaves its canonical half")
            }
            Self::Unaligned { value } => write!(f, "{value:#x} is not 4 KiB aligned"),
            Self::PhysOutOfRange { phys } => write!(f, "physical address {phys:#x} is past 2^52"),
            Self::UserInKernelHalf { virt } => {
                write!(f, "user mapping at kernel address {virt:#x}")
            }
            Self::WritableAndExecutable { virt } => {
                write!(f, "mapping at {virt:#x} is writable and executable")
            }
            Self::AlreadyMapped { virt } => write!(f, "{virt:#x} is already mapped elsewhere"),
            Self::WouldSplitLargePage { virt, size } => {
                write!(
                    f,
                    "{virt:#x} lies inside a {size:?} page that would need splitting"
                )
            }
            Self::OutOfTables { virt } => write!(f, "out of page-table frames mapping {virt:#x}"),
        }
    }
}

impl core::error::Error for MapError {}

/// What happened to one chunk in [`AddressSpace::place`].
enum Placed {
    /// The chunk is (or would be) mapped.
    Done,
    /// A table sits where the large leaf would go: use a smaller page.
    Smaller,
}

/// What a walk found at a virtual address.
enum Slot {
    /// Nothing mapped in the aligned block of `span` bytes around it.
    Hole { span: u64 },
    /// A leaf: entry `index` of the table at `table`.
    Leaf {
        table: u64,
        index: usize,
        entry: u64,
        size: PageSize,
    },
}

fn is_canonical(virt: u64) -> bool {
    ((virt << 16) as i64 >> 16) as u64 == virt
}

/// Index into the table at `level` (4 = PML4 .. 1 = PT) for `virt`.
fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * (level - 1))) & 511) as usize
}

fn same_leaf(existing: u64, wanted: u64) -> bool {
    existing & !(ACCESSED | DIRTY) == wanted
}

/// One address space: a PML4 and everything below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    root: u64,
    gigabyte_pages: bool,
}

impl AddressSpace {
    /// The address space whose PML4 is at `root_paddr` (a zeroed table, or
    /// one to extend). 1 GiB pages are off until [`Self::with_gigabyte_pages`].
    pub const fn new(root_paddr: u64) -> Self {
        Self {
            root: root_paddr & ADDR_MASK,
            gigabyte_pages: false,
        }
    }

    /// Whether the CPU supports 1 GiB pages (CPUID 0x8000_0001 EDX.26).
    pub const fn with_gigabyte_pages(self, supported: bool) -> Self {
        Self {
            gigabyte_pages: supported,
            ..self
        }
    }

    /// Physical address of the PML4, for CR3.
    pub const fn root_paddr(&self) -> u64 {
        self.root
    }

    /// Maps `[virt, virt + len)` to `[phys, phys + len)`; see the module
    /// documentation for the rules. A zero `len` is a no-op.
    pub fn map<F: FrameSource>(
        &mut self,
        mem: &mut impl TableMemory,
        frames: &mut F,
        virt: u64,
        phys: u64,
        len: u64,
        attrs: MapAttrs,
    ) -> Result<(), MapError> {
        check_range(virt, len)?;
        if !phys.is_multiple_of(4096) {
            return Err(MapError::Unaligned { value: phys });
        }
        let last_phys = phys.checked_add(len.saturating_sub(1));
        if last_phys.is_none_or(|p| p > ADDR_MASK | 0xfff) {
            return Err(MapError::PhysOutOfRange {
                phys: last_phys.unwrap_or(u64::MAX),
            });
        }
        if attrs.user && virt >= KERNEL_HALF {
            return Err(MapError::UserInKernelHalf { virt });
        }
        if attrs.writable && attrs.executable {
            return Err(MapError::WritableAndExecutable { virt });
        }
        // First check the whole range without touching anything, then map.
        self.map_range(mem, None::<&mut F>, virt, phys, len, attrs)?;
        self.map_range(mem, Some(frames), virt, phys, len, attrs)
    }

    fn map_range<F: FrameSource>(
        &self,
        mem: &mut impl TableMemory,
        mut frames: Option<&mut F>,
        virt: u64,
        phys: u64,
        len: u64,
        attrs: MapAttrs,
    ) -> Result<(), MapError> {
        let mut done = 0;
        while done < len {
            let (v, p) = (virt + done, phys + done);
            let mut size = self.largest_fit(v, p, len - done, attrs);
            while let Placed::Smaller = self.place(mem, frames.as_deref_mut(), v, p, size, attrs)? {
                size = PageSize::at_level(size.level() - 1);
            }
            done += size.bytes();
        }
        Ok(())
    }

    fn largest_fit(&self, v: u64, p: u64, remaining: u64, attrs: MapAttrs) -> PageSize {
        let allowed = |size: PageSize| {
            attrs.largest_page >= size
                && (size != PageSize::Size1G || self.gigabyte_pages)
                && (v | p).is_multiple_of(size.bytes())
                && remaining >= size.bytes()
        };
        [PageSize::Size1G, PageSize::Size2M]
            .into_iter()
            .find(|&size| allowed(size))
            .unwrap_or(PageSize::Size4K)
    }

    /// Maps one page of `size` at `v` (only checks, when `frames` is `None`).
    fn place<F: FrameSource>(
        &self,
        mem: &mut impl TableMemory,
        mut frames: Option<&mut F>,
        v: u64,
        p: u64,
        size: PageSize,
        attrs: MapAttrs,
    ) -> Result<Placed, MapError> {
        let link = PRESENT | WRITABLE | if attrs.user { USER } else { 0 };
        let mut table = self.root;
        for level in (size.level() + 1..=4).rev() {
            let i = index(v, level);
            let entry = mem.table(table)[i];
            if entry & PRESENT == 0 {
                let Some(source) = frames.as_deref_mut() else {
                    return Ok(Placed::Done); // nothing below: no conflict
                };
                let new = source
                    .allocate_table()
                    .ok_or(MapError::OutOfTables { virt: v })?;
                let new = new & ADDR_MASK;
                mem.table(new).fill(0);
                mem.table(table)[i] = new | link;
                table = new;
                continue;
            }
            if level <= 3 && entry & HUGE != 0 {
                // An existing larger leaf covers `v`: fine only if identical.
                let big = PageSize::at_level(level);
                let offset = v & (big.bytes() - 1);
                let base = p.wrapping_sub(offset);
                let same = p >= offset && base.is_multiple_of(big.bytes());
                return match same && same_leaf(entry, attrs.leaf(base, big)) {
                    true => Ok(Placed::Done),
                    false => Err(MapError::AlreadyMapped { virt: v }),
                };
            }
            if frames.is_some() && entry & link != link {
                mem.table(table)[i] = entry | link;
            }
            table = entry & ADDR_MASK;
        }
        let i = index(v, size.level());
        let entry = mem.table(table)[i];
        let wanted = attrs.leaf(p, size);
        if entry & PRESENT == 0 {
            if frames.is_some() {
                mem.table(table)[i] = wanted;
            }
            Ok(Placed::Done)
        } else if size != PageSize::Size4K && entry & HUGE == 0 {
            Ok(Placed::Smaller)
        } else if same_leaf(entry, wanted) {
            Ok(Placed::Done)
        } else {
            Err(MapError::AlreadyMapped { virt: v })
        }
    }

    fn find(&self, mem: &mut impl TableMemory, virt: u64) -> Slot {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let i = index(virt, level);
            let entry = mem.table(table)[i];
            let size = PageSize::at_level(level);
            if entry & PRESENT == 0 {
                return Slot::Hole {
                    span: 1 << (12 + 9 * (level - 1)),
                };
            }
            if level == 1 || (level <= 3 && entry & HUGE != 0) {
                return Slot::Leaf {
                    table,
                    index: i,
                    entry,
                    size,
                };
            }
            table = entry & ADDR_MASK;
        }
        Slot::Hole { span: 4096 } // not reached: level 1 always returns
    }

    /// Where `virt` leads, or `None` if it is unmapped or not canonical.
    pub fn translate(&self, mem: &mut impl TableMemory, virt: u64) -> Option<Translation> {
        if !is_canonical(virt) {
            return None;
        }
        match self.find(mem, virt) {
            Slot::Hole { .. } => None,
            Slot::Leaf { entry, size, .. } => {
                let base = entry & ADDR_MASK & !(size.bytes() - 1);
                let phys = base | (virt & (size.bytes() - 1));
                Some(Translation {
                    phys,
                    attrs: MapAttrs::from_leaf(entry, size),
                    size,
                })
            }
        }
    }

    /// Rewrites every leaf entry in `[virt, virt + len)` with `f` (holes
    /// are skipped): for software bits, which the hardware ignores, so no
    /// TLB flush is needed.
    pub fn update_leaves(
        &self,
        mem: &mut impl TableMemory,
        virt: u64,
        len: u64,
        mut f: impl FnMut(u64) -> u64,
    ) -> Result<(), MapError> {
        check_range(virt, len)?;
        let mut done = 0;
        while done < len {
            let v = virt + done;
            match self.find(mem, v) {
                Slot::Hole { span } => match (v | (span - 1)).checked_add(1) {
                    Some(next) => done = next - virt,
                    None => break,
                },
                Slot::Leaf {
                    table, index, size, ..
                } => {
                    let e = &mut mem.table(table)[index];
                    *e = f(*e);
                    done = (v | (size.bytes() - 1)) + 1 - virt;
                }
            }
        }
        Ok(())
    }

    /// Unmaps every page in `[virt, virt + len)`; holes are skipped. Returns
    /// the bytes that were mapped. Partly covered large pages are an error,
    /// found before anything changes. Emptied tables stay linked.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        virt: u64,
        len: u64,
    ) -> Result<u64, MapError> {
        check_range(virt, len)?;
        self.unmap_range(mem, virt, len, false)?;
        self.unmap_range(mem, virt, len, true)
    }

    fn unmap_range(
        &self,
        mem: &mut impl TableMemory,
        virt: u64,
        len: u64,
        commit: bool,
    ) -> Result<u64, MapError> {
        let (mut done, mut unmapped) = (0, 0);
        while done < len {
            let v = virt + done;
            match self.find(mem, v) {
                Slot::Hole { span } => match (v | (span - 1)).checked_add(1) {
                    Some(next) => done = next - virt,
                    None => break, // the top of the address space
                },
                Slot::Leaf {
                    table, index, size, ..
                } => {
                    if !v.is_multiple_of(size.bytes()) || len - done < size.bytes() {
                        return Err(MapError::WouldSplitLargePage { virt: v, size });
                    }
                    if commit {
                        mem.table(table)[index] = 0;
                    }
                    done += size.bytes();
                    unmapped += size.bytes();
                }
            }
        }
        Ok(unmapped)
    }
}

/// Checks `[virt, virt + len)`: canonical, 4 KiB aligned, in one half.
fn check_range(virt: u64, len: u64) -> Result<(), MapError> {
    if !is_canonical(virt) {
        return Err(MapError::NonCanonical { virt });
    }
    for value in [virt, len] {
        if !value.is_multiple_of(4096) {
            return Err(MapError::Unaligned { value });
        }
    }
    let last = virt.checked_add(len.saturating_sub(1));
    if last.is_none_or(|last| !is_canonical(last) || (last ^ virt) >> 63 != 0) {
        return Err(MapError::RangeOutsideHalf { virt, len });
    }
    Ok(())
}
