//! Fault recording registers: typed records of the DMA remapping faults the
//! unit logged.
//!
//! A record is 128 bits at CAP.FRO + 16·i: the faulting page address in the
//! low qword, and source id (15:0), PASID present (31), reason (39:32),
//! PASID (59:40), type (62: 1 = read) and F (63) in the high qword. The
//! core reads every record from FSTS.FRI on, clears each by writing 1 to F
//! with a 32-bit write of the high dword (QEMU asserts on 8 bytes), then
//! clears FSTS.PFO (`unit::Unit::drain_faults`). QEMU has a single record
//! and drops a second fault from a source whose record is still pending, so
//! the service drains promptly.

use core::fmt;

use crate::source::SourceId;

/// Why translation failed (VT-d spec, legacy-mode codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultReason {
    RootNotPresent,
    ContextNotPresent,
    ContextInvalid,
    AddressBeyondWidth,
    WriteDenied,
    ReadDenied,
    PageTableReadError,
    RootTableReadError,
    ContextTableReadError,
    RootReserved,
    ContextReserved,
    PageTableReserved,
    InterruptAddress,
    /// A code this decoder does not name.
    Other(u8),
}

impl FaultReason {
    const CODES: [(u8, FaultReason); 13] = [
        (0x1, Self::RootNotPresent),
        (0x2, Self::ContextNotPresent),
        (0x3, Self::ContextInvalid),
        (0x4, Self::AddressBeyondWidth),
        (0x5, Self::WriteDenied),
        (0x6, Self::ReadDenied),
        (0x7, Self::PageTableReadError),
        (0x8, Self::RootTableReadError),
        (0x9, Self::ContextTableReadError),
        (0xa, Self::RootReserved),
        (0xb, Self::ContextReserved),
        (0xc, Self::PageTableReserved),
        (0xe, Self::InterruptAddress),
    ];

    pub fn from_code(code: u8) -> Self {
        Self::CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(Self::Other(code), |&(_, r)| r)
    }

    pub fn code(self) -> u8 {
        match self {
            Self::Other(code) => code,
            known => Self::CODES
                .iter()
                .find(|(_, r)| *r == known)
                .map_or(0, |&(c, _)| c),
        }
    }
}

/// Whether the faulting request read or wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAccess {
    Read,
    Write,
}

/// One decoded fault record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultRecord {
    pub source: SourceId,
    /// Page address of the faulting request (bits 11:0 are zero).
    pub address: u64,
    pub access: FaultAccess,
    pub reason: FaultReason,
    /// The request's PASID, if it carried one.
    pub pasid: Option<u32>,
}

/// High qword bit 63: the record holds a fault.
pub const RECORD_FAULT: u64 = 1 << 63;

impl FaultRecord {
    /// Decodes a record; `None` when F is clear.
    pub fn decode(low: u64, high: u64) -> Option<Self> {
        if high & RECORD_FAULT == 0 {
            return None;
        }
        let pasid_present = high & (1 << 31) != 0;
        Some(Self {
            source: SourceId(high as u16),
            address: low & !0xfff,
            access: if high & (1 << 62) != 0 {
                FaultAccess::Read
            } else {
                FaultAccess::Write
            },
            reason: FaultReason::from_code((high >> 32) as u8),
            pasid: pasid_present.then_some(((high >> 40) & 0xf_ffff) as u32),
        })
    }
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} {:#x} reason {:#x} ({:?})",
            self.source,
            self.access,
            self.address,
            self.reason.code(),
            self.reason
        )
    }
}

/// What one drain of the fault recording registers found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultSummary {
    /// Records read and cleared.
    pub records: usize,
    /// FSTS.PFO was set (faults were lost) and has been cleared.
    pub overflow: bool,
}
