//! The `faults` protocol: how a fault-handler service receives the DMA
//! faults of the devices it handles from the IOMMU service, and answers
//! them.
//!
//! A handler is granted, per device, a fault capability (a `faults` grant
//! in the deployment: the right to handle that PCI function's faults, with
//! a deadline, and nothing else). It calls [`FaultsRequest::Register`] once
//! per such handle, then pulls with [`FaultsRequest::Next`], which the
//! IOMMU service answers when a fault arrives (a deferred reply: the
//! service never waits for a handler), and answers each fault once with
//! [`FaultsRequest::Answer`].
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

use super::Protocol;
use serde::{Deserialize, Serialize};

/// Marker type for the protocol.
pub struct Faults;

impl Protocol for Faults {
    const ID: u16 = 0x0005;
    const VERSION: u8 = 1;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultsRequest {
    /// Handle the faults of the device the caller holds as fault
    /// capability `device`.
    Register { device: u8 },
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultsResponse {
    /// Registered for `bdf`; each fault must be answered within
    /// `deadline_ms` of being recorded.
    Registered {
        bdf: u16,
        deadline_ms: u32,
    },
    Fault(Fault),
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
