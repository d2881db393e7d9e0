//! Faultline's boot path: from QEMU's PVH entry to the kernel.
//!
//! QEMU loads the image through PVH (an ELF note of type 18 names a 32-bit
//! entry point). The entry code in [`entry`] runs in 32-bit protected mode
//! with paging off, builds a minimal identity map plus the higher-half kernel
//! window, switches to long mode and calls the kernel's Rust entry point.
//! Before anything else can touch low memory, the PVH `start_info` (memory
//! map, RSDP address, command line) is copied into a typed [`BootInfo`] by
//! [`pvh`], which is pure code and tested on the host.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod info;
pub mod pvh;

#[cfg(target_os = "none")]
pub mod entry;

pub use info::{BootInfo, MemoryKind, MemoryRegion};
