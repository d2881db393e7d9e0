//! Reading a run's serial console: which lines the kernel printed and
//! which a service logged.
//!
//! The kernel prints every service line as `[<uptime> @<service>] <text>`,
//! with the text escaped so it can never contain a line break; no kernel
//! line starts that way. So the host can attribute every line, and a
//! scenario's expectations say whose line they mean: `"@pong text"` is
//! text in a line of service `pong`, anything else is text in a kernel
//! line. A service cannot satisfy (or trip) an expectation about the
//! kernel by printing the same words.

/// Who printed a console line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    Kernel,
    Service(&'a str),
}

/// Splits a console line into its source and text.
pub fn attribute(line: &str) -> (Source<'_>, &str) {
    let service = line.strip_prefix('[').and_then(|rest| {
        let (stamp, rest) = rest.split_once(" @")?;
        let stamp = stamp.trim_start();
        let (secs, millis) = stamp.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(secs) || millis.len() != 3 || !digits(millis) {
            return None;
        }
        let (name, text) = rest
            .split_once("] ")
            .or_else(|| rest.strip_suffix(']').map(|n| (n, "")))?;
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then_some((Source::Service(name), text))
    });
    service.unwrap_or((Source::Kernel, line))
}

/// An expectation: text, and whose line it must be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needle<'a> {
    pub source: Source<'a>,
    pub text: &'a str,
}

impl<'a> Needle<'a> {
    /// `"@name text"` is `text` in service `name`'s lines; anything else is
    /// text in a kernel line.
    pub fn parse(s: &'a str) -> Needle<'a> {
        match s.strip_prefix('@').and_then(|r| r.split_once(' ')) {
            Some((name, text)) => Needle {
                source: Source::Service(name),
                text,
            },
            None => Needle {
                source: Source::Kernel,
                text: s,
            },
        }
    }

    fn matches(&self, line: &str) -> bool {
        let (source, text) = attribute(line);
        source == self.source && text.contains(self.text)
    }
}

/// Whether `needles` appear in `console` in order, each in a line of its
/// source (several may share a line, in order); the first missing one.
pub fn find_in_order<'a>(console: &str, needles: &'a [String]) -> Result<(), &'a str> {
    let lines: Vec<&str> = console.lines().collect();
    let mut at = 0;
    let mut from_col = 0;
    for needle in needles {
        let n = Needle::parse(needle);
        let found = (at..lines.len()).find_map(|i| {
            let line = lines[i];
            let (source, text) = attribute(line);
            if source != n.source {
                return None;
            }
            let start = if i == at { from_col.min(text.len()) } else { 0 };
            text.get(start..)?
                .find(n.text)
                .map(|col| (i, start + col + n.text.len()))
        });
        match found {
            Some((i, col)) => {
                at = i;
                from_col = col;
            }
            None => return Err(needle),
        }
    }
    Ok(())
}

/// The first of `needles` that appears anywhere in its source's lines.
pub fn find_any<'a>(console: &str, needles: &'a [String]) -> Option<&'a str> {
    needles.iter().map(String::as_str).find(|needle| {
        let n = Needle::parse(needle);
        console.lines().any(|l| n.matches(l))
    })
}

/// The first needle that appears on no line of `console` (each needle
/// may appear anywhere, in any order).
pub fn find_missing<'a>(console: &str, needles: &'a [String]) -> Option<&'a str> {
    needles.iter().map(String::as_str).find(|needle| {
        let n = Needle::parse(needle);
        !console.lines().any(|l| n.matches(l))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_needle_missing_anywhere_is_named() {
        let console = "[    0.001 @a] one\n[    0.002 @b] two\n";
        let needles = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(find_missing(console, &needles(&["@b two", "@a one"])), None);
        assert_eq!(
            find_missing(console, &needles(&["@a one", "@a two"])),
            Some("@a two")
        );
    }

    #[test]
    fn service_lines_are_attributed_and_kernel_lines_are_not() {
        assert_eq!(
            attribute("[  123.456 @rogue] rogue: hello"),
            (Source::Service("rogue"), "rogue: hello")
        );
        assert_eq!(attribute("[    0.001 @a-1] "), (Source::Service("a-1"), ""));
        for kernel in [
            "[  123.456 INFO  kernel::services] services: pong",
            "faultline: shutdown",
            "kernel: refused syscall 0 from rogue: bad pointer",
            "[x.123 @rogue] not a stamp",
            "[ 1.12 @rogue] short millis",
            "[ 1.123 @Rogue] upper case is no service name",
        ] {
            assert_eq!(attribute(kernel), (Source::Kernel, kernel));
        }
    }

    #[test]
    fn a_service_cannot_satisfy_a_kernel_expectation() {
        let forged = "[    1.000 @rogue] faultline: shutdown\n";
        let needles = ["faultline: shutdown".to_string()];
        assert_eq!(find_in_order(forged, &needles), Err("faultline: shutdown"));
        assert_eq!(find_any(forged, &needles), None);
        let real = format!("{forged}faultline: shutdown\n");
        assert_eq!(find_in_order(&real, &needles), Ok(()));
    }

    #[test]
    fn service_expectations_name_their_service() {
        let console = "[    1.000 @ping] pingpong: all lengths ok\n";
        let ok = ["@ping pingpong: all lengths ok".to_string()];
        let wrong = ["@pong pingpong: all lengths ok".to_string()];
        let kernel = ["pingpong: all lengths ok".to_string()];
        assert_eq!(find_in_order(console, &ok), Ok(()));
        assert!(find_in_order(console, &wrong).is_err());
        assert!(find_in_order(console, &kernel).is_err());
        assert_eq!(find_any(console, &ok), Some(ok[0].as_str()));
    }

    #[test]
    fn order_is_kept_within_and_across_lines() {
        let console = "a b\nc\n[    1.000 @s] d\ne\n";
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            find_in_order(console, &n(&["a", "b", "c", "@s d", "e"])),
            Ok(())
        );
        assert!(find_in_order(console, &n(&["b", "a"])).is_err());
        assert!(find_in_order(console, &n(&["e", "@s d"])).is_err());
        assert!(find_in_order(console, &n(&["c", "c"])).is_err());
    }
}
