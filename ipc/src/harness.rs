//! The run-outcome contract between a Faultline image and the host.
//!
//! QEMU's `isa-debug-exit` device (I/O port [`DEBUG_EXIT_PORT`]) ends the
//! emulator when the guest writes a value `v`, and QEMU then exits with
//! status `(v << 1) | 1`. Faultline writes one of the [`ExitCode`] values;
//! `xtask` maps the QEMU status back with [`ExitCode::from_qemu_status`].
//! Every status that is not [`ExitCode::Success`]'s, including QEMU's own 0
//! (which `-no-reboot` produces on a triple fault) and 1 (QEMU error), is a
//! failure, so a run can only pass by saying so.

/// The I/O port `xtask` configures `isa-debug-exit` at.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Line the kernel prints (on its own) right before it writes the exit code,
/// so the host can tell a clean shutdown from a hang or a crash.
pub const SHUTDOWN_MARKER: &str = "faultline: shutdown";

/// Where the kernel's `syscall` entry stub is (IA32_LSTAR): the first byte
/// of kernel text, at a fixed address (`kernel/link.ld`). The kernel checks
/// it at boot; the hostile-service scenario jumps there to show that a jump
/// to the entry stub is a fault, not a system call.
pub const SYSCALL_ENTRY: u64 = 0xffff_ffff_8011_0000;

/// Why a run ended, as written to the `isa-debug-exit` port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ExitCode {
    /// The deployment ran to completion and everything it checked held.
    Success = 0x10,
    /// A check failed (a scenario's own verdict).
    Failure = 0x11,
    /// The kernel panicked.
    Panic = 0x12,
    /// The kernel took an exception it cannot attribute to a service.
    Exception = 0x13,
    /// Boot could not proceed (unsupported CPU, unusable boot information).
    BootFailure = 0x14,
    /// The machine has no usable IOMMU (no DMAR, or the DMAR was rejected).
    NoIommu = 0x15,
}

impl ExitCode {
    /// Every code, for tables and tests.
    pub const ALL: [ExitCode; 6] = [
        Self::Success,
        Self::Failure,
        Self::Panic,
        Self::Exception,
        Self::BootFailure,
        Self::NoIommu,
    ];

    /// The process status QEMU exits with when the guest writes this code.
    pub const fn qemu_status(self) -> i32 {
        ((self as u32 as i32) << 1) | 1
    }

    /// Maps a QEMU process status back to the code the guest wrote, if it
    /// is one of ours.
    pub fn from_qemu_status(status: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.qemu_status() == status)
    }

    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Panic => "kernel panic",
            Self::Exception => "kernel exception",
            Self::BootFailure => "boot failure",
            Self::NoIommu => "no IOMMU",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_are_distinct() {
        for code in ExitCode::ALL {
            assert_eq!(ExitCode::from_qemu_status(code.qemu_status()), Some(code));
        }
        let mut statuses: Vec<i32> = ExitCode::ALL.iter().map(|c| c.qemu_status()).collect();
        statuses.sort();
        statuses.dedup();
        assert_eq!(statuses.len(), ExitCode::ALL.len());
    }

    #[test]
    fn qemu_own_statuses_are_not_success() {
        // 0: normal QEMU exit (e.g. triple fault under -no-reboot); 1: QEMU error.
        assert_eq!(ExitCode::from_qemu_status(0), None);
        assert_eq!(ExitCode::from_qemu_status(1), None);
        assert_eq!(ExitCode::Success.qemu_status(), 33);
    }
}
