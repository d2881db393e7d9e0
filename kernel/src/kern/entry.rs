//! Rules for entering and leaving ring 3 that do not need the CPU: which
//! kernel entries are a hypervisor's broken `syscall`, and which saved
//! instruction pointers a service may be resumed at.
//!
//! Some hypervisors (seen with a nested KVM that emulates SYSCALL) move RIP
//! to LSTAR and apply the flag mask but leave CS at the user selector, so
//! the CPU fetches the kernel's entry stub in ring 3 and page-faults there
//! with `rcx`/`r11` holding the return RIP and RFLAGS. The kernel handles
//! such a fault as the syscall it was, but only when a boot probe showed
//! the quirk on this machine, and only when the frame shows the flag mask
//! was applied (IF clear): a service cannot clear IF in ring 3, so it
//! cannot forge the frame by jumping to the entry stub itself. The return
//! RIP it carries (`rcx`) is whatever the service had in `rcx`, so every
//! return to ring 3 checks the RIP (see [`resumable`]).

/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;
/// Page-fault error code: the access was an instruction fetch.
pub const PF_FETCH: u64 = 1 << 4;
/// Page-fault error code: the access came from ring 3.
pub const PF_USER: u64 = 1 << 2;
/// The page-fault vector.
pub const PAGE_FAULT: u64 = 14;
/// First address above the canonical lower half.
pub const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;
/// SYSRET to a RIP at or above this faults in ring 0 on some Intel CPUs
/// (the last page below the canonical hole is excluded).
pub const SYSRET_LIMIT: u64 = 0x0000_7fff_ffff_f000;

/// What a ring-3 page fault at the syscall entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryFault {
    /// A `syscall` the hypervisor left in ring 3: handle it as a syscall.
    BrokenSyscall,
    /// Anything else: an ordinary fault of the service (including a jump
    /// to the entry stub, which is not a syscall).
    Fault,
}

/// A kernel entry's frame, as far as these rules look at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryFrame {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
}

/// Classifies a kernel entry from ring 3: a broken syscall only if the
/// quirk is `armed` (a boot probe saw it), the frame is a user
/// instruction-fetch page fault exactly at `entry` (LSTAR), and the flag
/// mask was applied (IF clear, which ring 3 cannot arrange).
pub fn classify(frame: &EntryFrame, entry: u64, armed: bool) -> EntryFault {
    let at_entry = frame.vector == PAGE_FAULT
        && frame.cs & 3 == 3
        && frame.rip == entry
        && frame.error_code & (PF_FETCH | PF_USER) == (PF_FETCH | PF_USER);
    if armed && at_entry && frame.rflags & RFLAGS_IF == 0 {
        EntryFault::BrokenSyscall
    } else {
        EntryFault::Fault
    }
}

/// Whether the boot probe's first kernel entry shows the quirk: the same
/// test as [`classify`] with the quirk assumed.
pub fn probe_shows_quirk(frame: &EntryFrame, entry: u64) -> bool {
    classify(frame, entry, true) == EntryFault::BrokenSyscall
}

/// Whether a service may be resumed at `rip`: a canonical lower-half
/// address. IRET or SYSRET to anything else would fault in ring 0 (on
/// Intel CPUs) or run kernel addresses; such a service is stopped instead.
pub fn resumable(rip: u64) -> bool {
    rip < LOWER_HALF_END
}

/// Whether a service may be resumed at `rip` with `sysretq` rather than
/// `iretq`.
pub fn sysret_safe(rip: u64) -> bool {
    rip < SYSRET_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: u64 = 0xffff_ffff_8011_0000;

    fn quirk_frame() -> EntryFrame {
        EntryFrame {
            vector: PAGE_FAULT,
            error_code: PF_FETCH | PF_USER | 1,
            rip: ENTRY,
            cs: 0x23,
            rflags: 0x2,
        }
    }

    #[test]
    fn a_broken_syscall_is_recognised_only_when_armed() {
        assert_eq!(
            classify(&quirk_frame(), ENTRY, true),
            EntryFault::BrokenSyscall
        );
        assert_eq!(classify(&quirk_frame(), ENTRY, false), EntryFault::Fault);
        assert!(probe_shows_quirk(&quirk_frame(), ENTRY));
    }

    #[test]
    fn a_jump_to_the_entry_stub_is_a_fault_not_a_syscall() {
        // A service jumping to LSTAR itself runs with IF set.
        let forged = EntryFrame {
            rflags: 0x202,
            ..quirk_frame()
        };
        assert_eq!(classify(&forged, ENTRY, true), EntryFault::Fault);
        assert!(!probe_shows_quirk(&forged, ENTRY));
    }

    #[test]
    fn every_other_field_must_match() {
        let cases = [
            EntryFrame {
                vector: 13,
                ..quirk_frame()
            },
            EntryFrame {
                cs: 0x08,
                ..quirk_frame()
            },
            EntryFrame {
                rip: ENTRY + 1,
                ..quirk_frame()
            },
            EntryFrame {
                error_code: PF_USER | 1,
                ..quirk_frame()
            },
            EntryFrame {
                error_code: PF_FETCH | 1,
                ..quirk_frame()
            },
        ];
        for f in cases {
            assert_eq!(classify(&f, ENTRY, true), EntryFault::Fault, "{f:?}");
        }
    }

    #[test]
    fn only_lower_half_rips_are_resumed() {
        assert!(resumable(0x40_0000));
        assert!(resumable(LOWER_HALF_END - 1));
        assert!(!resumable(LOWER_HALF_END));
        assert!(!resumable(0x8000_0000_0000_0000));
        assert!(!resumable(ENTRY));
        assert!(!resumable(u64::MAX));
    }

    #[test]
    fn sysret_keeps_clear_of_the_canonical_hole() {
        assert!(sysret_safe(0x40_0000));
        assert!(sysret_safe(SYSRET_LIMIT - 1));
        assert!(!sysret_safe(SYSRET_LIMIT));
        assert!(!sysret_safe(LOWER_HALF_END - 1));
    }
}
