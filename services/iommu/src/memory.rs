//! The driver core's [`DmaMemory`] over the kernel's DMA memory: frames
//! come from the shared [`FramePool`] (which grows by `dma_alloc` from the
//! `dma` budget), are read and written through the service's own mapping
//! of them, and are flushed with `clflush` when a unit does not snoop. One
//! of the image's two `unsafe` modules.

use faultline_iommu_core::DmaMemory;
use faultline_ipc::channel::Handle;
use hermit_sync::SpinMutex;
use iommu::frames::{FRAME, FramePool};
use userlib::{DmaRegion, dma_alloc, log};

/// Every unit's tables come from this pool (one `dma` budget for all).
static POOL: SpinMutex<FramePool> = SpinMutex::new(FramePool::new());

/// Chunk sizes asked of the kernel, largest first (frames).
const CHUNKS: [u32; 3] = [16, 4, 1];

/// A unit's view of the pool.
pub struct PoolMemory {
    dma: Handle,
}

impl PoolMemory {
    pub const fn new(dma: Handle) -> Self {
        Self { dma }
    }

    /// Adds a chunk from the kernel; false when the budget is spent.
    fn grow(&mut self) -> bool {
        if !POOL.lock().can_grow() {
            return false;
        }
        for frames in CHUNKS {
            match dma_alloc(self.dma, u64::from(frames) * FRAME) {
                Ok(DmaRegion {
                    vaddr,
                    paddr: Some(paddr),
                    ..
                }) => return POOL.lock().add(vaddr, paddr, frames).is_ok(),
                Ok(_) => {
                    log!("iommu: the kernel gave DMA memory without its physical address");
                    return false;
                }
                Err(_) => continue,
            }
        }
        false
    }

    /// The service's address of `paddr`, 8-byte aligned, in a pool frame.
    fn vaddr(&self, paddr: u64) -> u64 {
        let vaddr = POOL.lock().vaddr(paddr);
        match vaddr {
            Some(v) if paddr.is_multiple_of(8) => v,
            _ => panic!("iommu: {paddr:#x} is not in a table frame"),
        }
    }
}

impl DmaMemory for PoolMemory {
    fn alloc_frame(&mut self) -> Option<u64> {
        let taken = POOL.lock().take();
        let paddr = match taken {
            Some(p) => p,
            None if self.grow() => POOL.lock().take()?,
            None => return None,
        };
        // A frame given back earlier holds old tables.
        for at in (paddr..paddr + FRAME).step_by(8) {
            self.write_u64(at, 0);
        }
        Some(paddr)
    }

    fn free_frame(&mut self, paddr: u64) {
        if !POOL.lock().give_back(paddr) {
            log!("iommu: frame {paddr:#x} given back twice or not ours");
        }
    }

    #[allow(unsafe_code)]
    fn read_u64(&mut self, paddr: u64) -> u64 {
        let vaddr = self.vaddr(paddr);
        // SAFETY: `vaddr` is this service's mapping of a frame the kernel
        // allocated to it (checked by `vaddr`), 8-byte aligned; volatile,
        // because the unit writes these frames too (wait status).
        unsafe { core::ptr::read_volatile(vaddr as *const u64) }
    }

    #[allow(unsafe_code)]
    fn write_u64(&mut self, paddr: u64, value: u64) {
        let vaddr = self.vaddr(paddr);
        // SAFETY: as in `read_u64`; the frames are the service's own, never
        // shared with another service, and no Rust reference points there.
        unsafe { core::ptr::write_volatile(vaddr as *mut u64, value) }
    }

    #[allow(unsafe_code)]
    fn flush(&mut self, paddr: u64, len: usize) {
        let start = paddr & !63;
        let end = paddr + len as u64;
        for line in (start..end).step_by(64) {
            let vaddr = self.vaddr(line);
            // SAFETY: `clflush` of a mapped address of the service's own
            // frame only writes the cache line back; it changes no data.
            unsafe {
                core::arch::asm!("clflush [{0}]", in(reg) vaddr, options(nostack, preserves_flags))
            };
        }
        // SAFETY: `mfence` orders the flushes before later register writes
        // that make the unit read the tables; it touches no memory.
        unsafe { core::arch::asm!("mfence", options(nostack, preserves_flags)) };
    }
}
