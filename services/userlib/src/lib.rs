//! The runtime every Faultline service links.
//!
//! - [`sys`]: the one `syscall` instruction (inline assembly, bare metal
//!   only) behind [`sys::syscall6`];
//! - safe wrappers, one per [`faultline_ipc::abi::Sysnum`], re-exported
//!   here: [`log`], [`exit`], [`call`], [`recv`], [`reply`], ...; each
//!   returns `Result<_, SysError>` where [`SysError`] is the ABI's error or
//!   an unknown code;
//! - [`KernelTransport`]: the [`faultline_ipc::channel::Transport`] that
//!   typed channels use in a service;
//! - [`rt`]: the entry point ([`service_entry!`]), the panic handler (logs
//!   `panicked at file:line: message`, exits with code 101), and
//!   deliberate faults for crash tests;
//! - [`log!`]: `format!`-style logging into one bounded line;
//! - [`stats`]: a fixed-size latency histogram for benchmarks;
//! - `heap` (feature `heap`): a global allocator over a static arena, for
//!   services that need `alloc`.
//!
//! Everything but the assembly builds and is tested on the host; there the
//! system calls answer `BadSyscall` (there is no kernel to ask).
//!
//! Linking: a service's `build.rs` passes `service.ld` (next to this
//! crate's manifest) to the linker for bare-metal builds only.
#![cfg_attr(not(test), no_std)]

#[cfg(feature = "heap")]
pub mod heap;
pub mod logging;
pub mod rt;
pub mod stats;
pub mod sys;
mod syscalls;
mod transport;

pub use faultline_ipc as ipc;
pub use syscalls::*;
pub use transport::KernelTransport;
