//! DMA memory named by capability, and the bus-master gate.
//!
//! On a machine with an IOMMU, drivers never see physical addresses: a
//! driver's DMA memory is a list of numbered [`Buffer`]s, and only the
//! IOMMU service (the holder of a VT-d unit's registers) can turn a buffer
//! into frames, and only for the client of a call it is holding. Each time
//! it does, the range is *pinned* ([`Pins`]): the frames then outlive
//! their owner. When the owner stops, its pins are revoked, the IOMMU
//! service is told, and the frames are given back only when it releases
//! each pin, after removing the mappings and invalidating the IOTLB. A
//! frame is thus never reused while a device may still reach it.
//!
//! The gate ([`Translated`]) is the other half: a function may set bus
//! mastering only once the IOMMU service has said it is attached to a
//! domain with translation on, and loses it when that service stops.

use faultline_ipc::abi::Error;

/// Buffers one service may allocate (each `DmaAlloc` is one).
pub const MAX_BUFFERS: usize = 16;
/// Pins across the system.
pub const MAX_PINS: usize = 64;
/// Functions the IOMMU services can vouch for at once.
pub const MAX_TRANSLATED: usize = 32;

const PAGE: u64 = 4096;

/// One `DmaAlloc`: contiguous, zeroed, owned by the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub vaddr: u64,
    pub paddr: u64,
    pub bytes: u64,
}

/// A pinned range of a service's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The IOMMU service that pinned it.
    pub holder: u8,
    /// The service whose buffer it is, and its generation then.
    pub owner: u8,
    pub generation: u32,
    /// Where the range is in the owner's space and in memory.
    pub vaddr: u64,
    pub paddr: u64,
    pub bytes: u64,
    /// The owner stopped: the frames are kept only for this pin.
    pub revoked: bool,
}

impl Pin {
    fn covers(&self, paddr: u64) -> bool {
        paddr >= self.paddr && paddr - self.paddr < self.bytes
    }
}

/// Every pin, by id. An id is `slot << 32 | serial`; the serial changes
/// with every pin, so a released id never names a later pin.
#[derive(Clone, Debug)]
pub struct Pins {
    slots: [Option<(u32, Pin)>; MAX_PINS],
    serial: u32,
}

impl Default for Pins {
    fn default() -> Self {
        Pins {
            slots: [None; MAX_PINS],
            serial: 0,
        }
    }
}

impl Pins {
    /// Records `pin`; `OutOfMemory` when every slot is taken.
    pub fn pin(&mut self, pin: Pin) -> Result<u64, Error> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(Error::OutOfMemory)?;
        self.serial = self.serial.wrapping_add(1);
        self.slots[slot] = Some((self.serial, pin));
        Ok(((slot as u64) << 32) | u64::from(self.serial))
    }

    /// The pin `id` of `holder`: `NotFound` for an unknown or released id
    /// or one of another holder.
    pub fn get(&self, holder: u8, id: u64) -> Result<&Pin, Error> {
        let slot = usize::try_from(id >> 32).map_err(|_| Error::NotFound)?;
        match self.slots.get(slot) {
            Some(Some((serial, pin))) if u64::from(*serial) == id & 0xffff_ffff => {
                if pin.holder == holder {
                    Ok(pin)
                } else {
                    Err(Error::NotFound)
                }
            }
            _ => Err(Error::NotFound),
        }
    }

    /// Releases pin `id` of `holder`. Returns the pages (physical
    /// addresses) to give back: those of a revoked pin that no other
    /// revoked pin still covers.
    pub fn release(&mut self, holder: u8, id: u64) -> Result<heapless::Vec<u64, 512>, Error> {
        let pin = *self.get(holder, id)?;
        self.slots[(id >> 32) as usize] = None;
        Ok(self.orphaned(&pin))
    }

    /// The pages of `pin` (just removed) that no revoked pin covers, if
    /// `pin` itself was revoked.
    fn orphaned(&self, pin: &Pin) -> heapless::Vec<u64, 512> {
        let mut free = heapless::Vec::new();
        if !pin.revoked {
            return free;
        }
        for page in (0..pin.bytes / PAGE).map(|i| pin.paddr + i * PAGE) {
            let kept = self
                .slots
                .iter()
                .flatten()
                .any(|(_, p)| p.revoked && p.covers(page));
            if !kept {
                let _ = free.push(page);
            }
        }
        free
    }

    /// Revokes the pins on `owner`'s memory of generation `generation`;
    /// calls `kept(holder, vaddr, bytes)` for each, so the caller keeps
    /// the frames past the owner's end and tells the holder.
    pub fn revoke_owner(&mut self, owner: u8, generation: u32, mut kept: impl FnMut(&Pin)) {
        for (_, pin) in self.slots.iter_mut().flatten() {
            if pin.owner == owner && pin.generation == generation && !pin.revoked {
                pin.revoked = true;
                kept(pin);
            }
        }
    }

    /// A revoked pin of `holder`, to unmap and release.
    pub fn next_revoked(&self, holder: u8) -> Option<u64> {
        self.slots.iter().enumerate().find_map(|(slot, s)| match s {
            Some((serial, pin)) if pin.holder == holder && pin.revoked => {
                Some(((slot as u64) << 32) | u64::from(*serial))
            }
            _ => None,
        })
    }

    /// Drops every pin of `holder` (it stopped: its mappings went with it,
    /// and no device it vouched for can master the bus). Returns the
    /// pages of revoked pins to give back.
    pub fn drop_holder(&mut self, holder: u8) -> heapless::Vec<u64, 512> {
        let mut free = heapless::Vec::new();
        for slot in 0..MAX_PINS {
            let Some((_, pin)) = self.slots[slot] else {
                continue;
            };
            if pin.holder != holder {
                continue;
            }
            self.slots[slot] = None;
            for page in self.orphaned(&pin) {
                if free.push(page).is_err() {
                    break;
                }
            }
        }
        free
    }

    /// Pins currently held, for reports and tests.
    pub fn count(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

/// Functions attached to a domain with translation on, and who said so.
#[derive(Clone, Debug, Default)]
pub struct Translated {
    entries: heapless::Vec<((u8, u8, u8), u8), MAX_TRANSLATED>,
}

impl Translated {
    /// Whether `bdf` may master the bus.
    pub fn contains(&self, bdf: (u8, u8, u8)) -> bool {
        self.entries.iter().any(|(b, _)| *b == bdf)
    }

    /// `holder` vouches for `bdf` (again: no change).
    pub fn insert(&mut self, bdf: (u8, u8, u8), holder: u8) -> Result<(), Error> {
        if let Some(e) = self.entries.iter_mut().find(|(b, _)| *b == bdf) {
            e.1 = holder;
            return Ok(());
        }
        self.entries
            .push((bdf, holder))
            .map_err(|_| Error::OutOfMemory)
    }

    /// `bdf` is no longer translated; whether it was.
    pub fn remove(&mut self, bdf: (u8, u8, u8)) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(b, _)| *b != bdf);
        self.entries.len() != before
    }

    /// Forgets everything `holder` vouched for; returns those functions.
    pub fn drop_holder(&mut self, holder: u8) -> heapless::Vec<(u8, u8, u8), MAX_TRANSLATED> {
        let gone = self
            .entries
            .iter()
            .filter(|(_, h)| *h == holder)
            .map(|(b, _)| *b)
            .collect();
        self.entries.retain(|(_, h)| *h != holder);
        gone
    }
}

/// Checks a pin request against buffer `buf`: the range is page-aligned,
/// not empty and inside it. Returns its physical and virtual start.
pub fn pin_range(buf: &Buffer, offset: u64, len: u64) -> Result<(u64, u64), Error> {
    if len == 0 || !offset.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
        return Err(Error::BadArgument);
    }
    match offset.checked_add(len) {
        Some(end) if end <= buf.bytes => Ok((buf.paddr + offset, buf.vaddr + offset)),
        _ => Err(Error::BadLength),
    }
}
