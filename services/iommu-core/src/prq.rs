//! Page requests (PCIe PRI faults) as the service sees them: the checks a
//! request must pass before anyone tries to make its page present, and
//! what one read of the page request queue found.
//!
//! [`check`] is Linux's `prq_event_thread` (drivers/iommu/intel/prq.c)
//! rule for rule, in its order: a non-canonical address, a privileged
//! request that reads or writes, and an execute request that also reads
//! are malformed; Linux answers them with Invalid (a page group response
//! only when the request is the last of its group). Whether the requester
//! is known is the service's check, not this one, and so is what happens
//! to a stop marker (last in group, neither read nor write), which Linux
//! drops without a response after these checks pass.
//!
//! The register work (enable, read, respond, drain) is in
//! `unit::prq`; the descriptor layouts are `faultline_vtd::prq`.

pub use faultline_vtd::prq::{GroupId, PageGroupResponse, PageRequest};

/// Page group response codes (bits 15:12 of the descriptor).
pub const RESPONSE_SUCCESS: u8 = 0x0;
pub const RESPONSE_INVALID: u8 = 0x1;
pub const RESPONSE_FAILURE: u8 = 0xf;

/// Why a page request is refused before it is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// The page address is not canonical for 48-bit virtual addresses.
    NonCanonical,
    /// A privileged-mode request that reads or writes (Faultline serves
    /// user address spaces only).
    PrivilegedAccess,
    /// An execute request that also reads.
    ExecRead,
}

impl Malformed {
    /// One line for the log, as Linux words it.
    pub const fn text(self) -> &'static str {
        match self {
            Self::NonCanonical => "page request with a non-canonical address",
            Self::PrivilegedAccess => "page request in privileged mode",
            Self::ExecRead => "execution request not supported",
        }
    }
}

impl core::fmt::Display for Malformed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.text())
    }
}

/// Linux's validity rules for one page request, first failing rule first.
pub fn check(r: &PageRequest) -> Result<(), Malformed> {
    if !faultline_vtd::prq::is_canonical(r.address) {
        return Err(Malformed::NonCanonical);
    }
    if r.privileged && (r.read || r.write) {
        return Err(Malformed::PrivilegedAccess);
    }
    if r.exec && r.read {
        return Err(Malformed::ExecRead);
    }
    Ok(())
}

/// PRS.PRO (page request overflow) as one read of the queue left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// PRO was set and the queue was empty after the batch, so PRO was
    /// cleared. Requests were lost, possibly the last of a group: the
    /// caller discards every partial group (Linux's
    /// `iopf_queue_discard_partial`).
    Cleared,
    /// PRO is set but more requests arrived meanwhile: PRO stays set (the
    /// unit keeps dropping new requests) and the caller reads again.
    Pending,
}

/// What one read (or a drain's several reads) of the page request queue
/// found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrqBatch {
    /// Page requests decoded and handed to the caller, in queue order.
    pub requests: usize,
    /// Descriptors whose type was not a page request: skipped and
    /// consumed with the rest.
    pub garbage: usize,
    /// PRS.PRO was set; see [`Overflow`].
    pub overflow: Option<Overflow>,
}

impl PrqBatch {
    /// Adds a later read's counts. A [`Overflow::Cleared`] anywhere stays
    /// (the caller must still discard partial groups); otherwise the later
    /// read's overflow state wins.
    pub fn merge(&mut self, later: PrqBatch) {
        self.requests += later.requests;
        self.garbage += later.garbage;
        if self.overflow != Some(Overflow::Cleared) {
            self.overflow = later.overflow;
        }
    }
}
