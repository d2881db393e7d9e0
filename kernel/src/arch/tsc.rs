//! The TSC: the kernel's clock. Its frequency comes from the command line
//! or CPUID when they state it (see [`crate::tscfreq`] for the order) and
//! is measured against the PIT only when nothing does.
//!
//! [`TscDelay`] implements `embedded_hal::delay::DelayNs` on it, so drivers
//! written against embedded-hal (the VT-d driver's bounded polls) get real
//! delays in the kernel and instant ones in host tests.

use crate::tscfreq::{self, CpuidClock, Frequency, Source};
use core::sync::atomic::{AtomicU64, Ordering};
use embedded_hal::delay::DelayNs;
use x86::cpuid::cpuid;

static HZ: AtomicU64 = AtomicU64::new(0);
/// The frequency and its source, once [`calibrate`] has run.
static FREQUENCY: hermit_sync::OnceCell<Frequency> = hermit_sync::OnceCell::new();

/// Reads the time-stamp counter.
#[inline]
pub fn read() -> u64 {
    // SAFETY: RDTSC is available on every x86_64 CPU and CR4.TSD is clear.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The CPUID values the frequency choice depends on.
pub fn cpuid_clock() -> CpuidClock {
    // Each CPUID is an exit under a hypervisor: ask only for leaves that
    // exist.
    let max_leaf = cpuid!(0).eax;
    let leaf_15 = if max_leaf >= 0x15 {
        let r = cpuid!(0x15);
        [r.eax, r.ebx, r.ecx]
    } else {
        [0; 3]
    };
    let leaf_16_mhz = if max_leaf >= 0x16 {
        cpuid!(0x16).eax & 0xffff
    } else {
        0
    };
    let hypervisor = cpuid!(1).ecx & (1 << 31) != 0;
    let hv_max_leaf = if hypervisor {
        cpuid!(0x4000_0000).eax
    } else {
        0
    };
    let hv_timing = if hypervisor && (0x4000_0010..=0x4000_00ff).contains(&hv_max_leaf) {
        let r = cpuid!(0x4000_0010);
        [r.eax, r.ebx]
    } else {
        [0, 0]
    };
    CpuidClock {
        max_leaf,
        leaf_15,
        leaf_16_mhz,
        hypervisor,
        hv_max_leaf,
        hv_timing,
    }
}

/// What [`calibrate`] found (None before it ran).
pub fn frequency() -> Option<Frequency> {
    FREQUENCY.get().copied()
}

/// Finds the TSC frequency: stated by `cmdline_khz` or CPUID, or measured
/// against the PIT. Needs nothing but CPUID and port I/O, so it runs first
/// thing, and every later log line carries a time.
pub fn calibrate(cmdline_khz: Option<u32>) -> Result<Frequency, super::pit::PitTimeout> {
    let freq = match tscfreq::choose(cmdline_khz, &cpuid_clock()) {
        Some(f) => f,
        None => Frequency {
            tsc_hz: calibrate_with_pit()?,
            source: Source::Pit,
            lapic_hz: None,
        },
    };
    HZ.store(freq.tsc_hz, Ordering::Relaxed);
    let _ = FREQUENCY.set(freq);
    Ok(freq)
}

/// Measures the TSC frequency with the PIT: three 5 ms windows, median.
fn calibrate_with_pit() -> Result<u64, super::pit::PitTimeout> {
    const WINDOW_TICKS: u16 = 5_966; // 5 ms at PIT_HZ
    // Give up if a 10 ms window takes more than 2^36 cycles (>10 s at 6 GHz).
    const MAX_CYCLES: u64 = 1 << 36;
    let mut samples = [0u64; 3];
    for s in &mut samples {
        *s = super::pit::measure_tsc(WINDOW_TICKS, MAX_CYCLES)?;
    }
    samples.sort_unstable();
    Ok(samples[1] * super::pit::PIT_HZ / u64::from(WINDOW_TICKS))
}

/// The frequency in Hz (0 before [`calibrate`]).
pub fn hz() -> u64 {
    HZ.load(Ordering::Relaxed)
}

/// Converts a TSC interval to nanoseconds (0 before calibration).
pub fn cycles_to_ns(cycles: u64) -> u64 {
    let hz = hz();
    if hz == 0 {
        return 0;
    }
    (u128::from(cycles) * 1_000_000_000 / u128::from(hz)) as u64
}

/// Busy-waits on the calibrated TSC.
#[derive(Clone, Copy, Debug, Default)]
pub struct TscDelay;

impl DelayNs for TscDelay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = (u128::from(ns) * u128::from(hz()) / 1_000_000_000) as u64;
        let start = read();
        while read().wrapping_sub(start) < cycles {
            core::hint::spin_loop();
        }
    }
}
