//! The kernel console: a `log` backend on COM1, plus report and emergency
//! output for exceptions and panics.
//!
//! Lines look like `[   12.345 INFO  kernel::acpi] message`: milliseconds
//! since the PVH entry (once the TSC is calibrated), level, module. Reports
//! and emergency lines never wait for the console lock: if it is held (the
//! fault happened mid-log), they write to the UART directly, since a garbled
//! line beats a silent hang.

use crate::arch::serial::Serial;
use crate::arch::tsc;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use hermit_sync::InterruptSpinMutex;

static CONSOLE: InterruptSpinMutex<Option<Serial>> = InterruptSpinMutex::new(None);
static ENTRY_TSC: AtomicU64 = AtomicU64::new(0);
static LOGGER: Logger = Logger;

struct Logger;

/// Brings up COM1 and installs the logger at `level`. `entry_tsc` is the TSC
/// at the PVH entry, the origin of log timestamps.
pub fn init(entry_tsc: u64, level: log::LevelFilter) {
    ENTRY_TSC.store(entry_tsc, Ordering::Relaxed);
    *CONSOLE.lock() = Some(Serial::init());
    // A second call would fail; the kernel calls init once.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Milliseconds since the PVH entry (0 until the TSC is calibrated).
pub fn uptime_us() -> u64 {
    tsc::cycles_to_ns(tsc::read().wrapping_sub(ENTRY_TSC.load(Ordering::Relaxed))) / 1000
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let us = uptime_us();
        with_console(|out| {
            let _ = writeln!(
                out,
                "[{:>5}.{:03} {:<5} {}] {}",
                us / 1000,
                us % 1000,
                record.level(),
                record.target(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}

fn with_console(f: impl FnOnce(&mut Serial)) {
    match CONSOLE.try_lock() {
        Some(mut guard) => match guard.as_mut() {
            Some(serial) => f(serial),
            None => f(&mut Serial::init()),
        },
        // Held by the code we interrupted: write directly rather than hang.
        None => f(&mut Serial::init()),
    }
}

/// Prints text without the log prefix (the boot report, banners).
pub fn print(args: core::fmt::Arguments) {
    with_console(|out| {
        let _ = out.write_fmt(args);
    });
}

/// Prints a multi-line report (exception, panic) in one piece.
pub fn report(f: impl FnOnce(&mut dyn Write)) {
    with_console(|out| f(out));
}

/// Prints one line, bypassing everything that could fail.
pub fn emergency_line(args: core::fmt::Arguments) {
    let mut serial = Serial::init();
    let _ = serial.write_fmt(args);
    let _ = serial.write_str("\n");
}

/// `print!` to the console, without a log prefix.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// `println!` to the console, without a log prefix.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
