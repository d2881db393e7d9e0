//! PCI enumeration over an abstract configuration space.
//!
//! The kernel finds its devices here (never from hard-coded BDFs or BARs):
//! it implements [`ConfigSpace`] over the ECAM window ACPI's MCFG names and
//! calls [`enumerate()`] for the window's bus range. The result, one
//! [`Function`] per function with its identity, class, sized BARs and
//! decoded capabilities, feeds the boot report and the PCI-device grants of
//! a deployment. Everything here is pure logic over config-space dwords,
//! tested on the host against a config-space model (`fake`) that behaves
//! like QEMU's q35.
//!
//! - [`config`]: [`Bdf`], the [`ConfigSpace`] trait, header register offsets.
//! - [`enumerate()`]: the bus walk and [`Function`].
//! - [`bar`]: BAR decoding and sizing.
//! - [`capability`] and [`extended`]: the legacy and PCIe extended lists.
//! - [`class`]: class codes and their names.

pub mod bar;
pub mod capability;
pub mod class;
pub mod config;
mod enumerate;
pub mod extended;

pub use bar::{Bar, BarError, BarKind};
pub use capability::{
    BarLocation, CapError, Capabilities, CapabilityEntry, CapabilityId, Msi, MsiX, Pcie,
    PciePortType,
};
pub use class::{ClassCode, class_name};
pub use config::{Bdf, Command, ConfigSpace, Status};
pub use enumerate::{
    BridgeBuses, Function, HeaderType, MAX_FUNCTIONS, PciError, enumerate, enumerate_into,
};
pub use extended::{Ats, Pasid, Pri};

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
