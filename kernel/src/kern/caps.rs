//! Capability tables: what each service may touch.
//!
//! A handle is an index into the holder's table. The table is filled at boot
//! (and on restart) from the deployment, exactly as granted, and never grows:
//! Faultline has no capability transfer yet, so a service can hold nothing
//! it was not given.

use faultline_ipc::abi::{CapKind, Error, MAX_CAP_NAME};
use faultline_ipc::kconfig::{CapName, MAX_CAPS};

/// A capability as the kernel uses it (boot-time names resolved to
/// addresses and indexes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cap {
    /// Client end of a channel; `peer_generation` is the server generation
    /// this client last saw.
    Client {
        channel: u8,
        peer_generation: u32,
    },
    /// Server end of a channel.
    Server {
        channel: u8,
        badge: u64,
    },
    Notification {
        target: u8,
        bits: u32,
    },
    /// An MSI of a granted PCI function, programmed by the kernel.
    Irq {
        irq: u8,
        bits: u32,
    },
    /// Physical MMIO; `mapped_at` once mapped into the holder. `hole`
    /// (offset, length) is left unmapped: a BAR's MSI-X table and pending
    /// bits, which only the kernel writes. `vtd` names the VT-d unit whose
    /// registers these are: its holder is that unit's IOMMU service.
    Mmio {
        base: u64,
        len: u64,
        hole: Option<(u64, u64)>,
        mapped_at: Option<u64>,
        vtd: Option<u8>,
    },
    Dma {
        budget: u64,
        used: u64,
    },
    Pci {
        bus: u8,
        device: u8,
        function: u8,
    },
    Supervisor,
    /// The right to handle the DMA faults of one PCI function, answering
    /// each within `deadline_ms`. It is not [`Cap::Pci`] and grants none of
    /// its rights: only the IOMMU service reads it, through `ClientFaults`.
    Faults {
        bus: u8,
        device: u8,
        function: u8,
        deadline_ms: u32,
    },
    /// A grant that could not be resolved at boot (device or unit absent):
    /// it exists so handle numbers stay as the deployment says, but every use
    /// fails with `NotFound`.
    Unresolved {
        kind: CapKind,
    },
}

impl Cap {
    pub fn kind(&self) -> CapKind {
        match self {
            Cap::Client { .. } => CapKind::Client,
            Cap::Server { .. } => CapKind::Server,
            Cap::Notification { .. } => CapKind::Notification,
            Cap::Irq { .. } => CapKind::Irq,
            Cap::Mmio { .. } => CapKind::Mmio,
            Cap::Dma { .. } => CapKind::Dma,
            Cap::Pci { .. } => CapKind::Pci,
            Cap::Supervisor => CapKind::Supervisor,
            Cap::Faults { .. } => CapKind::Faults,
            Cap::Unresolved { kind } => *kind,
        }
    }
}

/// A named capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: CapName,
    pub cap: Cap,
}

/// A service's capabilities, in handle order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapTable {
    slots: heapless::Vec<Slot, MAX_CAPS>,
}

impl CapTable {
    /// Adds a capability; its handle is the number of caps before it.
    pub fn push(&mut self, name: CapName, cap: Cap) -> Result<u32, Error> {
        let handle = self.slots.len() as u32;
        self.slots
            .push(Slot { name, cap })
            .map_err(|_| Error::OutOfMemory)?;
        Ok(handle)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The capability in slot `handle`, unresolved ones included: for the
    /// fast path, which matches one kind and leaves everything else
    /// (refusals included) to the general path.
    #[inline(always)]
    pub fn slot(&self, handle: u64) -> Option<&Cap> {
        self.slots
            .get(usize::try_from(handle).ok()?)
            .map(|s| &s.cap)
    }

    /// The capability behind `handle`.
    pub fn get(&self, handle: u64) -> Result<&Cap, Error> {
        let i = usize::try_from(handle).map_err(|_| Error::BadHandle)?;
        match self.slots.get(i) {
            Some(Slot {
                cap: Cap::Unresolved { .. },
                ..
            }) => Err(Error::NotFound),
            Some(slot) => Ok(&slot.cap),
            None => Err(Error::BadHandle),
        }
    }

    pub fn get_mut(&mut self, handle: u64) -> Result<&mut Cap, Error> {
        let i = usize::try_from(handle).map_err(|_| Error::BadHandle)?;
        match self.slots.get_mut(i) {
            Some(Slot {
                cap: Cap::Unresolved { .. },
                ..
            }) => Err(Error::NotFound),
            Some(slot) => Ok(&mut slot.cap),
            None => Err(Error::BadHandle),
        }
    }

    /// The handle and kind of the capability named `name`.
    pub fn lookup(&self, name: &[u8]) -> Result<(u32, CapKind), Error> {
        if name.len() > MAX_CAP_NAME {
            return Err(Error::BadLength);
        }
        self.slots
            .iter()
            .position(|s| s.name.as_bytes() == name)
            .map(|i| (i as u32, self.slots[i].cap.kind()))
            .ok_or(Error::NotFound)
    }

    /// Whether this table holds the supervisor capability at `handle`.
    pub fn is_supervisor(&self, handle: u64) -> Result<(), Error> {
        match self.get(handle)? {
            Cap::Supervisor => Ok(()),
            _ => Err(Error::WrongKind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> CapName {
        s.try_into().unwrap()
    }

    #[test]
    fn handles_are_positions_and_bad_ones_are_refused() {
        let mut t = CapTable::default();
        assert_eq!(
            t.push(
                name("pong"),
                Cap::Client {
                    channel: 0,
                    peer_generation: 1
                }
            ),
            Ok(0)
        );
        assert_eq!(t.push(name("sup"), Cap::Supervisor), Ok(1));
        assert_eq!(
            t.push(name("edu"), Cap::Unresolved { kind: CapKind::Pci }),
            Ok(2)
        );
        assert!(matches!(t.get(0), Ok(Cap::Client { .. })));
        assert_eq!(t.get(3), Err(Error::BadHandle));
        assert_eq!(t.get(u64::MAX), Err(Error::BadHandle));
        assert_eq!(t.get(2), Err(Error::NotFound));
        assert_eq!(t.is_supervisor(1), Ok(()));
        assert_eq!(t.is_supervisor(0), Err(Error::WrongKind));
        assert_eq!(t.lookup(b"sup"), Ok((1, CapKind::Supervisor)));
        assert_eq!(t.lookup(b"edu"), Ok((2, CapKind::Pci)));
        assert_eq!(t.lookup(b"nope"), Err(Error::NotFound));
        assert_eq!(t.lookup(&[b'x'; 200]), Err(Error::BadLength));
    }
}
