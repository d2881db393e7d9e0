//! The benchmarked device's domain, through the IOMMU service's `iommu`
//! protocol: attach, map, unmap and query, each checked against the
//! answer the protocol promises, so a timed call that went wrong is never
//! counted as a fast one.

use faultline_ipc::channel::{ChannelError, Client, Handle};
use faultline_ipc::protocol::iommu::{
    Access, DomainInfo, Iommu, IommuError, IommuRequest, IommuResponse, PageSize,
};
use userlib::KernelTransport;

/// Why a call did not give the answer asked for.
#[derive(Debug)]
pub enum Failed {
    /// The call did not get through.
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
        match domain.call(IommuRequest::Attach { pci: domain.pci })? {
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

    /// Maps one page of `page` size at `iova` to the start of `buffer`,
    /// readable and writable by the device.
    pub fn map(&mut self, iova: u64, buffer: u8, page: PageSize) -> Result<(), Failed> {
        let len = page.bytes();
        let request = IommuRequest::Map {
            pci: self.pci,
            iova,
            buffer,
            offset: 0,
            len,
            access: Access::READ_WRITE,
            page,
        };
        match self.call(request)? {
            IommuResponse::Mapped { iova: i, len: l } if i == iova && l == len => Ok(()),
            other => Err(Failed::Odd(other)),
        }
    }

    /// Unmaps the `len` bytes at `iova`.
    pub fn unmap(&mut self, iova: u64, len: u64) -> Result<(), Failed> {
        let request = IommuRequest::Unmap {
            pci: self.pci,
            iova,
            len,
        };
        match self.call(request)? {
            IommuResponse::Unmapped { iova: i, len: l } if i == iova && l == len => Ok(()),
            other => Err(Failed::Odd(other)),
        }
    }

    /// Describes the domain: the cheapest request the service serves
    /// (one kernel look-up of the device, no table or IOTLB work).
    pub fn query(&mut self) -> Result<DomainInfo, Failed> {
        match self.call(IommuRequest::Query { pci: self.pci })? {
            IommuResponse::Domain(info) => Ok(info),
            other => Err(Failed::Odd(other)),
        }
    }
}
