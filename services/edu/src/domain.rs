//! The device's DMA domain, through the IOMMU service's `iommu` protocol.
//!
//! The driver names its device by its own PCI capability handle and its
//! memory by DMA buffer number; it never learns a physical address. Each
//! call either gets the answer the protocol promises for it (`Attached`,
//! `Mapped` of exactly the range asked, `Unmapped` likewise) or fails with
//! the reason, so the driver can tell a refusal from a broken service.

use crate::page::{PAGE, Page};
use faultline_ipc::channel::{ChannelError, Client, Handle};
use faultline_ipc::protocol::iommu::{
    Access, DomainInfo, FaultCounters, Iommu, IommuError, IommuRequest, IommuResponse, PageSize,
    SettledFault,
};
use userlib::KernelTransport;

/// Why a call did not give the answer asked for.
#[derive(Debug)]
pub enum Failed {
    /// The call did not get through (`PeerDead`: no IOMMU service).
    Channel(ChannelError),
    /// The IOMMU service refused.
    Refused(IommuError),
    /// An answer the protocol does not give to this request.
    Odd(IommuResponse),
}

impl core::fmt::Display for Failed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Channel(e) => write!(f, "{e}"),
            Self::Refused(e) => write!(f, "refused: {e}"),
            Self::Odd(r) => write!(f, "answered {r:?}"),
        }
    }
}

/// The device's domain: the channel to the IOMMU service and the device.
pub struct Domain {
    client: Client<Iommu, KernelTransport>,
    pci: u8,
}

impl Domain {
    /// Attaches the PCI function held as `pci` to a domain of its own.
    pub fn attach(iommu: Handle, pci: Handle) -> Result<(Domain, DomainInfo), Failed> {
        let mut domain = Domain {
            client: Client::new(KernelTransport, iommu),
            pci: pci.0 as u8,
        };
        let request = IommuRequest::Attach { pci: domain.pci };
        // The first call after the IOMMU service restarted is not
        // delivered; a driver that has nothing mapped yet simply asks again.
        let answer = match domain.call(request) {
            Err(Failed::Channel(ChannelError::PeerRestarted { .. })) => domain.call(request),
            answer => answer,
        };
        match answer? {
            IommuResponse::Attached(info) => Ok((domain, info)),
            other => Err(Failed::Odd(other)),
        }
    }

    fn call(&mut self, request: IommuRequest) -> Result<IommuResponse, Failed> {
        match self.client.call(&request) {
            Ok(IommuResponse::Refused(e)) => Err(Failed::Refused(e)),
            Ok(response) => Ok(response),
            Err(e) => Err(Failed::Channel(e)),
        }
    }

    /// Maps `page` at `iova`, readable and writable by the device.
    pub fn map(&mut self, iova: u64, page: &Page) -> Result<(), Failed> {
        let request = IommuRequest::Map {
            pci: self.pci,
            iova,
            buffer: page.region.buffer,
            offset: 0,
            len: PAGE,
            access: Access::READ_WRITE,
            page: PageSize::Small,
        };
        match self.call(request)? {
            IommuResponse::Mapped { iova: i, len } if i == iova && len == PAGE => Ok(()),
            other => Err(Failed::Odd(other)),
        }
    }

    /// Asks the IOMMU service to describe the domain.
    pub fn query(&mut self) -> Result<DomainInfo, Failed> {
        match self.call(IommuRequest::Query { pci: self.pci })? {
            IommuResponse::Domain(info) => Ok(info),
            other => Err(Failed::Odd(other)),
        }
    }

    /// Unmaps the page at `iova`.
    pub fn unmap(&mut self, iova: u64) -> Result<(), Failed> {
        let request = IommuRequest::Unmap {
            pci: self.pci,
            iova,
            len: PAGE,
        };
        match self.call(request)? {
            IommuResponse::Unmapped { iova: i, len } if i == iova && len == PAGE => Ok(()),
            other => Err(Failed::Odd(other)),
        }
    }

    /// Reserves `page` at `iova` without mapping it: a DMA there faults,
    /// and the device's fault handler may have it mapped.
    pub fn reserve(&mut self, iova: u64, page: &Page) -> Result<(), Failed> {
        let request = IommuRequest::Reserve {
            pci: self.pci,
            iova,
            buffer: page.region.buffer,
            offset: 0,
            len: PAGE,
            access: Access::READ_WRITE,
        };
        match self.call(request)? {
            IommuResponse::Reserved { iova: i, len } if i == iova && len == PAGE => Ok(()),
            other => Err(Failed::Odd(other)),
        }
    }

    /// The device's current fault mark.
    pub fn fault_mark(&mut self) -> Result<u32, Failed> {
        match self.call(IommuRequest::FaultMark { pci: self.pci })? {
            IommuResponse::Mark { mark } => Ok(mark),
            other => Err(Failed::Odd(other)),
        }
    }

    /// The device's first fault after `since`, once answered; `Ok(None)`
    /// if it has not faulted since.
    pub fn await_fault(&mut self, since: u32) -> Result<Option<SettledFault>, Failed> {
        let request = IommuRequest::AwaitFault {
            pci: self.pci,
            since,
        };
        match self.call(request)? {
            IommuResponse::NoFault { .. } => Ok(None),
            IommuResponse::FaultSettled(fault) => Ok(Some(fault)),
            other => Err(Failed::Odd(other)),
        }
    }

    /// Reports the retry of fault `mark` verified.
    pub fn retry_verified(&mut self, mark: u32) -> Result<(), Failed> {
        let request = IommuRequest::RetryVerified {
            pci: self.pci,
            mark,
        };
        match self.call(request)? {
            IommuResponse::Noted => Ok(()),
            other => Err(Failed::Odd(other)),
        }
    }

    /// The IOMMU service's fault counters (it logs them too).
    pub fn fault_summary(&mut self) -> Result<FaultCounters, Failed> {
        match self.call(IommuRequest::FaultSummary)? {
            IommuResponse::FaultSummary(c) => Ok(c),
            other => Err(Failed::Odd(other)),
        }
    }
}
