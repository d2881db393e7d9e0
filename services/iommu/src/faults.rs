//! DMA and interrupt remapping faults as log lines, rate-limited: the first
//! [`LOGGED_FAULTS`] are logged one by one, later ones only counted, with
//! one line each time the count doubles (32, 64, 128, ... faults in all)
//! saying how many went unlogged; overflows (FSTS.PFO) likewise at their
//! 1st, 2nd, 4th, 8th, ... occurrence. A storm costs a few dozen lines.
//! (Delivering faults to handlers is the fault desk's, `crate::desk`.)

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

/// What an interrupt remapping fault (reasons 0x20-0x26) means, in words;
/// `None` for a DMA remapping fault.
pub fn interrupt_reason_text(code: u8) -> Option<&'static str> {
    Some(match code {
        0x20 => "reserved bits in the request",
        0x21 => "entry beyond the table",
        0x22 => "entry not present",
        0x23 => "table unreadable",
        0x24 => "entry has reserved bits set",
        0x25 => "compatibility format blocked",
        0x26 => "not from the function the entry names",
        _ => return None,
    })
}

/// `DMA fault from 00:03.0 at iova 0x... (write): <reason>`, or for an
/// interrupt remapping fault (the record holds the entry index in bits
/// 63:48) `interrupt request from 00:03.0 blocked: entry N: <reason>`.
pub struct FaultLine<'a>(pub &'a FaultRecord);

impl fmt::Display for FaultLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let code = r.reason.code();
        if let Some(why) = interrupt_reason_text(code) {
            return write!(
                f,
                "interrupt request from {} blocked: entry {}: {why} (reason {code:#x})",
                r.source,
                r.address >> 48
            );
        }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultLog {
    /// Every fault seen.
    pub total: u64,
    /// Faults not logged since the last line that counted them.
    unlogged: u64,
    /// The total at which unlogged faults are next reported.
    next_report: u64,
    /// Overflows seen.
    pub overflows: u64,
}

impl Default for FaultLog {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultLog {
    pub const fn new() -> Self {
        Self {
            total: 0,
            unlogged: 0,
            next_report: 2 * LOGGED_FAULTS as u64,
            overflows: 0,
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
    /// one by one once the total has doubled, and one for an overflow
    /// (FSTS.PFO) when the count of overflows reaches a power of two.
    pub fn drained(
        &mut self,
        index: u8,
        summary: FaultSummary,
        mut line: impl FnMut(fmt::Arguments<'_>),
    ) {
        if self.unlogged > 0 && self.total >= self.next_report {
            line(format_args!(
                "iommu: {} more DMA fault(s) not logged ({} in all)",
                self.unlogged, self.total
            ));
            self.unlogged = 0;
            while self.next_report <= self.total {
                self.next_report *= 2;
            }
        }
        if summary.overflow {
            self.overflows += 1;
            if self.overflows.is_power_of_two() {
                line(format_args!(
                    "iommu: unit {index}: fault records overflowed (FSTS.PFO): faults were lost                      ({} overflow(s) in all)",
                    self.overflows
                ));
            }
        }
    }
}
