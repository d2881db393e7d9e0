//! A unit's domains: attach and detach devices, map and unmap IOVA
//! ranges, and the IOTLB invalidations those edits need (see the rules in
//! the parent module's docs).

use embedded_hal::delay::DelayNs;
use faultline_vtd::LargePageSizes;

use super::{Domain, DomainId, MAX_PAGE_INVALIDATIONS, Unit};
use crate::error::{Error, Unsupported};
use crate::hw::{DmaMemory, Registers};
use crate::pagetable::{Access, LARGE_PAGE_SIZE, PAGE_SIZE, Probe, Tables};
use crate::queue::{self, Descriptor, MAX_BATCH};
use crate::source::SourceId;

/// Which leaf sizes [`Unit::map_leaves`] may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaves {
    /// 2 MiB leaves wherever alignment and CAP.SLLPS allow, 4 KiB elsewhere.
    Best,
    /// 4 KiB leaves only.
    Small,
    /// 2 MiB leaves only.
    Large,
}

impl<R: Registers, M: DmaMemory, D: DelayNs> Unit<R, M, D> {
    fn slot_of(&self, source: SourceId) -> Option<usize> {
        self.domains
            .iter()
            .position(|d| d.is_some_and(|d| d.source == source))
    }

    fn domain(&self, source: SourceId) -> Result<Domain, Error> {
        self.slot_of(source)
            .and_then(|i| self.domains[i])
            .ok_or(Error::NotAttached)
    }

    /// The domain id `source` is attached with, if any.
    pub fn domain_of(&self, source: SourceId) -> Option<DomainId> {
        self.domain(source).ok().map(|d| d.id)
    }

    fn free_domain_id(&self) -> Option<DomainId> {
        // Id 0 is reserved when CAP.CM = 1 (it tags cached not-present
        // entries); never using it keeps one rule for both.
        let count = self.cap.domain_count().min(u32::from(u16::MAX) + 1);
        (1..count)
            .map(|id| id as DomainId)
            .find(|id| !self.domains.iter().flatten().any(|d| d.id == *id))
    }

    fn tables(&mut self, domain: &Domain) -> Tables<'_, M> {
        Tables {
            mem: &mut self.mem,
            root: domain.tables,
            levels: self.width.levels(),
            coherent: self.ecap.coherency(),
        }
    }

    /// Gives `source` a new domain with empty tables: from here on its DMA
    /// is translated (and faults until something is mapped).
    pub fn attach(&mut self, source: SourceId) -> Result<DomainId, Error> {
        if self.slot_of(source).is_some() {
            return Err(Error::AlreadyAttached);
        }
        let slot = self
            .domains
            .iter()
            .position(Option::is_none)
            .ok_or(Error::TooManyDomains)?;
        let id = self.free_domain_id().ok_or(Error::TooManyDomains)?;
        let (tables, pasid) = self.install_context(source, id)?;
        self.domains[slot] = Some(Domain {
            source,
            id,
            tables,
            pasid,
        });
        if self.cap.caching_mode() {
            let drain = self.drain_bits();
            let batch = [
                Descriptor::context_device(0, source.0),
                Descriptor::pasid_domain(id),
                Descriptor::iotlb_domain(id, drain),
            ];
            self.invalidate_context_batch(&batch, pasid.is_some())?;
        } else {
            self.flush_write_buffer()?;
        }
        Ok(id)
    }

    /// Takes `source`'s domain away: its DMA faults again (context not
    /// present), the caches are invalidated before this returns, and the
    /// domain's tables are freed.
    pub fn detach(&mut self, source: SourceId) -> Result<(), Error> {
        let slot = self.slot_of(source).ok_or(Error::NotAttached)?;
        let Some(domain) = self.domains[slot] else {
            return Err(Error::NotAttached);
        };
        self.remove_context(source);
        let drain = self.drain_bits();
        let batch = [
            Descriptor::context_device(domain.id, source.0),
            Descriptor::pasid_domain(domain.id),
            Descriptor::iotlb_domain(domain.id, drain),
        ];
        self.invalidate_context_batch(&batch, domain.pasid.is_some())?;
        self.domains[slot] = None;
        self.tables(&domain).free_all();
        if let Some((directory, table)) = domain.pasid {
            self.mem.free_frame(directory);
            self.mem.free_frame(table);
        }
        Ok(())
    }

    /// Submits `[context, pasid, iotlb]`, leaving out the PASID-cache
    /// invalidation in legacy mode.
    fn invalidate_context_batch(
        &mut self,
        batch: &[Descriptor; 3],
        scalable: bool,
    ) -> Result<(), Error> {
        if scalable {
            self.invalidate(batch)
        } else {
            self.invalidate(&[batch[0], batch[2]])
        }
    }

    fn check_range(&self, iova: u64, len: u64) -> Result<u64, Error> {
        if len == 0 || !iova.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Misaligned);
        }
        let end = iova.checked_add(len).ok_or(Error::OutOfRange)?;
        if end > 1u64 << self.domain_address_bits() {
            return Err(Error::OutOfRange);
        }
        Ok(end)
    }

    /// Maps `iova..iova + len` of `source`'s domain to `paddr..paddr + len`
    /// with `access`, using 2 MiB pages where both addresses are aligned and
    /// CAP.SLLPS allows. All or nothing: on error nothing is mapped. When it
    /// returns `Ok`, the device can DMA there.
    pub fn map(
        &mut self,
        source: SourceId,
        iova: u64,
        paddr: u64,
        len: u64,
        access: Access,
    ) -> Result<(), Error> {
        self.map_leaves(source, iova, paddr, len, access, Leaves::Best)
    }

    /// [`Unit::map`] with the leaf size chosen by the caller:
    /// [`Leaves::Small`] maps 4 KiB pages only; [`Leaves::Large`] maps 2 MiB
    /// pages only, so `iova`, `paddr` and `len` must be 2 MiB-aligned
    /// ([`Error::Misaligned`]) and CAP.SLLPS must offer them
    /// ([`Unsupported::LargePages`]).
    pub fn map_leaves(
        &mut self,
        source: SourceId,
        iova: u64,
        paddr: u64,
        len: u64,
        access: Access,
        leaves: Leaves,
    ) -> Result<(), Error> {
        let domain = self.domain(source)?;
        let end = self.check_range(iova, len)?;
        if !paddr.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Misaligned);
        }
        let paddr_end = paddr.checked_add(len).ok_or(Error::OutOfRange)?;
        let limit = 1u64.checked_shl(u32::from(self.config.host_address_width));
        if limit.is_some_and(|limit| paddr_end > limit) {
            return Err(Error::OutOfRange);
        }
        if access.is_empty() {
            return Err(Error::NoAccess);
        }
        let large_supported = self
            .cap
            .second_level_large_pages()
            .contains(LargePageSizes::SIZE_2M);
        if leaves == Leaves::Large {
            if !large_supported {
                return Err(Error::Unsupported(Unsupported::LargePages));
            }
            if [iova, paddr, len]
                .iter()
                .any(|v| !v.is_multiple_of(LARGE_PAGE_SIZE))
            {
                return Err(Error::Misaligned);
            }
        }
        let large = large_supported && leaves != Leaves::Small;
        let mut tables = self.tables(&domain);
        let mut at = iova;
        while at < end {
            match tables.probe(at) {
                Probe::Leaf { base, .. } => {
                    return Err(Error::Overlap {
                        iova: base.max(iova),
                    });
                }
                Probe::Hole { base, size } => at = base + size,
            }
        }
        let mut at = iova;
        let mut result = Ok(());
        while at < end {
            let target = paddr + (at - iova);
            let use_large = large
                && at.is_multiple_of(LARGE_PAGE_SIZE)
                && target.is_multiple_of(LARGE_PAGE_SIZE)
                && end - at >= LARGE_PAGE_SIZE
                && matches!(tables.probe(at), Probe::Hole { size, .. } if size >= LARGE_PAGE_SIZE);
            let (level, size) = if use_large {
                (2, LARGE_PAGE_SIZE)
            } else {
                (1, PAGE_SIZE)
            };
            if let Err(e) = tables.set_leaf(at, target, level, access) {
                result = Err(e);
                break;
            }
            at += size;
        }
        if let Err(e) = result {
            if at > iova {
                tables.clear(iova, at);
                self.invalidate_pages(domain.id, iova, at)?;
            }
            return Err(e);
        }
        if self.cap.caching_mode() {
            self.invalidate_pages(domain.id, iova, end)
        } else {
            self.flush_write_buffer()
        }
    }

    /// Unmaps `iova..iova + len` of `source`'s domain. Every page in the
    /// range must be mapped, and the range must not end inside a 2 MiB
    /// page. All or nothing; when it returns `Ok`, the IOTLB no longer
    /// holds the range and the device's DMA there faults. If the
    /// invalidation itself fails (`Timeout`, `InvalidationQueueError`) the
    /// tables no longer map the range but the IOTLB may: the frames must
    /// not be reused, and the service treats the unit as failed.
    pub fn unmap(&mut self, source: SourceId, iova: u64, len: u64) -> Result<(), Error> {
        let domain = self.domain(source)?;
        let end = self.check_range(iova, len)?;
        let mut tables = self.tables(&domain);
        let mut at = iova;
        while at < end {
            match tables.probe(at) {
                Probe::Hole { .. } => return Err(Error::NotMapped { iova: at }),
                Probe::Leaf { base, size, .. } => {
                    if base < iova || base + size > end {
                        return Err(Error::SplitsLargePage { iova: base });
                    }
                    at = base + size;
                }
            }
        }
        tables.clear(iova, end);
        self.invalidate_pages(domain.id, iova, end)
    }

    /// What `source`'s tables map `iova` to, as the driver wrote them.
    pub fn lookup(&mut self, source: SourceId, iova: u64) -> Result<Option<(u64, Access)>, Error> {
        let domain = self.domain(source)?;
        Ok(match self.tables(&domain).probe(iova) {
            Probe::Leaf {
                base,
                paddr,
                access,
                ..
            } => Some((paddr + (iova - base), access)),
            Probe::Hole { .. } => None,
        })
    }

    /// Invalidates `domain`'s IOTLB entries for `start..end`: page-selective
    /// blocks when CAP.PSI allows and there are few, else domain-selective.
    fn invalidate_pages(&mut self, domain: DomainId, start: u64, end: u64) -> Result<(), Error> {
        let drain = self.drain_bits();
        let mut batch = [Descriptor::iotlb_domain(domain, drain); MAX_PAGE_INVALIDATIONS];
        let mut count = 0;
        if self.cap.page_selective_invalidation() {
            let blocks =
                queue::page_blocks(start, end, self.cap.max_address_mask(), |iova, mask| {
                    if count < MAX_PAGE_INVALIDATIONS {
                        batch[count] = Descriptor::iotlb_pages(domain, iova, mask, drain);
                    }
                    count += 1;
                });
            if blocks > MAX_PAGE_INVALIDATIONS {
                count = 0;
            }
        }
        if count == 0 {
            batch[0] = Descriptor::iotlb_domain(domain, drain);
            count = 1;
        }
        const _: () = assert!(MAX_PAGE_INVALIDATIONS <= MAX_BATCH);
        self.invalidate(&batch[..count])
    }
}
