//! Choosing the next service and entering it: the end of every kernel
//! entry. Both entry paths share it: the IDT path copies the chosen
//! service's registers into its frame ([`resume_into`]); the in-place
//! syscall entry resumes them where they are ([`resume_next`],
//! [`switch_to`]).

use super::platform::MachinePlatform;
use super::{SYSTEM, System, deliver_events, finish, log_woken, probe, report_nmis, user_frame};
use crate::arch::idt::TrapFrame;
use crate::arch::{paging, syscall, tsc};
use crate::kern::fastpath::Stage;
use crate::kern::task::Regs;
use faultline_ipc::kconfig::TaskFault;

/// Picks the next service, as [`resume_next`], and loads its registers
/// into `frame` for the IDT path's return.
pub(super) fn resume_into(frame: &mut TrapFrame, rotate: bool) {
    let next = resume_next(rotate);
    // SAFETY: `next.regs` points at the registers of a task in SYSTEM,
    // which lives forever; nothing else runs (one CPU, interrupts off) and
    // no reference to them is live.
    let regs = unsafe { &*next.regs };
    *frame = user_frame(regs);
    syscall::mark_sysret(frame, next.sysret != 0);
}

/// Picks the next service and makes it the running one ([`enter`]),
/// delivering fired interrupts and expired timers first, and idling while
/// nothing is runnable.
pub(super) fn resume_next(rotate: bool) -> syscall::Resume {
    loop {
        {
            let mut guard = SYSTEM.lock();
            let sys = guard.as_mut().expect("services are running");
            deliver_events(sys);
            report_nmis();
            if let Some(next) = sys.kernel.schedule(rotate) {
                let rip = sys.kernel.tasks[next].regs.rip;
                if !crate::kern::entry::resumable(rip) {
                    stop_unresumable(sys, next, rip);
                    continue;
                }
                return enter(sys, next);
            }
            let idle = tsc::read().saturating_sub(sys.last_ran_tsc);
            if sys.kernel.quiescent(tsc::cycles_to_ns(idle)) {
                finish(sys);
            }
        }
        // Nothing runnable: wait for an interrupt with interrupts enabled.
        // SAFETY: no lock is held; interrupts taken here come from ring 0
        // and only record events for the loop above.
        unsafe {
            x86::irq::enable();
            x86::halt();
            x86::irq::disable();
        }
    }
}

/// Makes `next` (current in the kernel, with a resumable RIP) the running
/// service: its floating point and address space are loaded, and its next
/// system call saves its registers in place. Returns its registers and
/// whether `sysretq` may resume them: only after a system call (whose
/// `rcx` and `r11` are clobbered by the ABI) and at a RIP sysret accepts.
#[inline(always)]
fn enter(sys: &mut System, next: usize) -> syscall::Resume {
    sys.last_ran_tsc = tsc::read();
    switch_to(sys, next)
}

/// [`enter`], except for the note of when a service last ran.
#[inline(always)]
fn switch_to(sys: &mut System, next: usize) -> syscall::Resume {
    // From now on `next` runs: until an interrupt or fault says otherwise,
    // its next entry is a system call (see `System::entered_by_syscall`).
    let task = &mut sys.kernel.tasks[next];
    let generation = task.generation;
    let by_syscall =
        core::mem::replace(&mut sys.entered_by_syscall[next], generation) == generation;
    let sysret = by_syscall && crate::kern::entry::sysret_safe(task.regs.rip);
    let regs: *mut Regs = &mut task.regs;
    load(sys, next, regs, false);
    syscall::Resume {
        regs,
        sysret: u64::from(sysret),
    }
}

/// [`switch_to`] for a service the IPC fast path woke, at a RIP `sysretq`
/// accepts: it blocked in a system call and has not run since, so its last
/// entry was that call and `sysretq` resumes it.
#[inline(always)]
pub(super) fn switch_to_woken(sys: &mut System, next: usize) -> syscall::Resume {
    debug_assert_eq!(
        sys.entered_by_syscall[next],
        sys.kernel.tasks[next].generation
    );
    debug_assert!(crate::kern::entry::sysret_safe(
        sys.kernel.tasks[next].regs.rip
    ));
    let regs: *mut Regs = &mut sys.kernel.tasks[next].regs;
    // The active space is the caller's, and the fast path never wakes the
    // caller itself: the space changes, so there is nothing to compare.
    load(sys, next, regs, true);
    syscall::Resume { regs, sysret: 1 }
}

/// Loads `next`'s floating point and address space (unless it is active
/// already; `changes`: known not to be) and points the entry stub at its
/// registers, `regs`.
#[inline(always)]
fn load(sys: &mut System, next: usize, regs: *mut Regs, changes: bool) {
    // Everything read before the CR3 write, which the compiler must
    // assume touches memory.
    let root = sys.platform.spaces[next].as_ref().expect("loaded").root();
    switch_floating_point(&mut sys.platform, next);
    if changes || paging::active_root() != root {
        // SAFETY: every service space shares the kernel half, so the
        // kernel stays mapped across the switch.
        unsafe { paging::activate(root) };
    }
    super::stages::mark(Stage::Switch);
    syscall::save_in_place(regs);
}

/// Where floating point runs despite CR0.EM (see `probe`), gives `next`
/// its own registers: the live ones are saved for their owner first.
fn switch_floating_point(platform: &mut MachinePlatform, next: usize) {
    use crate::arch::cpu;
    if !probe::fpu_switched() || platform.fpu_owner == Some(next) {
        return;
    }
    if let Some(owner) = platform.fpu_owner {
        cpu::save_floating_point(&mut platform.fpu[owner]);
    }
    cpu::restore_floating_point(&platform.fpu[next]);
    platform.fpu_owner = Some(next);
}

/// Stops a service whose saved RIP is not a lower-half canonical address
/// (a forged return address): resuming it would fault in ring 0.
fn stop_unresumable(sys: &mut System, task: usize, rip: u64) {
    let fault = TaskFault {
        vector: 13,
        error_code: 0,
        address: rip,
        rip,
    };
    let t = &sys.kernel.tasks[task];
    let (name, generation) = (t.name.clone(), t.generation);
    let report = sys.kernel.fault(&mut sys.platform, task, fault);
    crate::kprintln!(
        "service {name} (generation {generation}) faulted: #GP, return address {rip:#x} is not a canonical user address; stopped, other services unaffected"
    );
    log_woken(report.woken_clients);
}
