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

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn escaped(bytes: &[u8]) -> String {
        let mut s = String::new();
        write_escaped(&mut s, bytes).unwrap();
        assert_eq!(s.len(), escaped_len(bytes), "{bytes:?}");
        s
    }

    #[test]
    fn control_characters_cannot_start_a_new_line() {
        assert_eq!(
            escaped(b"ok\nfaultline: shutdown\r\x1b[2J\t\\"),
            "ok\\nfaultline: shutdown\\r\\x1b[2J\\t\\\\"
        );
        assert_eq!(escaped(&[0xff, 0x00, 0x7f]), "\\xff\\x00\\x7f");
        assert_eq!(escaped(b"plain text 123"), "plain text 123");
    }

    #[test]
    fn trailing_whitespace_goes() {
        assert_eq!(trim_end(b"line \n\r\t"), b"line");
        assert_eq!(trim_end(b" \n"), b"");
        assert_eq!(trim_end(b"a b"), b"a b");
    }

    #[test]
    fn a_burst_fits_then_lines_are_dropped_until_the_budget_refills() {
        let mut b = LogBudget::default();
        assert!(b.take(0, LOG_BURST_BYTES), "the first burst fits");
        assert!(!b.take(0, 1), "nothing left");
        // 1 ms refills LOG_BYTES_PER_SEC / 1000 bytes.
        let per_ms = LOG_BYTES_PER_SEC / 1000;
        assert!(!b.take(1_000_000, per_ms + 1));
        assert!(b.take(1_000_000, per_ms));
        assert!(!b.take(1_000_000, 1));
        // Refills never exceed one burst.
        assert!(!b.take(u64::MAX / 2, LOG_BURST_BYTES + 1));
        assert!(b.take(u64::MAX / 2, LOG_BURST_BYTES));
    }

    #[test]
    fn each_line_costs_exactly_its_bytes() {
        let mut b = LogBudget::default();
        assert!(b.take(0, 1000));
        assert!(b.take(0, LOG_BURST_BYTES - 1000), "the rest of the burst");
        assert!(!b.take(0, 1));
        let mut b = LogBudget::default();
        for _ in 0..4 {
            assert!(b.take(0, LOG_BURST_BYTES / 4));
        }
        assert!(!b.take(0, 1));
    }

    #[test]
    fn a_line_longer_than_the_burst_never_fits() {
        let mut b = LogBudget::default();
        assert!(!b.take(0, LOG_BURST_BYTES + 1));
        assert!(b.take(0, LOG_BURST_BYTES), "a refused line costs nothing");
    }
}
