//! Host tests of the fault pipeline: rules one by one (`rules`), the two
//! bugs Faultline's design started from (`seed`), and random fault streams
//! against random handler behaviour (`prop`).

mod groups;
mod prop;
mod rules;
mod seed;

use std::collections::HashSet;

use faultline_ipc::protocol::faults::{Fault, FaultToken, PageGroup, ResponseCode};
use faultline_ipc::protocol::iommu::SettledFault;

use crate::{AutoReason, Gone, NewFault, Outbox, Pending};

/// A parked reply in the tests: a number, to see which one was answered.
pub type Reply = u32;

/// Everything the pipeline sent, in order.
#[derive(Default)]
pub struct Log {
    pub delivered: Vec<(Reply, Fault)>,
    pub groups: Vec<(Reply, PageGroup)>,
    /// Every settled fault's response, in order: (token, code).
    pub responses: Vec<(FaultToken, ResponseCode)>,
    pub settled: Vec<(Reply, SettledFault)>,
    pub automatic: Vec<(FaultToken, u16, AutoReason)>,
    /// Replies whose caller is gone: delivering to them fails.
    pub gone: HashSet<Reply>,
}

impl Outbox<Reply> for Log {
    fn deliver(&mut self, to: Reply, fault: Fault) -> Result<(), Gone> {
        if self.gone.contains(&to) {
            return Err(Gone);
        }
        self.delivered.push((to, fault));
        Ok(())
    }

    fn deliver_group(&mut self, to: Reply, group: PageGroup) -> Result<(), Gone> {
        if self.gone.contains(&to) {
            return Err(Gone);
        }
        self.groups.push((to, group));
        Ok(())
    }

    fn respond(&mut self, fault: &Pending, code: ResponseCode) {
        self.responses.push((fault.token, code));
    }

    fn settled(&mut self, to: Reply, fault: SettledFault) {
        self.settled.push((to, fault));
    }

    fn automatic(&mut self, fault: &Pending, reason: AutoReason) {
        self.automatic.push((fault.token, fault.fault.bdf, reason));
    }
}

pub const EDU: u16 = 0x18;
pub const OTHER: u16 = 0x20;
pub const MS: u64 = 1_000_000;

/// A write fault of `bdf` at `iova`.
pub fn fault(bdf: u16, iova: u64) -> NewFault {
    NewFault {
        bdf,
        iova,
        write: true,
        reason: 0x5,
        pasid: None,
        backed: true,
        group: None,
    }
}
