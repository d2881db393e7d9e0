//! The IOMMU service's logic, kept apart from its system calls so the host
//! can test it against the VT-d model of `faultline-iommu-core`.
//!
//! The service (`main.rs`, the image) owns every VT-d unit's registers. It
//! brings each unit up with the driver core and then serves the `iommu`
//! protocol: a driver asks for a domain for a PCI function it holds and
//! for mappings of DMA buffers it holds, naming both by its own handles.
//! The kernel, asked through [`kernel::Kernel`] for the client of the call
//! being served, turns those handles into a bus/device/function and pinned
//! frames, so a driver can never name another's device or memory.
//!
//! - [`service`]: the requests, the revocation of pins whose owner
//!   stopped, and the bookkeeping (fixed-size; full tables are refusals);
//! - [`kernel`]: the kernel calls the requests need, as a trait;
//! - [`errors`]: core and kernel errors as the protocol's [`IommuError`];
//! - [`report`]: the unit report printed at start, and the mode check;
//! - [`interrupts`]: interrupt remapping for every granted device
//!   interrupt;
//! - [`desk`]: the fault pipeline's side in the service: faults to
//!   handlers, answers, automatic answers, drivers' fault questions;
//! - [`faults`]: DMA fault log lines, rate-limited;
//! - [`frames`]: the frame pool the driver core's tables come from;
//! - [`delay`]: a bounded busy-wait over the kernel's clock.
//!
//! The image adds the two layers that cannot run on the host: register
//! and memory access (`mmio.rs`, `memory.rs`, the only `unsafe`) and the
//! receive loop (`main.rs`).
//!
//! [`IommuError`]: faultline_ipc::protocol::iommu::IommuError
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod delay;
pub mod desk;
pub mod errors;
pub mod faults;
pub mod frames;
pub mod interrupts;
pub mod kernel;
pub mod report;
pub mod service;

#[cfg(test)]
mod tests;
