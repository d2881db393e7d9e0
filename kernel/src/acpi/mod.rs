//! ACPI table discovery: RSDP → RSDT/XSDT → MADT, MCFG and DMAR.
//!
//! The kernel learns the machine from firmware tables instead of hard-coding
//! it: the local and I/O APICs from the MADT, the PCI ECAM windows from MCFG,
//! and the VT-d register sets and their device scopes from DMAR. This module
//! turns the bytes firmware left in memory into typed, validated values.
//!
//! It is pure logic over bytes, so it runs and is tested on the host. Memory
//! is reached only through [`PhysMemory`], which the kernel implements over
//! its firmware mappings and tests implement over buffers. It is `no_std`
//! without `alloc` (storage is `heapless`, with fixed capacities that are
//! typed errors when exceeded) and contains no `unsafe`: every field is read
//! through a bounds-checked reader, so a malformed table is an
//! [`AcpiError`], never a panic.
//!
//! Failure policy: a bad RSDP or root table (RSDT/XSDT) leaves nothing to go
//! on and fails [`parse`]. A table whose own header, checksum or structure is
//! bad is recorded in [`AcpiTables::rejected`] and parsing goes on, so that,
//! say, a corrupt MCFG still leaves the DMAR usable and the boot report can
//! name every problem at once.

mod dmar;
mod error;
mod hpet;
mod madt;
mod mcfg;
mod reader;
mod rsdp;
mod scope;
mod sdt;

#[cfg(test)]
mod dmar_tests;
#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use heapless::Vec;

/// Device scopes name PCI functions with the PCI code's own [`Bdf`].
pub use crate::pci::Bdf;
pub use dmar::{
    Atsr, AtsrFlags, Dmar, DmarFlags, Drhd, DrhdFlags, MAX_ATSRS, MAX_DRHDS, MAX_RHSAS, MAX_RMRRS,
    Rhsa, Rmrr,
};
pub use error::{AcpiError, Structure};
pub use hpet::hpet_base;
pub use madt::{
    ApicKind, InterruptOverride, IoApic, LocalApic, LocalApicFlags, MAX_INTERRUPT_OVERRIDES,
    MAX_IO_APICS, MAX_LOCAL_APICS, Madt, MadtFlags, Polarity, Trigger,
};
pub use mcfg::{EcamRegion, MAX_ECAM_REGIONS, Mcfg};
pub use rsdp::{RootTable, Rsdp};
pub use scope::{
    DeviceScope, MAX_DEVICE_SCOPES, MAX_SCOPE_PATH, PathEntry, ScopeKind, ScopeRange, ScopeTarget,
};
pub use sdt::{OemId, SdtHeader, Signature, checksum};

/// Most tables listed in [`AcpiTables::tables`].
pub const MAX_TABLES: usize = 32;
/// Most rejections kept in [`AcpiTables::rejected`].
pub const MAX_REJECTED: usize = 8;

/// Physical memory as the parser sees it: the kernel implements this over
/// its firmware mappings; tests over byte buffers.
pub trait PhysMemory {
    /// Returns `len` bytes starting at physical address `paddr`, or an error
    /// (normally [`AcpiError::unreadable`]) if that range is not readable.
    fn read(&self, paddr: u64, len: usize) -> Result<&[u8], AcpiError>;
}

/// Where a table is and what its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub signature: Signature,
    pub paddr: u64,
    pub length: u32,
    pub revision: u8,
    pub oem_id: OemId,
}

impl TableInfo {
    fn new(header: &SdtHeader, paddr: u64) -> Self {
        Self {
            signature: header.signature,
            paddr,
            length: header.length,
            revision: header.revision,
            oem_id: header.oem_id,
        }
    }
}

/// Everything [`parse`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiTables {
    pub rsdp_revision: u8,
    /// The RSDP's OEM id.
    pub oem_id: OemId,
    /// The RSDT or XSDT that was walked.
    pub root: TableInfo,
    /// Every table the root table points to whose header could be read, in
    /// root-table order, rejected ones included.
    pub tables: Vec<TableInfo, MAX_TABLES>,
    pub madt: Option<Madt>,
    pub mcfg: Option<Mcfg>,
    pub dmar: Option<Dmar>,
    /// Tables left out, and why. A table whose header cannot be read is
    /// listed as [`Signature::UNKNOWN`].
    pub rejected: Vec<(Signature, AcpiError), MAX_REJECTED>,
    /// Rejections that did not fit in `rejected`.
    pub rejected_overflow: usize,
}

impl AcpiTables {
    /// The first listed table with signature `sig`.
    pub fn find(&self, sig: Signature) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.signature == sig)
    }

    fn reject(&mut self, sig: Signature, error: AcpiError) {
        if self.rejected.push((sig, error)).is_err() {
            self.rejected_overflow += 1;
        }
    }

    /// Loads, validates and (for the tables the kernel uses) decodes the
    /// table at `paddr`, recording any problem in `rejected`.
    fn load(&mut self, mem: &impl PhysMemory, paddr: u64) {
        let header = match sdt::read_header(mem, paddr) {
            Ok(header) => header,
            Err(error) => return self.reject(Signature::UNKNOWN, error),
        };
        let sig = header.signature;
        if self.tables.push(TableInfo::new(&header, paddr)).is_err()
            && !self
                .rejected
                .iter()
                .any(|(_, e)| matches!(e, AcpiError::TableListFull { .. }))
        {
            self.reject(
                sig,
                AcpiError::TableListFull {
                    sig,
                    capacity: MAX_TABLES,
                },
            );
        }
        let result =
            sdt::read_table(mem, paddr, &header).and_then(|table| self.decode(sig, paddr, table));
        if let Err(error) = result {
            self.reject(sig, error);
        }
    }

    fn decode(&mut self, sig: Signature, paddr: u64, table: &[u8]) -> Result<(), AcpiError> {
        fn store<T>(
            slot: &mut Option<T>,
            sig: Signature,
            paddr: u64,
            parse: impl FnOnce() -> Result<T, AcpiError>,
        ) -> Result<(), AcpiError> {
            if slot.is_some() {
                return Err(AcpiError::Duplicate { sig, paddr });
            }
            *slot = Some(parse()?);
            Ok(())
        }
        match sig {
            Signature::MADT => store(&mut self.madt, sig, paddr, || Madt::parse(table)),
            Signature::MCFG => store(&mut self.mcfg, sig, paddr, || Mcfg::parse(table)),
            Signature::DMAR => store(&mut self.dmar, sig, paddr, || Dmar::parse(table)),
            _ => Ok(()),
        }
    }
}

/// Finds and decodes the ACPI tables starting from the RSDP at `rsdp_paddr`.
///
/// Fails only if the RSDP or the root table it points to is unusable; see the
/// module documentation for what happens to bad tables below them.
pub fn parse(mem: &impl PhysMemory, rsdp_paddr: u64) -> Result<AcpiTables, AcpiError> {
    let rsdp = Rsdp::read(mem, rsdp_paddr)?;
    let root = rsdp.root_table()?;
    let (root_sig, root_paddr) = (root.signature(), root.paddr());

    let header = sdt::read_header(mem, root_paddr).map_err(|e| e.in_table(root_sig))?;
    if header.signature != root_sig {
        return Err(AcpiError::SignatureMismatch {
            expected: root_sig,
            found: header.signature,
            paddr: root_paddr,
        });
    }
    let table = sdt::read_table(mem, root_paddr, &header)?;

    let mut tables = AcpiTables {
        rsdp_revision: rsdp.revision,
        oem_id: rsdp.oem_id,
        root: TableInfo::new(&header, root_paddr),
        tables: Vec::new(),
        madt: None,
        mcfg: None,
        dmar: None,
        rejected: Vec::new(),
        rejected_overflow: 0,
    };
    let entry_size = root.entry_size();
    let mut offset = SdtHeader::SIZE;
    while offset < table.len() {
        let entry = table
            .get(offset..offset + entry_size)
            .ok_or(AcpiError::Truncated {
                sig: root_sig,
                structure: Structure::TablePointer,
                offset,
                length: entry_size,
                end: table.len(),
                within: None,
            })?;
        let paddr = match *entry {
            [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => 0,
        };
        // Null entries occur in the wild; there is nothing to read there.
        if paddr != 0 {
            tables.load(mem, paddr);
        }
        offset += entry_size;
    }
    Ok(tables)
}
