//! Taking turns at faulting with another device's driver.
//!
//! QEMU's VT-d unit has one fault recording register, and a fault that
//! arrives while it is in use is dropped (FSTS.PFO): two edus whose
//! transfers fault at the same moment lose one of the faults, and its
//! driver is never told (the IOMMU service can only count the overflow).
//! Two drivers on one unit therefore take turns: a driver's faulting
//! transfers run while the other driver's device does not fault.
//!
//! A driver holding a `lead` notification grant (aimed at the other
//! driver) goes first and passes the turn after its turn's transfers; one
//! holding `follow` (aimed at the leader) waits for the turn first and
//! passes it back after. A driver with neither runs alone. The turn
//! arrives as one notification bit, which the deployment gives both
//! grants and the driver names ([`Turns::from_caps`]).

use faultline_ipc::abi::CapKind;
use faultline_ipc::channel::Handle;
use userlib::{SysError, cap_lookup, notify, wait};

/// This driver's part in taking turns.
enum Role {
    Alone,
    Lead(Handle),
    Follow(Handle),
}

/// This driver's part, and the bit the turn arrives as.
pub struct Turns {
    role: Role,
    bit: u32,
}

/// Why taking a turn failed.
#[derive(Debug)]
pub enum TurnError {
    /// The grant named `name` is not a notification.
    NotANotification { name: &'static str, kind: CapKind },
    /// Waiting for the turn, or passing it, was refused.
    Refused(SysError),
}

impl core::fmt::Display for TurnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TurnError::NotANotification { name, kind } => {
                write!(f, "`{name}` is a {kind:?}, not a notification")
            }
            TurnError::Refused(e) => write!(f, "the turn: {e}"),
        }
    }
}

impl Turns {
    /// From the driver's capabilities; the turn arrives as `bit`.
    pub fn from_caps(bit: u32) -> Result<Turns, TurnError> {
        for (name, make) in [
            ("lead", Role::Lead as fn(Handle) -> Role),
            ("follow", Role::Follow),
        ] {
            match cap_lookup(name) {
                Ok((h, CapKind::Notification)) => {
                    return Ok(Turns { role: make(h), bit });
                }
                Ok((_, kind)) => return Err(TurnError::NotANotification { name, kind }),
                Err(_) => {}
            }
        }
        Ok(Turns {
            role: Role::Alone,
            bit,
        })
    }

    /// Before turn `i` (0 first): wait for the turn if it is the other
    /// driver's. The leader's first turn is its own.
    pub fn before(&self, i: usize) -> Result<(), TurnError> {
        let waits = match self.role {
            Role::Alone => false,
            Role::Lead(_) => i > 0,
            Role::Follow(_) => true,
        };
        if waits {
            wait(self.bit).map_err(TurnError::Refused)?;
        }
        Ok(())
    }

    /// After a turn: pass it to the other driver.
    pub fn after(&self) -> Result<(), TurnError> {
        if let Role::Lead(other) | Role::Follow(other) = self.role {
            notify(other).map_err(TurnError::Refused)?;
        }
        Ok(())
    }
}
