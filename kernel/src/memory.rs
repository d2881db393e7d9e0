//! Kernel memory bring-up and the mapping services the rest of the kernel
//! uses afterwards.
//!
//! [`init`] turns the firmware memory map into a frame allocator, builds the
//! kernel's own page tables (image sections with their own permissions, the
//! direct map of RAM, a guarded stack) and switches to them; the boot code's
//! identity map is gone after that. Device registers and firmware tables are
//! mapped later, on demand, at their direct-map addresses: MMIO uncached
//! ([`map_mmio`]), ACPI tables read-only ([`map_firmware`]).

use crate::arch::cpu::Features;
use crate::arch::paging::{self as hw, PhysWindow};
use crate::mm::{
    self, AddressSpace, FrameAllocator, MapAttrs, MapError, PAGE_SIZE, PageSize, PhysFrame,
    PhysMap, PhysRange, frame::TableFramesBelow, phys_to_virt,
};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use faultline_boot::{BootInfo, MemoryKind};
use hermit_sync::InterruptSpinMutex;

/// Until the kernel's own tables are live, the boot tables map only this
/// much physical memory in the direct-map window; the frame bitmap and all
/// page tables must lie below it.
const BOOT_WINDOW: u64 = 4 << 30;

unsafe extern "C" {
    static __boot_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __kernel_end: u8;
}

fn symbol(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// The kernel's memory: its address space and the frame allocator.
pub struct KernelMemory {
    pub space: AddressSpace,
    pub frames: FrameAllocator<'static>,
    pub map: PhysMap,
}

static MEMORY: InterruptSpinMutex<Option<KernelMemory>> = InterruptSpinMutex::new(None);
static MAIN_STACK_TOP: AtomicU64 = AtomicU64::new(0);

/// Why memory bring-up failed.
#[derive(Debug)]
pub enum MemoryError {
    Map(mm::PhysMapError),
    Frames(mm::FrameError),
    Paging(MapError),
    BitmapAboveBootWindow { paddr: u64 },
    OutOfFrames,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Map(e) => write!(f, "memory map: {e}"),
            Self::Frames(e) => write!(f, "frame allocator: {e}"),
            Self::Paging(e) => write!(f, "kernel page tables: {e}"),
            Self::BitmapAboveBootWindow { paddr } => {
                write!(
                    f,
                    "no room for the frame bitmap below 4 GiB (lowest fit {paddr:#x})"
                )
            }
            Self::OutOfFrames => write!(f, "out of memory building the kernel page tables"),
        }
    }
}

impl From<MapError> for MemoryError {
    fn from(e: MapError) -> Self {
        Self::Paging(e)
    }
}

/// Sets up frames and the kernel page tables, switches to them, and returns
/// the top of the guarded kernel stack the caller should move to.
pub fn init(info: &BootInfo, features: &Features) -> Result<u64, MemoryError> {
    // SAFETY: linker-script symbols; only their addresses are used.
    let (boot_start, kernel_end) = unsafe { (symbol(&__boot_start), symbol(&__kernel_end)) };
    let image = PhysRange::new(boot_start, kernel_end - mm::KERNEL_BASE);
    let exclusions = [PhysRange::new(0, mm::LOW_MEMORY_END), image];
    let mut map = PhysMap::from_boot_info(info, &exclusions).map_err(MemoryError::Map)?;

    let plan = mm::plan_bitmap(&mut map).map_err(MemoryError::Frames)?;
    if plan.paddr + plan.bytes > BOOT_WINDOW {
        return Err(MemoryError::BitmapAboveBootWindow { paddr: plan.paddr });
    }
    // The bitmap range is usable RAM below 4 GiB (checked above), mapped
    // read-write in the direct map by the boot and the kernel tables alike.
    // SAFETY: excluded from the allocator, so only this slice ever uses it;
    // and `words * 8 <= bytes`.
    let storage: &'static mut [u64] = unsafe {
        core::slice::from_raw_parts_mut(phys_to_virt(plan.paddr) as *mut u64, plan.words)
    };
    let mut frames = FrameAllocator::new(&map, storage).map_err(MemoryError::Frames)?;

    let root = frames
        .allocate_below(BOOT_WINDOW)
        .ok_or(MemoryError::OutOfFrames)?;
    hw::zero_frame(root.start());
    let mut space = AddressSpace::new(root.start()).with_gigabyte_pages(features.huge_pages);
    let global = features.global_pages;
    let kernel = |a: MapAttrs| MapAttrs { global, ..a };
    {
        let mut tables = TableFramesBelow {
            frames: &mut frames,
            limit: BOOT_WINDOW,
        };
        let mem = &mut PhysWindow;
        // SAFETY: linker-script symbols; only their addresses are used.
        let sections = unsafe {
            [
                (
                    symbol(&__text_start),
                    symbol(&__text_end),
                    kernel(MapAttrs::KERNEL_TEXT),
                ),
                (
                    symbol(&__rodata_start),
                    symbol(&__rodata_end),
                    kernel(MapAttrs::KERNEL_RODATA),
                ),
                (
                    symbol(&__data_start),
                    symbol(&__data_end),
                    kernel(MapAttrs::KERNEL_DATA),
                ),
            ]
        };
        for (start, end, attrs) in sections {
            space.map(
                mem,
                &mut tables,
                start,
                start - mm::KERNEL_BASE,
                end - start,
                attrs,
            )?;
        }
        // The direct map: the first MiB, then every range of RAM.
        let ram = kernel(MapAttrs::KERNEL_DATA);
        space.map(
            mem,
            &mut tables,
            phys_to_virt(0),
            0,
            mm::LOW_MEMORY_END,
            ram,
        )?;
        for region in map.regions() {
            if !matches!(
                region.kind,
                MemoryKind::Usable | MemoryKind::AcpiReclaimable | MemoryKind::AcpiNvs
            ) {
                continue;
            }
            // The image itself is reached only through its own mappings, so
            // its text never gets a writable alias here (W^X).
            let start = region.base.max(mm::LOW_MEMORY_END);
            let whole = PhysRange::new(start, region.end().max(start));
            let below = PhysRange::new(whole.start, whole.end.min(image.start));
            let above = PhysRange::new(whole.start.max(image.end), whole.end);
            for part in [below, above] {
                let pages = part.pages_inside();
                if !pages.is_empty() {
                    let virt = phys_to_virt(pages.start);
                    space.map(mem, &mut tables, virt, pages.start, pages.len(), ram)?;
                }
            }
        }
        // The main kernel stack, with its guard page left unmapped.
        let stack = mm::kernel_stack(0).expect("stack 0 exists");
        let mut at = stack.bottom;
        while at < stack.top {
            let frame = tables.frames.allocate().ok_or(MemoryError::OutOfFrames)?;
            space.map(mem, &mut tables, at, frame.start(), PAGE_SIZE as u64, ram)?;
            at += PAGE_SIZE as u64;
        }
        MAIN_STACK_TOP.store(stack.top, Ordering::Relaxed);
    }

    // SAFETY: the new tables map the image where it is linked (text, rodata,
    // data, bss with the boot stack and statics) and the direct map where the
    // boot tables had it (the frame bitmap and tables are reached there).
    unsafe { hw::activate(space.root_paddr()) };
    hw::set_kernel_root(space.root_paddr());
    let (g, smep, smap) =
        hw::enable_protections(features.global_pages, features.smep, features.smap);
    log::info!(
        "memory: kernel page tables live (root {:#x}); global pages {}, SMEP {}, SMAP {}",
        space.root_paddr(),
        on(g),
        on(smep),
        on(smap)
    );
    *MEMORY.lock() = Some(KernelMemory { space, frames, map });
    Ok(MAIN_STACK_TOP.load(Ordering::Relaxed))
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Top of the kernel's main (guarded) stack.
pub fn main_stack_top() -> u64 {
    MAIN_STACK_TOP.load(Ordering::Relaxed)
}

/// Runs `f` with the kernel's memory state.
pub fn with<R>(f: impl FnOnce(&mut KernelMemory) -> R) -> R {
    let mut guard = MEMORY.lock();
    f(guard.as_mut().expect("memory::init ran"))
}

/// Maps the device registers at `[paddr, paddr + len)` uncached at their
/// direct-map address and returns the virtual address of `paddr`.
pub fn map_mmio(paddr: u64, len: u64) -> Result<u64, MapError> {
    map_each_page(paddr, len, MapAttrs::KERNEL_MMIO, false)
}

/// Maps a large, naturally aligned MMIO window (an ECAM region) uncached,
/// with 2 MiB pages where alignment allows: 256 MiB of ECAM in 4 KiB pages
/// would be 65,536 page-table entries, each a trapped write on hypervisors
/// that shadow guest page tables.
pub fn map_mmio_window(paddr: u64, len: u64) -> Result<u64, MapError> {
    let range = PhysRange::from_base_len(paddr, len.max(1)).pages_around();
    let attrs = MapAttrs {
        largest_page: PageSize::Size2M,
        ..MapAttrs::KERNEL_MMIO
    };
    with(|m| {
        let mut tables = TableFrames(&mut m.frames);
        let virt = phys_to_virt(range.start);
        m.space.map(
            &mut PhysWindow,
            &mut tables,
            virt,
            range.start,
            range.len(),
            attrs,
        )?;
        Ok(phys_to_virt(paddr))
    })
}

/// Maps firmware tables at `[paddr, paddr + len)` read-only (pages already
/// in the direct map stay as they are) and returns the address of `paddr`.
pub fn map_firmware(paddr: u64, len: u64) -> Result<u64, MapError> {
    let attrs = MapAttrs {
        largest_page: PageSize::Size4K,
        ..MapAttrs::KERNEL_RODATA
    };
    map_each_page(paddr, len, attrs, true)
}

fn map_each_page(paddr: u64, len: u64, attrs: MapAttrs, reuse: bool) -> Result<u64, MapError> {
    let range = PhysRange::from_base_len(paddr, len.max(1)).pages_around();
    with(|m| {
        let mut tables = TableFrames(&mut m.frames);
        let mem = &mut PhysWindow;
        let mut page = range.start;
        while page < range.end {
            let virt = phys_to_virt(page);
            match m.space.translate(mem, virt) {
                Some(t) if t.phys == page && (reuse || t.attrs.cache == attrs.cache) => {}
                Some(_) => return Err(MapError::AlreadyMapped { virt }),
                None => m
                    .space
                    .map(mem, &mut tables, virt, page, PAGE_SIZE as u64, attrs)?,
            }
            page += PAGE_SIZE as u64;
        }
        Ok(phys_to_virt(paddr))
    })
}

/// Page-table frames for the live kernel tables: any RAM will do, since the
/// direct map now covers all of it.
struct TableFrames<'f>(&'f mut FrameAllocator<'static>);

impl mm::FrameSource for TableFrames<'_> {
    fn allocate_table(&mut self) -> Option<u64> {
        self.0.allocate().map(PhysFrame::start)
    }
}

/// Summary figures for the boot report.
#[derive(Clone, Copy, Debug)]
pub struct MemorySummary {
    pub usable_bytes: u64,
    pub usable_above_4g: u64,
    pub regions: usize,
    pub free_frames: u64,
    pub total_frames: u64,
    /// A free frame above 4 GiB that was written and read back through the
    /// direct map, if the machine has RAM there.
    pub high_frame_check: Option<Result<u64, u64>>,
}

/// Figures for the report, and a write/read check of the highest free frame
/// when RAM exists above 4 GiB (proving the direct map reaches it).
pub fn summary() -> MemorySummary {
    with(|m| {
        let above: u64 = m
            .map
            .regions()
            .iter()
            .filter(|r| r.kind == MemoryKind::Usable && r.end() > BOOT_WINDOW)
            .map(|r| r.end() - r.base.max(BOOT_WINDOW))
            .sum();
        let high = m
            .map
            .allocatable()
            .iter()
            .rev()
            .find(|r| r.end > BOOT_WINDOW)
            .map(|r| PhysFrame::containing(r.end - PAGE_SIZE as u64));
        let high_frame_check = high.map(|frame| {
            if m.frames.is_free(frame) != Some(true) {
                return Err(frame.start());
            }
            let p = phys_to_virt(frame.start()) as *mut u64;
            let pattern = 0x5a5a_f00d_0000_0000 | frame.start();
            // SAFETY: the frame is usable RAM, mapped read-write in the
            // direct map, and free: nothing else owns its contents.
            let back = unsafe {
                core::ptr::write_volatile(p, pattern);
                core::ptr::read_volatile(p)
            };
            if back == pattern {
                Ok(frame.start())
            } else {
                Err(frame.start())
            }
        });
        MemorySummary {
            usable_bytes: m.map.usable_bytes(),
            usable_above_4g: above,
            regions: m.map.regions().len(),
            free_frames: m.frames.free_frames(),
            total_frames: m.frames.total_frames(),
            high_frame_check,
        }
    })
}
