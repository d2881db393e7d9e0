//! The `iommu` control protocol: how a driver asks the IOMMU service for a
//! DMA domain for its device and for mappings in it.
//!
//! Every request names the device by the caller's own PCI capability
//! handle (`pci`) and memory by the caller's own DMA buffer number
//! (`buffer`, from `DmaAlloc`). The IOMMU service asks the kernel what
//! those are for the client of the call it is holding, so a driver can
//! only ever name a device and memory it holds: there are no physical
//! addresses and no domain numbers to forge. One device, one domain.
//!
//! Guarantees a driver can rely on: after [`IommuResponse::Mapped`] the
//! device can DMA in the range with the access asked for; after
//! [`IommuResponse::Unmapped`] it cannot (the IOTLB was invalidated before
//! the reply). A device may set bus mastering only after
//! [`IommuResponse::Attached`] (the kernel refuses it before).

use super::Protocol;
use serde::{Deserialize, Serialize};

/// Marker type for the protocol.
pub struct Iommu;

impl Protocol for Iommu {
    const ID: u16 = 0x0004;
    const VERSION: u8 = 2;
    const NAME: &'static str = "iommu";
    type Request = IommuRequest;
    type Response = IommuResponse;
}

/// What a device may do through a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The device may read (DMA from memory).
    pub read: bool,
    /// The device may write (DMA to memory).
    pub write: bool,
}

impl Access {
    pub const READ: Access = Access {
        read: true,
        write: false,
    };
    pub const WRITE: Access = Access {
        read: false,
        write: true,
    };
    pub const READ_WRITE: Access = Access {
        read: true,
        write: true,
    };
}

/// The page size a mapping is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageSize {
    /// 4 KiB pages.
    Small,
    /// 2 MiB pages (IOVA, buffer offset and the frames all 2 MiB-aligned,
    /// and the unit must support them).
    Large,
}

impl PageSize {
    /// The page size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Small => 4096,
            Self::Large => 2 << 20,
        }
    }
}

/// How a unit translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Legacy mode: root and context entries point at second-level tables.
    Legacy,
    /// Scalable mode: scalable-mode context entries, a PASID directory and
    /// table, second-level translation for requests without PASID.
    Scalable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IommuRequest {
    /// Attach the PCI function the caller holds as `pci` to a domain of its
    /// own (nothing mapped), and let the kernel allow its bus mastering.
    /// Attaching an attached device is allowed and changes nothing.
    Attach { pci: u8 },
    /// Map `[iova, iova + len)` of the device's domain to `[offset, offset
    /// + len)` of the caller's DMA buffer `buffer`, in pages of `page`.
    Map {
        pci: u8,
        iova: u64,
        buffer: u8,
        offset: u64,
        len: u64,
        access: Access,
        page: PageSize,
    },
    /// Remove every mapping in `[iova, iova + len)`; ranges must cover
    /// whole mappings.
    Unmap { pci: u8, iova: u64, len: u64 },
    /// Describe the device's domain.
    Query { pci: u8 },
    /// Detach the device: every mapping removed, bus mastering off.
    Detach { pci: u8 },
    /// Reserve `[iova, iova + len)` of the device's domain for `[offset,
    /// offset + len)` of buffer `buffer` without mapping it (4 KiB pages):
    /// a DMA there faults, and the device's fault handler may answer by
    /// mapping the faulting page from this memory (demand mapping).
    Reserve {
        pci: u8,
        iova: u64,
        buffer: u8,
        offset: u64,
        len: u64,
        access: Access,
    },
    /// The device's current fault mark: every fault recorded later has a
    /// greater one.
    FaultMark { pci: u8 },
    /// The first fault of the device with a mark after `since`: answered
    /// at once with [`IommuResponse::NoFault`] if there is none (the
    /// service reads the fault records first), otherwise when that fault
    /// has been answered, with [`IommuResponse::FaultSettled`] (also when
    /// faults were lost after the mark: [`FaultOutcome::Lost`]). A driver
    /// asks after every completion interrupt, because a device may signal
    /// completion of a transfer that faulted.
    AwaitFault { pci: u8, since: u32 },
    /// The driver retried the transfer of fault `mark` after
    /// [`FaultOutcome::Retry`] and verified its data (counted).
    RetryVerified { pci: u8, mark: u32 },
    /// The fault pipeline's counters (the service also logs them).
    FaultSummary,
}

/// What the IOMMU service's fault pipeline has done. `success + invalid +
/// failure` counts every answer, the handlers' and the automatic ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounters {
    /// DMA faults recorded.
    pub faults: u64,
    /// Faults delivered to a handler.
    pub delivered: u64,
    pub success: u64,
    pub invalid: u64,
    pub failure: u64,
    /// Answers the service gave itself.
    pub auto: u64,
    /// Retries drivers were told to make.
    pub retried: u64,
    /// Retries drivers reported verified.
    pub verified: u64,
    /// Times the fault records overflowed (FSTS.PFO): faults the hardware
    /// dropped.
    pub overflows: u64,
    /// VT-d register accesses the service has made since it started, over
    /// all units (for figures: accesses per fault).
    pub register_accesses: u64,
}

/// What became of a device's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultOutcome {
    /// The handler mapped the page and answered Success: retry.
    Retry,
    /// The transfer is aborted: the handler answered `code`, or (with
    /// `automatic`) the service did, because there was no handler, it
    /// missed its deadline, died or was full.
    Aborted {
        code: crate::protocol::faults::ResponseCode,
        automatic: bool,
    },
    /// The unit's fault records overflowed after the mark: the hardware
    /// dropped faults without saying whose, so the device may have
    /// faulted. Treat the transfer as unverified (run it again and ask
    /// again). `iova` and `write` of such a fault mean nothing.
    Lost,
}

/// A fault of the caller's device, answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledFault {
    /// The fault's mark: pass it as `since` to ask about later faults.
    pub mark: u32,
    /// The faulting page.
    pub iova: u64,
    pub write: bool,
    pub outcome: FaultOutcome,
}

/// A domain, as [`IommuRequest::Query`] describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    /// The domain id the unit tags its caches with.
    pub domain: u16,
    /// The PCI function, as `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    /// Bits of IOVA the domain translates (39 or 48).
    pub address_width: u8,
    pub mode: Mode,
    /// 4 KiB pages mapped (a 2 MiB page counts 512).
    pub mapped_pages: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IommuResponse {
    Attached(DomainInfo),
    /// The range is mapped; the device may DMA there.
    Mapped {
        iova: u64,
        len: u64,
    },
    /// The range is unmapped and the IOTLB invalidated.
    Unmapped {
        iova: u64,
        len: u64,
    },
    Domain(DomainInfo),
    Detached,
    Reserved {
        iova: u64,
        len: u64,
    },
    Mark {
        mark: u32,
    },
    /// No fault after the mark asked about; `mark` is the current one.
    NoFault {
        mark: u32,
    },
    FaultSettled(SettledFault),
    Noted,
    FaultSummary(FaultCounters),
    Refused(IommuError),
}

/// Why the IOMMU service refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IommuError {
    /// The caller holds no PCI function under that handle.
    NoSuchDevice,
    /// The caller may not do this (for example: it names a buffer it does
    /// not hold, or a device no unit translates).
    NotPermitted,
    /// The device has no domain yet.
    NotAttached,
    /// Part of the range is already mapped.
    Overlap,
    /// The range reaches beyond the domain's address width, or past the
    /// end of the buffer.
    OutOfRange,
    /// An address, offset or length is not aligned to the page size, or
    /// the length is zero.
    BadAlignment,
    /// The unit cannot do this (for example 2 MiB pages).
    Unsupported,
    /// The range covers only part of a mapping, or nothing mapped.
    NotMapped,
    /// The service has no memory left for page tables or bookkeeping.
    OutOfTableMemory,
    /// The hardware did not answer in time (an invalidation or a
    /// handshake); the request may not have taken effect.
    HardwareTimeout,
    /// The fault mark names no answered fault (`RetryVerified`).
    UnknownMark,
}

impl core::fmt::Display for IommuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoSuchDevice => "no such device",
            Self::NotPermitted => "not permitted",
            Self::NotAttached => "device not attached",
            Self::Overlap => "range overlaps a mapping",
            Self::OutOfRange => "range out of bounds",
            Self::BadAlignment => "misaligned or empty range",
            Self::Unsupported => "not supported by the unit",
            Self::NotMapped => "range is not exactly mapped",
            Self::OutOfTableMemory => "out of table memory",
            Self::HardwareTimeout => "hardware timeout",
            Self::UnknownMark => "no such answered fault",
        })
    }
}

/// `bus << 8 | device << 3 | function` as `bb:dd.f`.
pub struct Bdf(pub u16);

impl core::fmt::Display for Bdf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}.{}", b >> 8, (b >> 3) & 0x1f, b & 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdf_prints_as_pci_does() {
        assert_eq!(format!("{}", Bdf(0x0018)), "00:03.0");
        assert_eq!(format!("{}", Bdf(0x01ff)), "01:1f.7");
    }

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::Small.bytes(), 4096);
        assert_eq!(PageSize::Large.bytes(), 0x20_0000);
    }
}
