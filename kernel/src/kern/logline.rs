//! The rules for services' console lines: a byte budget per service and
//! escaping, as pure logic (the glue in `services::log` prints).
//!
//! The console is a polled UART and the kernel runs with interrupts off,
//! so every byte a service logs is CPU time taken from everyone. Each
//! service has a byte budget that refills at a fixed rate (a token
//! bucket); a line that does not fit is dropped and counted. Every byte
//! outside printable ASCII is escaped, so a service's line is always
//! exactly one console line and cannot imitate a kernel line.

use core::fmt::Write;

/// Bytes a service may log at once.
pub const LOG_BURST_BYTES: u64 = 4096;
/// Bytes per second a service's budget refills by.
pub const LOG_BYTES_PER_SEC: u64 = 16384;

/// One service's console budget.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogBudget {
    /// Bytes available (scaled: one byte = 1e9 units, so refills are exact).
    credit: u64,
    /// When `credit` was last brought up to date (ns since boot).
    updated_ns: u64,
    started: bool,
    /// Lines dropped since the last report.
    pub dropped: u32,
}

impl LogBudget {
    const UNIT: u64 = 1_000_000_000;

    /// Takes `bytes` from the budget at `now_ns`; false if they do not fit.
    pub fn take(&mut self, now_ns: u64, bytes: u64) -> bool {
        let cap = LOG_BURST_BYTES * Self::UNIT;
        if !self.started {
            self.started = true;
            self.credit = cap;
        } else {
            let elapsed = now_ns.saturating_sub(self.updated_ns);
            self.credit = self
                .credit
                .saturating_add(elapsed.saturating_mul(LOG_BYTES_PER_SEC))
                .min(cap);
        }
        self.updated_ns = now_ns;
        let cost = bytes.saturating_mul(Self::UNIT);
        if cost > self.credit {
            return false;
        }
        self.credit -= cost;
        true
    }
}

pub fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// Writes `bytes` with everything but printable ASCII escaped.
pub fn write_escaped(out: &mut dyn Write, bytes: &[u8]) -> core::fmt::Result {
    for &b in bytes {
        match b {
            b'\\' => out.write_str("\\\\")?,
            b'\n' => out.write_str("\\n")?,
            b'\r' => out.write_str("\\r")?,
            b'\t' => out.write_str("\\t")?,
            0x20..=0x7e => out.write_char(b as char)?,
            _ => write!(out, "\\x{b:02x}")?,
        }
    }
    Ok(())
}

/// Bytes [`write_escaped`] writes for `bytes`.
pub fn escaped_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| match b {
            b'\\' | b'\n' | b'\r' | b'\t' => 2,
            0x20..=0x7e => 1,
            _ => 4,
        })
        .sum()
}
