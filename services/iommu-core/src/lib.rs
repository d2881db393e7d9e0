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
//! records), [`prq`] (page requests: the checks before serving one, what a
//! read of the page request queue found), [`source`] (PCI source ids),
//! [`interrupt`] (interrupt remapping entries), [`error`].
//!
//! # Modes, and what grows next
//!
//! Legacy and scalable mode are both implemented with second-level tables
//! ([`Config::mode`]); the difference is confined to [`entry`] and
//! `unit::context` (root halves, 32-byte context entries, a PASID directory
//! and table per device whose RID_PASID entry has PGTT = 2, PASID-cache
//! invalidation), and [`pagetable`] serves both. Next: more PASIDs per
//! device are more PASID table entries plus PASID-selective PASID-cache
//! and IOTLB invalidations; first-level tables (PGTT = 1) would be a second
//! table format beside [`pagetable`].
//!
//! # Page requests
//!
//! Where ECAP.PRS is set, `unit::prq` sets up the page request queue (one
//! frame, 128 descriptors), reads it as Linux's `prq.c` does, sends page
//! group responses (type 9) through the invalidation queue and drains the
//! queue (wait descriptors with PD) for a device going away; [`prq`] holds
//! the checks a request must pass. The model has the queue's registers, a
//! scripted PRI device that issues requests, and a judge of every page
//! group response (`model::prq`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "model"))]
extern crate alloc;

pub mod entry;
pub mod error;
pub mod fault;
pub mod hw;
pub mod interrupt;
pub mod pagetable;
pub mod prq;
pub mod queue;
pub mod source;
pub mod unit;

#[cfg(any(test, feature = "model"))]
pub mod model;

pub use error::{Error, Operation, Unsupported};
pub use fault::{FaultAccess, FaultReason, FaultRecord, FaultSummary};
pub use hw::{DmaMemory, Registers};
pub use interrupt::{InterruptMode, Irte};
pub use pagetable::Access;
pub use prq::{GroupId, Malformed, Overflow, PageGroupResponse, PageRequest, PrqBatch};
pub use source::SourceId;
pub use unit::{Config, DomainId, Leaves, Unit};

#[cfg(test)]
mod tests;
