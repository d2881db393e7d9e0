//! [`DelayNs`] as a busy-wait on a nanosecond clock (the kernel's
//! `time()` in the image).
//!
//! Bounded twice: by the clock, and by a number of polls, so that a clock
//! that stands still (a kernel that refuses `time()` answers 0) cannot hang
//! the driver core's handshakes and invalidation waits. Each poll is a
//! system call, which takes far longer than the [`NS_PER_POLL`] the bound
//! assumes, so the clock ends every wait where it works.

use embedded_hal::delay::DelayNs;

/// The bound assumes no poll is faster than this.
pub const NS_PER_POLL: u32 = 50;

/// Busy-waits on `now`, which returns nanoseconds since some start.
pub struct ClockDelay<C> {
    now: C,
}

impl<C: FnMut() -> u64> ClockDelay<C> {
    pub const fn new(now: C) -> Self {
        Self { now }
    }
}

impl<C: FnMut() -> u64> DelayNs for ClockDelay<C> {
    fn delay_ns(&mut self, ns: u32) {
        let start = (self.now)();
        let polls = ns / NS_PER_POLL + 1;
        for _ in 0..polls {
            if (self.now)().saturating_sub(start) >= u64::from(ns) {
                return;
            }
            core::hint::spin_loop();
        }
    }
}
