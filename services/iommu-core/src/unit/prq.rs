//! The page request queue of a unit: setting it up, reading the page
//! requests PRI devices put in it, answering page groups, and draining it
//! when a device goes away. The flow is Linux's `prq.c`
//! (`intel_iommu_enable_prq`, `prq_event_thread`,
//! `intel_iommu_drain_pasid_prq`); what a request must look like to be
//! served is `crate::prq::check`.
//!
//! The queue is one zeroed DMA frame, PQA.PQS = 0: 128 descriptors of 32
//! bytes. The unit writes at PQT, software consumes from PQH. A read clears
//! PRS.PPR *before* it reads PQH/PQT, so a request that lands after the
//! read sets PPR again and raises a new event instead of waiting unseen;
//! it then hands every descriptor from head to tail (with wrap) to the
//! caller and moves PQH to the tail once, for the whole batch. A set
//! PRS.PRO (the queue was full, requests were dropped) is cleared only
//! once head equals tail, as Linux does: clearing it with requests still
//! queued would let the unit accept new ones behind requests whose group
//! the caller is about to throw away.

use embedded_hal::delay::DelayNs;
use faultline_vtd::prq::{self as format, DESCRIPTOR_BYTES, OFFSET_MASK};
use faultline_vtd::regs::{self, EventControl, PageRequestStatus};

use super::{DomainId, Unit};
use crate::error::{Error, Operation, Unsupported};
use crate::hw::{DmaMemory, Registers};
use crate::pagetable::PAGE_SIZE;
use crate::prq::{Overflow, PageGroupResponse, PageRequest, PrqBatch};
use crate::queue::Descriptor;

/// PQA.PQS: a queue of one 4 KiB page.
const QUEUE_SIZE: u8 = 0;
/// Bytes in the queue (128 descriptors).
const QUEUE_BYTES: u64 = DESCRIPTOR_BYTES * format::queue_entries(QUEUE_SIZE);
/// Most rounds of read, drain wait, read that
/// [`Unit::drain_page_requests`] tries while PRS.PRO keeps being set.
pub const MAX_DRAIN_ROUNDS: usize = 8;

impl<R: Registers, M: DmaMemory, D: DelayNs> Unit<R, M, D> {
    /// ECAP.PRS: the unit reports page requests through a page request
    /// queue.
    pub fn page_requests_supported(&self) -> bool {
        self.ecap.page_requests()
    }

    /// ECAP.PDS: invalidation wait descriptors can drain page requests.
    pub fn page_drain_supported(&self) -> bool {
        self.ecap.page_request_drain()
    }

    /// The page request queue's base, once enabled.
    pub fn page_request_queue(&self) -> Option<u64> {
        self.page_requests
    }

    /// Sets up the page request queue: one zeroed frame, PECTL masked,
    /// PQH = PQT = 0, then PQA. The event stays masked until
    /// [`Unit::enable_page_request_interrupt`] programs its message.
    /// Calling it again once enabled changes nothing. Needs ECAP.PRS.
    pub fn enable_page_requests(&mut self) -> Result<(), Error> {
        if !self.page_requests_supported() {
            return Err(Error::Unsupported(Unsupported::PageRequests));
        }
        if self.page_requests.is_some() {
            return Ok(());
        }
        let base = self.mem.alloc_frame().ok_or(Error::OutOfTableMemory)?;
        if !self.ecap.coherency() {
            self.mem.flush(base, PAGE_SIZE as usize);
        }
        // Masked whatever an earlier instance left: no event may reach a
        // message this instance has not programmed.
        self.mmio
            .write(regs::PECTL, u64::from(EventControl::IM.bits()));
        self.mmio.write(regs::PQH, 0);
        self.mmio.write(regs::PQT, 0);
        self.mmio
            .write(regs::PQA, format::queue_address(base, QUEUE_SIZE));
        self.page_requests = Some(base);
        Ok(())
    }

    /// Programs the page request event interrupt (the MSI address and data
    /// the kernel granted) and unmasks it, as
    /// [`Unit::enable_fault_interrupt`] does for the fault event. Needs
    /// ECAP.PRS.
    pub fn enable_page_request_interrupt(&mut self, address: u32, data: u16) -> Result<(), Error> {
        if !self.page_requests_supported() {
            return Err(Error::Unsupported(Unsupported::PageRequests));
        }
        self.mmio.write(regs::PEDATA, u64::from(data));
        self.mmio.write(regs::PEADDR, u64::from(address & !3));
        self.mmio.write(regs::PEUADDR, 0);
        self.mmio.write(regs::PECTL, 0);
        Ok(())
    }

    /// Reads every queued page request, in order, into `out`, and consumes
    /// them (PQH = tail). Steps, as Linux's `prq_event_thread`: clear
    /// PRS.PPR; read PQT and PQH; decode each 32-byte descriptor from head
    /// to tail with wrap (one whose type is not a page request is counted
    /// in [`PrqBatch::garbage`] and skipped); write PQH = tail; then, if
    /// PRS.PRO is set, read PQH and PQT again and clear PRO only if the
    /// queue is empty ([`Overflow::Cleared`]: discard partial groups),
    /// else leave it ([`Overflow::Pending`]: read again).
    ///
    /// Every request handed out is the caller's to answer: a page group
    /// response for the last request of each group (not for stop markers),
    /// whether it is served or refused.
    pub fn read_page_requests(
        &mut self,
        out: &mut impl FnMut(PageRequest),
    ) -> Result<PrqBatch, Error> {
        let base = self
            .page_requests
            .ok_or(Error::Unsupported(Unsupported::PageRequestQueueOff))?;
        self.mmio
            .write(regs::PRS, u64::from(PageRequestStatus::PPR.bits()));
        let tail = self.queue_offset(regs::PQT);
        let mut head = self.queue_offset(regs::PQH);
        let mut batch = PrqBatch::default();
        while head != tail {
            let qw0 = self.mem.read_u64(base + head);
            let qw1 = self.mem.read_u64(base + head + 8);
            match PageRequest::decode(qw0, qw1) {
                Some(request) => {
                    batch.requests += 1;
                    out(request);
                }
                None => batch.garbage += 1,
            }
            head = (head + DESCRIPTOR_BYTES) % QUEUE_BYTES;
        }
        self.mmio.write(regs::PQH, tail);
        let status = PageRequestStatus::from_bits_retain(self.mmio.read32(regs::PRS));
        if status.contains(PageRequestStatus::PRO) {
            let head = self.queue_offset(regs::PQH);
            let tail = self.queue_offset(regs::PQT);
            batch.overflow = Some(if head == tail {
                self.mmio
                    .write(regs::PRS, u64::from(PageRequestStatus::PRO.bits()));
                Overflow::Cleared
            } else {
                Overflow::Pending
            });
        }
        Ok(batch)
    }

    /// Answers one page group: a type-9 descriptor through the
    /// invalidation queue, waited for like every invalidation. The group
    /// (requester, PASID, PRG index) should come from the stored request,
    /// and only the code from whoever served it, as Linux builds it.
    pub fn page_group_response(&mut self, r: PageGroupResponse) -> Result<(), Error> {
        if self.page_requests.is_none() {
            return Err(Error::Unsupported(Unsupported::PageRequestQueueOff));
        }
        self.invalidate(&[Descriptor::page_group_response(r)])
    }

    /// Drains the page request path for a device that is going away, so
    /// no request of it is left in flight when its domain id or PASID is
    /// reused. Precondition, as for Linux's `intel_iommu_drain_pasid_prq`:
    /// the device has stopped issuing DMA and page requests, its context
    /// (or PASID) entry is cleared, and the IOTLB is invalidated; `domain`
    /// is the id it was tagged with.
    ///
    /// Reads what is queued (any device's requests, handed to `out` so the
    /// caller answers them), then per VT-d spec 7.10 submits a fenced drain
    /// wait, the domain-selective IOTLB invalidation of `domain` and a
    /// drain wait ([`crate::queue::Queue::submit_draining`]), and reads
    /// again what the drain pushed into the queue. If PRS.PRO was set
    /// after the drain (requests may have been dropped during it), the
    /// round repeats, at most [`MAX_DRAIN_ROUNDS`] times
    /// ([`Operation::PageRequestDrain`] timeout after that). Needs
    /// ECAP.PDS, checked before anything is touched.
    pub fn drain_page_requests(
        &mut self,
        domain: DomainId,
        out: &mut impl FnMut(PageRequest),
    ) -> Result<PrqBatch, Error> {
        if !self.page_drain_supported() {
            return Err(Error::Unsupported(Unsupported::PageRequestDrain));
        }
        let mut batch = self.read_page_requests(out)?;
        let drain = self.drain_bits();
        for _ in 0..MAX_DRAIN_ROUNDS {
            self.queue.submit_draining(
                &mut self.mmio,
                &mut self.mem,
                &mut self.delay,
                self.config.invalidation_timeout_us,
                &[Descriptor::iotlb_domain(domain, drain)],
            )?;
            let status = PageRequestStatus::from_bits_retain(self.mmio.read32(regs::PRS));
            batch.merge(self.read_page_requests(out)?);
            if !status.contains(PageRequestStatus::PRO) {
                return Ok(batch);
            }
        }
        Err(Error::Timeout(Operation::PageRequestDrain))
    }

    /// PQH or PQT as a byte offset into the queue.
    fn queue_offset(&mut self, register: faultline_vtd::Register) -> u64 {
        (self.mmio.read(register) & OFFSET_MASK) % QUEUE_BYTES
    }
}
