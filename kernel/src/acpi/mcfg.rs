//! The PCI Express memory-mapped configuration table (signature `MCFG`).
//!
//! MCFG lists the ECAM windows: for each PCI segment group, the physical base
//! of its configuration space and the bus range it decodes. PCI enumeration
//! reads every device's configuration space through these windows, so the
//! parser checks what would make an address computation go wrong (a bus range
//! that ends before it starts) and leaves policy to the PCI code.

use heapless::Vec;

use super::error::{AcpiError, Structure};
use super::reader::Reader;
use super::sdt::Signature;

pub const MAX_ECAM_REGIONS: usize = 8;

/// Size of the MCFG's fixed part: SDT header plus 8 reserved bytes.
const HEADER_SIZE: usize = 44;
const ENTRY_SIZE: usize = 16;
const SIG: Signature = Signature::MCFG;

/// One configuration space base address allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcamRegion {
    /// Physical address of bus 0's configuration space in this segment, as
    /// the PCI Firmware specification defines it, even when `start_bus` is
    /// not 0: bus `b` lives at `base + (b << 20)`.
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    /// Last bus decoded, inclusive; never below `start_bus`.
    pub end_bus: u8,
}

impl EcamRegion {
    /// The physical range this region occupies: `(start, length)`.
    pub fn mapped_range(&self) -> (u64, u64) {
        let start = self.base.wrapping_add(u64::from(self.start_bus) << 20);
        let buses = u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1;
        (start, buses << 20)
    }

    /// The physical address of the configuration space of
    /// `bus:device.function`, or `None` if the bus is outside this region or
    /// the device/function numbers are out of range.
    pub fn config_address(&self, bus: u8, device: u8, function: u8) -> Option<u64> {
        if !(self.start_bus..=self.end_bus).contains(&bus) || device >= 32 || function >= 8 {
            return None;
        }
        let offset = u64::from(bus) << 20 | u64::from(device) << 15 | u64::from(function) << 12;
        self.base.checked_add(offset)
    }
}

/// The decoded MCFG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mcfg {
    pub regions: Vec<EcamRegion, MAX_ECAM_REGIONS>,
}

impl Mcfg {
    /// Decodes a whole MCFG, header included. The caller has already checked
    /// the table's length field and checksum.
    pub fn parse(table: &[u8]) -> Result<Self, AcpiError> {
        Reader::new(SIG, Structure::Header, 0, table).require(HEADER_SIZE)?;
        let mut mcfg = Self {
            regions: Vec::new(),
        };
        let mut offset = HEADER_SIZE;
        while offset < table.len() {
            let bytes = table
                .get(offset..offset + ENTRY_SIZE)
                .ok_or(AcpiError::Truncated {
                    sig: SIG,
                    structure: Structure::EcamAllocation,
                    offset,
                    length: ENTRY_SIZE,
                    end: table.len(),
                    within: None,
                })?;
            let e = Reader::new(SIG, Structure::EcamAllocation, offset, bytes);
            let region = EcamRegion {
                base: e.u64(0)?,
                segment: e.u16(8)?,
                start_bus: e.u8(10)?,
                end_bus: e.u8(11)?,
            };
            if region.end_bus < region.start_bus {
                return Err(AcpiError::BusRange {
                    sig: SIG,
                    offset,
                    start: region.start_bus,
                    end: region.end_bus,
                });
            }
            mcfg.regions.push(region).map_err(|_| AcpiError::TooMany {
                sig: SIG,
                structure: Structure::EcamAllocation,
                capacity: MAX_ECAM_REGIONS,
            })?;
            offset += ENTRY_SIZE;
        }
        Ok(mcfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{mcfg_body, sdt};

    #[test]
    fn decodes_regions_and_computes_addresses() {
        let table = sdt(
            b"MCFG",
            1,
            &mcfg_body(&[(0xb000_0000, 0, 0, 255), (0xe000_0000, 1, 0x10, 0x1f)]),
        );
        let mcfg = Mcfg::parse(&table).unwrap();
        let q35 = mcfg.regions[0];
        assert_eq!(q35.base, 0xb000_0000);
        assert_eq!(q35.mapped_range(), (0xb000_0000, 256 << 20));
        assert_eq!(q35.config_address(0, 1, 0), Some(0xb000_8000));
        assert_eq!(q35.config_address(0, 0x1f, 3), Some(0xb00f_b000));
        assert_eq!(q35.config_address(0, 32, 0), None);

        let other = mcfg.regions[1];
        assert_eq!(other.segment, 1);
        assert_eq!(other.mapped_range(), (0xe100_0000, 16 << 20));
        assert_eq!(other.config_address(0x10, 0, 0), Some(0xe100_0000));
        assert_eq!(other.config_address(0x0f, 0, 0), None);
        assert_eq!(other.config_address(0x20, 0, 0), None);
    }

    #[test]
    fn end_bus_below_start_bus_is_an_error() {
        let table = sdt(b"MCFG", 1, &mcfg_body(&[(0xb000_0000, 0, 8, 7)]));
        assert_eq!(
            Mcfg::parse(&table),
            Err(AcpiError::BusRange {
                sig: SIG,
                offset: 44,
                start: 8,
                end: 7
            })
        );
    }

    #[test]
    fn partial_entry_and_overflow_are_errors() {
        let mut body = mcfg_body(&[(0xb000_0000, 0, 0, 255)]);
        body.truncate(body.len() - 4);
        assert!(matches!(
            Mcfg::parse(&sdt(b"MCFG", 1, &body)),
            Err(AcpiError::Truncated {
                structure: Structure::EcamAllocation,
                offset: 44,
                length: 16,
                end: 56,
                ..
            })
        ));
        let entries = [(0xb000_0000, 0, 0, 255); MAX_ECAM_REGIONS + 1];
        assert!(matches!(
            Mcfg::parse(&sdt(b"MCFG", 1, &mcfg_body(&entries))),
            Err(AcpiError::TooMany {
                capacity: MAX_ECAM_REGIONS,
                ..
            })
        ));
    }
}
