//! The local APIC, in x2APIC mode when the CPU has it and xAPIC (MMIO)
//! otherwise, and its timer in periodic mode.
//!
//! Register offsets are the xAPIC MMIO offsets; in x2APIC mode the same
//! register is MSR `0x800 + offset / 16`.

use super::interrupts::{SPURIOUS_VECTOR, TIMER_VECTOR};
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use x86::msr::{IA32_APIC_BASE, rdmsr, wrmsr};

const REG_ID: u32 = 0x20;
const REG_VERSION: u32 = 0x30;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ESR: u32 = 0x280;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const LVT_NMI: u32 = 0b100 << 8;
const DIVIDE_BY_16: u32 = 0b0011;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

const MODE_NONE: u8 = 0;
const MODE_X2APIC: u8 = 1;
const MODE_XAPIC: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(MODE_NONE);
/// Virtual address of the xAPIC register page (xAPIC mode only).
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);

/// How the LAPIC is being driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// MSR access (x2APIC).
    X2Apic,
    /// MMIO access at the given virtual address (xAPIC).
    XApic,
}

fn read(reg: u32) -> u32 {
    match MODE.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is enabled, so this MSR exists; reading the
        // registers used here has no side effects.
        MODE_X2APIC => unsafe { rdmsr(0x800 + (reg >> 4)) as u32 },
        MODE_XAPIC => {
            let addr = XAPIC_BASE.load(Ordering::Relaxed) + u64::from(reg);
            // SAFETY: the xAPIC page is mapped uncached at XAPIC_BASE and
            // `reg` is one of the 16-byte-aligned register offsets above.
            unsafe { core::ptr::read_volatile(addr as *const u32) }
        }
        _ => 0,
    }
}

fn write(reg: u32, value: u32) {
    match MODE.load(Ordering::Relaxed) {
        // SAFETY: as in `read`; the values written are well-formed for
        // each register (see the callers).
        MODE_X2APIC => unsafe { wrmsr(0x800 + (reg >> 4), u64::from(value)) },
        MODE_XAPIC => {
            let addr = XAPIC_BASE.load(Ordering::Relaxed) + u64::from(reg);
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
        }
        _ => {}
    }
}

/// Enables the LAPIC: x2APIC if `x2apic`, otherwise xAPIC through the page
/// mapped at `xapic_virt`. Masks LINT0 (the legacy PIC is not used), routes
/// LINT1 as NMI and masks the timer until [`start_periodic`].
pub fn init(x2apic: bool, xapic_virt: u64) -> Mode {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting the enable
    // bit (and the x2APIC bit when CPUID reports it) keeps the base address.
    let base = unsafe { rdmsr(IA32_APIC_BASE) };
    let mode = if x2apic {
        // SAFETY: see above.
        unsafe { wrmsr(IA32_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC) };
        MODE.store(MODE_X2APIC, Ordering::Relaxed);
        Mode::X2Apic
    } else {
        // SAFETY: see above.
        unsafe { wrmsr(IA32_APIC_BASE, base | APIC_BASE_ENABLE) };
        XAPIC_BASE.store(xapic_virt, Ordering::Relaxed);
        MODE.store(MODE_XAPIC, Ordering::Relaxed);
        Mode::XApic
    };
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_NMI);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_ESR, 0);
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    mode
}

/// The physical base of the xAPIC register page, from IA32_APIC_BASE.
pub fn xapic_phys_base() -> u64 {
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    unsafe { rdmsr(IA32_APIC_BASE) & 0x000f_ffff_ffff_f000 }
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    match MODE.load(Ordering::Relaxed) {
        MODE_X2APIC => read(REG_ID),
        _ => read(REG_ID) >> 24,
    }
}

/// The LAPIC version register.
pub fn version() -> u32 {
    read(REG_VERSION)
}

/// Signals end of interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Measures how many timer counts (divide-by-16) elapse while `wait` runs.
pub fn measure_timer(wait: impl FnOnce()) -> u32 {
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INIT, u32::MAX);
    wait();
    let remaining = read(REG_TIMER_CURRENT);
    write(REG_TIMER_INIT, 0);
    u32::MAX - remaining
}

/// Starts the timer in periodic mode, firing every `counts` (divide-by-16).
pub fn start_periodic(counts: u32) {
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INIT, counts.max(1));
}

/// Sends an NMI to this CPU (the interrupt command register, NMI delivery,
/// addressed by this CPU's APIC ID), for the boot self-test of the NMI path.
pub fn send_nmi_to_self() {
    const REG_ICR_LOW: u32 = 0x300;
    const REG_ICR_HIGH: u32 = 0x310;
    const DELIVERY_NMI: u32 = 0b100 << 8;
    let me = id();
    match MODE.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is on, so the ICR is MSR 0x830, written as
        // one 64-bit value (destination in the upper half).
        MODE_X2APIC => unsafe { wrmsr(0x830, (u64::from(me) << 32) | u64::from(DELIVERY_NMI)) },
        _ => {
            write(REG_ICR_HIGH, (me & 0xff) << 24);
            write(REG_ICR_LOW, DELIVERY_NMI);
        }
    }
}
