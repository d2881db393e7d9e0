//! The Faultline kernel.
//!
//! Everything the kernel knows about the machine that can be expressed as
//! pure logic over bytes lives in this library and is tested on the host:
//! ACPI table parsing ([`acpi`]), PCI enumeration over an abstract
//! configuration space ([`pci`]), the physical memory map, frame allocator and
//! page-table builder ([`mm`]), the command line ([`cmdline`]), the choice of
//! TSC frequency source ([`tscfreq`]). The code that
//! touches the CPU (descriptor tables, exceptions, the LAPIC, port I/O) lives
//! in [`arch`], and the bring-up glue that joins the two (console, memory,
//! platform discovery, boot report) is only built for the bare-metal target;
//! `src/main.rs` runs it in order.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod acpi;
pub mod cmdline;
pub mod kern;
pub mod mm;
pub mod pci;
pub mod selftest;
pub mod tscfreq;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod memory;
#[cfg(target_os = "none")]
pub mod platform;
#[cfg(target_os = "none")]
pub mod report;
#[cfg(target_os = "none")]
pub mod services;
