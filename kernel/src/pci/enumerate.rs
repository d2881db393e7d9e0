//! Finding every function on a segment, depth-first from its first bus.
//!
//! Firmware (SeaBIOS, OVMF, or a real BIOS) has already numbered the buses
//! and assigned the BARs; enumeration reads that picture and does not
//! change it. Bridges are followed to the secondary bus firmware programmed,
//! each bus is scanned at most once, and nothing outside the ECAM bus range
//! is touched, so a misprogrammed or hostile topology can cost at most 256
//! bus scans. The walk uses an explicit stack rather than recursion, as the
//! kernel stack is small. Problems inside one function (a broken capability
//! list, an undecodable BAR) are recorded on that function; only running
//! out of room for functions is an error for the whole scan.

use core::fmt;
use core::ops::RangeInclusive;

use super::bar::{Bar, BarError, probe_bars};
use super::capability::{CapError, Capabilities, walk_legacy};
use super::class::ClassCode;
use super::config::{
    BRIDGE_BUS_NUMBERS, Bdf, CAPABILITIES_POINTER, CARDBUS_CAPABILITIES_POINTER, ConfigSpace,
    HEADER_TYPE, INTERRUPT_LINE, REVISION_ID, STATUS, Status, VENDOR_ID,
};
use super::extended::walk_extended;

/// How many functions [`enumerate`] can return.
pub const MAX_FUNCTIONS: usize = 64;

/// Configuration header layout (header type bits 6:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderType {
    /// Type 0: an endpoint (six BARs).
    Endpoint,
    /// Type 1: a PCI-to-PCI bridge (two BARs).
    PciBridge,
    /// Type 2: a CardBus bridge.
    CardBusBridge,
    Unknown(u8),
}

impl HeaderType {
    const fn from_register(byte: u8) -> Self {
        match byte & 0x7f {
            0 => Self::Endpoint,
            1 => Self::PciBridge,
            2 => Self::CardBusBridge,
            other => Self::Unknown(other),
        }
    }
}

/// The bus numbers firmware programmed into a PCI-to-PCI bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BridgeBuses {
    pub primary: u8,
    /// The bus directly behind the bridge.
    pub secondary: u8,
    /// The highest bus number behind the bridge.
    pub subordinate: u8,
}

/// One PCI function as found during enumeration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub bdf: Bdf,
    pub vendor_id: u16,
    pub device_id: u16,
    pub revision: u8,
    pub class: ClassCode,
    pub header_type: HeaderType,
    /// Header type bit 7: the device implements functions 1..=7.
    pub multi_function: bool,
    /// Bus numbers, for PCI-to-PCI bridges (header type 1).
    pub bridge: Option<BridgeBuses>,
    /// 0 none, 1..=4 INTA#..INTD#.
    pub interrupt_pin: u8,
    /// The legacy IRQ firmware routed the pin to (informative only).
    pub interrupt_line: u8,
    /// The implemented BARs, sized.
    pub bars: heapless::Vec<Bar, 6>,
    pub capabilities: Capabilities,
    /// Why the capability walk stopped early, if it did.
    pub cap_error: Option<CapError>,
    /// The first BAR that could not be decoded, if any.
    pub bar_error: Option<BarError>,
}

impl Function {
    pub const fn is_bridge(&self) -> bool {
        self.bridge.is_some()
    }
}

impl fmt::Display for Function {
    /// `00:01.0 1234:11e8 rev 10 [00ff.00] unclassified device`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04x}:{:04x} rev {:02x} {}",
            self.bdf, self.vendor_id, self.device_id, self.revision, self.class
        )?;
        if let Some(buses) = self.bridge {
            write!(
                f,
                " buses {:02x}..={:02x}",
                buses.secondary, buses.subordinate
            )?;
        }
        Ok(())
    }
}

/// Why enumeration as a whole failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PciError {
    /// More functions than the result can hold.
    TooManyFunctions { capacity: usize },
    /// The bus range has no buses (start > end).
    EmptyBusRange { start: u8, end: u8 },
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyFunctions { capacity } => {
                write!(f, "more than {capacity} PCI functions")
            }
            Self::EmptyBusRange { start, end } => write!(f, "empty bus range {start}..={end}"),
        }
    }
}

/// Which of the 256 buses have been scanned or queued.
struct BusSet([u64; 4]);

impl BusSet {
    /// Adds `bus`; false if it was already there.
    fn insert(&mut self, bus: u8) -> bool {
        let (word, bit) = (usize::from(bus / 64), 1u64 << (bus % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// Scans `bus_range` depth-first from its first bus and returns every
/// function found, in scan order.
pub fn enumerate(
    cfg: &mut impl ConfigSpace,
    bus_range: RangeInclusive<u8>,
) -> Result<heapless::Vec<Function, MAX_FUNCTIONS>, PciError> {
    let mut functions = heapless::Vec::new();
    enumerate_into(cfg, bus_range, &mut functions)?;
    Ok(functions)
}

/// [`enumerate`] into a caller-provided list (cleared first), so a kernel
/// can keep the ~23 KiB result in a static instead of on its stack. On
/// [`PciError::TooManyFunctions`] the list holds every function that fit.
pub fn enumerate_into(
    cfg: &mut impl ConfigSpace,
    bus_range: RangeInclusive<u8>,
    functions: &mut heapless::Vec<Function, MAX_FUNCTIONS>,
) -> Result<(), PciError> {
    functions.clear();
    let (start, end) = (*bus_range.start(), *bus_range.end());
    if start > end {
        return Err(PciError::EmptyBusRange { start, end });
    }
    let mut visited = BusSet([0; 4]);
    visited.insert(start);
    // (bus, next device to probe); each bus is pushed once, so 256 is enough.
    let mut stack: heapless::Vec<(u8, u8), 256> = heapless::Vec::new();
    let _ = stack.push((start, 0));
    while let Some(top) = stack.last_mut() {
        let (bus, device) = *top;
        if device == 32 {
            stack.pop();
            continue;
        }
        top.1 += 1;
        let secondaries = probe_device(cfg, bus, device, functions)?;
        // Reversed, so the first bridge's bus is scanned first.
        for &secondary in secondaries.iter().rev() {
            if !bus_range.contains(&secondary) {
                log::warn!(
                    "pci: bridge on bus {bus:#04x} leads outside the bus range to {secondary:#04x}"
                );
            } else if !visited.insert(secondary) {
                log::warn!("pci: bus {secondary:#04x} reached a second time from bus {bus:#04x}");
            } else {
                let _ = stack.push((secondary, 0));
            }
        }
    }
    Ok(())
}

/// Probes every function of one device, appends them to `functions`, and
/// returns the secondary buses of the bridges among them.
fn probe_device(
    cfg: &mut impl ConfigSpace,
    bus: u8,
    device: u8,
    functions: &mut heapless::Vec<Function, MAX_FUNCTIONS>,
) -> Result<heapless::Vec<u8, 8>, PciError> {
    let mut secondaries = heapless::Vec::new();
    let first = Bdf {
        bus,
        device,
        function: 0,
    };
    if cfg.read16(first, VENDOR_ID) == 0xffff {
        return Ok(secondaries);
    }
    let function_count = if cfg.read8(first, HEADER_TYPE) & 0x80 != 0 {
        8
    } else {
        1
    };
    for number in 0..function_count {
        let bdf = Bdf {
            function: number,
            ..first
        };
        if cfg.read16(bdf, VENDOR_ID) == 0xffff {
            continue;
        }
        let found = probe_function(cfg, bdf);
        if let Some(buses) = found.bridge {
            let _ = secondaries.push(buses.secondary);
        }
        functions
            .push(found)
            .map_err(|_| PciError::TooManyFunctions {
                capacity: MAX_FUNCTIONS,
            })?;
    }
    Ok(secondaries)
}

/// Reads everything about one present function.
fn probe_function(cfg: &mut impl ConfigSpace, bdf: Bdf) -> Function {
    let ids = cfg.read32(bdf, VENDOR_ID);
    let class_dword = cfg.read32(bdf, REVISION_ID);
    let class = ClassCode::from_register(class_dword);
    let header_byte = cfg.read8(bdf, HEADER_TYPE);
    let header_type = HeaderType::from_register(header_byte);
    let interrupt = cfg.read32(bdf, INTERRUPT_LINE);
    let bridge = (header_type == HeaderType::PciBridge).then(|| {
        let buses = cfg.read32(bdf, BRIDGE_BUS_NUMBERS);
        BridgeBuses {
            primary: buses as u8,
            secondary: (buses >> 8) as u8,
            subordinate: (buses >> 16) as u8,
        }
    });
    let (bar_slots, cap_head) = match header_type {
        HeaderType::Endpoint => (6, Some(CAPABILITIES_POINTER)),
        HeaderType::PciBridge => (2, Some(CAPABILITIES_POINTER)),
        HeaderType::CardBusBridge => (0, Some(CARDBUS_CAPABILITIES_POINTER)),
        HeaderType::Unknown(_) => (0, None),
    };
    let is_host_bridge = class.base == 0x06 && class.sub == 0x00;
    let (bars, bar_error) = probe_bars(cfg, bdf, bar_slots, is_host_bridge);
    let mut capabilities = Capabilities::default();
    let status = Status::from_bits_retain(cfg.read16(bdf, STATUS));
    let mut cap_error = None;
    if let Some(head) = cap_head.filter(|_| status.contains(Status::CAPABILITIES_LIST)) {
        cap_error = walk_legacy(cfg, bdf, head, &mut capabilities).err();
        // A PCIe capability found before a legacy break still has an extended list.
        if capabilities.pcie.is_some()
            && let Err(error) = walk_extended(cfg, bdf, &mut capabilities)
        {
            cap_error.get_or_insert(error);
        }
    }
    Function {
        bdf,
        vendor_id: ids as u16,
        device_id: (ids >> 16) as u16,
        revision: class_dword as u8,
        class,
        header_type,
        multi_function: header_byte & 0x80 != 0,
        bridge,
        interrupt_pin: (interrupt >> 8) as u8,
        interrupt_line: interrupt as u8,
        bars,
        capabilities,
        cap_error,
        bar_error,
    }
}
