//! The `faults` protocol: how a fault-handler service receives the DMA
//! faults and page groups of the devices it handles from the IOMMU
//! service, and answers them.
//!
//! A handler is granted, per device, a fault capability (a `faults` grant
//! in the deployment: the right to handle that PCI function's faults, with
//! a deadline, and nothing else). It calls [`FaultsRequest::Register`] once
//! per such handle, then pulls with [`FaultsRequest::Next`], which the
//! IOMMU service answers when a fault arrives (a deferred reply: the
//! service never waits for a handler), and answers each fault once with
//! [`FaultsRequest::Answer`].
//!
//! What a pull returns is a DMA remapping fault ([`FaultsResponse::Fault`])
//! or a whole page group ([`FaultsResponse::PageGroup`]): the page requests
//! of a PCIe PRI device up to the one marked last in its group, delivered
//! together and answered together, once, by one page group response. A
//! handler may register for a device's page groups of one PASID only
//! ([`FaultsRequest::RegisterPasid`]); groups of that PASID go to it, all
//! others to the device's handler.
//!
//! Rules the IOMMU service enforces, whatever a handler sends:
//!
//! - Each fault is delivered once, to the one handler registered for its
//!   device. A fault whose device has no handler is answered
//!   [`ResponseCode::Invalid`] at once; one whose handler misses its
//!   deadline, dies or has a full queue is answered
//!   [`ResponseCode::Failure`]. Either way it is counted and logged.
//! - A [`FaultToken`] is single-use and names one fault of one device. The
//!   device, address and PASID of the answer come from the service's own
//!   copy of the fault; only the code (and whether to map the page) comes
//!   from the handler. An answer for a token never issued, issued to
//!   another handler, already answered, or already answered automatically
//!   is refused with a [`FaultsError`] saying which.
//! - `Register` for a device this channel already registered means the
//!   handler restarted: every fault the earlier instance held for it is
//!   answered `Failure` first, and later faults go to the new instance.
//! - A page group's response carries the requester, PASID and group index
//!   the service stored when the group arrived; only the code comes from
//!   the handler. Page groups are answered without `map` (the handler
//!   makes the pages present in its own address-space tables).

use super::Protocol;
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// Marker type for the protocol.
pub struct Faults;

impl Protocol for Faults {
    const ID: u16 = 0x0005;
    const VERSION: u8 = 2;
    const NAME: &'static str = "faults";
    type Request = FaultsRequest;
    type Response = FaultsResponse;
}

/// Names one delivered fault; single use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FaultToken(pub u64);

/// The answer to a fault, as the PCIe page group response codes (VT-d
/// spec 7.7.1) define them. The wire carries the variant; the hardware
/// code is [`ResponseCode::code`], mapped explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResponseCode {
    /// The fault is resolved: the device may retry.
    Success,
    /// The request was invalid: the device's transfer is aborted.
    Invalid,
    /// The fault could not be resolved: the transfer is aborted.
    Failure,
}

impl ResponseCode {
    /// The code a page group response carries: Success 0x0, Invalid 0x1,
    /// Failure 0xF.
    pub const fn code(self) -> u8 {
        match self {
            Self::Success => 0x0,
            Self::Invalid => 0x1,
            Self::Failure => 0xf,
        }
    }

    /// The code for a response code's value; `None` for a reserved one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0x0 => Some(Self::Success),
            0x1 => Some(Self::Invalid),
            0xf => Some(Self::Failure),
            _ => None,
        }
    }
}

/// Whether the faulting request read or wrote memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultAccess {
    Read,
    Write,
}

/// One DMA remapping fault, as the IOMMU service delivers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Answer with this.
    pub token: FaultToken,
    /// The faulting PCI function, `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    /// The faulting page (bits 11:0 zero).
    pub iova: u64,
    pub access: FaultAccess,
    /// The VT-d fault reason code (for example 0x5: not mapped for writing).
    pub reason: u8,
    /// The request's PASID, if it carried one.
    pub pasid: Option<u32>,
    /// The device's driver reserved memory for this page: answering with
    /// `map: true` maps it.
    pub backed: bool,
}

/// The largest PASID (20 bits).
pub const MAX_PASID: u32 = 0xf_ffff;

/// Most page requests one delivered page group carries; a longer group is
/// answered `Failure` by the service.
pub const MAX_GROUP_PAGES: usize = 16;

/// What a page request asks for, as its descriptor's flags say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageAccess {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub privileged: bool,
}

/// One page request of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// The page (bits 11:0 zero), in the PASID's address space.
    pub address: u64,
    pub access: PageAccess,
}

/// A page group of a PRI device, as the IOMMU service delivers it: every
/// request of the group, in the order the device sent them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageGroup {
    /// Answer the whole group with this, once.
    pub token: FaultToken,
    /// The requester, `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    pub pasid: Option<u32>,
    /// The page request group index (9 bits).
    pub prg_index: u16,
    pub pages: Vec<PageRequest, MAX_GROUP_PAGES>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultsRequest {
    /// Handle the faults of the device the caller holds as fault
    /// capability `device`.
    Register { device: u8 },
    /// Handle the page groups of PASID `pasid` of the device the caller
    /// holds as fault capability `device` (groups of other PASIDs, and DMA
    /// faults, go to the device's handler).
    RegisterPasid { device: u8, pasid: u32 },
    /// The next fault for any device this handler registered (answered
    /// when there is one).
    Next,
    /// Answer fault `token` with `code`. With `map` (and `code` Success),
    /// the page is first mapped from the memory the device's driver
    /// reserved for it.
    Answer {
        token: FaultToken,
        code: ResponseCode,
        map: bool,
    },
}

// A page group is the largest message; boxing it would need a heap, and a
// response lives briefly on the stack between decode and use.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultsResponse {
    /// Registered for `bdf`; each fault must be answered within
    /// `deadline_ms` of being recorded.
    Registered {
        bdf: u16,
        deadline_ms: u32,
    },
    Fault(Fault),
    PageGroup(PageGroup),
    /// The answer was taken (and the page mapped, if asked).
    Answered,
    Refused(FaultsError),
}

/// Why the IOMMU service refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultsError {
    /// The caller holds no fault capability under that handle.
    NoSuchDevice,
    /// Another channel handles this device's faults.
    AlreadyHandled,
    /// `Next` before any `Register`.
    NotRegistered,
    /// The service has no room for another handler or device.
    Full,
    /// No fault was ever delivered under this token.
    UnknownToken,
    /// The token was delivered to another handler.
    NotYours,
    /// This handler already answered the fault.
    AlreadyAnswered,
    /// The fault was answered automatically (deadline, restart) before
    /// this answer came.
    Stale,
    /// `map` for a page the driver reserved no memory for, or with a code
    /// other than Success.
    NotBacked,
    /// Mapping the page failed (out of table memory, hardware timeout);
    /// the fault is still outstanding.
    MapFailed,
    /// The PASID is out of range (20 bits).
    BadPasid,
}

impl core::fmt::Display for FaultsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoSuchDevice => "no such device",
            Self::AlreadyHandled => "another handler handles this device",
            Self::NotRegistered => "not registered",
            Self::Full => "no room for another handler",
            Self::UnknownToken => "unknown token",
            Self::NotYours => "token belongs to another handler",
            Self::AlreadyAnswered => "already answered",
            Self::Stale => "already answered automatically",
            Self::NotBacked => "nothing reserved to map there",
            Self::MapFailed => "mapping failed",
            Self::BadPasid => "PASID out of range",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_are_the_pcie_values_not_the_enum_order() {
        assert_eq!(ResponseCode::Success.code(), 0x0);
        assert_eq!(ResponseCode::Invalid.code(), 0x1);
        assert_eq!(ResponseCode::Failure.code(), 0xf);
        for c in [
            ResponseCode::Success,
            ResponseCode::Invalid,
            ResponseCode::Failure,
        ] {
            assert_eq!(ResponseCode::from_code(c.code()), Some(c));
        }
        for reserved in (2..=0xe).chain(0x10..=0xff) {
            assert_eq!(ResponseCode::from_code(reserved), None, "{reserved:#x}");
        }
    }
}
