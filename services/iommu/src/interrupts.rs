//! Interrupt remapping for one unit: every device interrupt the kernel
//! granted gets a remapping entry that accepts only that function and
//! yields only the granted vector, and the kernel then points the
//! function's MSI at it.
//!
//! The kernel's interrupt lines are asked for one by one from line 0
//! ([`InterruptRoutes::route`]) until the kernel says there are no more;
//! a line that is not a PCI function's MSI (the unit's own fault event
//! interrupt, which the unit sends without remapping) is skipped. Line `i`
//! uses entry `i`. The entries are written before remapping is turned on,
//! and the MSIs repointed after, so no granted interrupt is ever left
//! naming an entry that does not exist. No device can raise an interrupt
//! before this runs: bus mastering, which MSI needs, stays refused until
//! this service attaches the device, and it attaches nothing before every
//! unit is up.

use embedded_hal::delay::DelayNs;
use faultline_iommu_core::{DmaMemory, Error, InterruptMode, Irte, Registers, SourceId, Unit};
use userlib::{IrqRoute, SysError};

/// Most device interrupts one unit remaps (the kernel has 16 lines; the
/// list lives on the service's small stack).
pub const MAX_LINES: usize = 32;

/// The kernel calls interrupt remapping needs.
pub trait InterruptRoutes {
    /// Interrupt line `irq`: `Ok(Some)` for a PCI function's MSI, `Ok(None)`
    /// for another kind of line, `Err(Kernel(NotFound))` past the last.
    fn route(&mut self, irq: u8) -> Result<Option<IrqRoute>, SysError>;
    /// Line `irq`'s MSI now names remapping entry `irte`.
    fn remap(&mut self, irq: u8, irte: u16) -> Result<(), SysError>;
}

/// Why remapping is not on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemapError {
    /// Asking the kernel for line `irq` failed.
    Route { irq: u8, error: SysError },
    /// More device interrupts than the table holds.
    TooManyLines,
    /// The driver core could not turn remapping on.
    Unit(Error),
    /// The kernel refused to repoint line `irq`'s MSI; remapping is on and
    /// the lines before it are remapped.
    Remap { irq: u8, error: SysError },
}

impl core::fmt::Display for RemapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Route { irq, error } => write!(f, "interrupt line {irq}: {error}"),
            Self::TooManyLines => write!(f, "more than {MAX_LINES} device interrupts"),
            Self::Unit(e) => write!(f, "{e}"),
            Self::Remap { irq, error } => {
                write!(f, "repointing interrupt line {irq} refused ({error})")
            }
        }
    }
}

/// Turns remapping on for every device interrupt `routes` knows; returns
/// how many there are.
pub fn remap_interrupts<R: Registers, M: DmaMemory, D: DelayNs>(
    unit: &mut Unit<R, M, D>,
    routes: &mut impl InterruptRoutes,
) -> Result<usize, RemapError> {
    let mut lines: heapless::Vec<(u16, Irte), MAX_LINES> = heapless::Vec::new();
    for irq in 0..=u8::MAX {
        let route = match routes.route(irq) {
            Ok(Some(route)) => route,
            Ok(None) => continue,
            Err(SysError::Kernel(faultline_ipc::abi::Error::NotFound)) => break,
            Err(error) => return Err(RemapError::Route { irq, error }),
        };
        let irte = Irte {
            vector: route.vector,
            apic_id: route.apic_id,
            source: SourceId(route.bdf),
        };
        lines
            .push((u16::from(irq), irte))
            .map_err(|_| RemapError::TooManyLines)?;
    }
    let wide = lines.iter().map(|(_, l)| l.apic_id).max().unwrap_or(0);
    let mode = InterruptMode::for_apic_id(wide);
    unit.enable_interrupt_remapping(mode, &lines)
        .map_err(RemapError::Unit)?;
    for &(index, _) in &lines {
        let irq = index as u8;
        routes
            .remap(irq, index)
            .map_err(|error| RemapError::Remap { irq, error })?;
    }
    Ok(lines.len())
}
