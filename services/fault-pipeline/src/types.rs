//! The pipeline's vocabulary: a fault as it enters, a fault while it is
//! outstanding, why one was answered automatically, the counters, and the
//! [`Outbox`] replies leave through.

use faultline_ipc::protocol::faults::{Fault, FaultAccess, FaultToken, ResponseCode};
pub use faultline_ipc::protocol::iommu::FaultCounters as Counters;
use faultline_ipc::protocol::iommu::SettledFault;

/// A DMA remapping fault, decoded from a fault record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewFault {
    /// `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    /// The faulting page.
    pub iova: u64,
    pub write: bool,
    /// The VT-d fault reason code.
    pub reason: u8,
    pub pasid: Option<u32>,
    /// The driver reserved memory for this page (a handler may map it).
    pub backed: bool,
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
}

impl AutoReason {
    /// The answer: Invalid when nobody handles the device (as Linux answers
    /// a request with no fault handler), Failure otherwise.
    pub const fn code(self) -> ResponseCode {
        match self {
            Self::NoHandler => ResponseCode::Invalid,
            Self::Deadline | Self::Restarted | Self::HandlerDied | Self::QueueFull => {
                ResponseCode::Failure
            }
        }
    }

    pub const fn text(self) -> &'static str {
        match self {
            Self::NoHandler => "no fault handler for the device",
            Self::Deadline => "the handler missed its deadline",
            Self::Restarted => "the handler restarted",
            Self::HandlerDied => "the handler is gone",
            Self::QueueFull => "the handler's queue is full",
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
    /// Answer a driver's parked question with what became of its fault
    /// (a driver that is gone is simply not told).
    fn settled(&mut self, to: P, fault: SettledFault);
    /// The pipeline answered `fault` itself (to count and log).
    fn automatic(&mut self, fault: &Pending, reason: AutoReason);
}
