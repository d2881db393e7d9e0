//! A function's capability lists: the legacy list in the first 256 bytes
//! and, for PCIe functions, the extended list from 0x100.
//!
//! The lists are linked lists written by the device, so they are treated as
//! untrusted input: every pointer is range-checked and a visited set ends
//! any cycle (the legacy list has only 48 dword slots between 0x40 and
//! 0x100, so it holds at most 48 entries). A broken list yields a
//! [`CapError`] for that one function; what was parsed before the break is
//! kept and enumeration carries on. The capabilities drivers and the IOMMU
//! service act on are decoded into typed fields of [`Capabilities`]; every
//! entry, known or not, is also listed by id and offset.

use core::fmt;

use super::config::{Bdf, ConfigSpace};
use super::extended::{Ats, Pasid, Pri};

/// PCI-SIG capability IDs this module decodes.
pub mod id {
    pub const POWER_MANAGEMENT: u8 = 0x01;
    pub const MSI: u8 = 0x05;
    pub const VENDOR_SPECIFIC: u8 = 0x09;
    pub const PCI_EXPRESS: u8 = 0x10;
    pub const MSI_X: u8 = 0x11;
    pub const SATA: u8 = 0x12;
}

/// Where a capability is and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapabilityId {
    /// An entry of the legacy list (8-bit id).
    Standard(u8),
    /// An entry of the extended list (16-bit id).
    Extended(u16),
}

impl CapabilityId {
    /// A short name for the boot report; "other" for ids not named here.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Standard(id::POWER_MANAGEMENT) => "PM",
            Self::Standard(id::MSI) => "MSI",
            Self::Standard(id::VENDOR_SPECIFIC) => "vendor-specific",
            Self::Standard(id::PCI_EXPRESS) => "PCIe",
            Self::Standard(id::MSI_X) => "MSI-X",
            Self::Standard(id::SATA) => "SATA",
            Self::Extended(0x01) => "AER",
            Self::Extended(0x0b) => "vendor-specific-ext",
            Self::Extended(0x0d) => "ACS",
            Self::Extended(0x0f) => "ATS",
            Self::Extended(0x10) => "SR-IOV",
            Self::Extended(0x13) => "PRI",
            Self::Extended(0x1b) => "PASID",
            _ => "other",
        }
    }
}

/// One entry of either list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CapabilityEntry {
    pub id: CapabilityId,
    /// Byte offset in configuration space.
    pub offset: u16,
}

/// MSI (capability 0x05).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Msi {
    pub offset: u8,
    /// The message address has an upper dword.
    pub is_64bit: bool,
    pub per_vector_masking: bool,
    /// Multiple Message Capable: log2 of the vectors requested (0..=5).
    pub multiple_message_capable: u8,
}

impl Msi {
    /// Number of vectors the function asks for (1..=32).
    pub const fn max_vectors(self) -> u8 {
        let log2 = if self.multiple_message_capable > 5 {
            5
        } else {
            self.multiple_message_capable
        };
        1 << log2
    }
}

/// A structure inside one of the function's own BARs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BarLocation {
    /// BAR Indicator: which BAR slot (0..=5) holds it.
    pub bir: u8,
    /// Byte offset from that BAR's base (8-byte aligned).
    pub offset: u32,
}

/// MSI-X (capability 0x11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MsiX {
    pub offset: u8,
    /// Number of table entries (1..=2048).
    pub table_size: u16,
    pub table: BarLocation,
    /// Pending bit array.
    pub pba: BarLocation,
}

/// PCI Express device/port type (PCIe capability register bits 7:4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PciePortType {
    Endpoint,
    LegacyEndpoint,
    RootComplexIntegratedEndpoint,
    RootComplexEventCollector,
    RootPort,
    SwitchUpstreamPort,
    SwitchDownstreamPort,
    PcieToPciBridge,
    PciToPcieBridge,
    Reserved(u8),
}

impl PciePortType {
    const fn from_field(field: u8) -> Self {
        match field {
            0x0 => Self::Endpoint,
            0x1 => Self::LegacyEndpoint,
            0x4 => Self::RootPort,
            0x5 => Self::SwitchUpstreamPort,
            0x6 => Self::SwitchDownstreamPort,
            0x7 => Self::PcieToPciBridge,
            0x8 => Self::PciToPcieBridge,
            0x9 => Self::RootComplexIntegratedEndpoint,
            0xa => Self::RootComplexEventCollector,
            other => Self::Reserved(other),
        }
    }
}

/// PCI Express (capability 0x10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pcie {
    pub offset: u8,
    pub version: u8,
    pub port_type: PciePortType,
}

/// How many entries [`Capabilities::all`] records; more are counted in
/// [`Capabilities::unrecorded`].
pub const MAX_RECORDED_CAPABILITIES: usize = 16;

/// Everything found in a function's capability lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Offset of the power-management capability.
    pub power_management: Option<u8>,
    pub msi: Option<Msi>,
    pub msix: Option<MsiX>,
    pub pcie: Option<Pcie>,
    pub ats: Option<Ats>,
    pub pri: Option<Pri>,
    pub pasid: Option<Pasid>,
    /// Offset of the access-control-services capability.
    pub acs: Option<u16>,
    /// Offset of the advanced-error-reporting capability.
    pub aer: Option<u16>,
    /// Offset of the SR-IOV capability.
    pub sriov: Option<u16>,
    /// Every entry of both lists, in list order.
    pub all: heapless::Vec<CapabilityEntry, MAX_RECORDED_CAPABILITIES>,
    /// Entries found after `all` was full.
    pub unrecorded: u8,
}

impl Capabilities {
    pub(super) fn record(&mut self, id: CapabilityId, offset: u16) {
        if self.all.push(CapabilityEntry { id, offset }).is_err() {
            self.unrecorded = self.unrecorded.saturating_add(1);
        }
    }
}

/// Why a capability list walk stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapError {
    /// A legacy pointer (from the header, or the entry at `from`) points
    /// into the 64-byte header.
    PointerIntoHeader { from: u16, pointer: u8 },
    /// The legacy list reaches the entry at `offset` a second time.
    Loop { offset: u16 },
    /// An extended pointer (in the entry at `from`) points below 0x100.
    ExtendedPointerOutOfRange { from: u16, pointer: u16 },
    /// The extended list reaches the entry at `offset` a second time.
    ExtendedLoop { offset: u16 },
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PointerIntoHeader { from, pointer } => {
                write!(
                    f,
                    "capability pointer at {from:#x} points into the header ({pointer:#x})"
                )
            }
            Self::Loop { offset } => write!(f, "capability list loops back to {offset:#x}"),
            Self::ExtendedPointerOutOfRange { from, pointer } => {
                write!(
                    f,
                    "extended capability at {from:#x} points below 0x100 ({pointer:#x})"
                )
            }
            Self::ExtendedLoop { offset } => {
                write!(f, "extended capability list loops back to {offset:#x}")
            }
        }
    }
}

/// Walks the legacy list whose head pointer is at `head`.
pub(super) fn walk_legacy(
    cfg: &impl ConfigSpace,
    bdf: Bdf,
    head: u16,
    caps: &mut Capabilities,
) -> Result<(), CapError> {
    let mut visited = 0u64; // one bit per dword slot in 0x40..0x100
    let mut from = head;
    let mut pointer = cfg.read8(bdf, head) & 0xfc;
    while pointer != 0 {
        if pointer < 0x40 {
            return Err(CapError::PointerIntoHeader { from, pointer });
        }
        let slot = 1u64 << ((pointer - 0x40) / 4);
        if visited & slot != 0 {
            return Err(CapError::Loop {
                offset: pointer.into(),
            });
        }
        visited |= slot;
        let header = cfg.read32(bdf, pointer.into());
        decode_legacy(cfg, bdf, pointer, header, caps);
        from = pointer.into();
        pointer = (header >> 8) as u8 & 0xfc;
    }
    Ok(())
}

/// Records the entry at `offset`, whose first dword is `header`.
fn decode_legacy(
    cfg: &impl ConfigSpace,
    bdf: Bdf,
    offset: u8,
    header: u32,
    caps: &mut Capabilities,
) {
    let cap_id = header as u8;
    let control = (header >> 16) as u16;
    caps.record(CapabilityId::Standard(cap_id), offset.into());
    match cap_id {
        id::POWER_MANAGEMENT => {
            caps.power_management.get_or_insert(offset);
        }
        id::MSI => {
            caps.msi.get_or_insert(Msi {
                offset,
                is_64bit: control & (1 << 7) != 0,
                per_vector_masking: control & (1 << 8) != 0,
                multiple_message_capable: ((control >> 1) & 0x7) as u8,
            });
        }
        id::MSI_X => {
            let location = |dword: u32| BarLocation {
                bir: (dword & 0x7) as u8,
                offset: dword & !0x7,
            };
            let table = cfg.read32(bdf, u16::from(offset) + 4);
            let pba = cfg.read32(bdf, u16::from(offset) + 8);
            caps.msix.get_or_insert(MsiX {
                offset,
                table_size: (control & 0x7ff) + 1,
                table: location(table),
                pba: location(pba),
            });
        }
        id::PCI_EXPRESS => {
            caps.pcie.get_or_insert(Pcie {
                offset,
                version: (control & 0xf) as u8,
                port_type: PciePortType::from_field(((control >> 4) & 0xf) as u8),
            });
        }
        _ => {}
    }
}
