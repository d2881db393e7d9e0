//! The `iommu` protocol's requests, and the revocation of pins, over the
//! units the service brought up.
//!
//! Every request first resolves its `pci` handle through the kernel for
//! the client of the call being served, so the only device a request can
//! reach is one its caller holds; the domain is then found by that device,
//! and must have been attached by the same client (badge): there is no
//! domain number in the protocol to forge. Each mapping keeps the pin of
//! its frames and its client's badge; the pin is released only after the
//! mapping is gone from the tables and the IOTLB.
//!
//! A device is attached to the unit whose DMAR scope covers it, as the
//! kernel reports with the device (the service does not read the DMAR
//! itself); a device no started unit covers is refused.
//!
//! A unit that times out (a handshake or an invalidation) is marked failed:
//! what it caches is no longer known, so the pins of the mappings involved
//! are never released (their frames are never reused) and every later
//! request for a device on it is refused with `HardwareTimeout`.
//!
//! Submodules: `mappings` (`Map`, `Unmap`, revocation of pins) and
//! `demand` (reservations, and pages mapped on demand for fault handlers).

use embedded_hal::delay::DelayNs;
use faultline_iommu_core::pagetable::PAGE_SIZE;
use faultline_iommu_core::{DmaMemory, DomainId, Registers, SourceId, Unit};
use faultline_ipc::channel::ReplyToken;
use faultline_ipc::protocol::iommu::{
    Access, DomainInfo, IommuError, IommuRequest, IommuResponse, Mode,
};
use faultline_vtd::TranslationMode;
use heapless::Vec;
use userlib::log;

use crate::errors::{from_core, unit_failed};
use crate::kernel::Kernel;

mod demand;
mod mappings;

pub use demand::{MAX_RESERVATIONS, Reservation};

/// Most units the service drives.
pub const MAX_UNITS: usize = 4;
/// Most devices attached at a time, over all units.
pub const MAX_ATTACHED: usize = 32;
/// Most mappings at a time, over all devices.
pub const MAX_MAPPINGS: usize = 128;

/// [`Service::add_unit`] found [`MAX_UNITS`] units already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyUnits;

/// A unit the service brought up.
pub struct UnitSlot<R, M, D> {
    /// Its index in DMAR order (`vtd<index>`).
    pub index: u8,
    pub unit: Unit<R, M, D>,
    /// It timed out once; nothing more is asked of it.
    pub failed: bool,
}

/// A device with a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The client (badge) that attached it: the only one that may use it.
    pub badge: u64,
    pub bdf: u16,
    /// Index into the service's units.
    pub slot: usize,
    pub domain: DomainId,
}

/// One mapping of a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub badge: u64,
    pub bdf: u16,
    pub iova: u64,
    pub len: u64,
    /// The pin of its frames, released once it is unmapped.
    pub pin: u64,
}

impl Mapping {
    fn end(&self) -> u64 {
        self.iova + self.len
    }
}

/// What [`Service::revoke`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    pub mappings: usize,
    /// 4 KiB pages unmapped.
    pub pages: u64,
    /// The device of the last mapping removed.
    pub bdf: Option<u16>,
    /// The pin was released (false if an invalidation failed).
    pub released: bool,
}

/// Every unit, domain and mapping the service keeps.
pub struct Service<R, M, D> {
    units: Vec<UnitSlot<R, M, D>, MAX_UNITS>,
    attached: Vec<Attachment, MAX_ATTACHED>,
    mappings: Vec<Mapping, MAX_MAPPINGS>,
    reservations: Vec<Reservation, MAX_RESERVATIONS>,
    /// Pins never released because the unit failed while unmapping them.
    quarantined: usize,
}

impl<R, M, D> Default for Service<R, M, D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R, M, D> Service<R, M, D> {
    /// No units, nothing attached (const, so it can live in a static).
    pub const fn new() -> Self {
        Self {
            units: Vec::new(),
            attached: Vec::new(),
            mappings: Vec::new(),
            reservations: Vec::new(),
            quarantined: 0,
        }
    }
}

impl<R: Registers, M: DmaMemory, D: DelayNs> Service<R, M, D> {
    /// Adds a unit that is up; `Err` when [`MAX_UNITS`] are already.
    pub fn add_unit(&mut self, index: u8, unit: Unit<R, M, D>) -> Result<(), TooManyUnits> {
        self.units
            .push(UnitSlot {
                index,
                unit,
                failed: false,
            })
            .map_err(|_| TooManyUnits)
    }

    pub fn units(&mut self) -> impl Iterator<Item = &mut UnitSlot<R, M, D>> {
        self.units.iter_mut()
    }

    pub fn attachments(&self) -> &[Attachment] {
        &self.attached
    }

    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    pub fn reservations(&self) -> &[Reservation] {
        &self.reservations
    }

    /// Pins held forever because a unit failed while they were mapped.
    pub fn quarantined(&self) -> usize {
        self.quarantined
    }

    /// Serves one request of client `badge`, whose call `token` is held.
    pub fn handle(
        &mut self,
        kernel: &mut impl Kernel,
        badge: u64,
        token: &ReplyToken,
        request: IommuRequest,
    ) -> IommuResponse {
        let result = match request {
            IommuRequest::Attach { pci } => self.attach(kernel, badge, token, pci),
            IommuRequest::Map {
                pci,
                iova,
                buffer,
                offset,
                len,
                access,
                page,
            } => {
                let range = mappings::Range {
                    iova,
                    buffer,
                    offset,
                    len,
                    access,
                    page,
                };
                self.map(kernel, badge, token, pci, range)
            }
            IommuRequest::Unmap { pci, iova, len } => {
                self.unmap(kernel, badge, token, pci, iova, len)
            }
            IommuRequest::Query { pci } => self
                .owned(kernel, badge, token, pci)
                .map(|a| IommuResponse::Domain(self.info(&a))),
            IommuRequest::Detach { pci } => self.detach(kernel, badge, token, pci),
            IommuRequest::Reserve {
                pci,
                iova,
                buffer,
                offset,
                len,
                access,
            } => {
                let range = demand::ReserveRange {
                    iova,
                    buffer,
                    offset,
                    len,
                    access,
                };
                self.reserve(kernel, badge, token, pci, range)
            }
            // The fault pipeline's questions, which the service's fault
            // desk answers before a request gets here.
            IommuRequest::FaultMark { .. }
            | IommuRequest::AwaitFault { .. }
            | IommuRequest::RetryVerified { .. }
            | IommuRequest::FaultSummary => Err(IommuError::Unsupported),
        };
        result.unwrap_or_else(IommuResponse::Refused)
    }

    fn attach(
        &mut self,
        kernel: &mut impl Kernel,
        badge: u64,
        token: &ReplyToken,
        pci: u8,
    ) -> Result<IommuResponse, IommuError> {
        let (bdf, covering) = device_and_unit(kernel, token, pci)?;
        if let Some(a) = self.attached.iter().find(|a| a.bdf == bdf).copied() {
            if a.badge != badge {
                return Err(IommuError::NotPermitted);
            }
            // Attached already (perhaps by this driver before it was
            // restarted): vouch for it again, change nothing else.
            let index = self.units[a.slot].index;
            kernel
                .device_translated(index, bdf, true)
                .map_err(|_| IommuError::NotPermitted)?;
            return Ok(IommuResponse::Attached(self.info(&a)));
        }
        // The unit whose scope covers the device, if this service started
        // it; no other unit sees the device's requests.
        let Some(slot) = self.units.iter().position(|u| Some(u.index) == covering) else {
            return Err(IommuError::NotPermitted);
        };
        let unit = &mut self.units[slot];
        if unit.failed {
            return Err(IommuError::HardwareTimeout);
        }
        if self.attached.is_full() {
            return Err(IommuError::OutOfTableMemory);
        }
        let source = SourceId(bdf);
        let domain = unit.unit.attach(source).map_err(|e| {
            unit.failed |= unit_failed(e);
            from_core(e)
        })?;
        if let Err(e) = kernel.device_translated(unit.index, bdf, true) {
            log!(
                "iommu: kernel refused to let {} master the bus: {e}",
                faultline_ipc::protocol::iommu::Bdf(bdf)
            );
            if let Err(e) = unit.unit.detach(source) {
                unit.failed |= unit_failed(e);
            }
            return Err(IommuError::NotPermitted);
        }
        let a = Attachment {
            badge,
            bdf,
            slot,
            domain,
        };
        // Cannot fail: checked above.
        let _ = self.attached.push(a);
        Ok(IommuResponse::Attached(self.info(&a)))
    }

    /// The caller's device for `pci`, with its domain.
    fn owned(
        &self,
        kernel: &mut impl Kernel,
        badge: u64,
        token: &ReplyToken,
        pci: u8,
    ) -> Result<Attachment, IommuError> {
        let bdf = device(kernel, token, pci)?;
        let a = self
            .attached
            .iter()
            .find(|a| a.bdf == bdf)
            .ok_or(IommuError::NotAttached)?;
        if a.badge != badge {
            return Err(IommuError::NotPermitted);
        }
        if self.units[a.slot].failed {
            return Err(IommuError::HardwareTimeout);
        }
        Ok(*a)
    }

    fn info(&self, a: &Attachment) -> DomainInfo {
        let unit = &self.units[a.slot].unit;
        let pages = self
            .mappings
            .iter()
            .filter(|m| m.bdf == a.bdf)
            .map(|m| m.len / PAGE_SIZE)
            .sum::<u64>();
        DomainInfo {
            domain: a.domain,
            bdf: a.bdf,
            address_width: unit.domain_address_bits(),
            mode: match unit.mode() {
                TranslationMode::Legacy => Mode::Legacy,
                TranslationMode::Scalable => Mode::Scalable,
            },
            mapped_pages: u32::try_from(pages).unwrap_or(u32::MAX),
        }
    }

    fn detach(
        &mut self,
        kernel: &mut impl Kernel,
        badge: u64,
        token: &ReplyToken,
        pci: u8,
    ) -> Result<IommuResponse, IommuError> {
        let a = self.owned(kernel, badge, token, pci)?;
        let slot = &mut self.units[a.slot];
        // Bus mastering off first: from here the device cannot even try.
        if let Err(e) = kernel.device_translated(slot.index, a.bdf, false) {
            log!(
                "iommu: kernel refused to take {} off the bus: {e}",
                faultline_ipc::protocol::iommu::Bdf(a.bdf)
            );
        }
        let detached = slot.unit.detach(SourceId(a.bdf));
        if let Err(e) = detached {
            slot.failed |= unit_failed(e);
            if !unit_failed(e) {
                return Err(from_core(e));
            }
        }
        // The whole domain is gone and its IOTLB entries invalidated (or
        // the unit failed, and the pins stay held). Pages mapped on demand
        // share their reservation's pin: each pin is released once.
        let mut pins: Vec<u64, { MAX_MAPPINGS + MAX_RESERVATIONS }> = Vec::new();
        while let Some(i) = self.mappings.iter().position(|m| m.bdf == a.bdf) {
            let pin = self.mappings.swap_remove(i).pin;
            if !pins.contains(&pin) {
                let _ = pins.push(pin);
            }
        }
        while let Some(i) = self.reservations.iter().position(|r| r.bdf == a.bdf) {
            let pin = self.reservations.swap_remove(i).pin;
            if !pins.contains(&pin) {
                let _ = pins.push(pin);
            }
        }
        for pin in pins {
            if detached.is_err() {
                self.quarantined += 1;
            } else if !self.pin_in_use(pin) {
                release(kernel, pin);
            }
        }
        self.attached.retain(|x| x.bdf != a.bdf);
        detached.map_err(from_core)?;
        Ok(IommuResponse::Detached)
    }
}

/// The caller's PCI function for handle `pci`.
fn device(kernel: &mut impl Kernel, token: &ReplyToken, pci: u8) -> Result<u16, IommuError> {
    device_and_unit(kernel, token, pci).map(|(bdf, _)| bdf)
}

/// [`device`], with the unit whose scope covers it.
fn device_and_unit(
    kernel: &mut impl Kernel,
    token: &ReplyToken,
    pci: u8,
) -> Result<(u16, Option<u8>), IommuError> {
    kernel
        .client_pci(token, pci)
        .map_err(|_| IommuError::NoSuchDevice)
}

/// A request's access as the page tables take it.
fn table_access(a: Access) -> faultline_iommu_core::Access {
    let mut access = faultline_iommu_core::Access::empty();
    access.set(faultline_iommu_core::Access::READ, a.read);
    access.set(faultline_iommu_core::Access::WRITE, a.write);
    access
}

fn release(kernel: &mut impl Kernel, pin: u64) {
    if let Err(e) = kernel.dma_unpin(pin) {
        log!("iommu: releasing pin {pin} refused: {e}");
    }
}
