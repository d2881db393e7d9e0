//! Deliberate kernel faults, selected with `selftest=<name>` on the command
//! line, so the QEMU scenarios can prove the exception path reports what it
//! should (and that the double-fault IST stack really catches a stack
//! overflow). Each one ends the run through the exception reporter.

/// The self-tests the command line can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// Read an unmapped, canonical lower-half address: `#PF`.
    PageFault,
    /// Execute `ud2`: `#UD`.
    InvalidOpcode,
    /// Recurse until the kernel stack runs into its guard page: the `#PF`
    /// cannot be delivered on the overflowed stack, so `#DF` on IST 1.
    StackOverflow,
    /// Execute `int3` in the kernel: `#BP`.
    Breakpoint,
}

impl SelfTest {
    /// Parses the value of `selftest=`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "page-fault" => Self::PageFault,
            "invalid-opcode" => Self::InvalidOpcode,
            "stack-overflow" => Self::StackOverflow,
            "breakpoint" => Self::Breakpoint,
            _ => return None,
        })
    }
}

/// The address the page-fault self-test reads: canonical, in the lower half
/// (where only services will ever be mapped), and unmapped in the kernel.
pub const UNMAPPED_ADDRESS: u64 = 0x0000_1000_0000_0000;

#[cfg(target_os = "none")]
/// Runs `test`. Returns only if the CPU failed to fault.
pub fn run(test: SelfTest) {
    log::warn!("selftest: triggering {test:?}");
    match test {
        SelfTest::PageFault => {
            // SAFETY: deliberately unsound: the read faults, and the fault
            // handler ends the run before anything observes the value.
            let v = unsafe { core::ptr::read_volatile(UNMAPPED_ADDRESS as *const u64) };
            log::error!("selftest: read of unmapped memory returned {v:#x}");
        }
        // SAFETY: `ud2` raises #UD, which the exception reporter handles.
        SelfTest::InvalidOpcode => unsafe { core::arch::asm!("ud2") },
        // SAFETY: `int3` raises #BP, which the exception reporter handles.
        SelfTest::Breakpoint => unsafe { core::arch::asm!("int3") },
        SelfTest::StackOverflow => {
            let depth = recurse(0);
            log::error!("selftest: recursion returned at depth {depth}");
        }
    }
}

#[cfg(target_os = "none")]
#[inline(never)]
#[allow(unconditional_recursion)] // the point: it ends in the guard page
fn recurse(depth: u64) -> u64 {
    let mut frame = [depth; 64];
    core::hint::black_box(&mut frame);
    recurse(depth + 1) + frame[depth as usize % 64]
}
