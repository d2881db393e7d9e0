//! The DMA Remapping Reporting table (signature `DMAR`, Intel VT-d spec ch. 8).
//!
//! DMAR is how the IOMMU service learns where the VT-d register sets are
//! (DRHDs), which devices each one translates for (device scopes), which
//! memory firmware keeps DMA-ing into (RMRRs) and which root ports support ATS
//! (ATSRs). Nothing about the IOMMU is hard-coded, so this parser is strict:
//! a structure that runs past its container, a device scope with a half path
//! entry, a DRHD whose register base is zero or not page aligned, or an RMRR
//! that ends before it begins rejects the whole table. Structure types the
//! kernel does not use (ANDD, SATC, SIDP and future ones) are stepped over by
//! their length and counted in [`Dmar::skipped`].

use bitflags::bitflags;
use heapless::Vec;

use super::error::{AcpiError, Structure};
use super::reader::Reader;
use super::scope::{DeviceScope, MAX_DEVICE_SCOPES, ScopeKind, ScopeRange, parse_scopes};
use super::sdt::Signature;
use crate::pci::Bdf;

pub const MAX_DRHDS: usize = 16;
pub const MAX_RMRRS: usize = 8;
pub const MAX_ATSRS: usize = 8;
pub const MAX_RHSAS: usize = 8;

/// Size of the DMAR's fixed part: SDT header, HAW, flags, 10 reserved bytes.
const HEADER_SIZE: usize = 48;
const SIG: Signature = Signature::DMAR;

bitflags! {
    /// DMAR table flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DmarFlags: u8 {
        /// The platform supports interrupt remapping.
        const INTR_REMAP = 1 << 0;
        /// Firmware asks the OS not to enable x2APIC mode.
        const X2APIC_OPT_OUT = 1 << 1;
        /// Firmware has set up DMA protection the OS may opt into keeping.
        const DMA_CTRL_PLATFORM_OPT_IN = 1 << 2;
    }
}

bitflags! {
    /// DRHD flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DrhdFlags: u8 {
        /// This unit translates for every PCI device of its segment that no
        /// other DRHD lists (its scopes then list only I/O APICs and HPETs).
        const INCLUDE_PCI_ALL = 1 << 0;
    }
}

bitflags! {
    /// ATSR flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct AtsrFlags: u8 {
        /// Every root port of the segment supports ATS.
        const ALL_PORTS = 1 << 0;
    }
}

/// DMA remapping hardware unit definition (type 0): one VT-d register set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drhd {
    pub flags: DrhdFlags,
    /// The raw "size" byte (VT-d 3.x+; reserved and 0 before): the register
    /// set spans 2^size 4 KiB pages.
    pub size: u8,
    pub segment: u16,
    /// Physical address of the register set: non-zero, 4 KiB aligned.
    pub register_base: u64,
    pub scopes: ScopeRange,
}

/// Reserved memory region reporting (type 1): memory the listed devices may
/// DMA to (e.g. USB legacy emulation buffers), to be identity mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rmrr {
    pub segment: u16,
    pub base: u64,
    /// Last byte of the region, inclusive; never below `base`.
    pub limit: u64,
    pub scopes: ScopeRange,
}

/// Root port ATS capability reporting (type 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Atsr {
    pub flags: AtsrFlags,
    pub segment: u16,
    pub scopes: ScopeRange,
}

/// Remapping hardware static affinity (type 3): the NUMA proximity domain
/// of the DRHD at `register_base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rhsa {
    pub register_base: u64,
    pub proximity_domain: u32,
}

/// The decoded DMAR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dmar {
    pub revision: u8,
    /// The raw HAW field: the DMA address width minus one.
    pub host_address_width: u8,
    pub flags: DmarFlags,
    pub drhds: Vec<Drhd, MAX_DRHDS>,
    pub rmrrs: Vec<Rmrr, MAX_RMRRS>,
    pub atsrs: Vec<Atsr, MAX_ATSRS>,
    pub rhsas: Vec<Rhsa, MAX_RHSAS>,
    /// Structures stepped over: ANDD (4), SATC (5), SIDP (6) and unknown types.
    pub skipped: usize,
    /// The device scopes of all structures; see [`Dmar::scopes`].
    scope_pool: Vec<DeviceScope, MAX_DEVICE_SCOPES>,
}

fn push<T, const N: usize>(v: &mut Vec<T, N>, item: T, s: Structure) -> Result<(), AcpiError> {
    v.push(item).map_err(|_| AcpiError::TooMany {
        sig: SIG,
        structure: s,
        capacity: N,
    })
}

impl Dmar {
    /// Decodes a whole DMAR, header included. The caller has already checked
    /// the table's length field and checksum.
    pub fn parse(table: &[u8]) -> Result<Self, AcpiError> {
        let header = Reader::new(SIG, Structure::Header, 0, table);
        header.require(HEADER_SIZE)?;
        let mut dmar = Self {
            revision: header.u8(8)?,
            host_address_width: header.u8(36)?,
            flags: DmarFlags::from_bits_retain(header.u8(37)?),
            drhds: Vec::new(),
            rmrrs: Vec::new(),
            atsrs: Vec::new(),
            rhsas: Vec::new(),
            skipped: 0,
            scope_pool: Vec::new(),
        };

        let mut offset = HEADER_SIZE;
        while offset < table.len() {
            let truncated = |structure, length| AcpiError::Truncated {
                sig: SIG,
                structure,
                offset,
                length,
                end: table.len(),
                within: None,
            };
            // Bytes past the end read as 0, to name the structure in the error.
            let byte = |i: usize| table.get(offset + i).copied().unwrap_or(0);
            let structure = match u16::from_le_bytes([byte(0), byte(1)]) {
                0 => Structure::Drhd,
                1 => Structure::Rmrr,
                2 => Structure::Atsr,
                3 => Structure::Rhsa,
                other => Structure::Remapping(other),
            };
            if offset + 4 > table.len() {
                return Err(truncated(structure, 4));
            }
            let length = usize::from(u16::from_le_bytes([byte(2), byte(3)]));
            let bytes = table
                .get(offset..offset + length)
                .ok_or(truncated(structure, length))?;
            let r = Reader::new(SIG, structure, offset, bytes);
            r.require(4)?;
            dmar.decode_structure(table, structure, &r)?;
            offset += length;
        }
        Ok(dmar)
    }

    fn decode_structure(
        &mut self,
        table: &[u8],
        structure: Structure,
        r: &Reader<'_>,
    ) -> Result<(), AcpiError> {
        let end = r.offset() + r.len();
        let mut scopes = |from: usize| {
            parse_scopes(
                table,
                r.offset() + from,
                end,
                structure,
                &mut self.scope_pool,
            )
        };
        match structure {
            Structure::Drhd => {
                r.require(16)?;
                let register_base = r.u64(8)?;
                if register_base == 0 || register_base & 0xfff != 0 {
                    return Err(AcpiError::BadRegisterBase {
                        sig: SIG,
                        offset: r.offset(),
                        base: register_base,
                    });
                }
                let drhd = Drhd {
                    flags: DrhdFlags::from_bits_retain(r.u8(4)?),
                    size: r.u8(5)?,
                    segment: r.u16(6)?,
                    register_base,
                    scopes: scopes(16)?,
                };
                push(&mut self.drhds, drhd, structure)
            }
            Structure::Rmrr => {
                r.require(24)?;
                let (base, limit) = (r.u64(8)?, r.u64(16)?);
                if limit < base {
                    return Err(AcpiError::RmrrLimitBelowBase {
                        sig: SIG,
                        offset: r.offset(),
                        base,
                        limit,
                    });
                }
                let rmrr = Rmrr {
                    segment: r.u16(6)?,
                    base,
                    limit,
                    scopes: scopes(24)?,
                };
                push(&mut self.rmrrs, rmrr, structure)
            }
            Structure::Atsr => {
                r.require(8)?;
                let atsr = Atsr {
                    flags: AtsrFlags::from_bits_retain(r.u8(4)?),
                    segment: r.u16(6)?,
                    scopes: scopes(8)?,
                };
                push(&mut self.atsrs, atsr, structure)
            }
            Structure::Rhsa => {
                r.require(20)?;
                let rhsa = Rhsa {
                    register_base: r.u64(8)?,
                    proximity_domain: r.u32(16)?,
                };
                push(&mut self.rhsas, rhsa, structure)
            }
            _ => {
                self.skipped += 1;
                Ok(())
            }
        }
    }

    /// The DMA address width in bits (HAW + 1).
    pub fn address_width_bits(&self) -> u32 {
        u32::from(self.host_address_width) + 1
    }

    /// The device scopes of a DRHD, RMRR or ATSR of this table.
    pub fn scopes(&self, range: ScopeRange) -> &[DeviceScope] {
        let start = range.start();
        self.scope_pool
            .get(start..start + range.len())
            .unwrap_or(&[])
    }

    /// The DRHD (by index) that translates PCI function `bdf` of
    /// `segment`: one whose scope names it (an endpoint, resolved through
    /// bridges with `secondary_bus`) or a bridge above it (a
    /// sub-hierarchy: every bus from the bridge's secondary to its
    /// subordinate, from `bus_range`), else the segment's INCLUDE_PCI_ALL
    /// unit. `None` if no unit translates it.
    pub fn unit_for(
        &self,
        segment: u16,
        bdf: Bdf,
        mut secondary_bus: impl FnMut(Bdf) -> Option<u8>,
        mut bus_range: impl FnMut(Bdf) -> Option<(u8, u8)>,
    ) -> Option<usize> {
        let listed = self.drhds.iter().position(|d| {
            d.segment == segment
                && !d.flags.contains(DrhdFlags::INCLUDE_PCI_ALL)
                && self.scopes(d.scopes).iter().any(|scope| {
                    let Some(named) = scope.resolve(&mut secondary_bus) else {
                        return false;
                    };
                    match scope.kind {
                        ScopeKind::PciEndpoint => named == bdf,
                        ScopeKind::PciSubHierarchy => {
                            named == bdf
                                || bus_range(named)
                                    .is_some_and(|(lo, hi)| (lo..=hi).contains(&bdf.bus))
                        }
                        _ => false,
                    }
                })
        });
        listed.or_else(|| {
            self.drhds
                .iter()
                .position(|d| d.segment == segment && d.flags.contains(DrhdFlags::INCLUDE_PCI_ALL))
        })
    }

    /// Every device scope of the table, in table order.
    pub fn all_scopes(&self) -> &[DeviceScope] {
        &self.scope_pool
    }
}
