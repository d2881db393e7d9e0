//! A service's address space: its own PML4 (sharing the kernel half), the
//! frames it owns, and its budget.
//!
//! Every frame a service occupies, page tables included, is recorded here
//! and counted against the deployment's memory budget, so a restart can
//! return all of it and a greedy service cannot take more than it was given.

use crate::arch::paging::{PhysWindow, zero_frame};
use crate::memory;
use crate::mm::{self, AddressSpace, FrameSource, MapAttrs, PAGE_SIZE, PhysFrame, phys_to_virt};
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

/// One service's address space.
pub struct UserSpace {
    pub space: AddressSpace,
    frames: heapless::Vec<u64, MAX_TASK_FRAMES>,
    budget: usize,
    mmio_next: u64,
    dma_next: u64,
}

/// Frames for page tables, recorded and budgeted like any other.
struct Budgeted<'a> {
    frames: &'a mut heapless::Vec<u64, MAX_TASK_FRAMES>,
    budget: usize,
}

impl Budgeted<'_> {
    fn take(&mut self) -> Option<u64> {
        if self.frames.len() >= self.budget {
            return None;
        }
        let frame = memory::with(|m| m.frames.allocate())?.start();
        zero_frame(frame);
        if self.frames.push(frame).is_err() {
            let _ = memory::with(|m| m.frames.deallocate(PhysFrame::containing(frame)));
            return None;
        }
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
        let mut frames = heapless::Vec::new();
        let root = Budgeted {
            frames: &mut frames,
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
            frames,
            budget,
            mmio_next: USER_MMIO_BASE,
            dma_next: USER_DMA_BASE,
        })
    }

    /// The PML4 to load in CR3.
    pub fn root(&self) -> u64 {
        self.space.root_paddr()
    }

    /// Maps `pages` fresh zeroed pages at `virt`; returns their frames'
    /// physical addresses through `each` (page index, paddr).
    pub fn map_fresh(
        &mut self,
        virt: u64,
        pages: u64,
        attrs: MapAttrs,
        mut each: impl FnMut(u64, u64),
    ) -> Result<(), Error> {
        for i in 0..pages {
            let mut src = Budgeted {
                frames: &mut self.frames,
                budget: self.budget,
            };
            let frame = src.take().ok_or(Error::OutOfMemory)?;
            self.space
                .map(
                    &mut PhysWindow,
                    &mut src,
                    virt + i * PAGE,
                    frame,
                    PAGE,
                    attrs,
                )
                .map_err(|_| Error::BadArgument)?;
            each(i, frame);
        }
        Ok(())
    }

    /// Maps physical MMIO uncached, user, no-execute; returns the address.
    pub fn map_mmio(&mut self, base: u64, len: u64) -> Result<u64, Error> {
        let len = len.div_ceil(PAGE) * PAGE;
        let virt = self.mmio_next;
        let attrs = MapAttrs {
            user: true,
            global: false,
            ..MapAttrs::KERNEL_MMIO
        };
        let mut src = Budgeted {
            frames: &mut self.frames,
            budget: self.budget,
        };
        self.space
            .map(&mut PhysWindow, &mut src, virt, base, len, attrs)
            .map_err(|_| Error::OutOfMemory)?;
        self.mmio_next += len + PAGE; // a hole between grants
        Ok(virt)
    }

    /// Allocates `bytes` (page multiple) of contiguous, zeroed memory below
    /// 4 GiB, maps it, and returns `(vaddr, paddr)`. It counts against the
    /// DMA budget (checked by the caller), not the memory budget.
    pub fn alloc_dma(&mut self, bytes: u64) -> Result<(u64, u64), Error> {
        let pages = bytes / PAGE;
        let first = memory::with(|m| m.frames.allocate_contiguous_below(pages, 1, 1 << 32))
            .ok_or(Error::OutOfMemory)?
            .start();
        for i in 0..pages {
            zero_frame(first + i * PAGE);
            if self.frames.push(first + i * PAGE).is_err() {
                return Err(Error::OutOfMemory);
            }
        }
        let virt = self.dma_next;
        let mut src = Budgeted {
            frames: &mut self.frames,
            budget: self.budget,
        };
        self.space
            .map(
                &mut PhysWindow,
                &mut src,
                virt,
                first,
                bytes,
                MapAttrs::USER_DATA,
            )
            .map_err(|_| Error::OutOfMemory)?;
        self.dma_next += bytes + PAGE;
        Ok((virt, first))
    }

    /// The physical address behind user address `virt`, if it is mapped
    /// for user access (and writable, if `write`).
    pub fn user_phys(&self, virt: u64, write: bool) -> Option<u64> {
        let t = self.space.translate(&mut PhysWindow, virt)?;
        (t.attrs.user && (!write || t.attrs.writable)).then_some(t.phys)
    }

    /// Copies between `buf` and user memory at `virt`, page by page, through
    /// the direct map. Fails (copying nothing further) on the first page not
    /// mapped as required.
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

    /// Frees every frame the service owns (its tables included).
    pub fn release(mut self) {
        memory::with(|m| {
            for f in self.frames.drain(..) {
                let _ = m.frames.deallocate(PhysFrame::containing(f));
            }
        });
    }

    /// Frames owned, for reports.
    pub fn frames_used(&self) -> usize {
        self.frames.len()
    }
}
