//! The fault-handler conformance harness: the IOMMU service's side of the
//! `faults` protocol, played by a service that judges the handler instead
//! of serving devices.
//!
//! A fault handler is whatever service a deployment grants a device's
//! faults to; Faultline's users write their own. The harness takes the
//! handler's registration as the IOMMU service would (the kernel resolves
//! its grant and deadline), then runs fixed cases ([`cases`]), each a set
//! of DMA faults and page groups delivered as the handler pulls, and
//! checks ([`judge`]) that the handler keeps the rules the pipeline relies
//! on: each fault answered exactly once, within its deadline, under the
//! token it was given; nothing answered that was never delivered; and the
//! handler still pulling at the end. Its replies are the IOMMU service's
//! (`Answered`, or the same typed refusals), so a handler sees what it
//! would see in a real deployment.
//!
//! One line per case (`PASS name` or `FAIL name: <fault and rule>`) and a
//! final `handler conformance: N passed, M failed`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod cases;
pub mod judge;

#[cfg(test)]
mod tests;
