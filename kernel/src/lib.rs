//! The Faultline kernel.
//!
//! Everything the kernel knows about the machine that can be expressed as
//! pure logic over bytes lives in this library and is tested on the host:
//! ACPI table parsing ([`acpi`]), PCI enumeration over an abstract
//! configuration space ([`pci`]), the physical memory map, frame allocator and
//! page-table builder ([`mm`]). The code that touches the CPU (descriptor
//! tables, exceptions, the LAPIC, port I/O) lives in [`arch`] and is only
//! built for the bare-metal target; `src/main.rs` ties the two together into
//! the bootable image.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod acpi;
pub mod mm;
pub mod pci;

#[cfg(target_os = "none")]
pub mod arch;
