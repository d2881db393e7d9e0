//! Services' console lines: bounded, escaped and attributed.
//!
//! The console is a polled UART and the kernel runs with interrupts off,
//! so every byte a service logs is CPU time taken from everyone. Each
//! service has a byte budget that refills at a fixed rate (a token
//! bucket); a line that does not fit is dropped and counted, and the count
//! is reported (by the kernel, as a kernel line) once the budget allows
//! again. Every byte outside printable ASCII is escaped (`\n`, `\xNN`), so
//! a service line is always exactly one console line, and it always starts
//! with the service's tag `[<uptime> @<name>] `, which no kernel line has:
//! neither a person nor `cargo xtask test` can take a service's text for
//! the kernel's.

use crate::kern::logline::{LogBudget, escaped_len, trim_end, write_escaped};

/// Prints one line from service `name`, or counts it as dropped.
pub fn service_line(budget: &mut LogBudget, now_ns: u64, name: &str, line: &[u8]) {
    let escaped = escaped_len(line);
    let cost = escaped as u64 + name.len() as u64 + 16;
    if !budget.take(now_ns, cost) {
        budget.dropped = budget.dropped.saturating_add(1);
        return;
    }
    if budget.dropped > 0 {
        crate::kprintln!(
            "kernel: {} log line(s) from {name} dropped (over its console budget)",
            budget.dropped
        );
        budget.dropped = 0;
    }
    let us = crate::console::uptime_us();
    crate::console::report(|out| {
        let _ = write!(out, "[{:>5}.{:03} @{name}] ", us / 1000, us % 1000);
        let _ = write_escaped(out, trim_end(line));
        let _ = out.write_char('\n');
    });
}

/// Prints a line the kernel core composed (a refusal report).
pub fn kernel_line(line: &[u8]) {
    crate::console::report(|out| {
        let _ = write_escaped(out, trim_end(line));
        let _ = out.write_char('\n');
    });
}
