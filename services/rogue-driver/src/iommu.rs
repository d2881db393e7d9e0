//! Attacks on DMA isolation: bus mastering before the IOMMU service has
//! attached the device, and requests to the IOMMU service naming what this
//! driver does not hold or ranges it may not have.
//!
//! Every request names the device by this driver's own PCI handle and
//! memory by its own buffer number, so the only forgeries open to it are
//! other numbers: handles that are not PCI functions, buffers it never
//! allocated, offsets past its buffer, addresses past the domain.

use crate::Tally;
use faultline_ipc::abi::Error;
use faultline_ipc::channel::{Client, Handle};
use faultline_ipc::protocol::iommu::{
    Access, Iommu, IommuError, IommuRequest, IommuResponse, PageSize,
};
use userlib::{KernelTransport, dma_alloc, log, pci_config_read, pci_config_write};

/// Where this driver maps its buffer in its domain.
pub const IOVA: u64 = 0x20_0000;

/// Checks that the IOMMU service refuses `request` with `want`.
fn refused(
    iommu: &mut Client<Iommu, KernelTransport>,
    t: &mut Tally,
    what: &str,
    request: IommuRequest,
    want: IommuError,
) {
    match iommu.call(&request) {
        Ok(IommuResponse::Refused(e)) if e == want => t.refused += 1,
        other => {
            t.unexpected += 1;
            log!("rogue-driver: UNEXPECTED {what}: {other:?} (wanted {want:?})");
        }
    }
}

fn map(pci: u8, iova: u64, buffer: u8, offset: u64, len: u64) -> IommuRequest {
    IommuRequest::Map {
        pci,
        iova,
        buffer,
        offset,
        len,
        access: Access::READ_WRITE,
        page: PageSize::Small,
    }
}

/// (1) Bus mastering before attach, and the IOMMU protocol's refusals.
/// Leaves the device attached, with a 4 KiB buffer mapped at [`IOVA`]
/// and bus mastering on; returns the handle of the DMA budget.
pub fn attach_hostile(pci: Handle, dma: Handle, iommu: Handle, t: &mut Tally) {
    let pci_n = pci.0 as u8;
    t.expect(
        "bus mastering before attach (word)",
        pci_config_write(pci, 0x04, 2, 0x0406),
        Error::NotPermitted,
    );
    t.expect(
        "bus mastering before attach (byte)",
        pci_config_write(pci, 0x04, 1, 0x06),
        Error::NotPermitted,
    );
    let command = pci_config_read(pci, 0x04, 2).unwrap_or(0xffff);
    t.check("bus mastering still off", command & 0x4 == 0);
    let mut iommu = Client::<Iommu, _>::new(KernelTransport, iommu);
    refused(
        &mut iommu,
        t,
        "map before attach",
        map(pci_n, IOVA, 0, 0, 4096),
        IommuError::NotAttached,
    );
    refused(
        &mut iommu,
        t,
        "attach a DMA budget as a device",
        IommuRequest::Attach { pci: dma.0 as u8 },
        IommuError::NoSuchDevice,
    );
    refused(
        &mut iommu,
        t,
        "attach a handle it does not hold",
        IommuRequest::Attach { pci: 200 },
        IommuError::NoSuchDevice,
    );
    match iommu.call(&IommuRequest::Attach { pci: pci_n }) {
        Ok(IommuResponse::Attached(_)) => {}
        other => {
            t.unexpected += 1;
            log!("rogue-driver: UNEXPECTED attach: {other:?}");
        }
    }
    t.check(
        "bus mastering once attached",
        pci_config_write(pci, 0x04, 2, 0x0406).is_ok(),
    );
    let buffer = match dma_alloc(dma, 4096) {
        Ok(b) => {
            t.check("no physical address for a driver", b.paddr.is_none());
            b.buffer
        }
        Err(e) => {
            t.unexpected += 1;
            log!("rogue-driver: UNEXPECTED dma_alloc: {e:?}");
            0
        }
    };
    refused(
        &mut iommu,
        t,
        "map a buffer never allocated",
        map(pci_n, IOVA, buffer + 5, 0, 4096),
        IommuError::NotPermitted,
    );
    refused(
        &mut iommu,
        t,
        "map past the end of its buffer",
        map(pci_n, IOVA, buffer, 4096, 4096),
        IommuError::OutOfRange,
    );
    refused(
        &mut iommu,
        t,
        "map a misaligned IOVA",
        map(pci_n, IOVA + 8, buffer, 0, 4096),
        IommuError::BadAlignment,
    );
    refused(
        &mut iommu,
        t,
        "map beyond the domain's address width",
        map(pci_n, 1 << 57, buffer, 0, 4096),
        IommuError::OutOfRange,
    );
    refused(
        &mut iommu,
        t,
        "map for a device it does not hold",
        map(dma.0 as u8, IOVA, buffer, 0, 4096),
        IommuError::NoSuchDevice,
    );
    match iommu.call(&map(pci_n, IOVA, buffer, 0, 4096)) {
        Ok(IommuResponse::Mapped { .. }) => {}
        other => {
            t.unexpected += 1;
            log!("rogue-driver: UNEXPECTED map: {other:?}");
        }
    }
    refused(
        &mut iommu,
        t,
        "map over its own mapping",
        map(pci_n, IOVA, buffer, 0, 4096),
        IommuError::Overlap,
    );
    refused(
        &mut iommu,
        t,
        "unmap what is not mapped",
        IommuRequest::Unmap {
            pci: pci_n,
            iova: IOVA + 0x10_0000,
            len: 4096,
        },
        IommuError::NotMapped,
    );
}
