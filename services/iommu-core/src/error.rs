//! Typed errors of the driver core. The IOMMU service maps the map/unmap
//! ones onto its control protocol's errors and reports the rest.

use core::fmt;

/// What the core was waiting for when it gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// GCMD.SRTP → GSTS.RTPS.
    SetRootTable,
    /// GCMD.QIE → GSTS.QIES.
    EnableQueuedInvalidation,
    /// GCMD.TE → GSTS.TES.
    EnableTranslation,
    /// GCMD.WBF → GSTS.WBFS clear.
    WriteBufferFlush,
    /// An invalidation wait descriptor's status write.
    InvalidationWait,
    /// GCMD.TE clear → GSTS.TES clear (taking over a running unit).
    DisableTranslation,
    /// IQH reaching IQT, then GCMD.QIE clear → GSTS.QIES clear (taking
    /// over a running unit).
    DisableQueuedInvalidation,
    /// GCMD.SIRTP → GSTS.IRTPS.
    SetInterruptTable,
    /// GCMD.IRE → GSTS.IRES.
    EnableInterruptRemapping,
    /// Draining page requests: PRS.PRO was still set after every bounded
    /// round of read, drain wait, read (`Unit::drain_page_requests`).
    PageRequestDrain,
}

/// A feature the unit lacks that the core needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// ECAP.QI = 0 (register-based invalidation is not implemented).
    QueuedInvalidation,
    /// CAP.SAGAW offers neither a 39-bit nor a 48-bit table.
    AddressWidth,
    /// Scalable mode was asked for, but ECAP lacks SMTS or SLTS.
    ScalableMode,
    /// 2 MiB pages were asked for, but CAP.SLLPS lacks them.
    LargePages,
    /// Interrupt remapping was asked for, but ECAP.IR = 0.
    InterruptRemapping,
    /// An APIC id above 255 needs x2APIC destinations, but ECAP.EIM = 0.
    ExtendedInterruptMode,
    /// Page requests were asked for, but ECAP.PRS = 0.
    PageRequests,
    /// A page request drain was asked for, but ECAP.PDS = 0 (the wait
    /// descriptor's PD bit is reserved).
    PageRequestDrain,
    /// The page request queue was used before
    /// `Unit::enable_page_requests` set it up. (A variant here rather
    /// than a new [`Error`] so the service's exhaustive match on the
    /// error kinds stays as it is.)
    PageRequestQueueOff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A handshake or wait did not complete within its bound.
    Timeout(Operation),
    /// The unit set FSTS.IQE: it rejected a descriptor.
    InvalidationQueueError,
    /// The unit cannot do what the core needs.
    Unsupported(Unsupported),
    /// GSTS.TES was already set at bring-up and [`crate::Config::take_over`]
    /// was not; the core does not adopt a running unit's tables.
    TranslationAlreadyOn,
    /// The device has no domain.
    NotAttached,
    /// The device already has a domain.
    AlreadyAttached,
    /// Every domain slot or domain id is in use.
    TooManyDomains,
    /// Part of the range is already mapped (first mapped IOVA).
    Overlap { iova: u64 },
    /// Part of the range is not mapped (first hole).
    NotMapped { iova: u64 },
    /// The range ends inside a 2 MiB page (that page's IOVA).
    SplitsLargePage { iova: u64 },
    /// IOVA beyond the domain's address width, or physical address beyond
    /// the host address width.
    OutOfRange,
    /// Address or length not 4 KiB-aligned, or an empty range.
    Misaligned,
    /// Neither read nor write was asked for.
    NoAccess,
    /// The DMA memory budget for tables is spent.
    OutOfTableMemory,
    /// An interrupt remapping entry index beyond the table.
    NoSuchInterruptEntry,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(op) => write!(f, "timed out waiting for {op:?}"),
            Self::InvalidationQueueError => f.write_str("invalidation queue error (FSTS.IQE)"),
            Self::Unsupported(u) => write!(f, "unit lacks {u:?}"),
            Self::TranslationAlreadyOn => f.write_str("translation already enabled"),
            Self::NotAttached => f.write_str("device not attached"),
            Self::AlreadyAttached => f.write_str("device already attached"),
            Self::TooManyDomains => f.write_str("no free domain"),
            Self::Overlap { iova } => write!(f, "overlaps mapping at {iova:#x}"),
            Self::NotMapped { iova } => write!(f, "nothing mapped at {iova:#x}"),
            Self::SplitsLargePage { iova } => write!(f, "splits the 2 MiB page at {iova:#x}"),
            Self::OutOfRange => f.write_str("address out of range"),
            Self::Misaligned => f.write_str("address or length not 4 KiB-aligned"),
            Self::NoAccess => f.write_str("no access rights asked for"),
            Self::OutOfTableMemory => f.write_str("out of page-table memory"),
            Self::NoSuchInterruptEntry => f.write_str("no such interrupt remapping entry"),
        }
    }
}
