//! Answers: a handler's, checked against the pipeline's own copy of the
//! fault, and the pipeline's automatic ones. Every fault is settled here,
//! exactly once: it leaves the outstanding table, its token joins the
//! recently settled ones, the counters move and the driver is told.

use faultline_ipc::protocol::faults::{FaultToken, FaultsError, ResponseCode};
use faultline_ipc::protocol::iommu::FaultOutcome;

use crate::Pipeline;
use crate::devices::aborted;
use crate::types::{AutoReason, Outbox, Pending, Stage};

/// A token settled recently: who held it and how it was answered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settled {
    token: FaultToken,
    handler: Option<u64>,
    automatic: bool,
}

impl<P> Pipeline<P> {
    /// Handler `badge` answers `token` with `code`. `act` runs on the
    /// pipeline's copy of the fault before it is settled (the service maps
    /// the page there); if it refuses, the fault stays outstanding and the
    /// refusal is returned. Refusals name what is wrong with the token:
    /// never issued or not yet delivered ([`FaultsError::UnknownToken`]),
    /// held by another handler ([`FaultsError::NotYours`]), answered by
    /// this handler already ([`FaultsError::AlreadyAnswered`]), or
    /// answered automatically ([`FaultsError::Stale`]).
    pub fn answer(
        &mut self,
        badge: u64,
        token: FaultToken,
        code: ResponseCode,
        act: impl FnOnce(&Pending) -> Result<(), FaultsError>,
        out: &mut impl Outbox<P>,
    ) -> Result<(), FaultsError> {
        let Some(i) = self.outstanding.iter().position(|f| f.token == token) else {
            return Err(self.settled_refusal(badge, token));
        };
        let pending = &self.outstanding[i];
        if pending.stage != Stage::Delivered {
            // Guessed, not delivered: as if never issued.
            return Err(FaultsError::UnknownToken);
        }
        if pending.handler != Some(badge) {
            return Err(FaultsError::NotYours);
        }
        act(pending)?;
        let pending = self.outstanding.swap_remove(i);
        let outcome = match code {
            ResponseCode::Success => FaultOutcome::Retry,
            code => FaultOutcome::Aborted {
                code,
                automatic: false,
            },
        };
        self.settle(pending, code, false, outcome, out);
        let badge = pending.handler;
        if let Some(badge) = badge {
            // A slot in its queue is free again.
            self.pump(badge, out);
        }
        Ok(())
    }

    /// Answers `pending` (already out of the outstanding table) itself.
    pub(crate) fn settle_auto(
        &mut self,
        pending: Pending,
        reason: AutoReason,
        out: &mut impl Outbox<P>,
    ) {
        self.counters.auto += 1;
        out.automatic(&pending, reason);
        self.settle(pending, reason.code(), true, aborted(reason), out);
    }

    fn settle(
        &mut self,
        pending: Pending,
        code: ResponseCode,
        automatic: bool,
        outcome: FaultOutcome,
        out: &mut impl Outbox<P>,
    ) {
        crate::types::count(&mut self.counters, code);
        out.respond(&pending, code);
        if self.recent.is_full() {
            self.recent.pop_front();
        }
        let _ = self.recent.push_back(Settled {
            token: pending.token,
            handler: pending.handler,
            automatic,
        });
        self.tell_driver(&pending, outcome, out);
    }

    /// Why an answer for a token that is not outstanding is refused.
    fn settled_refusal(&self, badge: u64, token: FaultToken) -> FaultsError {
        if token.0 == 0 || token.0 >= self.next_token {
            return FaultsError::UnknownToken;
        }
        match self.recent.iter().find(|s| s.token == token) {
            Some(s) if s.handler != Some(badge) => FaultsError::NotYours,
            Some(s) if s.automatic => FaultsError::Stale,
            Some(_) => FaultsError::AlreadyAnswered,
            // Settled long ago: at least stale.
            None => FaultsError::Stale,
        }
    }
}
