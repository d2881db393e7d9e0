//! Fault handlers: registration (one handler per device), pulls parked
//! until a fault arrives, delivery (each fault once), and what happens to
//! a handler's faults when it restarts or dies.
//!
//! A handler is a channel, told apart by its badge. A channel's client can
//! have one call outstanding at a time, so a second pull from the same
//! badge means the caller of the first is gone (restarted): the new pull
//! replaces the old one.

use faultline_ipc::protocol::faults::FaultsError;

use crate::types::{AutoReason, Outbox, Stage};
use crate::{MAX_DEVICES, Pipeline};

pub(crate) struct Handler<P> {
    pub badge: u64,
    pub parked: Option<P>,
}

/// What one registration covers: a device's faults, or one PASID's page
/// groups.
#[derive(Clone, Copy)]
struct Scope {
    bdf: u16,
    pasid: Option<u32>,
}

impl Scope {
    fn holds(self, f: &crate::NewFault) -> bool {
        f.bdf == self.bdf
            && match self.pasid {
                None => true,
                Some(p) => f.group.is_some() && f.pasid == Some(p),
            }
    }
}

/// Where a device's faults go.
pub(crate) enum Route {
    Handler { badge: u64, deadline_ms: u32 },
    None,
}

impl<P> Pipeline<P> {
    /// Handler `badge` handles `bdf`'s faults, each to be answered within
    /// `deadline_ms`. Registering a device this badge already handles
    /// means the handler restarted: every fault the earlier instance was
    /// delivered for it is answered automatically first (faults still
    /// queued are kept for the new instance).
    pub fn register(
        &mut self,
        badge: u64,
        bdf: u16,
        deadline_ms: u32,
        out: &mut impl Outbox<P>,
    ) -> Result<(), FaultsError> {
        self.register_for(badge, bdf, None, deadline_ms, out)
    }

    /// Handler `badge` handles the page groups of `bdf`'s PASID `pasid`
    /// (DMA faults and other PASIDs' groups stay with the device's
    /// handler). Registering again means a restart, as for
    /// [`Pipeline::register`].
    pub fn register_pasid(
        &mut self,
        badge: u64,
        bdf: u16,
        pasid: u32,
        deadline_ms: u32,
        out: &mut impl Outbox<P>,
    ) -> Result<(), FaultsError> {
        if pasid > faultline_ipc::protocol::faults::MAX_PASID {
            return Err(FaultsError::BadPasid);
        }
        self.register_for(badge, bdf, Some(pasid), deadline_ms, out)
    }

    fn register_for(
        &mut self,
        badge: u64,
        bdf: u16,
        pasid: Option<u32>,
        deadline_ms: u32,
        out: &mut impl Outbox<P>,
    ) -> Result<(), FaultsError> {
        let slot = self.device_slot(bdf).ok_or(FaultsError::Full)?;
        let current = match pasid {
            None => self.devices[slot].handler,
            Some(p) => self.devices[slot]
                .pasids
                .iter()
                .find(|h| h.0 == p)
                .map(|h| (h.1, h.2)),
        };
        match current {
            Some((other, _)) if other != badge => return Err(FaultsError::AlreadyHandled),
            Some(_) => {
                let scope = Scope { bdf, pasid };
                self.fail_delivered(badge, Some(scope), AutoReason::Restarted, out);
            }
            None => {}
        }
        if !self.handlers.iter().any(|h| h.badge == badge)
            && self
                .handlers
                .push(Handler {
                    badge,
                    parked: None,
                })
                .is_err()
        {
            return Err(FaultsError::Full);
        }
        let device = &mut self.devices[slot];
        match pasid {
            None => device.handler = Some((badge, deadline_ms)),
            Some(p) => match device.pasids.iter_mut().find(|h| h.0 == p) {
                Some(h) => *h = (p, badge, deadline_ms),
                None => device
                    .pasids
                    .push((p, badge, deadline_ms))
                    .map_err(|_| FaultsError::Full)?,
            },
        }
        Ok(())
    }

    /// Handler `badge` pulls its next fault: delivered at once if one is
    /// queued, otherwise the pull is parked until one is recorded. The
    /// pull comes back with the refusal if the badge registered nothing.
    pub fn next(
        &mut self,
        badge: u64,
        pull: P,
        out: &mut impl Outbox<P>,
    ) -> Result<(), (P, FaultsError)> {
        let Some(handler) = self.handlers.iter_mut().find(|h| h.badge == badge) else {
            return Err((pull, FaultsError::NotRegistered));
        };
        // An older parked pull's caller is gone (one call per channel).
        handler.parked = Some(pull);
        self.pump(badge, out);
        Ok(())
    }

    /// A reply to handler `badge` failed: it is gone. Every fault it was
    /// delivered is answered automatically now; queued faults wait for the
    /// next instance (or their deadline).
    pub fn handler_gone(&mut self, badge: u64, out: &mut impl Outbox<P>) {
        if let Some(h) = self.handlers.iter_mut().find(|h| h.badge == badge) {
            h.parked = None;
        }
        self.fail_delivered(badge, None, AutoReason::HandlerDied, out);
    }

    /// Whether a handler is registered for `bdf` (for any of its faults).
    pub fn handled(&self, bdf: u16) -> bool {
        self.devices
            .iter()
            .any(|d| d.bdf == bdf && (d.handler.is_some() || !d.pasids.is_empty()))
    }

    /// Whether handler `badge` has a pull parked.
    pub fn waiting(&self, badge: u64) -> bool {
        self.handlers
            .iter()
            .any(|h| h.badge == badge && h.parked.is_some())
    }

    /// Where a fault goes: a page group of a PASID with its own handler
    /// to that handler, anything else to the device's handler.
    pub(crate) fn route(&self, fault: &crate::NewFault) -> Route {
        let device = self.devices.iter().find(|d| d.bdf == fault.bdf);
        let for_pasid = match (fault.group, fault.pasid) {
            (Some(_), Some(p)) => device
                .and_then(|d| d.pasids.iter().find(|h| h.0 == p))
                .map(|h| (h.1, h.2)),
            _ => None,
        };
        match for_pasid.or_else(|| device.and_then(|d| d.handler)) {
            Some((badge, deadline_ms)) => Route::Handler { badge, deadline_ms },
            None => Route::None,
        }
    }

    /// Delivers handler `badge`'s oldest queued fault to its parked pull,
    /// if it has both.
    pub(crate) fn pump(&mut self, badge: u64, out: &mut impl Outbox<P>) {
        let Some(h) = self.handlers.iter().position(|h| h.badge == badge) else {
            return;
        };
        if self.handlers[h].parked.is_none() {
            return;
        }
        let Some(i) = self
            .outstanding
            .iter()
            .enumerate()
            .filter(|(_, f)| f.handler == Some(badge) && f.stage == Stage::Queued)
            .min_by_key(|(_, f)| f.token)
            .map(|(i, _)| i)
        else {
            return;
        };
        let Some(pull) = self.handlers[h].parked.take() else {
            return;
        };
        let delivered = match self.outstanding[i].group_message() {
            Some(group) => out.deliver_group(pull, group),
            None => out.deliver(pull, self.outstanding[i].message()),
        };
        match delivered {
            Ok(()) => {
                self.outstanding[i].stage = Stage::Delivered;
                self.counters.delivered += 1;
            }
            // Never delivered: it stays queued for the next instance.
            Err(_) => self.handler_gone(badge, out),
        }
    }

    /// Answers every fault delivered to `badge` (in `scope` only, if
    /// given).
    fn fail_delivered(
        &mut self,
        badge: u64,
        scope: Option<Scope>,
        reason: AutoReason,
        out: &mut impl Outbox<P>,
    ) {
        while let Some(i) = self.outstanding.iter().position(|f| {
            f.handler == Some(badge)
                && f.stage == Stage::Delivered
                && scope.is_none_or(|s| s.holds(&f.fault))
        }) {
            let pending = self.outstanding.swap_remove(i);
            self.settle_auto(pending, reason, out);
        }
    }

    /// The slot of `bdf`'s device entry, made if there is room.
    pub(crate) fn device_slot(&mut self, bdf: u16) -> Option<usize> {
        if let Some(i) = self.devices.iter().position(|d| d.bdf == bdf) {
            return Some(i);
        }
        if self.devices.len() >= MAX_DEVICES {
            return None;
        }
        self.devices.push(crate::devices::Device::new(bdf)).ok()?;
        Some(self.devices.len() - 1)
    }
}
