//! Intel VT-d (DMA remapping) architecture definitions.
//!
//! This crate is the one place that knows how the remapping hardware's
//! registers are laid out and how their capability fields decode, so the
//! kernel's boot report and the IOMMU service cannot disagree about what the
//! hardware offers. It is pure logic over integers: no MMIO, no allocation,
//! no `unsafe`, and every decoder is tested on the host against the values
//! QEMU's `intel-iommu` really reports (see `reference/qemu-vtd.md` §1).
//!
//! - [`regs`]: register offsets with their architectural access width, and
//!   the GCMD/GSTS/FSTS/event-control bit layouts.
//! - [`version`]: the VER register.
//! - [`cap`]: the CAP register ([`Capability`]).
//! - [`ecap`]: the ECAP register ([`ExtendedCapability`]) and which
//!   translation modes it allows.
//! - [`prq`]: page request and page group response descriptors, PQA.
//!
//! `Capability` and `ExtendedCapability` implement `Display` as a one-line,
//! grep-friendly summary (`NAME=value`, every flag as `NAME=0/1`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod cap;
pub mod ecap;
pub mod prq;
pub mod regs;
mod summary;
pub mod version;

pub use cap::{AddressWidth, AddressWidths, Capability, LargePageSizes};
pub use ecap::{ExtendedCapability, TranslationMode};
pub use regs::{Register, Width};
pub use version::Version;

/// Bits `lo..lo + width` of `raw`, shifted down to bit 0.
const fn field(raw: u64, lo: u32, width: u32) -> u64 {
    (raw >> lo) & ((1u64 << width) - 1)
}

/// Whether bit `n` of `raw` is set.
const fn bit(raw: u64, n: u32) -> bool {
    raw & (1u64 << n) != 0
}

#[cfg(test)]
mod tests;
