//! Faultline's shared contracts: what crosses a boundary between the
//! kernel, the services, the boot code and the host tooling.
//!
//! Everything here is `no_std`, allocation-free and tested on the host, so
//! the kernel, every service and `xtask` agree on the same definitions by
//! construction.
//!
//! - [`abi`]: the system-call ABI (numbers, registers, error codes, the
//!   IPC rules);
//! - [`kconfig`]: the deployment as the kernel receives it (postcard);
//! - [`harness`]: how a run reports its outcome to the host (the
//!   `isa-debug-exit` status codes and the serial markers `xtask` reads);
//! - [`wire`]: the message envelope (protocol id, version, postcard body)
//!   and strict decoding into typed [`wire::WireError`]s;
//! - [`protocol`]: the protocols, each a pair of request/response enums;
//! - [`channel`]: typed clients and servers over a [`channel::Transport`]
//!   (the kernel in a service, `memory` in host tests);
//! - [`publisher`]: a server that publishes events to pulling clients
//!   without ever waiting for one;
//! - `memory` (feature `memory`, host only): an in-memory model of the
//!   kernel's channel semantics.
#![cfg_attr(not(any(test, feature = "memory")), no_std)]
#![forbid(unsafe_code)]

pub mod abi;
pub mod channel;
pub mod harness;
pub mod kconfig;
#[cfg(feature = "memory")]
pub mod memory;
pub mod protocol;
pub mod publisher;
mod strict;
pub mod wire;
