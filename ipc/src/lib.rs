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
//!   `isa-debug-exit` status codes and the serial markers `xtask` reads).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod abi;
pub mod harness;
pub mod kconfig;
