//! The judge: the harness's record of every fault it issued and what the
//! handler did with it, and the rules an answer is checked against.
//!
//! - Each fault must be answered exactly once: a second answer is a
//!   violation ([`Rule::AnsweredTwice`]) and is refused `AlreadyAnswered`,
//!   as the IOMMU service refuses it.
//! - An answer must name a fault the handler was delivered: a token never
//!   issued, or issued but not yet delivered, is a violation
//!   ([`Rule::NeverDelivered`]), refused `UnknownToken`.
//! - Each fault must be answered within the handler's deadline, counted
//!   from when the harness issued it (as the service counts from when the
//!   hardware recorded it): past it the fault is settled without the
//!   handler ([`Rule::NoAnswerInTime`]) and a late answer is refused
//!   `Stale` (not a second violation).
//! - `map` is honoured only for a DMA fault whose page the driver
//!   reserved; otherwise it is refused `NotBacked`, as the service does,
//!   and the fault still needs its answer.

use faultline_ipc::protocol::faults::{
    Fault, FaultToken, FaultsError, FaultsResponse, MAX_GROUP_PAGES, PageGroup,
};
use heapless::Vec;

use crate::cases::{Item, pages};

/// Faults of one case at most.
pub const MAX_ISSUED: usize = 32;
/// Violations remembered per case (more are counted, not kept).
pub const MAX_VIOLATIONS: usize = 8;

/// A rule the handler broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    AnsweredTwice,
    NeverDelivered,
    NoAnswerInTime,
    /// A request that does not decode (a reserved response code, say).
    Malformed,
}

impl Rule {
    pub const fn text(self) -> &'static str {
        match self {
            Self::AnsweredTwice => "answered twice (rule: answer each fault exactly once)",
            Self::NeverDelivered => {
                "an answer under a token never delivered (rule: answer the fault you got)"
            }
            Self::NoAnswerInTime => "no answer within the deadline (rule: answer in time)",
            Self::Malformed => "a request that does not decode (rule: valid requests and codes)",
        }
    }
}

/// One violation: the fault (its token, and what it was) and the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub token: FaultToken,
    /// What was delivered under the token (`None`: never issued).
    pub item: Option<Item>,
    pub rule: Rule,
}

#[derive(Clone, Copy, Debug)]
struct Issued {
    token: FaultToken,
    item: Item,
    issued_ns: u64,
    delivered: bool,
    answers: u8,
    expired: bool,
}

/// What the harness knows about the current case.
pub struct Judge {
    bdf: u16,
    deadline_ns: u64,
    next_token: u64,
    issued: Vec<Issued, MAX_ISSUED>,
    violations: Vec<Violation, MAX_VIOLATIONS>,
    more_violations: usize,
}

impl Judge {
    /// A judge for a handler of `bdf` with `deadline_ms`.
    pub const fn new(bdf: u16, deadline_ms: u32) -> Self {
        Self {
            bdf,
            deadline_ns: deadline_ms as u64 * 1_000_000,
            next_token: 1,
            issued: Vec::new(),
            violations: Vec::new(),
            more_violations: 0,
        }
    }

    /// Starts a case: its items are issued at `now_ns`, delivered as the
    /// handler pulls. Tokens keep growing across cases, so a stale token
    /// from an earlier case is never reused.
    pub fn start(&mut self, items: &[Item], now_ns: u64) {
        self.issued.clear();
        self.violations.clear();
        self.more_violations = 0;
        for item in items.iter().take(MAX_ISSUED) {
            let token = FaultToken(self.next_token);
            self.next_token += 1;
            let _ = self.issued.push(Issued {
                token,
                item: *item,
                issued_ns: now_ns,
                delivered: false,
                answers: 0,
                expired: false,
            });
        }
    }

    /// What a pull gets: the oldest fault not yet delivered (and not past
    /// its deadline).
    pub fn deliver(&mut self) -> Option<FaultsResponse> {
        let bdf = self.bdf;
        let f = self
            .issued
            .iter_mut()
            .find(|f| !f.delivered && !f.expired)?;
        f.delivered = true;
        Some(delivery(bdf, f.token, &f.item))
    }

    /// The handler answers `token` with `code` (and `map`) at `now_ns`:
    /// the reply the IOMMU service would give, recording any violation.
    pub fn answer(&mut self, token: FaultToken, map: bool, now_ns: u64) -> FaultsResponse {
        self.expire(now_ns);
        let Some(i) = self.issued.iter().position(|f| f.token == token) else {
            self.violate(token, None, Rule::NeverDelivered);
            return refused(if token.0 != 0 && token.0 < self.next_token {
                // An earlier case's fault: settled long ago.
                FaultsError::Stale
            } else {
                FaultsError::UnknownToken
            });
        };
        let f = self.issued[i];
        if !f.delivered {
            self.violate(token, Some(f.item), Rule::NeverDelivered);
            return refused(FaultsError::UnknownToken);
        }
        if f.expired {
            return refused(FaultsError::Stale);
        }
        if f.answers > 0 {
            self.issued[i].answers = f.answers.saturating_add(1);
            if f.answers == 1 {
                self.violate(token, Some(f.item), Rule::AnsweredTwice);
            }
            return refused(FaultsError::AlreadyAnswered);
        }
        let backed = matches!(f.item, Item::Dma { backed: true, .. });
        if map && !backed {
            return refused(FaultsError::NotBacked);
        }
        self.issued[i].answers = 1;
        FaultsResponse::Answered
    }

    /// The handler sent something that does not decode (the transport
    /// has refused it already).
    pub fn malformed(&mut self) {
        self.violate(FaultToken(0), None, Rule::Malformed);
    }

    /// Faults past their deadline at `now_ns` are settled without the
    /// handler (once each).
    pub fn expire(&mut self, now_ns: u64) {
        let deadline = self.deadline_ns;
        let mut late: Vec<(FaultToken, Item), MAX_ISSUED> = Vec::new();
        for f in self.issued.iter_mut() {
            if f.answers == 0 && !f.expired && now_ns.saturating_sub(f.issued_ns) >= deadline {
                f.expired = true;
                let _ = late.push((f.token, f.item));
            }
        }
        for (token, item) in late {
            self.violate(token, Some(item), Rule::NoAnswerInTime);
        }
    }

    /// Every fault of the case answered or past its deadline.
    pub fn settled(&self) -> bool {
        self.issued.iter().all(|f| f.answers > 0 || f.expired)
    }

    /// When the earliest unanswered fault passes its deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.issued
            .iter()
            .filter(|f| f.answers == 0 && !f.expired)
            .map(|f| f.issued_ns + self.deadline_ns)
            .min()
    }

    /// The case's violations so far, and how many more were not kept.
    pub fn violations(&self) -> (&[Violation], usize) {
        (&self.violations, self.more_violations)
    }

    fn violate(&mut self, token: FaultToken, item: Option<Item>, rule: Rule) {
        if self
            .violations
            .push(Violation { token, item, rule })
            .is_err()
        {
            self.more_violations += 1;
        }
    }
}

fn refused(e: FaultsError) -> FaultsResponse {
    FaultsResponse::Refused(e)
}

/// The message that delivers `item` under `token`.
pub fn delivery(bdf: u16, token: FaultToken, item: &Item) -> FaultsResponse {
    match *item {
        Item::Dma {
            iova,
            access,
            reason,
            pasid,
            backed,
        } => FaultsResponse::Fault(Fault {
            token,
            bdf,
            iova,
            access,
            reason,
            pasid,
            backed,
        }),
        Item::Group {
            pasid,
            prg_index,
            first,
            pages: n,
            access,
        } => FaultsResponse::PageGroup(PageGroup {
            token,
            bdf,
            pasid,
            prg_index,
            pages: pages(first, n.min(MAX_GROUP_PAGES as u8), access).collect(),
        }),
    }
}
