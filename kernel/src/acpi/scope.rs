//! DMAR device scopes: which devices a remapping structure applies to.
//!
//! A device scope names a device by a start bus and a path of
//! (device, function) hops: the first hop is on the start bus, each further
//! hop is on the secondary bus of the bridge the previous hop named. A path of
//! one hop therefore names a BDF directly; a longer path can only be resolved
//! by reading each bridge's secondary bus number from PCI configuration space,
//! which this module does not do: [`DeviceScope::target`] hands the raw path
//! back, and [`DeviceScope::resolve`] walks it with a lookup the caller
//! supplies.
//!
//! The scopes of all DRHDs, RMRRs and ATSRs of one DMAR are kept in one
//! fixed-capacity pool inside [`Dmar`](super::Dmar), and each structure holds
//! a [`ScopeRange`] into it, so the memory a DMAR takes is bounded by the total
//! number of scopes rather than by structures x scopes-per-structure.

use heapless::Vec;

use super::error::{AcpiError, Structure};
use super::reader::Reader;
use super::sdt::Signature;
use crate::pci::Bdf;

/// Most scopes of one DMAR, over all its structures.
pub const MAX_DEVICE_SCOPES: usize = 128;
/// Most (device, function) hops of one scope path.
pub const MAX_SCOPE_PATH: usize = 8;

const SIG: Signature = Signature::DMAR;
const SCOPE_HEADER: usize = 6;

/// What a device scope names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    /// Type 1: one PCI endpoint.
    PciEndpoint,
    /// Type 2: a PCI bridge and every device below it.
    PciSubHierarchy,
    /// Type 3: an I/O APIC; the enumeration id is its I/O APIC id.
    IoApic,
    /// Type 4: an HPET; the enumeration id is its HPET number.
    Hpet,
    /// Type 5: an ACPI namespace device; the enumeration id matches an ANDD.
    AcpiNamespaceDevice,
    /// Any other type, kept raw.
    Other(u8),
}

impl From<u8> for ScopeKind {
    fn from(raw: u8) -> Self {
        match raw {
            1 => Self::PciEndpoint,
            2 => Self::PciSubHierarchy,
            3 => Self::IoApic,
            4 => Self::Hpet,
            5 => Self::AcpiNamespaceDevice,
            other => Self::Other(other),
        }
    }
}

/// One (device, function) hop of a scope path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathEntry {
    pub device: u8,
    pub function: u8,
}

/// One device scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceScope {
    pub kind: ScopeKind,
    pub enumeration_id: u8,
    pub start_bus: u8,
    /// Every entry has device < 32 and function < 8.
    pub path: Vec<PathEntry, MAX_SCOPE_PATH, u8>,
}

/// What [`DeviceScope::target`] can say without reading PCI config space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeTarget<'a> {
    /// A one-hop path: the device is at `start_bus:device.function`.
    Device(Bdf),
    /// An empty path, or one through bridges: resolve it with
    /// [`DeviceScope::resolve`] or by walking the bridges yourself.
    Path {
        start_bus: u8,
        path: &'a [PathEntry],
    },
}

impl DeviceScope {
    /// The device this scope names, if the path alone says so.
    pub fn target(&self) -> ScopeTarget<'_> {
        match self.path.as_slice() {
            [hop] => ScopeTarget::Device(Bdf {
                bus: self.start_bus,
                device: hop.device,
                function: hop.function,
            }),
            path => ScopeTarget::Path {
                start_bus: self.start_bus,
                path,
            },
        }
    }

    /// Walks the path: `secondary_bus(bridge)` must return the secondary bus
    /// number of the PCI-to-PCI bridge at `bridge`, or `None` if there is no
    /// such bridge. Returns `None` for an empty path or a broken walk.
    pub fn resolve(&self, mut secondary_bus: impl FnMut(Bdf) -> Option<u8>) -> Option<Bdf> {
        let (last, bridges) = self.path.split_last()?;
        let mut bus = self.start_bus;
        for hop in bridges {
            bus = secondary_bus(Bdf {
                bus,
                device: hop.device,
                function: hop.function,
            })?;
        }
        Some(Bdf {
            bus,
            device: last.device,
            function: last.function,
        })
    }
}

/// The scopes of one remapping structure, as a range of
/// [`Dmar::scopes`](super::Dmar::scopes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeRange {
    start: u16,
    len: u16,
}

impl ScopeRange {
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn start(&self) -> usize {
        usize::from(self.start)
    }
}

/// Decodes the device scopes in `table[start..end]`, which is the tail of the
/// remapping structure `parent`, appending them to `pool`.
pub(crate) fn parse_scopes(
    table: &[u8],
    start: usize,
    end: usize,
    parent: Structure,
    pool: &mut Vec<DeviceScope, MAX_DEVICE_SCOPES>,
) -> Result<ScopeRange, AcpiError> {
    let first = pool.len();
    let mut offset = start;
    while offset < end {
        let truncated = |length| AcpiError::Truncated {
            sig: SIG,
            structure: Structure::DeviceScope,
            offset,
            length,
            end,
            within: Some(parent),
        };
        let length = match table.get(offset + 1) {
            Some(&len) if offset + 1 < end => usize::from(len),
            _ => return Err(truncated(2)),
        };
        if offset + length > end {
            return Err(truncated(length));
        }
        let bytes = table
            .get(offset..offset + length)
            .ok_or(truncated(length))?;
        let scope = decode_scope(&Reader::new(SIG, Structure::DeviceScope, offset, bytes))?;
        pool.push(scope).map_err(|_| AcpiError::TooMany {
            sig: SIG,
            structure: Structure::DeviceScope,
            capacity: MAX_DEVICE_SCOPES,
        })?;
        offset += length;
    }
    // The pool holds at most MAX_DEVICE_SCOPES (< u16::MAX) entries.
    let start = u16::try_from(first).unwrap_or(u16::MAX);
    let len = u16::try_from(pool.len() - first).unwrap_or(0);
    Ok(ScopeRange { start, len })
}

fn decode_scope(r: &Reader<'_>) -> Result<DeviceScope, AcpiError> {
    r.require(SCOPE_HEADER)?;
    let path_len = r.len().saturating_sub(SCOPE_HEADER);
    if !path_len.is_multiple_of(2) {
        return Err(AcpiError::OddScopePath {
            sig: SIG,
            offset: r.offset(),
            length: r.len(),
        });
    }
    let mut path = Vec::new();
    for hop in r.bytes(SCOPE_HEADER, path_len)?.chunks_exact(2) {
        let &[device, function] = hop else { continue };
        if device >= 32 || function >= 8 {
            return Err(AcpiError::BadScopePath {
                sig: SIG,
                offset: r.offset(),
                device,
                function,
            });
        }
        path.push(PathEntry { device, function })
            .map_err(|_| AcpiError::TooMany {
                sig: SIG,
                structure: Structure::ScopePath,
                capacity: MAX_SCOPE_PATH,
            })?;
    }
    Ok(DeviceScope {
        kind: ScopeKind::from(r.u8(0)?),
        enumeration_id: r.u8(4)?,
        start_bus: r.u8(5)?,
        path,
    })
}
