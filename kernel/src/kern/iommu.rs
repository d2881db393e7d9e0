//! The system calls only an IOMMU service may make, and what the kernel
//! does for DMA isolation when services stop.
//!
//! An IOMMU service is a holder of a VT-d unit's registers. It learns what
//! a driver names (a PCI function by handle, DMA memory by buffer number)
//! only through the call the driver made to it ([`Kernel::client_pci`],
//! [`Kernel::client_dma`], and a fault handler's grant by handle through
//! [`Kernel::client_faults`]), so the kernel, not the driver, says what the
//! names mean. See [`super::dma`] for the pins and the bus-master gate.

use super::caps::Cap;
use super::dma::{self, Pin};
use super::ipc::Outcome;
use super::{Kernel, Platform};
use faultline_ipc::abi::{Error, NOTIFY_DMA_REVOKED};

impl Kernel {
    /// Whether `task` holds a VT-d unit's registers.
    pub fn is_iommu_service(&self, task: usize) -> bool {
        self.tasks[task]
            .caps
            .slots()
            .iter()
            .any(|s| matches!(s.cap, Cap::Mmio { vtd: Some(_), .. }))
    }

    fn require_iommu_service(&self, caller: usize) -> Result<(), (Error, u64)> {
        if self.is_iommu_service(caller) {
            Ok(())
        } else {
            Err((Error::NotPermitted, 0))
        }
    }

    /// `ClientPci`: the PCI function the client of call `token` holds as
    /// `handle`.
    pub(super) fn client_pci(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        token: u64,
        handle: u64,
    ) -> Result<Outcome, (Error, u64)> {
        self.client_function(p, caller, token, handle, |cap| match *cap {
            Cap::Pci {
                bus,
                device,
                function,
            } => Some(((bus, device, function), 0)),
            _ => None,
        })
    }

    /// `ClientFaults`: the function whose DMA faults the client of call
    /// `token` may handle as `handle`, and its deadline.
    pub(super) fn client_faults(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        token: u64,
        handle: u64,
    ) -> Result<Outcome, (Error, u64)> {
        self.client_function(p, caller, token, handle, |cap| match *cap {
            Cap::Faults {
                bus,
                device,
                function,
                deadline_ms,
            } => Some(((bus, device, function), u64::from(deadline_ms))),
            _ => None,
        })
    }

    /// For the IOMMU service only: the function (and one more value) that
    /// capability `handle` of the client of call `token` names, as `kind`
    /// reads it (`WrongKind` for any other capability), with the VT-d unit
    /// whose scope covers the function (`u64::MAX` for none).
    fn client_function(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        token: u64,
        handle: u64,
        kind: impl Fn(&Cap) -> Option<((u8, u8, u8), u64)>,
    ) -> Result<Outcome, (Error, u64)> {
        self.require_iommu_service(caller)?;
        let (client, ..) = self.pending_call(caller, token)?;
        let cap = self.tasks[client].caps.get(handle).map_err(|e| (e, 0))?;
        let (bdf, extra) = kind(cap).ok_or((Error::WrongKind, 0))?;
        let unit = p.vtd_unit_of(bdf).map_or(u64::MAX, u64::from);
        Ok(Outcome::Done([bdf_word(bdf), unit, extra, 0]))
    }

    /// `VtdInfo`: the DMAR's description of the caller's unit.
    pub(super) fn vtd_info(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        handle: u64,
    ) -> Result<Outcome, (Error, u64)> {
        let unit = match self.tasks[caller].caps.get(handle) {
            Ok(&Cap::Mmio {
                vtd: Some(unit), ..
            }) => unit,
            Ok(_) => return Err((Error::WrongKind, 0)),
            Err(e) => return Err((e, 0)),
        };
        let (haw, segment, all) = p.vtd_info(unit).ok_or((Error::NotFound, 0))?;
        Ok(Outcome::Done([
            u64::from(haw),
            u64::from(segment),
            u64::from(all),
            0,
        ]))
    }

    /// `ClientDma`: pins a range of a buffer of the client of `token`.
    pub(super) fn client_dma(
        &mut self,
        caller: usize,
        [token, buffer, offset, len, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        self.require_iommu_service(caller)?;
        let (client, ..) = self.pending_call(caller, token)?;
        let c = &self.tasks[client];
        let buf = usize::try_from(buffer)
            .ok()
            .and_then(|b| c.dma.get(b))
            .ok_or((Error::NotFound, 0))?;
        let (paddr, vaddr) = dma::pin_range(buf, offset, len).map_err(|e| (e, 0))?;
        let pin = Pin {
            holder: caller as u8,
            owner: client as u8,
            vaddr,
            paddr,
            bytes: len,
            revoked: false,
        };
        let id = self.pins.pin(pin).map_err(|e| (e, 0))?;
        Ok(Outcome::Done([paddr, id, 0, 0]))
    }

    /// `DmaUnpin`: the holder no longer maps the range anywhere.
    pub(super) fn dma_unpin(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        id: u64,
    ) -> Result<Outcome, (Error, u64)> {
        self.require_iommu_service(caller)?;
        for page in self.pins.release(caller as u8, id).map_err(|e| (e, 0))? {
            p.dma_free(page);
        }
        Ok(Outcome::Done([0; 4]))
    }

    /// `DmaRevoked`: a pin of the caller whose owner stopped.
    pub(super) fn dma_revoked(&mut self, caller: usize) -> Result<Outcome, (Error, u64)> {
        self.require_iommu_service(caller)?;
        let id = self
            .pins
            .next_revoked(caller as u8)
            .ok_or((Error::NotFound, 0))?;
        Ok(Outcome::Done([id, 0, 0, 0]))
    }

    /// The unit of `handle`, which must be one of the caller's VT-d
    /// register capabilities.
    fn vtd_handle(&self, caller: usize, handle: u64) -> Result<u8, (Error, u64)> {
        match self.tasks[caller].caps.get(handle) {
            Ok(&Cap::Mmio {
                vtd: Some(unit), ..
            }) => Ok(unit),
            Ok(_) => Err((Error::WrongKind, 0)),
            Err(e) => Err((e, 0)),
        }
    }

    /// `IrqRoute`: a granted device interrupt, for its remapping entry.
    pub(super) fn irq_route(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, irq, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        let unit = self.vtd_handle(caller, handle)?;
        let irq = u8::try_from(irq).map_err(|_| (Error::NotFound, 0))?;
        match p.irq_route(irq) {
            Ok((bdf, vector, apic)) if p.vtd_unit_of(bdf) == Some(unit) => Ok(Outcome::Done([
                bdf_word(bdf),
                u64::from(vector),
                u64::from(apic),
                1,
            ])),
            // Not a device line of this unit: nothing to route here.
            Ok(_) | Err(Error::WrongKind) => Ok(Outcome::Done([0; 4])),
            Err(e) => Err((e, 0)),
        }
    }

    /// `IrqRemap`: a device's MSI now names a remapping entry (or not).
    pub(super) fn irq_remap(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, irq, irte, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        let unit = self.vtd_handle(caller, handle)?;
        let irq = u8::try_from(irq).map_err(|_| (Error::NotFound, 0))?;
        let irte = match irte {
            u64::MAX => None,
            h => Some(u16::try_from(h).map_err(|_| (Error::BadArgument, 0))?),
        };
        let (bdf, ..) = p.irq_route(irq).map_err(|e| (e, 0))?;
        if p.vtd_unit_of(bdf) != Some(unit) {
            return Err((Error::NotPermitted, 0));
        }
        p.irq_remap(irq, irte).map_err(|e| (e, 0))?;
        Ok(Outcome::Done([0; 4]))
    }

    /// `DeviceTranslated`: the gate opens (or closes) for a function.
    pub(super) fn device_translated(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, bdf, on, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        self.vtd_handle(caller, handle)?;
        let bdf = u16::try_from(bdf)
            .map(bdf_of_word)
            .map_err(|_| (Error::BadArgument, 0))?;
        if !self.is_granted_function(bdf) {
            return Err((Error::NotFound, 0));
        }
        match on {
            1 => self
                .translated
                .insert(bdf, caller as u8)
                .map_err(|e| (e, 0))?,
            0 => {
                self.translated.remove(bdf);
                p.bus_master_off(bdf);
            }
            _ => return Err((Error::BadArgument, 0)),
        }
        Ok(Outcome::Done([0; 4]))
    }

    /// Whether some service holds `bdf` as a PCI capability.
    fn is_granted_function(&self, bdf: (u8, u8, u8)) -> bool {
        self.tasks.iter().any(|t| {
            t.caps.slots().iter().any(|s| match s.cap {
                Cap::Pci {
                    bus,
                    device,
                    function,
                } => (bus, device, function) == bdf,
                _ => false,
            })
        })
    }

    /// DMA isolation when `task` stops: pins on its memory are revoked
    /// (their frames kept until the IOMMU service releases them, which is
    /// told), and if it is an IOMMU service, every function it vouched for
    /// loses bus mastering and its pins go (its mappings died with it).
    pub(super) fn stop_dma(&mut self, p: &mut impl Platform, task: usize) {
        let mut holders = 0u32;
        self.pins.revoke_owner(task as u8, |pin| {
            p.dma_keep(task, pin.vaddr, pin.bytes);
            holders |= 1 << pin.holder;
        });
        for holder in (0..self.tasks.len()).filter(|h| holders & (1 << h) != 0) {
            self.post(holder, NOTIFY_DMA_REVOKED);
        }
        if self.is_iommu_service(task) {
            for bdf in self.translated.drop_holder(task as u8) {
                p.bus_master_off(bdf);
            }
            for page in self.pins.drop_holder(task as u8) {
                p.dma_free(page);
            }
        }
    }
}

/// The MSI address and data that name interrupt remapping entry `irte`
/// (VT-d remappable format: address bits 31:20 0xFEE, the handle's bits
/// 14:0 in address bits 19:5 and its bit 15 in address bit 2, bit 4 set
/// for remappable format, SHV (bit 3) clear so the data is ignored).
pub fn remappable_msi(irte: u16) -> (u64, u16) {
    let h = u64::from(irte);
    let address = 0xfee0_0000 | ((h & 0x7fff) << 5) | (1 << 4) | (((h >> 15) & 1) << 2);
    (address, 0)
}

/// `bus << 8 | device << 3 | function`, as the ABI passes a function.
pub fn bdf_word((bus, device, function): (u8, u8, u8)) -> u64 {
    (u64::from(bus) << 8) | (u64::from(device & 0x1f) << 3) | u64::from(function & 7)
}

/// The inverse of [`bdf_word`].
pub fn bdf_of_word(w: u16) -> (u8, u8, u8) {
    ((w >> 8) as u8, ((w >> 3) & 0x1f) as u8, (w & 7) as u8)
}
