//! DMA remapping faults as log lines, rate-limited: the first
//! [`LOGGED_FAULTS`] are logged one by one, later ones only counted (one
//! line per drain says how many). Delivering faults to per-device handlers
//! will start from [`FaultLog::note`].

use core::fmt;

use faultline_iommu_core::{FaultAccess, FaultReason, FaultRecord, FaultSummary};

/// Faults logged one by one before the service only counts them.
pub const LOGGED_FAULTS: u32 = 16;

/// What a fault's reason means, in words.
pub fn reason_text(reason: FaultReason) -> &'static str {
    match reason {
        FaultReason::RootNotPresent => "no domain (root entry not present)",
        FaultReason::ContextNotPresent => "no domain (context entry not present)",
        FaultReason::ContextInvalid => "context entry invalid",
        FaultReason::AddressBeyondWidth => "address beyond the domain's width",
        FaultReason::WriteDenied => "not mapped for writing",
        FaultReason::ReadDenied => "not mapped for reading",
        FaultReason::PageTableReadError => "page table unreadable",
        FaultReason::RootTableReadError => "root table unreadable",
        FaultReason::ContextTableReadError => "context table unreadable",
        FaultReason::RootReserved => "root entry has reserved bits set",
        FaultReason::ContextReserved => "context entry has reserved bits set",
        FaultReason::PageTableReserved => "page table entry has reserved bits set",
        FaultReason::InterruptAddress => "write to the interrupt address range",
        FaultReason::Other(_) => "other reason",
    }
}

/// `DMA fault from 00:03.0 at iova 0x... (write): <reason>`.
pub struct FaultLine<'a>(pub &'a FaultRecord);

impl fmt::Display for FaultLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let access = match r.access {
            FaultAccess::Read => "read",
            FaultAccess::Write => "write",
        };
        write!(
            f,
            "DMA fault from {} at iova {:#x} ({access}",
            r.source, r.address
        )?;
        if let Some(pasid) = r.pasid {
            write!(f, ", PASID {pasid}")?;
        }
        write!(
            f,
            "): {} (reason {:#x})",
            reason_text(r.reason),
            r.reason.code()
        )
    }
}

/// Counts faults and decides which are logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultLog {
    /// Every fault seen.
    pub total: u64,
    /// Faults seen in the current drain but not logged.
    unlogged: u64,
}

impl FaultLog {
    pub const fn new() -> Self {
        Self {
            total: 0,
            unlogged: 0,
        }
    }

    /// One fault: `line` gets its log line if it is among the first
    /// [`LOGGED_FAULTS`].
    pub fn note(&mut self, fault: &FaultRecord, mut line: impl FnMut(fmt::Arguments<'_>)) {
        self.total += 1;
        if self.total <= u64::from(LOGGED_FAULTS) {
            line(format_args!("iommu: {}", FaultLine(fault)));
        } else {
            self.unlogged += 1;
        }
    }

    /// End of one drain of unit `index`: a line for the faults not logged
    /// one by one, and one if records were lost (FSTS.PFO).
    pub fn drained(
        &mut self,
        index: u8,
        summary: FaultSummary,
        mut line: impl FnMut(fmt::Arguments<'_>),
    ) {
        if self.unlogged > 0 {
            line(format_args!(
                "iommu: {} more DMA fault(s) not logged ({} in all)",
                self.unlogged, self.total
            ));
            self.unlogged = 0;
        }
        if summary.overflow {
            line(format_args!(
                "iommu: unit {index}: fault records overflowed (FSTS.PFO): faults were lost"
            ));
        }
    }
}
