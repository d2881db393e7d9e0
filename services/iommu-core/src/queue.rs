//! Queued invalidation: 128-bit descriptors and the queue they go through.
//!
//! The queue is one 4 KiB frame of 256 descriptors (IQA.QS = 0). Every
//! submission ends with an invalidation wait descriptor whose status write
//! (SW = 1, never together with IF) stores a fresh sequence number into a
//! separate status slot; the core polls that slot with a bounded delay and
//! watches FSTS.IQE, so a rejected descriptor is an error, not a hang; the
//! rejected batch is dropped and the queue is usable again afterwards.
//! Submissions are synchronous, so the queue is empty whenever a new one
//! starts. The queue frame itself is read coherently by the hardware, so it
//! is not flushed.
//!
//! Page group responses (type 9) are one more 128-bit descriptor. A page
//! request drain ([`Queue::submit_draining`], VT-d spec 7.10) brackets its
//! batch with two drain waits ([`Descriptor::drain_wait`]: fence, PD and a
//! status write): the first fences everything queued earlier and drains
//! page requests already in flight, and the appended one carries PD as
//! Linux's `qi_submit_sync(..., QI_OPT_WAIT_DRAIN)` does, so when its
//! status write lands every page request the device issued before the
//! batch is in the page request queue. Both keep SW set: QEMU before 10.2
//! rejects a wait with neither SW nor IF.

use embedded_hal::delay::DelayNs;
use faultline_vtd::regs::{self, FaultStatus};

use faultline_vtd::prq::{self, PageGroupResponse};

use crate::error::{Error, Operation};
use crate::hw::{DmaMemory, Mmio, Registers};

/// Descriptors per queue (IQA.QS = 0 → 2^8).
pub const QUEUE_ENTRIES: u16 = 256;
/// Most descriptors one submission may carry (the wait takes one more slot).
pub const MAX_BATCH: usize = 64;

/// Descriptor type numbers (low qword bits 3:0).
pub const TYPE_CONTEXT: u64 = 1;
pub const TYPE_IOTLB: u64 = 2;
pub const TYPE_INTERRUPT_ENTRY: u64 = 4;
pub const TYPE_WAIT: u64 = 5;
pub const TYPE_PASID_CACHE: u64 = 7;
pub const TYPE_PAGE_GROUP_RESPONSE: u64 = prq::TYPE_PAGE_GROUP_RESPONSE;

/// Granularity field (bits 5:4) of context-cache and IOTLB descriptors.
pub const GRANULARITY_GLOBAL: u64 = 1 << 4;
pub const GRANULARITY_DOMAIN: u64 = 2 << 4;
/// Device-selective (context cache) or page-selective (IOTLB).
pub const GRANULARITY_NARROW: u64 = 3 << 4;

/// IOTLB descriptor: drain writes (bit 6) and reads (bit 7).
pub const IOTLB_DRAIN_WRITES: u64 = 1 << 6;
pub const IOTLB_DRAIN_READS: u64 = 1 << 7;

/// Wait descriptor: interrupt flag (bit 4) and status write (bit 5).
pub const WAIT_INTERRUPT: u64 = 1 << 4;
pub const WAIT_STATUS_WRITE: u64 = 1 << 5;
/// Wait descriptor: fence (bit 6) and page-request drain (bit 7, needs
/// ECAP.PDS).
pub const WAIT_FENCE: u64 = prq::WAIT_FENCE;
pub const WAIT_PAGE_DRAIN: u64 = prq::WAIT_PAGE_DRAIN;

/// One 128-bit invalidation descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub low: u64,
    pub high: u64,
}

impl Descriptor {
    /// Invalidate every context-cache entry.
    pub const fn context_global() -> Self {
        Self {
            low: TYPE_CONTEXT | GRANULARITY_GLOBAL,
            high: 0,
        }
    }

    /// Invalidate the context-cache entry of `source` tagged `domain`
    /// (function mask 0: exactly that function).
    pub const fn context_device(domain: u16, source: u16) -> Self {
        Self {
            low: TYPE_CONTEXT | GRANULARITY_NARROW | (domain as u64) << 16 | (source as u64) << 32,
            high: 0,
        }
    }

    /// Invalidate every PASID-cache entry tagged `domain` (scalable mode;
    /// granularity 00 = domain-selective).
    pub const fn pasid_domain(domain: u16) -> Self {
        Self {
            low: TYPE_PASID_CACHE | (domain as u64) << 16,
            high: 0,
        }
    }

    /// Invalidate every PASID-cache entry (scalable mode; granularity
    /// 11 = global).
    pub const fn pasid_global() -> Self {
        Self {
            low: TYPE_PASID_CACHE | GRANULARITY_NARROW,
            high: 0,
        }
    }

    /// Invalidate every cached interrupt remapping entry (G = 0: global;
    /// index and mask unused).
    pub const fn interrupt_entries_global() -> Self {
        Self {
            low: TYPE_INTERRUPT_ENTRY,
            high: 0,
        }
    }

    /// Invalidate the whole IOTLB.
    pub const fn iotlb_global(drain: u64) -> Self {
        Self {
            low: TYPE_IOTLB | GRANULARITY_GLOBAL | drain,
            high: 0,
        }
    }

    /// Invalidate every IOTLB entry of `domain`.
    pub const fn iotlb_domain(domain: u16, drain: u64) -> Self {
        Self {
            low: TYPE_IOTLB | GRANULARITY_DOMAIN | drain | (domain as u64) << 16,
            high: 0,
        }
    }

    /// Invalidate `domain`'s IOTLB entries for the 2^`mask` pages at
    /// `iova`, which must be aligned to that size.
    pub const fn iotlb_pages(domain: u16, iova: u64, mask: u8, drain: u64) -> Self {
        Self {
            low: TYPE_IOTLB | GRANULARITY_NARROW | drain | (domain as u64) << 16,
            high: iova & !0xfff | mask as u64,
        }
    }

    /// Write `data` to the 4-byte-aligned `status` address once every
    /// earlier descriptor has completed.
    pub const fn wait(status: u64, data: u32) -> Self {
        Self {
            low: TYPE_WAIT | WAIT_STATUS_WRITE | (data as u64) << 32,
            high: status & !3,
        }
    }

    /// A wait that also fences (later descriptors start only after it
    /// completes) and drains page requests (PD: page requests the unit
    /// accepted before it are written to the page request queue before
    /// its status write). Needs ECAP.PDS.
    pub const fn drain_wait(status: u64, data: u32) -> Self {
        let wait = Self::wait(status, data);
        Self {
            low: wait.low | WAIT_FENCE | WAIT_PAGE_DRAIN,
            high: wait.high,
        }
    }

    /// Answer one page group (type 9): `r.encode()` as is.
    pub const fn page_group_response(r: PageGroupResponse) -> Self {
        let (low, high) = r.encode();
        Self { low, high }
    }
}

/// The invalidation queue of one unit.
pub struct Queue {
    base: u64,
    status: u64,
    tail: u16,
    sequence: u32,
}

impl Queue {
    /// Allocates the queue and its status slot (two frames).
    pub fn new<M: DmaMemory>(mem: &mut M) -> Result<Self, Error> {
        let base = mem.alloc_frame().ok_or(Error::OutOfTableMemory)?;
        let Some(status) = mem.alloc_frame() else {
            mem.free_frame(base);
            return Err(Error::OutOfTableMemory);
        };
        Ok(Self {
            base,
            status,
            tail: 0,
            sequence: 0,
        })
    }

    /// The IQA value: base address, 128-bit descriptors, QS = 0.
    pub const fn address_register(&self) -> u64 {
        self.base
    }

    /// Queues `batch` (at most [`MAX_BATCH`]) plus a wait descriptor, moves
    /// IQT, and polls the status slot until the wait has completed.
    pub fn submit<R: Registers, M: DmaMemory, D: DelayNs>(
        &mut self,
        mmio: &mut Mmio<R>,
        mem: &mut M,
        delay: &mut D,
        timeout_us: u32,
        batch: &[Descriptor],
    ) -> Result<(), Error> {
        self.submit_with(mmio, mem, delay, timeout_us, batch, false)
    }

    /// Like [`Queue::submit`], for a page request drain (VT-d spec 7.10):
    /// a fenced drain wait (status data 0, which the poll never takes for
    /// completion) goes first, then `batch` (the IOTLB invalidation of the
    /// device's domain), then the usual wait with PD and fence added. The
    /// caller checks ECAP.PDS.
    pub fn submit_draining<R: Registers, M: DmaMemory, D: DelayNs>(
        &mut self,
        mmio: &mut Mmio<R>,
        mem: &mut M,
        delay: &mut D,
        timeout_us: u32,
        batch: &[Descriptor],
    ) -> Result<(), Error> {
        self.submit_with(mmio, mem, delay, timeout_us, batch, true)
    }

    fn submit_with<R: Registers, M: DmaMemory, D: DelayNs>(
        &mut self,
        mmio: &mut Mmio<R>,
        mem: &mut M,
        delay: &mut D,
        timeout_us: u32,
        batch: &[Descriptor],
        drain: bool,
    ) -> Result<(), Error> {
        debug_assert!(batch.len() <= MAX_BATCH);
        self.sequence = self.sequence.wrapping_add(1).max(1);
        mem.write_u64(self.status, 0);
        let (first, last) = if drain {
            (
                Some(Descriptor::drain_wait(self.status, 0)),
                Descriptor::drain_wait(self.status, self.sequence),
            )
        } else {
            (None, Descriptor::wait(self.status, self.sequence))
        };
        for descriptor in first.into_iter().chain(batch.iter().copied()).chain([last]) {
            let at = self.base + 16 * u64::from(self.tail);
            mem.write_u64(at, descriptor.low);
            mem.write_u64(at + 8, descriptor.high);
            self.tail = (self.tail + 1) % QUEUE_ENTRIES;
        }
        mmio.write(regs::IQT, u64::from(self.tail) << 4);
        for _ in 0..=timeout_us {
            if mem.read_u64(self.status) as u32 == self.sequence {
                return Ok(());
            }
            let status = FaultStatus::from_bits_retain(mmio.read32(regs::FSTS));
            if status.contains(FaultStatus::IQE) {
                // IQH points at the rejected descriptor. Drop it and
                // everything after it (IQT is ignored while IQE is set),
                // then clear IQE so the queue takes new work again.
                let head = mmio.read(regs::IQH);
                self.tail = ((head >> 4) as u16) % QUEUE_ENTRIES;
                mmio.write(regs::IQT, u64::from(self.tail) << 4);
                mmio.write(regs::FSTS, u64::from(FaultStatus::IQE.bits()));
                return Err(Error::InvalidationQueueError);
            }
            delay.delay_us(1);
        }
        Err(Error::Timeout(Operation::InvalidationWait))
    }
}

/// Splits the 4 KiB-aligned `start..end` into naturally aligned
/// power-of-two blocks of at most 2^`max_mask` pages, calling `f(iova, mask)`
/// for each: the page-selective invalidations that cover exactly the range.
/// Returns how many blocks there were.
pub fn page_blocks(start: u64, end: u64, max_mask: u8, mut f: impl FnMut(u64, u8)) -> usize {
    let mut at = start;
    let mut count = 0;
    while at < end {
        let pages = (end - at) >> 12;
        let align = if at == 0 {
            63
        } else {
            (at >> 12).trailing_zeros()
        };
        let fit = 63 - pages.leading_zeros();
        let mask = align.min(fit).min(u32::from(max_mask)) as u8;
        f(at, mask);
        count += 1;
        at += 1 << (12 + u32::from(mask));
    }
    count
}
