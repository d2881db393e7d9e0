//! Taking turns at faulting with another device's driver.
//!
//! QEMU's VT-d unit has one fault recording register, and a fault that
//! arrives while it is in use is dropped (FSTS.PFO): two edus whose
//! transfers fault at the same moment lose one of the faults, and its
//! driver is never told (the IOMMU service can only count the overflow).
//! Two drivers on one unit therefore take turns: each faulting transfer
//! runs while the other driver's device is idle.
//!
//! A driver holding a `lead` notification grant (aimed at the other
//! driver) goes first and passes the turn after each transfer; one holding
//! `follow` (aimed at the leader) waits for the turn before each transfer
//! and passes it back after. A driver with neither runs alone. The turn
//! arrives as [`TURN`], a bit the deployment must give the grant.

use crate::fail;
use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::Handle;
use userlib::{cap_lookup, notify, wait};

/// The notification bit the turn arrives as.
pub const TURN: u32 = 1 << 4;

/// This driver's part in taking turns.
pub enum Turns {
    Alone,
    Lead(Handle),
    Follow(Handle),
}

impl Turns {
    /// From the driver's capabilities.
    pub fn from_caps() -> Turns {
        for (name, make) in [
            ("lead", Turns::Lead as fn(Handle) -> Turns),
            ("follow", Turns::Follow),
        ] {
            match cap_lookup(name) {
                Ok((h, CapKind::Notification)) => return make(h),
                Ok((_, kind)) => fail(format_args!("`{name}` is a {kind:?}, not a notification")),
                Err(_) => {}
            }
        }
        Turns::Alone
    }

    /// Before faulting transfer `i`: wait for the turn if it is the other
    /// driver's.
    pub fn before(&self, i: usize) {
        let waits = match self {
            Turns::Alone => false,
            Turns::Lead(_) => i > 0,
            Turns::Follow(_) => true,
        };
        if waits && let Err(e) = wait(TURN) {
            fail(format_args!("waiting for the turn: {e:?}"));
        }
    }

    /// After a faulting transfer: pass the turn.
    pub fn after(&self) {
        if let Turns::Lead(other) | Turns::Follow(other) = self
            && let Err(e) = notify(*other)
        {
            fail(format_args!("passing the turn: {e:?}"));
        }
    }
}
