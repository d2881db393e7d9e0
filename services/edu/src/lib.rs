//! QEMU's edu device as Faultline's drivers use it: shared by every
//! service that drives an edu (the edu driver, the fault scenarios'
//! driver), so each is only its checks.
//!
//! - [`device`]: the registers (DMA engine, interrupt status, command);
//! - [`transfer`]: one DMA transfer, from command to completion interrupt;
//! - [`page`]: a 4 KiB DMA page, filled and compared with volatile access;
//! - [`domain`]: the device's DMA domain through the IOMMU service;
//! - [`turn`]: taking turns at faulting with another edu's driver.
#![no_std]
#![deny(unsafe_code)]

pub mod device;
pub mod domain;
pub mod page;
pub mod transfer;
pub mod turn;
