//! The Multiple APIC Description Table (signature `APIC`).
//!
//! The kernel needs three things from it: where the local APIC registers are
//! (with the 64-bit override entry honoured), which CPUs exist (local APIC and
//! x2APIC entries), and how ISA IRQs reach the I/O APICs (I/O APIC entries and
//! interrupt source overrides). Other entry types (NMI sources, GIC, ...) are
//! stepped over by their length and counted. Storage is fixed-capacity;
//! a table with more entries of a kind than there is room for is rejected with
//! [`AcpiError::TooMany`] instead of being silently cut short.

use bitflags::bitflags;
use heapless::Vec;

use super::error::{AcpiError, Structure};
use super::reader::Reader;
use super::sdt::Signature;

pub const MAX_LOCAL_APICS: usize = 64;
pub const MAX_IO_APICS: usize = 8;
pub const MAX_INTERRUPT_OVERRIDES: usize = 16;

/// Size of the MADT's fixed part: SDT header, local APIC address, flags.
const HEADER_SIZE: usize = 44;
const SIG: Signature = Signature::MADT;

bitflags! {
    /// MADT flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MadtFlags: u32 {
        /// The system also has dual 8259 PICs, which must be masked before
        /// the I/O APICs are used.
        const PCAT_COMPAT = 1 << 0;
    }
}

bitflags! {
    /// Flags of a local APIC or x2APIC entry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct LocalApicFlags: u32 {
        const ENABLED = 1 << 0;
        /// The processor is disabled but can be brought online (ACPI 6.3+).
        const ONLINE_CAPABLE = 1 << 1;
    }
}

/// Which MADT entry type described a processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicKind {
    /// Processor local APIC, entry type 0 (8-bit ids).
    Xapic,
    /// Processor local x2APIC, entry type 9 (32-bit ids).
    X2apic,
}

/// A processor, from a type 0 or type 9 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApic {
    /// ACPI processor UID.
    pub uid: u32,
    pub apic_id: u32,
    pub flags: LocalApicFlags,
    pub kind: ApicKind,
}

impl LocalApic {
    pub fn enabled(&self) -> bool {
        self.flags.contains(LocalApicFlags::ENABLED)
    }
}

/// An I/O APIC, from a type 1 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    /// Physical address of its registers.
    pub address: u32,
    /// The first global system interrupt it serves.
    pub gsi_base: u32,
}

/// An interrupt source override, from a type 2 entry: ISA IRQ `source` is
/// wired to global system interrupt `gsi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptOverride {
    /// Always 0 (ISA).
    pub bus: u8,
    pub source: u8,
    pub gsi: u32,
    /// MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2.
    pub flags: u16,
}

/// Polarity of an overridden interrupt (MPS INTI flags bits 1:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// Conforms to the bus (active high for ISA).
    BusDefault,
    ActiveHigh,
    Reserved,
    ActiveLow,
}

/// Trigger mode of an overridden interrupt (MPS INTI flags bits 3:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Conforms to the bus (edge for ISA).
    BusDefault,
    Edge,
    Reserved,
    Level,
}

impl InterruptOverride {
    pub fn polarity(&self) -> Polarity {
        match self.flags & 0b11 {
            0 => Polarity::BusDefault,
            1 => Polarity::ActiveHigh,
            2 => Polarity::Reserved,
            _ => Polarity::ActiveLow,
        }
    }

    pub fn trigger(&self) -> Trigger {
        match (self.flags >> 2) & 0b11 {
            0 => Trigger::BusDefault,
            1 => Trigger::Edge,
            2 => Trigger::Reserved,
            _ => Trigger::Level,
        }
    }
}

/// The decoded MADT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Madt {
    /// Physical address of the local APIC registers: the 32-bit header field,
    /// or the type 5 override entry's 64-bit address when there is one.
    pub local_apic_address: u64,
    pub flags: MadtFlags,
    /// Type 0 and type 9 entries, in table order.
    pub local_apics: Vec<LocalApic, MAX_LOCAL_APICS>,
    pub io_apics: Vec<IoApic, MAX_IO_APICS>,
    pub overrides: Vec<InterruptOverride, MAX_INTERRUPT_OVERRIDES>,
    /// Entries of other types, stepped over.
    pub other_entries: usize,
}

fn push<T, const N: usize>(v: &mut Vec<T, N>, item: T, entry: u8) -> Result<(), AcpiError> {
    v.push(item).map_err(|_| AcpiError::TooMany {
        sig: SIG,
        structure: Structure::MadtEntry(entry),
        capacity: N,
    })
}

impl Madt {
    /// Decodes a whole MADT, header included. The caller has already checked
    /// the table's length field and checksum.
    pub fn parse(table: &[u8]) -> Result<Self, AcpiError> {
        let header = Reader::new(SIG, Structure::Header, 0, table);
        header.require(HEADER_SIZE)?;
        let mut madt = Self {
            local_apic_address: u64::from(header.u32(36)?),
            flags: MadtFlags::from_bits_retain(header.u32(40)?),
            local_apics: Vec::new(),
            io_apics: Vec::new(),
            overrides: Vec::new(),
            other_entries: 0,
        };

        let mut offset = HEADER_SIZE;
        while offset < table.len() {
            let kind = table.get(offset).copied().unwrap_or(0);
            let structure = Structure::MadtEntry(kind);
            let truncated = |length| AcpiError::Truncated {
                sig: SIG,
                structure,
                offset,
                length,
                end: table.len(),
                within: None,
            };
            let length = usize::from(*table.get(offset + 1).ok_or(truncated(2))?);
            let bytes = table
                .get(offset..offset + length)
                .ok_or(truncated(length))?;
            let entry = Reader::new(SIG, structure, offset, bytes);
            entry.require(2)?;
            madt.decode_entry(kind, &entry)?;
            offset += length;
        }
        Ok(madt)
    }

    fn decode_entry(&mut self, kind: u8, e: &Reader<'_>) -> Result<(), AcpiError> {
        match kind {
            0 => {
                e.require(8)?;
                let lapic = LocalApic {
                    uid: e.u8(2)?.into(),
                    apic_id: e.u8(3)?.into(),
                    flags: LocalApicFlags::from_bits_retain(e.u32(4)?),
                    kind: ApicKind::Xapic,
                };
                push(&mut self.local_apics, lapic, kind)
            }
            1 => {
                e.require(12)?;
                let ioapic = IoApic {
                    id: e.u8(2)?,
                    address: e.u32(4)?,
                    gsi_base: e.u32(8)?,
                };
                push(&mut self.io_apics, ioapic, kind)
            }
            2 => {
                e.require(10)?;
                let iso = InterruptOverride {
                    bus: e.u8(2)?,
                    source: e.u8(3)?,
                    gsi: e.u32(4)?,
                    flags: e.u16(8)?,
                };
                push(&mut self.overrides, iso, kind)
            }
            5 => {
                e.require(12)?;
                self.local_apic_address = e.u64(4)?;
                Ok(())
            }
            9 => {
                e.require(16)?;
                let x2apic = LocalApic {
                    apic_id: e.u32(4)?,
                    flags: LocalApicFlags::from_bits_retain(e.u32(8)?),
                    uid: e.u32(12)?,
                    kind: ApicKind::X2apic,
                };
                push(&mut self.local_apics, x2apic, kind)
            }
            _ => {
                self.other_entries += 1;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{madt_body, sdt};

    fn parse(entries: &[&[u8]]) -> Result<Madt, AcpiError> {
        Madt::parse(&sdt(b"APIC", 3, &madt_body(0xfee0_0000, 1, entries)))
    }

    #[test]
    fn decodes_processors_ioapics_and_overrides() {
        let madt = parse(&[
            &[0, 8, 0, 0, 1, 0, 0, 0],
            &[0, 8, 1, 1, 0, 0, 0, 0],
            &[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0],
            &[2, 10, 0, 0, 2, 0, 0, 0, 0, 0],
            &[2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0],
            &[4, 6, 0xff, 0, 0, 1],
            &[9, 16, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0],
        ])
        .unwrap();
        assert_eq!(madt.local_apic_address, 0xfee0_0000);
        assert_eq!(madt.flags, MadtFlags::PCAT_COMPAT);
        assert_eq!(madt.local_apics.len(), 3);
        assert!(madt.local_apics[0].enabled());
        assert!(!madt.local_apics[1].enabled());
        assert_eq!(madt.local_apics[2].apic_id, 0x100);
        assert_eq!(madt.local_apics[2].uid, 7);
        assert_eq!(madt.local_apics[2].kind, ApicKind::X2apic);
        assert_eq!(
            madt.io_apics[..],
            [IoApic {
                id: 0,
                address: 0xfec0_0000,
                gsi_base: 0
            }]
        );
        assert_eq!(madt.overrides[0].gsi, 2);
        assert_eq!(madt.overrides[0].polarity(), Polarity::BusDefault);
        assert_eq!(madt.overrides[1].polarity(), Polarity::ActiveHigh);
        assert_eq!(madt.overrides[1].trigger(), Trigger::Level);
        assert_eq!(madt.other_entries, 1);
    }

    #[test]
    fn address_override_entry_wins() {
        let madt = parse(&[&[5, 12, 0, 0, 0, 0, 0xe0, 0xfe, 0x12, 0, 0, 0]]).unwrap();
        assert_eq!(madt.local_apic_address, 0x12_fee0_0000);
    }

    #[test]
    fn malformed_entries_are_errors() {
        assert!(matches!(
            parse(&[&[0, 0]]),
            Err(AcpiError::TooShort {
                length: 0,
                min: 2,
                ..
            })
        ));
        assert!(matches!(
            parse(&[&[1, 8, 0, 0, 0, 0, 0, 0]]),
            Err(AcpiError::TooShort {
                structure: Structure::MadtEntry(1),
                offset: 44,
                length: 8,
                min: 12,
                ..
            })
        ));
        assert!(matches!(
            parse(&[&[0, 8, 0, 0]]),
            Err(AcpiError::Truncated {
                offset: 44,
                length: 8,
                end: 48,
                ..
            })
        ));
        assert!(matches!(
            parse(&[&[0]]),
            Err(AcpiError::Truncated { length: 2, .. })
        ));
        assert!(matches!(
            Madt::parse(&sdt(b"APIC", 3, &[0; 4])),
            Err(AcpiError::TooShort {
                structure: Structure::Header,
                ..
            })
        ));
    }

    #[test]
    fn too_many_io_apics_is_an_error() {
        let ioapic: &[u8] = &[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0];
        let entries = [ioapic; MAX_IO_APICS + 1];
        assert_eq!(
            parse(&entries),
            Err(AcpiError::TooMany {
                sig: SIG,
                structure: Structure::MadtEntry(1),
                capacity: MAX_IO_APICS
            })
        );
    }
}
