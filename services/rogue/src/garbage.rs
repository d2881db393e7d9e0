//! Garbage arguments for every system call, and a tally of what the kernel
//! answered.
//!
//! Every garbage value is something that is *never* an address mapped in
//! this service: a kernel-half address, a non-canonical one, a huge
//! number, or a small number (below 0x1000: page 0 is never mapped, and
//! services are linked at 0x400000). So whichever argument the kernel
//! reads as a pointer, it cannot write into our memory, which is what
//! makes the raw calls below sound.

use faultline_ipc::abi::{Error, NOTIFY_TIMER, Sysnum};
use userlib::logging::Line;
use userlib::sys::syscall6;
use userlib::{SysError, check, set_timer, time};

/// xorshift64: reproducible garbage.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value never mapped in this service's address space.
    pub fn garbage(&mut self) -> u64 {
        const SMALL: [u64; 11] = [0, 1, 2, 4, 8, 23, 24, 255, 256, 257, 4096];
        let r = self.next();
        match r % 8 {
            0 => self.next() | 1 << 63,
            1 => 0xffff_ffff_8000_0000 + self.next() % 0x4000_0000,
            2 => 0xffff_8000_0000_0000 | (self.next() & 0x7fff_ffff_ffff),
            3 => 0x0000_8000_0000_0000 + (self.next() & 0x7fff_ffff_ffff),
            4 => self.next() % 0x1000,
            5 => SMALL[(self.next() % SMALL.len() as u64) as usize],
            6 => u64::MAX - self.next() % 16,
            _ => (0xffff_ffff_8000_0000 + self.next() % 0x1000_0000) | 3,
        }
    }
}

/// What the kernel answered, counted.
#[derive(Default)]
pub struct Tally {
    pub calls: u32,
    pub successes: u32,
    pub unexpected: u32,
    codes: [u32; 16],
}

impl Tally {
    pub fn refused(&self) -> u32 {
        self.calls - self.successes - self.unexpected
    }

    /// Counts a result; `allowed` refusals (or a success, if `ok_allowed`)
    /// are expected, anything else is logged as UNEXPECTED.
    pub fn count<T: core::fmt::Debug>(
        &mut self,
        what: core::fmt::Arguments<'_>,
        result: Result<T, SysError>,
        allowed: &[Error],
        ok_allowed: bool,
    ) {
        self.calls += 1;
        match result {
            Ok(_) if ok_allowed => self.successes += 1,
            Err(SysError::Kernel(e)) if allowed.contains(&e) => {
                self.codes[e as usize % 16] += 1;
            }
            other => {
                self.unexpected += 1;
                userlib::log!("rogue: UNEXPECTED {what}: {other:?}");
            }
        }
    }

    /// Logs `rogue: <prefix> <code> <n>, ...` for the refusals seen.
    pub fn log_codes(&self, prefix: &str) {
        use core::fmt::Write;
        let mut line = Line::new();
        let _ = write!(line, "rogue: {prefix}");
        let mut first = true;
        for e in Error::ALL {
            let n = self.codes[e as usize % 16];
            if n > 0 {
                let sep = if first { " " } else { ", " };
                let _ = write!(line, "{sep}{} {n}", e.name());
                first = false;
            }
        }
        let _ = userlib::log(line.as_str());
    }
}

/// Rounds of garbage per system call.
const ROUNDS: u32 = 16;

/// Calls every system call but `Exit` (which would end us) with garbage
/// `ROUNDS` times, and some numbers that name no call.
#[allow(unsafe_code)]
pub fn every_syscall(rng: &mut XorShift, tally: &mut Tally) {
    use Error::*;
    for nr in Sysnum::ALL {
        if nr == Sysnum::Exit {
            continue;
        }
        for _ in 0..ROUNDS {
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = rng.garbage();
            }
            // Recv and Wait block until something arrives: make sure the
            // timer does, so a call the kernel accepts still returns.
            match nr {
                Sysnum::Recv => args[2] |= u64::from(NOTIFY_TIMER),
                Sysnum::Wait => args[0] |= u64::from(NOTIFY_TIMER),
                _ => {}
            }
            if matches!(nr, Sysnum::Recv | Sysnum::Wait) {
                let _ = set_timer(time().ns + 1_000_000);
            }
            // SAFETY: every argument is a value never mapped in this
            // service (see the module doc), so the kernel refuses any
            // write through it; no Rust object can be touched.
            let r = check(unsafe { syscall6(nr as u64, args) });
            let refusals = [
                BadHandle,
                WrongKind,
                NoRight,
                BadPointer,
                BadLength,
                BadArgument,
                PeerDead,
                StaleToken,
                OutOfMemory,
                NotPermitted,
                NotFound,
                Truncated,
            ];
            tally.count(format_args!("garbage {nr:?}"), r, &refusals, true);
        }
    }
    let past_last = Sysnum::ALL.len() as u64;
    for nr in [past_last, past_last + 1, 255, 1 << 32, u64::MAX] {
        let args = [rng.garbage(), rng.garbage(), 0, 0, 0, 0];
        // SAFETY: no call has these numbers; the kernel reads nothing.
        let r = check(unsafe { syscall6(nr, args) });
        tally.count(
            format_args!("syscall number {nr:#x}"),
            r,
            &[BadSyscall],
            false,
        );
    }
    // A garbage deadline may lie far ahead: cancel it.
    let _ = set_timer(0);
}
