//! What cases share: the failure reason type, the `fail!` and `ensure!`
//! macros, checks of a refusal's exact code, raw calls that decode their
//! answer, and a look at pending notification bits that cannot hang.

use conformance_peer::Reader;
use faultline_ipc::abi::{Error, MAX_MESSAGE, NOTIFY_TIMER};
use faultline_ipc::channel::Handle;
use userlib::{SysError, call, set_timer, time, wait};

/// Why a case failed: one bounded line (services have no heap).
pub type Why = heapless::String<200>;

/// Formats a [`Why`] (cut at its capacity).
pub fn why(args: core::fmt::Arguments<'_>) -> Why {
    let mut line = userlib::logging::Line::new();
    let _ = core::fmt::write(&mut line, args);
    let mut w = Why::new();
    for c in line.as_str().chars() {
        if w.push(c).is_err() {
            break;
        }
    }
    w
}

/// Returns `Err` from the case with a formatted reason.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::check::why(format_args!($($arg)*)))
    };
}

/// Fails the case with the reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::fail!($($arg)*);
        }
    };
}

/// `r` must be exactly the refusal `want`.
pub fn refused<T: core::fmt::Debug>(
    what: &str,
    r: Result<T, SysError>,
    want: Error,
) -> Result<(), Why> {
    match r {
        Err(SysError::Kernel(e)) if e == want => Ok(()),
        other => fail!("{what}: want {want:?}, got {other:?}"),
    }
}

/// A raw call whose answer must be `len` bytes; returns it for reading.
pub fn ask<'a>(
    what: &str,
    h: Handle,
    request: &[u8],
    out: &'a mut [u8; MAX_MESSAGE],
    len: usize,
) -> Result<Reader<'a>, Why> {
    match call(h, request, out) {
        Ok(n) if n == len => Ok(Reader::new(&out[..n])),
        Ok(n) => fail!("{what}: {n}-byte answer, want {len}"),
        Err(e) => fail!("{what}: call refused: {e}"),
    }
}

/// The bits of `mask` pending now (cleared), without blocking for long:
/// a timer 5 ms out bounds the wait, and is waited for before returning
/// so no stray timer bit is left behind.
pub fn pending(mask: u32) -> Result<u32, Why> {
    if let Err(e) = set_timer(time().ns + 5_000_000) {
        fail!("set_timer refused: {e}");
    }
    let bits = match wait(mask | NOTIFY_TIMER) {
        Ok(b) => b,
        Err(e) => fail!("wait refused: {e}"),
    };
    if bits & NOTIFY_TIMER == 0
        && let Err(e) = wait(NOTIFY_TIMER)
    {
        fail!("wait for the timer refused: {e}");
    }
    Ok(bits & mask)
}
