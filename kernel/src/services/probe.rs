//! The boot probes of what ring 3 really does on this machine.
//!
//! Before any service starts, the kernel runs a few instructions in ring 3,
//! in an address space of their own, in two stages:
//!
//! 1. `syscall; ud2`: on correct hardware the syscall arrives at the entry
//!    stub in ring 0. Some hypervisors leave the CPU in ring 3 at LSTAR,
//!    which shows up as a user page fault at the entry stub with the flag
//!    mask applied; only then does the kernel arm its handling of that
//!    quirk ([`crate::kern::entry`]). Anything else (an unexpected fault)
//!    leaves it disarmed and is reported.
//! 2. `fld1; syscall; ud2`: with CR0.EM set, the x87 instruction must raise
//!    #NM, which is how Faultline keeps services from using (and sharing)
//!    floating-point registers. Some hypervisors (seen with a software KVM)
//!    run it anyway; then the kernel lets floating point run and saves and
//!    restores the registers on every switch between services instead, so
//!    they still carry nothing from one service to another.

use super::space::UserSpace;
use crate::arch::idt::TrapFrame;
use crate::arch::interrupts::TIMER_VECTOR;
use crate::arch::{apic, paging, syscall};
use crate::kern::task::Regs;
use crate::mm::{MapAttrs, phys_to_virt};
use core::sync::atomic::{AtomicBool, Ordering};
use hermit_sync::InterruptSpinMutex;

/// Where the probe's code page is mapped.
const PROBE_CODE: u64 = 0x40_0000;
/// Stage 1 at `PROBE_CODE`: `syscall; ud2`. Stage 2 at `PROBE_CODE + 16`:
/// `fld1; syscall; ud2`.
const PROBE_BYTES: [u8; 22] = [
    0x0f, 0x05, 0x0f, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xd9, 0xe8, 0x0f, 0x05, 0x0f, 0x0b,
];
/// Where stage 2 starts.
const FPU_PROBE: u64 = PROBE_CODE + 16;

static PROBING: AtomicBool = AtomicBool::new(false);
/// Which stage runs: false for the syscall probe, true for the FPU probe.
static FPU_STAGE: AtomicBool = AtomicBool::new(false);
/// Set when the FPU probe ran x87 code despite CR0.EM.
static FPU_SWITCHED: AtomicBool = AtomicBool::new(false);

/// Whether floating point runs on this machine despite CR0.EM, so the
/// kernel must save and restore it per service.
pub fn fpu_switched() -> bool {
    FPU_SWITCHED.load(Ordering::Relaxed)
}
static SPACE: InterruptSpinMutex<Option<UserSpace>> = InterruptSpinMutex::new(None);

/// Whether the probe is running (its entries go to [`entry`]).
pub fn probing() -> bool {
    PROBING.load(Ordering::Relaxed)
}

/// Runs the probe; the deployment starts from [`entry`] once it is done.
pub fn start() -> ! {
    let space = UserSpace::new(8).and_then(|mut space| {
        space.map_fresh(PROBE_CODE, 1, MapAttrs::USER_TEXT, |_, frame| {
            // SAFETY: `frame` is a fresh, zeroed frame of this space that
            // nothing else references; the direct map covers it.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    PROBE_BYTES.as_ptr(),
                    phys_to_virt(frame) as *mut u8,
                    PROBE_BYTES.len(),
                )
            }
        })?;
        Ok(space)
    });
    let space = match space {
        Ok(s) => s,
        Err(e) => {
            log::warn!(
                "kernel: cannot run the syscall probe ({e}); assuming SYSCALL enters ring 0"
            );
            super::start()
        }
    };
    // SAFETY: the probe space shares the kernel half, so the kernel stays
    // mapped across the switch.
    unsafe { paging::activate(space.root()) };
    *SPACE.lock() = Some(space);
    PROBING.store(true, Ordering::Relaxed);
    let frame = super::user_frame(&Regs::entry(PROBE_CODE, PROBE_CODE));
    syscall::enter_user(&frame)
}

/// A kernel entry while the probe runs.
pub fn entry(frame: &mut TrapFrame) {
    let vector = frame.vector;
    if vector >= 32 && vector != syscall::SYSCALL_VECTOR {
        // An interrupt arrived first: acknowledge it and let the probe run.
        if vector == u64::from(TIMER_VECTOR) || super::is_irq_vector(vector as u8) {
            apic::eoi();
        }
        return;
    }
    if FPU_STAGE.load(Ordering::Relaxed) {
        finish_fpu(frame)
    }
    if vector == syscall::SYSCALL_VECTOR {
        finish_syscall(false, frame)
    }
    if syscall::probe_shows_quirk(frame) {
        finish_syscall(true, frame)
    }
    finish_syscall(false, frame)
}

/// Stage 2's outcome: #NM means CR0.EM holds; reaching the syscall means
/// the x87 instruction ran.
fn finish_fpu(frame: &TrapFrame) -> ! {
    let reached_syscall =
        frame.vector == syscall::SYSCALL_VECTOR || syscall::is_broken_syscall(frame);
    if reached_syscall {
        crate::arch::cpu::switch_floating_point();
        FPU_SWITCHED.store(true, Ordering::Relaxed);
        log::warn!(
            "kernel: this machine runs x87 code in ring 3 despite CR0.EM (a hypervisor quirk, seen by the boot probe); saving and restoring floating-point registers per service instead"
        );
    } else if frame.vector != 7 {
        log::warn!(
            "kernel: the FPU probe ended with vector {} at {:#x}; floating point stays forbidden",
            frame.vector,
            frame.rip
        );
    } else {
        log::debug!("kernel: FPU probe: x87 code faults in ring 3 (#NM)");
    }
    PROBING.store(false, Ordering::Relaxed);
    // SAFETY: the kernel's own tables map everything the kernel uses; the
    // probe space is freed next.
    unsafe { paging::activate(paging::active_root_of_kernel()) };
    if let Some(space) = SPACE.lock().take() {
        space.release();
    }
    super::start()
}

fn finish_syscall(quirk: bool, frame: &TrapFrame) -> ! {
    if quirk {
        syscall::arm_ring3_syscall_quirk();
        log::warn!(
            "kernel: SYSCALL left the CPU in ring 3 at the entry stub (a hypervisor quirk, seen by the boot probe); handling such syscalls from the page fault they cause"
        );
    } else if frame.vector != syscall::SYSCALL_VECTOR {
        log::warn!(
            "kernel: the syscall probe ended with vector {} at {:#x}; the ring-3 SYSCALL quirk stays disarmed",
            frame.vector,
            frame.rip
        );
    } else {
        log::debug!("kernel: syscall probe: SYSCALL enters ring 0");
    }
    // Stage 2 in the same space.
    FPU_STAGE.store(true, Ordering::Relaxed);
    let frame = super::user_frame(&Regs::entry(FPU_PROBE, PROBE_CODE));
    syscall::enter_user(&frame)
}
