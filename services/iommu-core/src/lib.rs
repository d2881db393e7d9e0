//! The VT-d driver core of Faultline's IOMMU service.
//!
//! Everything the IOMMU service does to a remapping unit that is not IPC
//! lives here: bring-up (root table, queued invalidation, translation on),
//! one domain per attached device with its own second-level page tables,
//! map/unmap with the invalidations the hardware needs, and draining the
//! fault recording registers into typed [`FaultRecord`]s. It is generic over
//! three small traits so the same code drives QEMU's `intel-iommu` through
//! MMIO and, under `cargo test`, the strict VT-d model (`model`, behind the `model` feature):
//!
//! - [`Registers`]: 32- and 64-bit register reads and writes at an offset.
//!   The core only reaches it through [`hw::Mmio`], which always uses the
//!   architectural width from `faultline_vtd::regs` (QEMU aborts on a
//!   64-bit write to a 32-bit register).
//! - [`DmaMemory`]: zeroed 4 KiB frames whose physical address the core
//!   knows, 64-bit reads/writes into them, and a cache flush for units that
//!   do not snoop (ECAP.C = 0).
//! - [`embedded_hal::delay::DelayNs`]: every GCMD→GSTS handshake and every
//!   invalidation wait polls with a bounded delay and ends in
//!   [`Error::Timeout`].
//!
//! Modules: [`hw`] (the traits), [`unit`](mod@unit) (the driver core), [`pagetable`]
//! (second-level tables), [`entry`] (root/context/PTE encodings),
//! [`queue`] (invalidation descriptors and the queue), [`fault`] (fault
//! records), [`source`] (PCI source ids), [`error`].
//!
//! # Growing into scalable mode and page requests
//!
//! Only legacy mode is implemented. The shape leaves room for the rest:
//! root/context encodings are isolated in [`entry`], so a scalable-mode
//! variant (RTADDR.TTM = 01, 32-byte context entries pointing at a PASID
//! directory and table with PGTT = 2) adds encoders there and a `Mode`
//! switch in [`unit::Unit::bring_up`]; the second-level tables in
//! [`pagetable`] are reused unchanged because a PGTT = 2 PASID entry points
//! at the same tables. The queue in [`queue`] takes any 128-bit descriptor,
//! so PASID-cache (type 7) and page group responses (type 9) are new
//! constructors; 256-bit descriptors (IQA.DW) only change the slot size.
//! The page request queue is one more DMA frame plus PQH/PQT/PQA/PRS, drained
//! like the fault records in [`fault`]; the model grows the same way.
#![cfg_attr(not(any(test, feature = "model")), no_std)]
#![forbid(unsafe_code)]

pub mod entry;
pub mod error;
pub mod fault;
pub mod hw;
pub mod pagetable;
pub mod queue;
pub mod source;
pub mod unit;

#[cfg(any(test, feature = "model"))]
pub mod model;

pub use error::{Error, Operation, Unsupported};
pub use fault::{FaultAccess, FaultReason, FaultRecord, FaultSummary};
pub use hw::{DmaMemory, Registers};
pub use pagetable::Access;
pub use source::SourceId;
pub use unit::{Config, DomainId, Unit};

#[cfg(test)]
mod tests;
