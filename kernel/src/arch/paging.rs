//! The page-table hardware interface: reaching tables through the kernel's
//! physical-memory window, loading CR3, and turning on the paging features
//! the CPU has.
//!
//! The page-table *logic* lives in [`crate::mm::paging`] and is tested on
//! the host; this module only gives it memory and makes it live.

use crate::mm::{PAGE_SIZE, paging::TableMemory, phys_to_virt};
use x86::controlregs::{Cr4, cr3, cr3_write, cr4, cr4_write};

/// Page tables reached through the physical-memory window at
/// [`crate::mm::PHYS_MAP_BASE`].
///
/// Before the kernel's own tables are live, the boot tables map only the
/// first 4 GiB there, so every table frame is allocated below 4 GiB.
pub struct PhysWindow;

impl TableMemory for PhysWindow {
    fn table(&mut self, paddr: u64) -> &mut [u64; 512] {
        debug_assert_eq!(paddr % PAGE_SIZE as u64, 0);
        // SAFETY: table frames are page-aligned allocator frames in RAM the
        // direct map covers read-write; each is only ever a page table, and
        // callers hold the address-space lock, so this reference is unique.
        unsafe { &mut *(phys_to_virt(paddr) as *mut [u64; 512]) }
    }
}

/// Fills a frame with zeroes through the physical-memory window.
pub fn zero_frame(paddr: u64) {
    // SAFETY: as for `PhysWindow::table`: a freshly allocated RAM frame
    // below 4 GiB, mapped writable, not referenced by anything else yet.
    unsafe { core::ptr::write_bytes(phys_to_virt(paddr) as *mut u8, 0, PAGE_SIZE) }
}

/// Loads `root` into CR3.
///
/// # Safety
///
/// `root` must be a complete PML4 that maps the running code, its stack, and
/// every static the kernel uses, with the same virtual addresses.
pub unsafe fn activate(root: u64) {
    // SAFETY: the caller guarantees the new tables keep the kernel mapped.
    unsafe { cr3_write(root) };
}

/// The physical address of the active PML4.
pub fn active_root() -> u64 {
    // SAFETY: reading CR3 has no side effects.
    unsafe { cr3() & !0xfff }
}

/// Turns on global pages, SMEP and SMAP where the CPU has them. Returns
/// which were enabled.
pub fn enable_protections(global: bool, smep: bool, smap: bool) -> (bool, bool, bool) {
    // SAFETY: these bits only restrict what the CPU allows (SMEP/SMAP) or
    // keep kernel TLB entries across CR3 loads (PGE); each is set only when
    // CPUID reports it, so the write cannot #GP.
    unsafe {
        let mut flags = cr4();
        if global {
            flags |= Cr4::CR4_ENABLE_GLOBAL_PAGES;
        }
        if smep {
            flags |= Cr4::CR4_ENABLE_SMEP;
        }
        if smap {
            flags |= Cr4::CR4_ENABLE_SMAP;
        }
        cr4_write(flags);
    }
    (global, smep, smap)
}

/// Invalidates the TLB entry for `virt`.
pub fn flush(virt: u64) {
    // SAFETY: INVLPG has no effect beyond dropping a cached translation.
    unsafe { x86::tlb::flush(virt as usize) }
}

/// The kernel's own PML4, recorded when its tables went live.
static KERNEL_ROOT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Records the kernel's PML4 (called once its tables are live).
pub fn set_kernel_root(root: u64) {
    KERNEL_ROOT.store(root, core::sync::atomic::Ordering::Relaxed);
}

/// The kernel's own PML4, whose upper half every service shares.
pub fn active_root_of_kernel() -> u64 {
    KERNEL_ROOT.load(core::sync::atomic::Ordering::Relaxed)
}
