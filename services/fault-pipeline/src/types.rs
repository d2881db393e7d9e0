//! The pipeline's vocabulary: a fault as it enters, a fault while it is
//! outstanding, why one was answered automatically, the counters, and the
//! [`Outbox`] replies leave through.

use faultline_ipc::protocol::faults::{
    Fault, FaultAccess, FaultToken, MAX_GROUP_PAGES, PageGroup, PageRequest, ResponseCode,
};
pub use faultline_ipc::protocol::iommu::FaultCounters as Counters;
use faultline_ipc::protocol::iommu::SettledFault;

/// A DMA remapping fault, decoded from a fault record, or a page group
/// collected from the page request queue (`group` is `Some`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewFault {
    /// `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    /// The faulting page (a page group's first page).
    pub iova: u64,
    /// A write (a page group: any of its requests writes).
    pub write: bool,
    /// The VT-d fault reason code (0 for a page group).
    pub reason: u8,
    pub pasid: Option<u32>,
    /// The driver reserved memory for this page (a handler may map it).
    pub backed: bool,
    /// The page group, for a page request fault.
    pub group: Option<Group>,
}

/// A page group as the pipeline keeps it: fixed size, so a pending fault
/// stays plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The page request group index; with the requester and PASID, what
    /// the page group response echoes.
    pub prg_index: u16,
    len: u8,
    pages: [PageRequest; MAX_GROUP_PAGES],
}

impl Group {
    /// A group of `pages` (at most [`MAX_GROUP_PAGES`]; `None` otherwise).
    pub fn new(prg_index: u16, pages: &[PageRequest]) -> Option<Self> {
        if pages.len() > MAX_GROUP_PAGES {
            return None;
        }
        let mut all = [PageRequest {
            address: 0,
            access: Default::default(),
        }; MAX_GROUP_PAGES];
        all[..pages.len()].copy_from_slice(pages);
        Some(Self {
            prg_index,
            len: pages.len() as u8,
            pages: all,
        })
    }

    pub fn pages(&self) -> &[PageRequest] {
        &self.pages[..usize::from(self.len)]
    }

    /// The fault that carries this group of `bdf`'s PASID `pasid`.
    pub fn fault(self, bdf: u16, pasid: Option<u32>) -> NewFault {
        let pages = self.pages();
        NewFault {
            bdf,
            iova: pages.first().map_or(0, |p| p.address),
            write: pages.iter().any(|p| p.access.write),
            reason: 0,
            pasid,
            backed: false,
            group: Some(self),
        }
    }
}

/// Where an outstanding fault is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting in its handler's queue for a pull.
    Queued,
    /// Delivered to the handler; waiting for its answer.
    Delivered,
}

/// A fault recorded and not yet answered: the pipeline's authoritative
/// copy (an answer takes only its code from the handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub token: FaultToken,
    pub fault: NewFault,
    /// The device's fault mark.
    pub mark: u32,
    /// The handler's badge (`None` only while being answered automatically
    /// for want of one).
    pub handler: Option<u64>,
    pub stage: Stage,
    /// When it is answered automatically if the handler has not.
    pub deadline_ns: u64,
}

impl Pending {
    /// The page group as the handler receives it (`None` for a DMA fault).
    pub fn group_message(&self) -> Option<PageGroup> {
        let group = self.fault.group?;
        Some(PageGroup {
            token: self.token,
            bdf: self.fault.bdf,
            pasid: self.fault.pasid,
            prg_index: group.prg_index,
            pages: group.pages().iter().copied().collect(),
        })
    }

    /// The fault as the handler receives it.
    pub fn message(&self) -> Fault {
        Fault {
            token: self.token,
            bdf: self.fault.bdf,
            iova: self.fault.iova,
            access: if self.fault.write {
                FaultAccess::Write
            } else {
                FaultAccess::Read
            },
            reason: self.fault.reason,
            pasid: self.fault.pasid,
            backed: self.fault.backed,
        }
    }
}

/// Why the pipeline answered a fault itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AutoReason {
    /// No handler is registered for the device.
    NoHandler,
    /// The handler did not answer in time.
    Deadline,
    /// The handler registered again (it restarted): what the earlier
    /// instance held is answered.
    Restarted,
    /// A reply to the handler failed: it is gone.
    HandlerDied,
    /// The handler already holds [`crate::HANDLER_QUEUE`] faults.
    QueueFull,
    /// A page request ending its group was malformed (non-canonical
    /// address, privileged read/write, execute with read).
    Malformed,
    /// A page request came from a requester the service does not know.
    UnknownRequester,
    /// A page group had more than [`MAX_GROUP_PAGES`] requests.
    GroupTooLarge,
    /// The device (or PASID) went away with the group outstanding.
    DeviceGone,
}

impl AutoReason {
    /// The answer, as Linux gives it: Invalid when nobody handles the
    /// device, the request itself is bad, or the device went away; Failure
    /// when a handler exists but could not answer.
    pub const fn code(self) -> ResponseCode {
        match self {
            Self::NoHandler | Self::Malformed | Self::UnknownRequester | Self::DeviceGone => {
                ResponseCode::Invalid
            }
            Self::Deadline
            | Self::Restarted
            | Self::HandlerDied
            | Self::QueueFull
            | Self::GroupTooLarge => ResponseCode::Failure,
        }
    }

    pub const fn text(self) -> &'static str {
        match self {
            Self::NoHandler => "no fault handler for the device",
            Self::Deadline => "the handler missed its deadline",
            Self::Restarted => "the handler restarted",
            Self::HandlerDied => "the handler is gone",
            Self::QueueFull => "the handler's queue is full",
            Self::Malformed => "malformed page request",
            Self::UnknownRequester => "page request from an unknown requester",
            Self::GroupTooLarge => "page group too large",
            Self::DeviceGone => "the device went away",
        }
    }
}

/// Adds one answer with `code` to the counters.
pub(crate) fn count(counters: &mut Counters, code: ResponseCode) {
    match code {
        ResponseCode::Success => counters.success += 1,
        ResponseCode::Invalid => counters.invalid += 1,
        ResponseCode::Failure => counters.failure += 1,
    }
}

/// Every answer given, by anyone.
pub const fn answered(c: &Counters) -> u64 {
    c.success + c.invalid + c.failure
}

/// A reply could not be delivered: its receiver is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone;

/// Where the pipeline's replies go.
pub trait Outbox<P> {
    /// Answer a handler's parked pull with `fault`.
    fn deliver(&mut self, to: P, fault: Fault) -> Result<(), Gone>;
    /// Answer a handler's parked pull with a page group.
    fn deliver_group(&mut self, to: P, group: PageGroup) -> Result<(), Gone>;
    /// `fault` is settled with `code`: called exactly once per fault,
    /// whoever answered. For a page group the service sends the page
    /// group response here, built from `fault` (the stored copy).
    fn respond(&mut self, fault: &Pending, code: ResponseCode);
    /// Answer a driver's parked question with what became of its fault
    /// (a driver that is gone is simply not told).
    fn settled(&mut self, to: P, fault: SettledFault);
    /// The pipeline answered `fault` itself (to count and log).
    fn automatic(&mut self, fault: &Pending, reason: AutoReason);
}
