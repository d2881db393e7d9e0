//! A service's address space: its own PML4 (sharing the kernel half), the
//! frames it owns, and its budget.
//!
//! Every frame a service occupies, page tables included, is counted against
//! the deployment's memory budget, so a greedy service cannot take more than
//! it was given. The page tables themselves are the record of what it owns:
//! [`UserSpace::release`] walks the lower half and returns every RAM frame
//! and every table to the allocator (MMIO pages, which the allocator does not
//! manage, are only forgotten), so a restart starts from nothing.

use crate::arch::paging::{PhysWindow, zero_frame};
use crate::memory;
use crate::mm::{self, AddressSpace, FrameSource, MapAttrs, PAGE_SIZE, PhysFrame, phys_to_virt};
use core::cell::Cell;
use faultline_ipc::abi::Error;

/// Most frames one service can own (16 MiB).
pub const MAX_TASK_FRAMES: usize = 4096;
/// Top of every service's stack (the stack grows down from here).
pub const USER_STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
/// Where granted MMIO is mapped in a service.
pub const USER_MMIO_BASE: u64 = 0x0000_6000_0000_0000;
/// Where DMA memory is mapped in a service.
pub const USER_DMA_BASE: u64 = 0x0000_5000_0000_0000;
/// ELF segments must lie below this.
pub const USER_IMAGE_LIMIT: u64 = 0x0000_4000_0000_0000;

const PAGE: u64 = PAGE_SIZE as u64;
const PRESENT: u64 = 1;
const HUGE: u64 = 1 << 7;
const OWNED: u64 = mm::paging::bits::OWNED;
/// A large (2 MiB) page.
const LARGE_PAGE: u64 = 2 << 20;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// One service's address space.
pub struct UserSpace {
    pub space: AddressSpace,
    used: usize,
    budget: usize,
    mmio_next: u64,
    dma_next: u64,
    /// The pages the kernel last copied to or from (see [`Recent`]).
    recent: [Cell<Recent>; RECENT],
    /// The entry of `recent` to replace next.
    recent_next: Cell<usize>,
    /// The ranges [`UserSpace::check`] last accepted, whole (see
    /// [`Checked`]).
    checked: [Cell<Checked>; CHECKED],
    /// The entry of `checked` to replace next.
    checked_next: Cell<usize>,
}

/// How many accepted ranges [`UserSpace::check`] remembers: a server's
/// two receive buffers, or a client's request and reply buffers.
const CHECKED: usize = 2;

/// A range of user memory the kernel may copy to or from, as checked page
/// by page: a buffer used for every message is checked once, not per
/// message. Like [`Recent`], it cannot go stale.
#[derive(Clone, Copy, Default)]
struct Checked {
    start: u64,
    /// Its length in bytes; 0 for an empty entry.
    span: u64,
    writable: bool,
    /// The kernel's (direct-map) address of `start` when the whole range
    /// is physically contiguous, so a copy needs no page lookups; 0
    /// otherwise.
    direct: usize,
}

/// How many pages [`UserSpace::user_phys`] remembers: a server's two
/// receive buffers or a client's request and reply buffers, each possibly
/// across a page boundary.
const RECENT: usize = 4;

/// A user page the kernel may copy to or from, as a page walk found it: a
/// message buffer used for every message costs one walk, not one per
/// message. A live space's mappings are only ever added (a restart builds
/// a new space), so an entry cannot go stale; [`UserSpace::disown`], the
/// one change to existing entries, forgets them all anyway.
#[derive(Clone, Copy, Default)]
struct Recent {
    /// The virtual page, with [`Recent::VALID`] set; 0 for an empty entry.
    page: u64,
    /// The physical frame.
    frame: u64,
    writable: bool,
}

impl Recent {
    /// Marks a used entry (page addresses have their low 12 bits clear).
    const VALID: u64 = 1;
}

/// Frames for a service (pages and tables alike), counted against its
/// budget, zeroed.
struct Budgeted<'a> {
    used: &'a mut usize,
    budget: usize,
}

impl Budgeted<'_> {
    fn take(&mut self) -> Option<u64> {
        if *self.used >= self.budget {
            return None;
        }
        let frame = memory::with(|m| m.frames.allocate())?.start();
        zero_frame(frame);
        *self.used += 1;
        Some(frame)
    }
}

impl FrameSource for Budgeted<'_> {
    fn allocate_table(&mut self) -> Option<u64> {
        self.take()
    }
}

impl UserSpace {
    /// An empty address space sharing the kernel half, within `budget_pages`.
    pub fn new(budget_pages: u32) -> Result<UserSpace, Error> {
        let budget = (budget_pages as usize).min(MAX_TASK_FRAMES);
        let mut used = 0;
        let root = Budgeted {
            used: &mut used,
            budget,
        }
        .take()
        .ok_or(Error::OutOfMemory)?;
        // The kernel half: the same PDPTs as the kernel's own tables, so
        // every kernel mapping (made in those PDPTs) is visible everywhere.
        let kernel_root = crate::arch::paging::active_root_of_kernel();
        let mut mem = PhysWindow;
        let src = *mm::TableMemory::table(&mut mem, kernel_root);
        let dst = mm::TableMemory::table(&mut mem, root);
        dst[mm::KERNEL_PML4_FIRST_SLOT..].copy_from_slice(&src[mm::KERNEL_PML4_FIRST_SLOT..]);
        Ok(UserSpace {
            space: AddressSpace::new(root),
            used,
            budget,
            mmio_next: USER_MMIO_BASE,
            dma_next: USER_DMA_BASE,
            recent: Default::default(),
            recent_next: Cell::new(0),
            checked: Default::default(),
            checked_next: Cell::new(0),
        })
    }

    /// The PML4 to load in CR3.
    pub fn root(&self) -> u64 {
        self.space.root_paddr()
    }

    fn source(&mut self) -> Budgeted<'_> {
        Budgeted {
            used: &mut self.used,
            budget: self.budget,
        }
    }

    /// Maps `pages` fresh zeroed pages at `virt`, calling `each(page index,
    /// frame)` for each.
    pub fn map_fresh(
        &mut self,
        virt: u64,
        pages: u64,
        attrs: MapAttrs,
        mut each: impl FnMut(u64, u64),
    ) -> Result<(), Error> {
        for i in 0..pages {
            let frame = self.source().take().ok_or(Error::OutOfMemory)?;
            let mut space = self.space;
            let result = space.map(
                &mut PhysWindow,
                &mut self.source(),
                virt + i * PAGE,
                frame,
                PAGE,
                attrs,
            );
            self.space = space;
            if result.is_err() {
                memory::with(|m| m.frames.deallocate(PhysFrame::containing(frame))).ok();
                return Err(Error::BadArgument);
            }
            each(i, frame);
        }
        Ok(())
    }

    /// Maps physical MMIO uncached, user, no-execute, except the pages of
    /// `hole` (offset, length), which stay unmapped; returns the address.
    /// The pages are not [`MapAttrs::owned`]: the kernel never copies
    /// through them and never frees them.
    pub fn map_mmio(
        &mut self,
        base: u64,
        len: u64,
        hole: Option<(u64, u64)>,
    ) -> Result<u64, Error> {
        let len = len.div_ceil(PAGE) * PAGE;
        let virt = self.mmio_next;
        let attrs = MapAttrs {
            user: true,
            global: false,
            owned: false,
            ..MapAttrs::KERNEL_MMIO
        };
        let (hole_start, hole_end) = hole.map_or((len, len), |(o, n)| {
            (o & !(PAGE - 1), o.saturating_add(n).div_ceil(PAGE) * PAGE)
        });
        let mut space = self.space;
        let mut result = Ok(());
        for (from, to) in [(0, hole_start.min(len)), (hole_end.min(len), len)] {
            if from < to && result.is_ok() {
                result = space.map(
                    &mut PhysWindow,
                    &mut self.source(),
                    virt + from,
                    base + from,
                    to - from,
                    attrs,
                );
            }
        }
        self.space = space;
        result.map_err(|_| Error::OutOfMemory)?;
        self.mmio_next += len + PAGE; // a hole between grants
        Ok(virt)
    }

    /// Allocates `bytes` (a page multiple) of contiguous, zeroed memory below
    /// 4 GiB, maps it, and returns `(vaddr, paddr)`. It counts against the
    /// DMA budget (checked by the caller), not the memory budget.
    pub fn alloc_dma(&mut self, bytes: u64) -> Result<(u64, u64), Error> {
        let pages = bytes / PAGE;
        // A buffer of 2 MiB or more starts on a 2 MiB boundary, so the
        // IOMMU service can map it with large pages.
        let align = if bytes >= LARGE_PAGE {
            LARGE_PAGE / PAGE
        } else {
            1
        };
        let first = memory::with(|m| m.frames.allocate_contiguous_below(pages, align, 1 << 32))
            .ok_or(Error::OutOfMemory)?
            .start();
        for i in 0..pages {
            zero_frame(first + i * PAGE);
        }
        let virt = self.dma_next;
        let mut space = self.space;
        let result = space.map(
            &mut PhysWindow,
            &mut self.source(),
            virt,
            first,
            bytes,
            MapAttrs::USER_DATA,
        );
        self.space = space;
        if result.is_err() {
            memory::with(|m| {
                m.frames
                    .deallocate_contiguous(PhysFrame::containing(first), pages)
            })
            .ok();
            return Err(Error::OutOfMemory);
        }
        self.dma_next += bytes + PAGE;
        Ok((virt, first))
    }

    /// The physical address behind user address `virt`, if it is RAM the
    /// service owns, mapped for user access (and writable, if `write`).
    /// MMIO the service maps is refused: the kernel copies only to and from
    /// memory, never through a device's registers.
    #[inline(always)]
    pub fn user_phys(&self, virt: u64, write: bool) -> Option<u64> {
        let offset = virt % PAGE;
        let page = (virt - offset) | Recent::VALID;
        for r in &self.recent {
            let r = r.get();
            if r.page == page {
                return (r.writable || !write).then_some(r.frame | offset);
            }
        }
        self.walk(virt, page, write)
    }

    /// [`UserSpace::user_phys`] of a page not used lately: a page walk,
    /// remembered.
    #[inline(never)]
    fn walk(&self, virt: u64, page: u64, write: bool) -> Option<u64> {
        let offset = virt % PAGE;
        let t = self.space.translate(&mut PhysWindow, virt)?;
        if !t.attrs.kernel_may_copy(false) {
            return None;
        }
        let writable = t.attrs.kernel_may_copy(true);
        let next = self.recent_next.get();
        self.recent[next].set(Recent {
            page,
            frame: t.phys - offset,
            writable,
        });
        self.recent_next.set((next + 1) % RECENT);
        (writable || !write).then_some(t.phys)
    }

    /// Whether the kernel may copy to (`write`) or from user memory
    /// `[virt, virt + len)`: `BadPointer` if any page of it is not mapped
    /// as [`UserSpace::user_phys`] requires.
    #[inline(always)]
    pub fn check(&self, virt: u64, len: usize, write: bool) -> Result<(), Error> {
        if len == 0 || self.checked_range(virt, len, write).is_some() {
            return Ok(());
        }
        self.check_pages(virt, len, write)
    }

    /// The remembered range holding `[virt, virt + len)` (`len > 0`)
    /// whole, for writing if `write`, and the offset of `virt` in it.
    #[inline(always)]
    fn checked_range(&self, virt: u64, len: usize, write: bool) -> Option<(Checked, u64)> {
        for c in &self.checked {
            let c = c.get();
            // Wraps past `span` when `virt` is below `start`.
            let off = virt.wrapping_sub(c.start);
            if off < c.span && len as u64 <= c.span - off && (c.writable || !write) {
                return Some((c, off));
            }
        }
        None
    }

    /// [`UserSpace::check`], and then the kernel's address of the range
    /// if it is physically contiguous (0 if not, or if `len` is 0).
    #[inline(always)]
    pub fn check_direct(&self, virt: u64, len: usize, write: bool) -> Result<usize, Error> {
        if len == 0 {
            return Ok(0);
        }
        if let Some((c, off)) = self.checked_range(virt, len, write) {
            return Ok(if c.direct != 0 {
                c.direct + off as usize
            } else {
                0
            });
        }
        self.check_pages(virt, len, write)?;
        Ok(self.direct(virt, len, write).map_or(0, |at| at as usize))
    }

    /// The kernel's address of user memory `[virt, virt + len)` (`len >
    /// 0`) if a range [`UserSpace::check`] accepted lately holds it whole
    /// (for writing, if `write`) and is physically contiguous: the
    /// common case of a message buffer, copied with no lookups at all.
    #[inline(always)]
    pub fn direct(&self, virt: u64, len: usize, write: bool) -> Option<*mut u8> {
        let (c, off) = self.checked_range(virt, len, write)?;
        (c.direct != 0).then_some((c.direct + off as usize) as *mut u8)
    }

    /// [`UserSpace::check`] of a range not checked lately: page by page.
    #[inline(never)]
    fn check_pages(&self, virt: u64, len: usize, write: bool) -> Result<(), Error> {
        // Whether each piece follows the previous one in the direct map
        // (physically contiguous, as the direct map is linear).
        let (mut first, mut next_at, mut contiguous) = (0usize, 0usize, true);
        self.copy(virt, len, write, |off, at: *mut u8, n| {
            if off == 0 {
                first = at as usize;
            } else if at as usize != next_at {
                contiguous = false;
            }
            next_at = at as usize + n;
        })?;
        if len > 0 {
            let next = self.checked_next.get();
            self.checked[next].set(Checked {
                start: virt,
                span: len as u64,
                writable: write,
                direct: if contiguous { first } else { 0 },
            });
            self.checked_next.set((next + 1) % CHECKED);
        }
        Ok(())
    }

    /// Walks user memory `[virt, virt + len)` page by page, calling
    /// `chunk(offset, direct-map pointer, bytes)` for each piece. Fails on
    /// the first page not mapped as required.
    #[inline]
    pub fn copy(
        &self,
        virt: u64,
        len: usize,
        write: bool,
        mut chunk: impl FnMut(usize, *mut u8, usize),
    ) -> Result<(), Error> {
        let mut done = 0usize;
        while done < len {
            let at = virt.checked_add(done as u64).ok_or(Error::BadPointer)?;
            if at >= USER_STACK_TOP + PAGE {
                return Err(Error::BadPointer);
            }
            let phys = self.user_phys(at, write).ok_or(Error::BadPointer)?;
            let n = ((PAGE - (at % PAGE)) as usize).min(len - done);
            chunk(done, phys_to_virt(phys) as *mut u8, n);
            done += n;
        }
        Ok(())
    }

    /// Gives up ownership of the frames behind `[virt, virt + bytes)`:
    /// [`UserSpace::release`] leaves them allocated, for whoever keeps
    /// them (the kernel, for frames a device may still reach).
    pub fn disown(&mut self, virt: u64, bytes: u64) {
        for r in &self.recent {
            r.set(Recent::default());
        }
        for c in &self.checked {
            c.set(Checked::default());
        }
        let space = self.space;
        if let Err(e) = space.update_leaves(&mut PhysWindow, virt, bytes, |e| e & !OWNED) {
            log::error!("kernel: cannot keep DMA frames at {virt:#x}: {e:?}");
        }
    }

    /// Frees every frame the service owns (its tables included).
    pub fn release(self) {
        let root = self.root();
        memory::with(|m| {
            release_table(&mut m.frames, root, 4, mm::KERNEL_PML4_FIRST_SLOT);
            let _ = m.frames.deallocate(PhysFrame::containing(root));
        });
    }

    /// Frames counted against the budget, for reports.
    pub fn frames_used(&self) -> usize {
        self.used
    }
}

/// Frees what the `level` table at `table` maps in its first `entries`
/// entries, and the tables below it (not `table` itself).
fn release_table(frames: &mut mm::FrameAllocator<'static>, table: u64, level: u32, entries: usize) {
    let copy = *mm::TableMemory::table(&mut PhysWindow, table);
    for &entry in &copy[..entries] {
        if entry & PRESENT == 0 {
            continue;
        }
        let target = entry & ADDR;
        if level == 1 || entry & HUGE != 0 {
            // A page: give it back only if the service owned it (its image,
            // stack, data and DMA memory carry the OWNED bit; MMIO and
            // anything else does not) and the allocator handed it out.
            // Service spaces have no large pages.
            let owned = entry & OWNED != 0;
            if level == 1 && owned && frames.is_free(PhysFrame::containing(target)) == Some(false) {
                let _ = frames.deallocate(PhysFrame::containing(target));
            }
            continue;
        }
        release_table(frames, target, level - 1, 512);
        let _ = frames.deallocate(PhysFrame::containing(target));
    }
}
