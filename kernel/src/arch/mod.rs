//! The x86_64 layer: everything that executes privileged instructions.
//!
//! Each module wraps one piece of hardware or one CPU structure behind a
//! small safe interface, and keeps its `unsafe` inside. Nothing here makes
//! policy decisions; `main.rs` and the kernel proper do.

pub mod apic;
pub mod cpu;
pub mod exit;
pub mod gdt;
pub mod idt;
pub mod interrupts;
pub mod paging;
pub mod pit;
pub mod serial;
pub mod syscall;
pub mod tsc;
