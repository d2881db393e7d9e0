//! The TSC: the kernel's clock, calibrated once against the PIT.
//!
//! [`TscDelay`] implements `embedded_hal::delay::DelayNs` on it, so drivers
//! written against embedded-hal (the VT-d driver's bounded polls) get real
//! delays in the kernel and instant ones in host tests.

use core::sync::atomic::{AtomicU64, Ordering};
use embedded_hal::delay::DelayNs;

static HZ: AtomicU64 = AtomicU64::new(0);

/// Reads the time-stamp counter.
pub fn read() -> u64 {
    // SAFETY: RDTSC is available on every x86_64 CPU and CR4.TSD is clear.
    unsafe { x86::time::rdtsc() }
}

/// Measures the TSC frequency with the PIT: three 10 ms windows, median.
pub fn calibrate() -> Result<u64, super::pit::PitTimeout> {
    const WINDOW_TICKS: u16 = 11_932; // 10 ms at PIT_HZ
    // Give up if a 10 ms window takes more than 2^36 cycles (>10 s at 6 GHz).
    const MAX_CYCLES: u64 = 1 << 36;
    let mut samples = [0u64; 3];
    for s in &mut samples {
        *s = super::pit::measure_tsc(WINDOW_TICKS, MAX_CYCLES)?;
    }
    samples.sort_unstable();
    let hz = samples[1] * super::pit::PIT_HZ / u64::from(WINDOW_TICKS);
    HZ.store(hz, Ordering::Relaxed);
    Ok(hz)
}

/// The calibrated frequency in Hz (0 before [`calibrate`]).
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
