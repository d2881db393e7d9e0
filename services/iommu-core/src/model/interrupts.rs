//! The model's interrupt remapping: what a write into the interrupt range
//! (0xFEE0_0000..0xFF00_0000) raises, checked as the VT-d spec (5.1.4,
//! 9.10) says.
//!
//! - Remapping off: the write is a compatibility-format interrupt and is
//!   delivered as addressed (vector in data 7:0, APIC id in address 19:12).
//! - Remapping on, compatibility format (address bit 4 clear): blocked with
//!   fault 0x25 unless GSTS.CFIS is set and IRTA.EIME clear.
//! - Remapping on, remappable format: handle = address 19:5 plus bit 2 as
//!   bit 15, plus data 15:0 when SHV (bit 3) is set (data 31:16 must then be
//!   zero, else 0x20). An index at or past the table size is 0x21, an
//!   unreadable table 0x23, a not-present entry 0x22, reserved bits or a
//!   posted entry 0x24, a requester the entry does not accept 0x26.
//!
//! Entries are read through an interrupt entry cache that only IEC
//! descriptors empty, so a driver that edits an entry without invalidating
//! keeps getting the old one. Faults are recorded like DMA faults, with the
//! index in the record's bits 63:48, unless the entry has FPD set.

use super::State;

/// What a write into the interrupt range delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupt {
    pub vector: u8,
    /// The APIC id it reaches.
    pub destination: u32,
}

/// Why the unit blocked an interrupt request (the fault reason code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptFault {
    /// 0x20: reserved bits set in the request.
    RequestReserved,
    /// 0x21: the index is beyond the table.
    IndexBeyondTable,
    /// 0x22: the entry is not present.
    EntryNotPresent,
    /// 0x23: the table could not be read.
    TableUnreadable,
    /// 0x24: the entry sets reserved bits (or is posted format).
    EntryReserved,
    /// 0x25: compatibility format, blocked.
    CompatibilityBlocked,
    /// 0x26: the requester is not the one the entry names.
    SourceRejected,
}

impl InterruptFault {
    pub const fn code(self) -> u8 {
        match self {
            Self::RequestReserved => 0x20,
            Self::IndexBeyondTable => 0x21,
            Self::EntryNotPresent => 0x22,
            Self::TableUnreadable => 0x23,
            Self::EntryReserved => 0x24,
            Self::CompatibilityBlocked => 0x25,
            Self::SourceRejected => 0x26,
        }
    }
}

const GSTS_IRES: u32 = 1 << 25;
const GSTS_CFIS: u32 = 1 << 23;
/// IRTE low-qword reserved bits: 14:12 and 31:24.
const IRTE_LOW_RESERVED: u64 = 0xff00_7000;
/// IRTE high-qword reserved bits: 63:20.
const IRTE_HIGH_RESERVED: u64 = !0xf_ffff;

impl State {
    pub(super) fn deliver_msi(
        &mut self,
        source: u16,
        address: u64,
        data: u32,
    ) -> Result<super::Interrupt, InterruptFault> {
        assert!(
            address >> 20 == 0xfee,
            "model: {address:#x} is not in the interrupt range"
        );
        let result = self.remap(source, address, data);
        if let Err((fault, index, fpd)) = result {
            self.interrupts_blocked += 1;
            if !fpd {
                self.record_fault(source, u64::from(index) << 48, fault.code(), true);
            }
        }
        result.map_err(|(fault, _, _)| fault)
    }

    /// The interrupt, or (fault, index, entry's FPD).
    fn remap(
        &mut self,
        source: u16,
        address: u64,
        data: u32,
    ) -> Result<Interrupt, (InterruptFault, u16, bool)> {
        let compatibility = Interrupt {
            vector: data as u8,
            destination: ((address >> 12) & 0xff) as u32,
        };
        if self.gsts & GSTS_IRES == 0 {
            return Ok(compatibility);
        }
        let (table, entries, eime) = self.irt.expect("IRES is only set after SIRTP");
        if address & (1 << 4) == 0 {
            if self.gsts & GSTS_CFIS != 0 && !eime {
                return Ok(compatibility);
            }
            return Err((InterruptFault::CompatibilityBlocked, 0, false));
        }
        let mut index = ((address >> 5) & 0x7fff) as u32 | (((address >> 2) & 1) as u32) << 15;
        if address & (1 << 3) != 0 {
            if data >> 16 != 0 {
                return Err((InterruptFault::RequestReserved, index as u16, false));
            }
            index += data & 0xffff;
        }
        if index >= entries {
            return Err((InterruptFault::IndexBeyondTable, index as u16, false));
        }
        let index = index as u16;
        let (low, high) = match self.irte_cache.iter().find(|(i, _)| *i == index) {
            Some(&(_, entry)) => entry,
            None => {
                let at = table + 16 * u64::from(index);
                let (Some(low), Some(high)) =
                    (self.memory.device_read(at), self.memory.device_read(at + 8))
                else {
                    return Err((InterruptFault::TableUnreadable, index, false));
                };
                if low & 1 != 0 {
                    self.irte_cache.push((index, (low, high)));
                }
                (low, high)
            }
        };
        let fpd = low & 2 != 0;
        if low & 1 == 0 {
            return Err((InterruptFault::EntryNotPresent, index, fpd));
        }
        // xAPIC destinations use bits 15:8 of the field; the rest is reserved.
        let destination_reserved = if eime { 0 } else { 0xffff_00ff << 32 };
        let posted = low & (1 << 15) != 0;
        let bad_svt = (high >> 18) & 3 == 3;
        if low & (IRTE_LOW_RESERVED | destination_reserved) != 0
            || high & IRTE_HIGH_RESERVED != 0
            || posted
            || bad_svt
        {
            return Err((InterruptFault::EntryReserved, index, fpd));
        }
        let sid = high as u16;
        let accepted = match (high >> 18) & 3 {
            0 => true,
            1 => {
                // SQ: ignore function bits 2, 2:1 or 2:0 (0 = compare all).
                let ignored: u16 = [0, 0b100, 0b110, 0b111][((high >> 16) & 3) as usize];
                source & !ignored == sid & !ignored
            }
            _ => {
                let (first, last) = (sid & 0xff, sid >> 8);
                (first..=last).contains(&(source >> 8))
            }
        };
        if !accepted {
            return Err((InterruptFault::SourceRejected, index, fpd));
        }
        let field = (low >> 32) as u32;
        Ok(Interrupt {
            vector: (low >> 16) as u8,
            destination: if eime { field } else { field >> 8 },
        })
    }
}
