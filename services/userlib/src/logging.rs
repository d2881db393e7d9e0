//! Logging: one bounded line per [`crate::log!`], formatted without
//! allocation and handed to the kernel's log call.
//!
//! A line longer than [`MAX_LOG`] bytes is cut at a character boundary and
//! ends in `...`, so it still reaches the console (the kernel would refuse
//! the whole line).

use core::fmt::{self, Write};
use faultline_ipc::abi::MAX_LOG;

/// Prints a formatted line: `log!("pong: {} calls", n)`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::logging::log_fmt(format_args!($($arg)*))
    };
}

/// What [`crate::log!`] expands to.
pub fn log_fmt(args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = line.write_fmt(args);
    let _ = crate::log(line.as_str());
}

/// A line being formatted: at most [`MAX_LOG`] bytes, truncated with `...`.
pub struct Line {
    buf: heapless::String<MAX_LOG>,
    truncated: bool,
}

const ELLIPSIS: &str = "...";

impl Line {
    pub const fn new() -> Self {
        Self {
            buf: heapless::String::new(),
            truncated: false,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.buf
    }

    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        if self.buf.push_str(s).is_ok() {
            return Ok(());
        }
        // Keep what fits, leaving room for the ellipsis.
        let room = MAX_LOG - ELLIPSIS.len();
        for c in s.chars() {
            if self.buf.len() + c.len_utf8() > room {
                break;
            }
            let _ = self.buf.push(c);
        }
        while self.buf.len() > room {
            self.buf.pop();
        }
        let _ = self.buf.push_str(ELLIPSIS);
        self.truncated = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_kept_whole() {
        let mut l = Line::new();
        write!(l, "pong: {} calls", 3).unwrap();
        assert_eq!(l.as_str(), "pong: 3 calls");
        assert!(!l.is_truncated());
    }

    #[test]
    fn long_lines_end_in_an_ellipsis_within_the_limit() {
        let mut l = Line::new();
        for _ in 0..100 {
            write!(l, "é-{}", 12345).unwrap();
        }
        assert!(l.is_truncated());
        assert!(l.as_str().len() <= MAX_LOG);
        assert!(l.as_str().ends_with(ELLIPSIS));
        let mut exact = Line::new();
        exact.write_str(&"x".repeat(MAX_LOG)).unwrap();
        assert_eq!(exact.as_str().len(), MAX_LOG);
        assert!(!exact.is_truncated());
    }
}
