//! Demand mapping: a driver reserves part of its domain for one of its DMA
//! buffers without mapping it ([`IommuRequest::Reserve`]); a DMA there
//! faults, and the device's fault handler may answer the fault by having
//! the faulting page mapped from that buffer. The memory is the driver's
//! (pinned when it reserves), the decision the handler's, and the page is
//! exactly the one the service recorded: a handler cannot map anything
//! else, anywhere else.
//!
//! [`IommuRequest::Reserve`]: faultline_ipc::protocol::iommu::IommuRequest::Reserve

use embedded_hal::delay::DelayNs;
use faultline_iommu_core::pagetable::PAGE_SIZE;
use faultline_iommu_core::{DmaMemory, Leaves, Registers, SourceId};
use faultline_ipc::channel::ReplyToken;
use faultline_ipc::protocol::faults::FaultsError;
use faultline_ipc::protocol::iommu::{Access, IommuError, IommuResponse};

use super::{Mapping, Service};
use crate::errors::{from_client_dma, unit_failed};
use crate::kernel::Kernel;

/// Most reservations at a time, over all devices.
pub const MAX_RESERVATIONS: usize = 16;

/// Part of a domain backed by a driver's buffer, mapped page by page on
/// demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub badge: u64,
    pub bdf: u16,
    pub iova: u64,
    pub len: u64,
    /// The pin of the buffer's frames (held until the reservation and
    /// every page mapped from it are gone).
    pub pin: u64,
    pub paddr: u64,
    pub access: Access,
}

impl Reservation {
    fn covers(&self, bdf: u16, iova: u64) -> bool {
        self.bdf == bdf && self.iova <= iova && iova - self.iova < self.len
    }
}

/// A reserve request's range.
#[derive(Clone, Copy)]
pub struct ReserveRange {
    pub iova: u64,
    pub buffer: u8,
    pub offset: u64,
    pub len: u64,
    pub access: Access,
}

impl<R: Registers, M: DmaMemory, D: DelayNs> Service<R, M, D> {
    pub(super) fn reserve(
        &mut self,
        kernel: &mut impl Kernel,
        badge: u64,
        token: &ReplyToken,
        pci: u8,
        r: ReserveRange,
    ) -> Result<IommuResponse, IommuError> {
        let a = self.owned(kernel, badge, token, pci)?;
        if r.len == 0
            || [r.iova, r.offset, r.len]
                .iter()
                .any(|v| !v.is_multiple_of(PAGE_SIZE))
        {
            return Err(IommuError::BadAlignment);
        }
        let end = r.iova.checked_add(r.len).ok_or(IommuError::OutOfRange)?;
        r.offset.checked_add(r.len).ok_or(IommuError::OutOfRange)?;
        if end > 1u64 << self.units[a.slot].unit.domain_address_bits() {
            return Err(IommuError::OutOfRange);
        }
        if !r.access.read && !r.access.write {
            return Err(IommuError::NotPermitted);
        }
        let overlaps = |iova: u64, len: u64| iova < end && r.iova < iova + len;
        if self
            .mappings
            .iter()
            .any(|m| m.bdf == a.bdf && overlaps(m.iova, m.len))
            || self
                .reservations
                .iter()
                .any(|x| x.bdf == a.bdf && overlaps(x.iova, x.len))
        {
            return Err(IommuError::Overlap);
        }
        if self.reservations.is_full() {
            return Err(IommuError::OutOfTableMemory);
        }
        let pinned = kernel
            .client_dma(token, r.buffer, r.offset, r.len)
            .map_err(from_client_dma)?;
        // Cannot fail: checked above.
        let _ = self.reservations.push(Reservation {
            badge,
            bdf: a.bdf,
            iova: r.iova,
            len: r.len,
            pin: pinned.pin,
            paddr: pinned.paddr,
            access: r.access,
        });
        Ok(IommuResponse::Reserved {
            iova: r.iova,
            len: r.len,
        })
    }

    /// Whether `bdf`'s driver reserved memory for the page at `iova`.
    pub fn backed(&self, bdf: u16, iova: u64) -> bool {
        self.reservations.iter().any(|r| r.covers(bdf, iova))
    }

    /// Maps the 4 KiB page at `iova` of `bdf`'s domain from the memory its
    /// driver reserved there. A page already mapped is left as it is (two
    /// faults on one page).
    pub fn demand_map(&mut self, bdf: u16, iova: u64) -> Result<(), FaultsError> {
        let page = iova & !(PAGE_SIZE - 1);
        let r = *self
            .reservations
            .iter()
            .find(|r| r.covers(bdf, page))
            .ok_or(FaultsError::NotBacked)?;
        if self
            .mappings
            .iter()
            .any(|m| m.bdf == bdf && m.iova <= page && page < m.iova + m.len)
        {
            return Ok(());
        }
        let slot = self
            .attached
            .iter()
            .find(|a| a.bdf == bdf)
            .map(|a| a.slot)
            .ok_or(FaultsError::NotBacked)?;
        let unit = &mut self.units[slot];
        if unit.failed || self.mappings.is_full() {
            return Err(FaultsError::MapFailed);
        }
        let access = super::table_access(r.access);
        let paddr = r.paddr + (page - r.iova);
        let mapped =
            unit.unit
                .map_leaves(SourceId(bdf), page, paddr, PAGE_SIZE, access, Leaves::Small);
        if let Err(e) = mapped {
            if unit_failed(e) {
                unit.failed = true;
            }
            return Err(FaultsError::MapFailed);
        }
        // Cannot fail: checked above.
        let _ = self.mappings.push(Mapping {
            badge: r.badge,
            bdf,
            iova: page,
            len: PAGE_SIZE,
            pin: r.pin,
        });
        Ok(())
    }

    /// Whether anything (a mapping or a reservation) still holds `pin`.
    pub(super) fn pin_in_use(&self, pin: u64) -> bool {
        self.mappings.iter().any(|m| m.pin == pin) || self.reservations.iter().any(|r| r.pin == pin)
    }
}
