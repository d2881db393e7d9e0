//! The PCIe extended capability list (config space 0x100..0x1000) and the
//! capabilities in it that matter to an IOMMU: ATS (device TLB), PRI (page
//! requests) and PASID, plus the offsets of ACS, AER and SR-IOV.
//!
//! Each entry header is id 15:0, version 19:16, next 31:20. The list ends
//! at a next pointer of 0; an empty list reads id 0 (or all-ones, on
//! functions whose extended space is not reachable) with next 0. A next
//! pointer below 0x100 or a revisited entry ends the walk with a
//! [`CapError`]; typed fields are only read when they lie inside the 4 KiB.

use super::capability::{CapError, Capabilities, CapabilityId};
use super::config::{Bdf, ConfigSpace};

/// Start of the extended list.
pub const EXTENDED_START: u16 = 0x100;
const CONFIG_SPACE_SIZE: u16 = 0x1000;
const SLOTS: usize = (CONFIG_SPACE_SIZE - EXTENDED_START) as usize / 4;

/// PCI-SIG extended capability IDs this module decodes.
pub mod id {
    pub const AER: u16 = 0x01;
    pub const ACS: u16 = 0x0d;
    pub const ATS: u16 = 0x0f;
    pub const SR_IOV: u16 = 0x10;
    pub const PRI: u16 = 0x13;
    pub const PASID: u16 = 0x1b;
}

/// Address Translation Services: the function caches translations in a device TLB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ats {
    pub offset: u16,
    /// Invalidate requests the function can queue (1..=32).
    pub invalidate_queue_depth: u8,
    pub page_aligned_request: bool,
}

/// Page Request Interface: the function asks for pages to be made present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pri {
    pub offset: u16,
    /// Outstanding page requests the function can have.
    pub outstanding_capacity: u32,
}

/// Process Address Space ID support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pasid {
    pub offset: u16,
    /// PASID width in bits (0..=20).
    pub max_width: u8,
    pub execute_permission: bool,
    pub privileged_mode: bool,
}

/// Reads the dword at `offset`, or 0 past the end of config space.
fn read_inside(cfg: &impl ConfigSpace, bdf: Bdf, offset: u16) -> u32 {
    if offset < CONFIG_SPACE_SIZE {
        cfg.read32(bdf, offset)
    } else {
        0
    }
}

/// Walks the extended list from 0x100.
pub(super) fn walk_extended(
    cfg: &impl ConfigSpace,
    bdf: Bdf,
    caps: &mut Capabilities,
) -> Result<(), CapError> {
    let mut visited = [0u64; SLOTS.div_ceil(64)];
    let mut offset = EXTENDED_START;
    loop {
        let slot = usize::from(offset - EXTENDED_START) / 4;
        if visited[slot / 64] & (1 << (slot % 64)) != 0 {
            return Err(CapError::ExtendedLoop { offset });
        }
        visited[slot / 64] |= 1 << (slot % 64);
        let header = cfg.read32(bdf, offset);
        let cap_id = header as u16;
        let next = (header >> 20) as u16 & 0xffc;
        if header == u32::MAX || (next == 0 && (cap_id == 0 || cap_id == 0xffff)) {
            return Ok(());
        }
        if cap_id != 0 {
            decode_extended(cfg, bdf, offset, cap_id, caps);
        }
        match next {
            0 => return Ok(()),
            next if next < EXTENDED_START => {
                return Err(CapError::ExtendedPointerOutOfRange {
                    from: offset,
                    pointer: next,
                });
            }
            next => offset = next,
        }
    }
}

/// Records the entry at `offset` with id `cap_id`.
fn decode_extended(
    cfg: &impl ConfigSpace,
    bdf: Bdf,
    offset: u16,
    cap_id: u16,
    caps: &mut Capabilities,
) {
    caps.record(CapabilityId::Extended(cap_id), offset);
    match cap_id {
        id::AER => {
            caps.aer.get_or_insert(offset);
        }
        id::ACS => {
            caps.acs.get_or_insert(offset);
        }
        id::SR_IOV => {
            caps.sriov.get_or_insert(offset);
        }
        id::ATS => {
            let capability = (read_inside(cfg, bdf, offset + 4) & 0xffff) as u16;
            let depth = (capability & 0x1f) as u8;
            caps.ats.get_or_insert(Ats {
                offset,
                invalidate_queue_depth: if depth == 0 { 32 } else { depth },
                page_aligned_request: capability & (1 << 5) != 0,
            });
        }
        id::PRI => {
            caps.pri.get_or_insert(Pri {
                offset,
                outstanding_capacity: read_inside(cfg, bdf, offset + 8),
            });
        }
        id::PASID => {
            let capability = (read_inside(cfg, bdf, offset + 4) & 0xffff) as u16;
            caps.pasid.get_or_insert(Pasid {
                offset,
                max_width: ((capability >> 8) & 0x1f) as u8,
                execute_permission: capability & (1 << 1) != 0,
                privileged_mode: capability & (1 << 2) != 0,
            });
        }
        _ => {}
    }
}
