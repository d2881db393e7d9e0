//! The boot probe of `syscall`: does this machine really enter ring 0?
//!
//! Before any service starts, the kernel runs two instructions in ring 3,
//! in an address space of their own: `syscall; ud2`. On correct hardware
//! the syscall arrives at the entry stub in ring 0. Some hypervisors leave
//! the CPU in ring 3 at LSTAR, which shows up as a user page fault at the
//! entry stub with the flag mask applied; only then does the kernel arm its
//! handling of that quirk ([`crate::kern::entry`]). Anything else (an
//! unexpected fault) leaves it disarmed and is reported.

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
/// `syscall; ud2`.
const PROBE_BYTES: [u8; 4] = [0x0f, 0x05, 0x0f, 0x0b];

static PROBING: AtomicBool = AtomicBool::new(false);
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
    if vector == syscall::SYSCALL_VECTOR {
        finish(false, frame)
    }
    if syscall::probe_shows_quirk(frame) {
        finish(true, frame)
    }
    if vector >= 32 {
        // An interrupt arrived first: acknowledge it and let the probe run.
        if vector == u64::from(TIMER_VECTOR) || super::is_irq_vector(vector as u8) {
            apic::eoi();
        }
        return;
    }
    finish(false, frame)
}

fn finish(quirk: bool, frame: &TrapFrame) -> ! {
    PROBING.store(false, Ordering::Relaxed);
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
    // SAFETY: the kernel's own tables map everything the kernel uses; the
    // probe space is freed next.
    unsafe { paging::activate(paging::active_root_of_kernel()) };
    if let Some(space) = SPACE.lock().take() {
        space.release();
    }
    super::start()
}
