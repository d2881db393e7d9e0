//! Physical and virtual memory: the firmware map, frames, and page tables.
//!
//! Everything here is pure logic tested on the host. [`memory_map`] turns the
//! firmware's E820 map into a clean, non-overlapping [`PhysMap`] and the set of
//! page-aligned ranges the kernel may allocate from; [`frame`] hands out 4 KiB
//! frames from those ranges with a bitmap the kernel places in RAM itself;
//! [`paging`] builds x86-64 4-level page tables through a [`TableMemory`]
//! trait, so it never assumes how (or whether) tables are mapped.
//!
//! # Kernel virtual layout
//!
//! All kernel mappings live in the upper canonical half, PML4 slots 256-511,
//! which every address space shares; the lower half belongs to the service.
//!
//! | Range | PML4 slots | What |
//! | --- | --- | --- |
//! | [`PHYS_MAP_BASE`] .. +[`PHYS_MAP_SIZE`] | 256-383 | Direct map: physical address `p` at `PHYS_MAP_BASE + p`. RAM write-back, NX; MMIO (e.g. the VT-d registers, which no E820 entry covers) at the same offset, uncached. |
//! | [`KERNEL_STACKS_BASE`] .. +[`KERNEL_STACKS_SIZE`] | 510 | Kernel stacks, [`KERNEL_STACK_SIZE`] each, every one with an unmapped guard page below it ([`kernel_stack`]). |
//! | [`KERNEL_BASE`] .. 2^64 | 511 | The kernel image, linked at `KERNEL_BASE + physical load address` and loaded at [`KERNEL_LOAD_PADDR`] (1 MiB); text RX, rodata R+NX, data RW+NX. |
//!
//! The boot code's tables already follow this for the first 4 GiB (direct
//! map) and the first GiB (image window), so addresses computed here are
//! valid from the kernel's first instruction.

pub mod frame;
pub mod memory_map;
pub mod paging;

#[cfg(test)]
mod tests;

pub use frame::{BitmapPlan, FrameAllocator, FrameError, PhysFrame, plan_bitmap};
pub use memory_map::{MAX_PHYS_REGIONS, PhysMap, PhysMapError, PhysRange};
pub use paging::{
    AddressSpace, Cache, FrameSource, MapAttrs, MapError, PageSize, TableMemory, Translation,
};

/// Size of a base page and of a physical frame, in bytes.
pub const PAGE_SIZE: usize = 4096;
/// `log2(PAGE_SIZE)`.
pub const PAGE_SHIFT: u32 = 12;
/// Size of a 2 MiB ("large") page.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// Size of a 1 GiB ("huge") page.
pub const HUGE_PAGE_SIZE: u64 = 1 << 30;

/// End of the first MiB: real-mode IVT, BIOS data, EBDA, VGA and option
/// ROMs. Never allocated, even where E820 calls it usable.
pub const LOW_MEMORY_END: u64 = 0x10_0000;
/// Physical address the image (boot code first) is loaded at.
pub const KERNEL_LOAD_PADDR: u64 = 0x10_0000;

/// Base of the direct map of physical memory (and MMIO, uncached).
pub const PHYS_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Bytes of physical address space the direct map can cover: 64 TiB.
pub const PHYS_MAP_SIZE: u64 = 1 << 46;
/// Base of the kernel stack area.
pub const KERNEL_STACKS_BASE: u64 = 0xffff_ff00_0000_0000;
/// Bytes of the kernel stack area: one PML4 slot.
pub const KERNEL_STACKS_SIZE: u64 = 1 << 39;
/// Usable bytes of one kernel stack. Generous because bring-up builds the
/// deployment (tens of KiB of fixed-capacity tables) before moving it into
/// statics, and debug builds keep several temporaries on the stack.
pub const KERNEL_STACK_SIZE: u64 = 512 * 1024;
/// Distance between consecutive kernel stacks: the stack plus its guard.
pub const KERNEL_STACK_STRIDE: u64 = KERNEL_STACK_SIZE + PAGE_SIZE as u64;
/// Where the kernel image's virtual window starts (physical address 0).
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
/// First PML4 slot of the kernel half, shared by every address space.
pub const KERNEL_PML4_FIRST_SLOT: usize = 256;

/// The direct-map address of physical address `paddr`.
///
/// `paddr` must be below [`PHYS_MAP_SIZE`] for the result to lie in the
/// direct map; [`try_phys_to_virt`] checks that.
pub const fn phys_to_virt(paddr: u64) -> u64 {
    PHYS_MAP_BASE.wrapping_add(paddr)
}

/// The direct-map address of `paddr`, or `None` past [`PHYS_MAP_SIZE`].
pub const fn try_phys_to_virt(paddr: u64) -> Option<u64> {
    if paddr < PHYS_MAP_SIZE {
        Some(PHYS_MAP_BASE + paddr)
    } else {
        None
    }
}

/// The physical address behind a direct-map or kernel-image address, or
/// `None` for any other address.
pub const fn virt_to_phys(virt: u64) -> Option<u64> {
    if virt >= KERNEL_BASE {
        Some(virt - KERNEL_BASE)
    } else if virt >= PHYS_MAP_BASE && virt - PHYS_MAP_BASE < PHYS_MAP_SIZE {
        Some(virt - PHYS_MAP_BASE)
    } else {
        None
    }
}

/// The virtual addresses of kernel stack number `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelStack {
    /// The unmapped guard page, just below the stack.
    pub guard: u64,
    /// Lowest mapped byte of the stack.
    pub bottom: u64,
    /// One past the highest byte: the initial stack pointer.
    pub top: u64,
}

/// Where kernel stack `index` lives, or `None` past the stack area.
pub const fn kernel_stack(index: u64) -> Option<KernelStack> {
    if index >= KERNEL_STACKS_SIZE / KERNEL_STACK_STRIDE {
        return None;
    }
    let guard = KERNEL_STACKS_BASE + index * KERNEL_STACK_STRIDE;
    let bottom = guard + PAGE_SIZE as u64;
    Some(KernelStack {
        guard,
        bottom,
        top: bottom + KERNEL_STACK_SIZE,
    })
}
