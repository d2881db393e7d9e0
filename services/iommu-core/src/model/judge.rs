//! The model's judge of page group responses: which page groups a driver
//! owes a response, and what it did wrong when it answered.
//!
//! A group needs exactly one response once its last-in-group request (not
//! a stop marker) was written into the page request queue. Requests the
//! unit refused or dropped on overflow create no debt: a dropped last
//! request was already answered by the unit itself (Success, VT-d 7.5.1),
//! and that answer is recorded with [`Responder::Hardware`].
//!
//! Each software response is checked in this order, and the first rule
//! that applies is the verdict:
//! 1. it answers a waiting group exactly: accepted, the group is settled;
//! 2. its group was already answered (by software or by the unit) and not
//!    asked again since: a second response;
//! 3. a waiting group matches it on two of RID, PASID and PRG index: the
//!    third field is wrong (the waiting group stays waiting);
//! 4. otherwise the group never needed a response.
//!
//! Independently, a response code other than 0x0 (Success), 0x1 (Invalid)
//! or 0xF (Failure) is a violation; the response still settles its group,
//! since the device did receive an answer.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use faultline_vtd::prq::{GroupId, PageGroupResponse};

/// Who sent a page group response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Responder {
    /// The driver, through the invalidation queue (descriptor type 9).
    Software,
    /// The unit itself, for a last-in-group request it dropped on overflow.
    Hardware,
}

/// A group, written the way violations name it.
struct Named(GroupId);

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(f, "group (rid {:#06x}, pasid ", g.rid)?;
        match g.pasid {
            Some(pasid) => write!(f, "{pasid:#x}")?,
            None => f.write_str("none")?,
        }
        write!(f, ", prg index {})", g.prg_index)
    }
}

#[derive(Default)]
pub(crate) struct Judge {
    /// Groups waiting for a response, oldest first.
    pending: Vec<GroupId>,
    /// Groups answered and not asked again since, with who answered.
    answered: Vec<(GroupId, Responder)>,
    responses: Vec<(PageGroupResponse, Responder)>,
    violations: Vec<String>,
}

impl Judge {
    /// A last-in-group request of `group` (not a stop marker) was queued.
    pub fn needs_response(&mut self, group: GroupId) {
        self.answered.retain(|(g, _)| *g != group);
        self.pending.push(group);
    }

    /// The unit answered `group` itself (Success) after dropping its last
    /// request on overflow.
    pub fn hardware_response(&mut self, group: GroupId) {
        self.responses
            .push((PageGroupResponse { group, code: 0 }, Responder::Hardware));
        self.answered.retain(|(g, _)| *g != group);
        self.answered.push((group, Responder::Hardware));
    }

    /// The driver sent `response` through the invalidation queue.
    pub fn software_response(&mut self, response: PageGroupResponse) {
        self.responses.push((response, Responder::Software));
        let group = response.group;
        if !matches!(response.code, 0x0 | 0x1 | 0xf) {
            self.violations.push(format!(
                "response for {} has invalid code {:#x} (valid: 0x0 Success, 0x1 Invalid, \
                 0xF Failure)",
                Named(group),
                response.code
            ));
        }
        if let Some(i) = self.pending.iter().position(|g| *g == group) {
            self.pending.remove(i);
            self.answered.push((group, Responder::Software));
            return;
        }
        let verdict = if let Some(&(_, by)) = self.answered.iter().find(|(g, _)| *g == group) {
            let by = match by {
                Responder::Software => "the driver",
                Responder::Hardware => "the unit, on overflow",
            };
            format!(
                "second response for {}, already answered by {by}",
                Named(group)
            )
        } else if let Some((waiting, field)) = self.near_miss(group) {
            format!(
                "response for {} has the wrong {field}: {} is waiting",
                Named(group),
                Named(waiting)
            )
        } else {
            format!(
                "response for {}, which never needed one (no last-in-group request of it \
                 was queued)",
                Named(group)
            )
        };
        self.violations.push(verdict);
    }

    /// A waiting group that matches `group` on exactly two of the three
    /// fields, and the name of the third.
    fn near_miss(&self, group: GroupId) -> Option<(GroupId, &'static str)> {
        self.pending.iter().find_map(|&w| {
            let rid = w.rid == group.rid;
            let pasid = w.pasid == group.pasid;
            let prg = w.prg_index == group.prg_index;
            match (rid, pasid, prg) {
                (false, true, true) => Some((w, "RID")),
                (true, false, true) => Some((w, "PASID")),
                (true, true, false) => Some((w, "PRG index")),
                _ => None,
            }
        })
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.clone()
    }

    pub fn unanswered(&self) -> Vec<GroupId> {
        self.pending.clone()
    }

    pub fn responses(&self) -> Vec<(PageGroupResponse, Responder)> {
        self.responses.clone()
    }

    /// Violations, then one line per group still waiting.
    pub fn check_idle(&self) -> Result<(), Vec<String>> {
        let mut problems = self.violations.clone();
        problems.extend(
            self.pending
                .iter()
                .map(|&g| format!("{} is still waiting for a response", Named(g))),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}
