//! The kernel command line: whitespace-separated `key` and `key=value`
//! words. Unknown words are reported, not ignored silently, so a typo in a
//! deployment's `kernel-args` shows up in the log.

use crate::selftest::SelfTest;

/// What the command line asks of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `log=error|warn|info|debug|trace` (default info).
    pub log_level: log::LevelFilter,
    /// `acpi.dump`: print every ACPI table as hex (fixture capture).
    pub acpi_dump: bool,
    /// `selftest=<name>`: deliberately fault after boot.
    pub selftest: Option<SelfTest>,
    /// `apic=xapic`: drive the LAPIC through its MMIO page even when the
    /// CPU has x2APIC (`apic=x2apic`, the default, uses x2APIC when it can).
    /// QEMU's TCG under `-icount` needs it: it aborts when an x2APIC MSR
    /// access reads the virtual clock.
    pub force_xapic: bool,
    /// `tsc.khz=N`: the TSC frequency, stated by a host that knows it (see
    /// `tscfreq`).
    pub tsc_khz: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_level: log::LevelFilter::Info,
            acpi_dump: false,
            selftest: None,
            force_xapic: false,
            tsc_khz: None,
        }
    }
}

/// A word the kernel did not understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownWord<'a>(pub &'a str);

/// Parses `line`, calling `unknown` for each word it does not understand.
pub fn parse<'a>(line: &'a str, mut unknown: impl FnMut(UnknownWord<'a>)) -> Options {
    let mut opts = Options::default();
    for word in line.split_ascii_whitespace() {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        match (key, value) {
            ("log", Some(level)) => match level.parse() {
                Ok(l) => opts.log_level = l,
                Err(_) => unknown(UnknownWord(word)),
            },
            ("acpi.dump", None) => opts.acpi_dump = true,
            ("selftest", Some(name)) => match SelfTest::parse(name) {
                Some(t) => opts.selftest = Some(t),
                None => unknown(UnknownWord(word)),
            },
            ("apic", Some("xapic")) => opts.force_xapic = true,
            ("apic", Some("x2apic")) => opts.force_xapic = false,
            ("tsc.khz", Some(khz)) => match khz.parse() {
                Ok(k) if k > 0 => opts.tsc_khz = Some(k),
                _ => unknown(UnknownWord(word)),
            },
            _ => unknown(UnknownWord(word)),
        }
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_words_and_reports_the_rest() {
        let mut bad = Vec::new();
        let o = parse(
            "  log=debug acpi.dump selftest=page-fault bogus log=loud ",
            |w| bad.push(w.0),
        );
        assert_eq!(o.log_level, log::LevelFilter::Debug);
        assert!(o.acpi_dump);
        assert_eq!(o.selftest, Some(SelfTest::PageFault));
        assert_eq!(bad, ["bogus", "log=loud"]);
    }

    #[test]
    fn apic_mode_and_tsc_rate() {
        let mut bad = Vec::new();
        let o = parse("apic=xapic tsc.khz=1000000", |w| bad.push(w.0));
        assert!(o.force_xapic);
        assert_eq!(o.tsc_khz, Some(1_000_000));
        let o = parse(
            "apic=xapic apic=x2apic apic=none tsc.khz=0 tsc.khz=fast",
            |w| bad.push(w.0),
        );
        assert!(!o.force_xapic);
        assert_eq!(o.tsc_khz, None);
        assert_eq!(bad, ["apic=none", "tsc.khz=0", "tsc.khz=fast"]);
    }

    #[test]
    fn empty_line_is_default() {
        assert_eq!(parse("", |_| panic!()), Options::default());
    }

    #[test]
    fn unknown_selftest_is_reported() {
        let mut bad = Vec::new();
        let o = parse("selftest=melt", |w| bad.push(w.0));
        assert_eq!(o.selftest, None);
        assert_eq!(bad, ["selftest=melt"]);
    }
}
