//! The page request path's formats: the 32-byte page request descriptor a
//! unit writes into the page request queue, the page group response
//! descriptor (type 9) software sends back through the invalidation queue,
//! and the queue address register (PQA).
//!
//! Page requests are the recoverable faults of PCIe PRI devices: a device
//! asks for a page, software makes it present, and answers the whole page
//! group (every request with the same requester, PASID and PRG index, up
//! to the one marked last) with one page group response. Layouts follow
//! the VT-d specification (revision 4.0 and later: no private data, no
//! LPIG in the response) as Linux's `prq.c` and QEMU 10.2 decode them.
//!
//! Both directions are here, encode and decode, so the driver core and the
//! VT-d model cannot disagree about a bit.

use crate::{bit, field};

/// Bytes per page request descriptor.
pub const DESCRIPTOR_BYTES: u64 = 32;
/// Type of a page request descriptor (qw0 bits 7:0).
pub const TYPE_PAGE_REQUEST: u8 = 1;
/// Invalidation-queue descriptor type of a page group response.
pub const TYPE_PAGE_GROUP_RESPONSE: u64 = 9;
/// Wait descriptor: fence (bit 6): later descriptors wait for this one.
pub const WAIT_FENCE: u64 = 1 << 6;
/// Wait descriptor: page-request drain (bit 7; needs ECAP.PDS).
pub const WAIT_PAGE_DRAIN: u64 = 1 << 7;
/// PQH/PQT: the queue offset lives in bits 18:5 (32-byte steps).
pub const OFFSET_MASK: u64 = 0x7ffe0;
/// PRG index: 9 bits.
pub const MAX_PRG_INDEX: u16 = 0x1ff;
/// PASID: 20 bits.
pub const MAX_PASID: u32 = 0xf_ffff;

/// One page request, as it sits in the page request queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// The requester ID (`bus << 8 | device << 3 | function`).
    pub rid: u16,
    /// The PASID, if the request carried one (PASID present).
    pub pasid: Option<u32>,
    /// Execute requested.
    pub exec: bool,
    /// Privileged-mode access requested.
    pub privileged: bool,
    pub read: bool,
    pub write: bool,
    /// Last page in group: this request ends its page group, which then
    /// needs one page group response.
    pub last: bool,
    /// The page request group index (9 bits).
    pub prg_index: u16,
    /// The page address (bits 11:0 zero), as the device sent it.
    pub address: u64,
}

impl PageRequest {
    /// Decodes the first two quadwords of a descriptor (the last two are
    /// reserved since the private data was removed). `None` if the type
    /// is not a page request.
    pub const fn decode(qw0: u64, qw1: u64) -> Option<Self> {
        if field(qw0, 0, 8) as u8 != TYPE_PAGE_REQUEST {
            return None;
        }
        let pasid_present = bit(qw0, 8);
        Some(Self {
            rid: field(qw0, 16, 16) as u16,
            pasid: if pasid_present {
                Some(field(qw0, 32, 20) as u32)
            } else {
                None
            },
            exec: bit(qw0, 52),
            privileged: bit(qw0, 53),
            read: bit(qw1, 0),
            write: bit(qw1, 1),
            last: bit(qw1, 2),
            prg_index: field(qw1, 3, 9) as u16,
            address: qw1 & !0xfff,
        })
    }

    /// The descriptor's four quadwords, as a unit writes them.
    pub const fn encode(&self) -> [u64; 4] {
        let (present, pasid) = match self.pasid {
            Some(p) => (1u64, (p & MAX_PASID) as u64),
            None => (0, 0),
        };
        let qw0 = TYPE_PAGE_REQUEST as u64
            | present << 8
            | (self.rid as u64) << 16
            | pasid << 32
            | (self.exec as u64) << 52
            | (self.privileged as u64) << 53;
        let qw1 = self.read as u64
            | (self.write as u64) << 1
            | (self.last as u64) << 2
            | ((self.prg_index & MAX_PRG_INDEX) as u64) << 3
            | self.address & !0xfff;
        [qw0, qw1, 0, 0]
    }

    /// A stop marker: last in group, neither read nor write. It tells
    /// software the device stopped using a PASID and needs no response.
    pub const fn is_stop_marker(&self) -> bool {
        self.last && !self.read && !self.write
    }

    /// The group this request belongs to.
    pub const fn group(&self) -> GroupId {
        GroupId {
            rid: self.rid,
            pasid: self.pasid,
            prg_index: self.prg_index,
        }
    }
}

/// A page group's identity: what its response must echo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub rid: u16,
    pub pasid: Option<u32>,
    pub prg_index: u16,
}

/// A page group response (invalidation-queue descriptor type 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageGroupResponse {
    pub group: GroupId,
    /// The response code (bits 15:12): 0x0 Success, 0x1 Invalid, 0xF
    /// Failure.
    pub code: u8,
}

impl PageGroupResponse {
    /// The 128-bit descriptor: qw0 type, PASID present (4), code (15:12),
    /// RID (31:16), PASID (51:32); qw1 PRG index (11:3).
    pub const fn encode(&self) -> (u64, u64) {
        let (present, pasid) = match self.group.pasid {
            Some(p) => (1u64, (p & MAX_PASID) as u64),
            None => (0, 0),
        };
        let low = TYPE_PAGE_GROUP_RESPONSE
            | present << 4
            | ((self.code & 0xf) as u64) << 12
            | (self.group.rid as u64) << 16
            | pasid << 32;
        let high = ((self.group.prg_index & MAX_PRG_INDEX) as u64) << 3;
        (low, high)
    }

    /// Decodes a type-9 descriptor; `Err` names the first reserved bit
    /// that is set (or a wrong type).
    pub const fn decode(low: u64, high: u64) -> Result<Self, &'static str> {
        if field(low, 0, 4) != TYPE_PAGE_GROUP_RESPONSE || field(low, 9, 3) != 0 {
            return Err("not a page group response");
        }
        // Reserved: qw0 bits 8:5 and 63:52; qw1 bits 2:0 (LPIG since
        // revision 4.0) and 63:12.
        if low & (0xf << 5) != 0 || low >> 52 != 0 {
            return Err("page group response: reserved bits set in qw0");
        }
        if high & 0x7 != 0 || high >> 12 != 0 {
            return Err("page group response: reserved bits set in qw1");
        }
        Ok(Self {
            group: GroupId {
                rid: field(low, 16, 16) as u16,
                pasid: if bit(low, 4) {
                    Some(field(low, 32, 20) as u32)
                } else {
                    None
                },
                prg_index: field(high, 3, 9) as u16,
            },
            code: field(low, 12, 4) as u8,
        })
    }
}

/// PQA: the queue's base (4 KiB aligned) and size: 2^`size` 4 KiB pages,
/// so 2^(`size` + 7) descriptors.
pub const fn queue_address(base: u64, size: u8) -> u64 {
    (base & !0xfff) | (size as u64 & 0x7)
}

/// Descriptors in a queue of PQA size `size`.
pub const fn queue_entries(size: u8) -> u64 {
    1 << (size as u32 + 7)
}

/// Whether `address` is canonical for 48-bit (4-level) virtual addresses:
/// bits 63:47 all equal.
pub const fn is_canonical(address: u64) -> bool {
    let top = address >> 47;
    top == 0 || top == (1 << 17) - 1
}
