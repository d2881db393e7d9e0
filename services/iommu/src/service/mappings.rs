//! Mappings of a domain: `Map` and `Unmap` requests, and the revocation
//! of pins whose owner stopped. A mapping keeps its pin until it is gone
//! from the tables and the IOTLB; a pin shared with a reservation or
//! another mapping is released once, by the last user.

use embedded_hal::delay::DelayNs;
use faultline_iommu_core::pagetable::PAGE_SIZE;
use faultline_iommu_core::{DmaMemory, Leaves, Registers, SourceId};
use faultline_ipc::channel::ReplyToken;
use faultline_ipc::protocol::iommu::{Access, IommuError, IommuResponse, PageSize};
use faultline_vtd::LargePageSizes;
use heapless::Vec;
use userlib::log;

use super::{MAX_MAPPINGS, Mapping, Revoked, Service, release};
use crate::errors::{from_client_dma, from_core, unit_failed};
use crate::kernel::Kernel;

/// A map request's range and how to map it.
#[derive(Clone, Copy)]
pub(super) struct Range {
    pub iova: u64,
    pub buffer: u8,
    pub offset: u64,
    pub len: u64,
    pub access: Access,
    pub page: PageSize,
}

impl<R: Registers, M: DmaMemory, D: DelayNs> Service<R, M, D> {
    pub(super) fn map(
        &mut self,
        kernel: &mut impl Kernel,
        badge: u64,
        token: &ReplyToken,
        pci: u8,
        r: Range,
    ) -> Result<IommuResponse, IommuError> {
        let a = self.owned(kernel, badge, token, pci)?;
        let size = r.page.bytes();
        if r.len == 0
            || [r.iova, r.offset, r.len]
                .iter()
                .any(|v| !v.is_multiple_of(size))
        {
            return Err(IommuError::BadAlignment);
        }
        let end = r.iova.checked_add(r.len).ok_or(IommuError::OutOfRange)?;
        r.offset.checked_add(r.len).ok_or(IommuError::OutOfRange)?;
        let slot = &mut self.units[a.slot];
        if end > 1u64 << slot.unit.domain_address_bits() {
            return Err(IommuError::OutOfRange);
        }
        if !r.access.read && !r.access.write {
            return Err(IommuError::NotPermitted);
        }
        let leaves = match r.page {
            PageSize::Small => Leaves::Small,
            PageSize::Large => {
                let sizes = slot.unit.capability().second_level_large_pages();
                if !sizes.contains(LargePageSizes::SIZE_2M) {
                    return Err(IommuError::Unsupported);
                }
                Leaves::Large
            }
        };
        if self
            .mappings
            .iter()
            .any(|m| m.bdf == a.bdf && m.iova < end && r.iova < m.end())
            || self
                .reservations
                .iter()
                .any(|x| x.bdf == a.bdf && x.iova < end && r.iova < x.iova + x.len)
        {
            return Err(IommuError::Overlap);
        }
        if self.mappings.is_full() {
            return Err(IommuError::OutOfTableMemory);
        }
        let pinned = kernel
            .client_dma(token, r.buffer, r.offset, r.len)
            .map_err(from_client_dma)?;
        if !pinned.paddr.is_multiple_of(size) {
            release(kernel, pinned.pin);
            return Err(IommuError::BadAlignment);
        }
        let access = super::table_access(r.access);
        let mapped =
            slot.unit
                .map_leaves(SourceId(a.bdf), r.iova, pinned.paddr, r.len, access, leaves);
        if let Err(e) = mapped {
            if unit_failed(e) {
                // A failed roll-back may leave the frames in the IOTLB.
                slot.failed = true;
                self.quarantined += 1;
            } else {
                release(kernel, pinned.pin);
            }
            return Err(from_core(e));
        }
        // Cannot fail: checked above.
        let _ = self.mappings.push(Mapping {
            badge,
            bdf: a.bdf,
            iova: r.iova,
            len: r.len,
            pin: pinned.pin,
        });
        Ok(IommuResponse::Mapped {
            iova: r.iova,
            len: r.len,
        })
    }

    pub(super) fn unmap(
        &mut self,
        kernel: &mut impl Kernel,
        badge: u64,
        token: &ReplyToken,
        pci: u8,
        iova: u64,
        len: u64,
    ) -> Result<IommuResponse, IommuError> {
        let a = self.owned(kernel, badge, token, pci)?;
        if len == 0 || !iova.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(IommuError::BadAlignment);
        }
        let end = iova.checked_add(len).ok_or(IommuError::OutOfRange)?;
        let touched = |m: &Mapping| m.bdf == a.bdf && m.iova < end && iova < m.end();
        let mut any = false;
        for m in self.mappings.iter().filter(|m| touched(m)) {
            if m.iova < iova || m.end() > end {
                return Err(IommuError::NotMapped);
            }
            any = true;
        }
        if !any {
            return Err(IommuError::NotMapped);
        }
        while let Some(i) = self.mappings.iter().position(touched) {
            self.remove_mapping(kernel, i)?;
        }
        Ok(IommuResponse::Unmapped { iova, len })
    }

    /// The owner of `pin`'s memory stopped: unmaps every mapping of it
    /// (each unmap invalidates the IOTLB before it returns) and every
    /// reservation of it, then releases the pin. A pin that maps nothing
    /// is released at once.
    pub fn revoke(&mut self, kernel: &mut impl Kernel, pin: u64) -> Revoked {
        let mut revoked = Revoked::default();
        let mut failed = false;
        // Reservations first, so the last mapping's removal releases the
        // pin.
        self.reservations.retain(|r| r.pin != pin);
        let targets: Vec<(u16, u64), MAX_MAPPINGS> = self
            .mappings
            .iter()
            .filter(|m| m.pin == pin)
            .map(|m| (m.bdf, m.iova))
            .collect();
        for (bdf, iova) in targets {
            let Some(i) = self
                .mappings
                .iter()
                .position(|m| m.bdf == bdf && m.iova == iova)
            else {
                continue;
            };
            let m = self.mappings[i];
            revoked.mappings += 1;
            revoked.pages += m.len / PAGE_SIZE;
            revoked.bdf = Some(m.bdf);
            if self.remove_mapping(kernel, i).is_err() {
                failed = true;
            }
        }
        if revoked.mappings == 0 {
            release(kernel, pin);
        }
        revoked.released = !failed;
        revoked
    }

    /// Unmaps mapping `i` from its domain (the core invalidates the IOTLB
    /// before returning), forgets it, and releases its pin unless another
    /// mapping still uses it. When the unit has failed, the mapping is
    /// forgotten but its pin kept; any other error (the tables disagree
    /// with the records, a bug) keeps both.
    fn remove_mapping(&mut self, kernel: &mut impl Kernel, i: usize) -> Result<(), IommuError> {
        let m = self.mappings[i];
        let slot = self
            .attached
            .iter()
            .find(|a| a.bdf == m.bdf)
            .map(|a| a.slot)
            .ok_or(IommuError::NotAttached)?;
        let unit = &mut self.units[slot];
        let result = if unit.failed {
            Err(IommuError::HardwareTimeout)
        } else {
            unit.unit
                .unmap(SourceId(m.bdf), m.iova, m.len)
                .map_err(|e| {
                    unit.failed |= unit_failed(e);
                    from_core(e)
                })
        };
        let failed = unit.failed;
        if result.is_ok() || failed {
            self.mappings.swap_remove(i);
        }
        match result {
            Ok(()) => {
                if !self.pin_in_use(m.pin) {
                    release(kernel, m.pin);
                }
                Ok(())
            }
            Err(e) => {
                if failed {
                    self.quarantined += 1;
                }
                log!(
                    "iommu: unmapping {:#x}+{:#x} of {} failed ({e}); its memory stays pinned",
                    m.iova,
                    m.len,
                    faultline_ipc::protocol::iommu::Bdf(m.bdf)
                );
                Err(e)
            }
        }
    }
}
