//! What one QEMU run did, and whose problem a failed run is.
//!
//! A run the guest took part in ends with an `isa-debug-exit` code, a hang
//! (timeout) or a silent QEMU exit (a triple fault under `-no-reboot`):
//! those are Faultline's results, good or bad. A run that ended before the
//! guest printed a single byte, with QEMU failing on its own (an error
//! status, a signal, or an error on its stderr), says nothing about
//! Faultline: it is a host problem (a CPU feature KVM refuses, a missing
//! device, no memory) and is reported with the command line and QEMU's
//! stderr so that it can be fixed where it lies.

use faultline_ipc::harness::ExitCode;
use std::time::Duration;

/// What a boot did.
pub struct Outcome {
    /// The exit code the guest wrote, if it wrote one of ours.
    pub code: Option<ExitCode>,
    /// QEMU's own exit status (None if it was killed).
    pub status: Option<i32>,
    pub timed_out: bool,
    /// What the guest printed on its serial console.
    pub console: String,
    /// What QEMU itself printed on stderr.
    pub qemu_stderr: String,
    /// The command that was run, as one shell line.
    pub command: String,
    pub elapsed: Duration,
}

/// Whose result a run is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The guest ran: judge it against what the deployment expects.
    Guest,
    /// QEMU failed before the guest printed anything; the reason is QEMU's
    /// first error line (or its status when it printed none).
    Host(String),
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.code == Some(ExitCode::Success)
    }

    /// Whether the guest or the host is answerable for this run.
    pub fn verdict(&self) -> Verdict {
        classify(
            self.code,
            self.status,
            self.timed_out,
            &self.console,
            &self.qemu_stderr,
        )
    }

    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        if let Verdict::Host(why) = self.verdict() {
            return format!(
                "HOST PROBLEM: QEMU failed after {secs:.2}s before the guest printed anything: {why}"
            );
        }
        if self.timed_out {
            return format!("FAILED: no exit after {secs:.1}s; the guest hung and was stopped");
        }
        match (self.code, self.status) {
            (Some(ExitCode::Success), _) => format!("guest reported success in {secs:.2}s"),
            (Some(code), _) => format!("FAILED: guest reported {} in {secs:.2}s", code.name()),
            (None, Some(0)) => format!(
                "FAILED: QEMU exited without an exit code after {secs:.2}s (triple fault or reset under -no-reboot?)"
            ),
            (None, Some(s)) => format!("FAILED: QEMU exited with status {s} after {secs:.2}s"),
            (None, None) => format!("FAILED: QEMU was killed by a signal after {secs:.2}s"),
        }
    }

    /// The full report of a host problem: command line and QEMU's stderr.
    pub fn host_report(&self) -> String {
        format!(
            "command: {}\nQEMU stderr:\n{}",
            self.command,
            indent(if self.qemu_stderr.trim().is_empty() {
                "(empty)"
            } else {
                self.qemu_stderr.trim_end()
            })
        )
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rule behind [`Outcome::verdict`]. A guest exit code or a hang is
/// always the guest's. Otherwise, if the guest printed nothing and QEMU
/// ended with an error (a status other than 0, a signal, or text on its
/// stderr), the host is answerable; a silent status 0 is a triple fault,
/// which is the guest's.
pub fn classify(
    code: Option<ExitCode>,
    status: Option<i32>,
    timed_out: bool,
    console: &str,
    stderr: &str,
) -> Verdict {
    if code.is_some() || timed_out || !console.trim().is_empty() {
        return Verdict::Guest;
    }
    let first_error = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.contains("error") || l.contains("Assertion") || l.contains("failed"))
        .or_else(|| stderr.lines().map(str::trim).find(|l| !l.is_empty()));
    match (status, first_error) {
        (Some(0), None) => Verdict::Guest,
        (_, Some(line)) => Verdict::Host(line.to_string()),
        (Some(s), None) => Verdict::Host(format!("QEMU exited with status {s}")),
        (None, None) => Verdict::Host("QEMU was killed by a signal".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSR: &str = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0xc000069\n\
        qemu-system-x86_64: target/i386/kvm/kvm.c:3849: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n";

    #[test]
    fn qemu_dying_before_the_guest_printed_is_the_hosts_problem() {
        assert_eq!(
            classify(None, None, false, "", MSR),
            Verdict::Host("qemu-system-x86_64: error: failed to set MSR 0x10a to 0xc000069".into())
        );
        assert_eq!(
            classify(None, Some(1), false, "\n", ""),
            Verdict::Host("QEMU exited with status 1".into())
        );
        assert_eq!(
            classify(None, None, false, "", ""),
            Verdict::Host("QEMU was killed by a signal".into())
        );
    }

    #[test]
    fn anything_the_guest_did_is_the_guests() {
        // An exit code, even with QEMU noise on stderr.
        assert_eq!(
            classify(Some(ExitCode::Panic), Some(0x25), false, "", MSR),
            Verdict::Guest
        );
        // A hang.
        assert_eq!(classify(None, None, true, "", ""), Verdict::Guest);
        // Output, then QEMU died.
        assert_eq!(
            classify(None, None, false, "Faultline booting\n", MSR),
            Verdict::Guest
        );
        // A silent status 0 is a triple fault under -no-reboot.
        assert_eq!(classify(None, Some(0), false, "", ""), Verdict::Guest);
    }

    #[test]
    fn the_host_report_carries_the_command_and_stderr() {
        let o = Outcome {
            code: None,
            status: None,
            timed_out: false,
            console: String::new(),
            qemu_stderr: MSR.into(),
            command: "qemu-system-x86_64 -accel kvm -cpu max".into(),
            elapsed: Duration::from_millis(30),
        };
        assert!(o.summary().starts_with("HOST PROBLEM: "));
        let r = o.host_report();
        assert!(r.contains("command: qemu-system-x86_64 -accel kvm -cpu max"));
        assert!(r.contains("  qemu-system-x86_64: error: failed to set MSR 0x10a"));
    }
}
