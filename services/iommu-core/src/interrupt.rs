//! Interrupt remapping: the 128-bit remapping table entry (IRTE) and the
//! IRTA register value.
//!
//! With interrupt remapping on, a device's MSI names an entry of the table
//! (remappable format) instead of a vector. The entry says which vector
//! reaches which local APIC and, through its source-id fields, which PCI
//! function may use it: Faultline writes every entry with SVT = 01 and
//! SQ = 0, so all 16 bits of the requester id must match. Faultline's
//! entries are always remapped format (IM = 0), fault processing enabled
//! (FPD = 0), physical destination, no redirection hint, edge-triggered,
//! fixed delivery.
//!
//! The destination id is laid out per interrupt mode: in xAPIC mode
//! (IRTA.EIME = 0) the 8-bit APIC id sits in bits 15:8 of the 32-bit field
//! and every other bit is reserved; in x2APIC mode (EIME = 1) the field is
//! the whole 32-bit x2APIC id.

use crate::source::SourceId;

/// Entries in the one-frame table (4 KiB / 16 bytes).
pub const TABLE_ENTRIES: u16 = 256;
/// IRTA.S for [`TABLE_ENTRIES`]: the table holds 2^(S+1) entries.
pub const TABLE_SIZE_FIELD: u64 = 7;
/// IRTA.EIME (bit 11): x2APIC (32-bit) destination ids.
pub const IRTA_EIME: u64 = 1 << 11;

/// IRTE low qword: present (bit 0).
pub const IRTE_PRESENT: u64 = 1;
/// IRTE high qword: SVT = 01, verify the full source id (bits 19:18).
pub const IRTE_SVT_VERIFY_SID: u64 = 1 << 18;

/// How the unit reads destination ids (IRTA.EIME).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptMode {
    /// 8-bit APIC ids (EIME = 0): compatibility with xAPIC.
    XApic,
    /// 32-bit x2APIC ids (EIME = 1); needs ECAP.EIM.
    X2Apic,
}

impl InterruptMode {
    /// The mode whose destination field can name `apic_id`: xAPIC for
    /// 8-bit ids, x2APIC otherwise.
    pub const fn for_apic_id(apic_id: u32) -> Self {
        if apic_id <= 0xff {
            Self::XApic
        } else {
            Self::X2Apic
        }
    }
}

/// One remapped-format interrupt: the vector a function's MSI yields, the
/// local APIC it goes to, and the only requester allowed to raise it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irte {
    pub vector: u8,
    pub apic_id: u32,
    pub source: SourceId,
}

impl Irte {
    /// The entry's two qwords (low, high) in `mode`; `None` when the APIC
    /// id does not fit the mode's destination field.
    pub const fn encode(self, mode: InterruptMode) -> Option<(u64, u64)> {
        let destination = match mode {
            InterruptMode::XApic if self.apic_id <= 0xff => self.apic_id << 8,
            InterruptMode::XApic => return None,
            InterruptMode::X2Apic => self.apic_id,
        };
        // P = 1; FPD, DM (physical), RH, TM (edge), DLM (fixed) and IM
        // (remapped format) all 0; vector in 23:16; destination in 63:32.
        let low = IRTE_PRESENT | (self.vector as u64) << 16 | (destination as u64) << 32;
        // SID in 15:0, SQ = 0 (compare all 16 bits), SVT = 01.
        let high = self.source.0 as u64 | IRTE_SVT_VERIFY_SID;
        Some((low, high))
    }
}

/// The IRTA value for a table at `table` (4 KiB-aligned) of
/// [`TABLE_ENTRIES`] entries in `mode`.
pub const fn table_address_register(table: u64, mode: InterruptMode) -> u64 {
    let eime = match mode {
        InterruptMode::XApic => 0,
        InterruptMode::X2Apic => IRTA_EIME,
    };
    table | eime | TABLE_SIZE_FIELD
}
