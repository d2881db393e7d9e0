//! Running a deployment's services: the glue between the kernel core
//! ([`crate::kern`]), the CPU's entry points and the machine.
//!
//! Every entry from ring 3 (syscall, interrupt, fault) lands in
//! [`user_entry`] with the service's registers in a [`TrapFrame`] on the one
//! kernel stack. The frame is saved into the running service, the core acts,
//! and the frame is overwritten with the registers of the service chosen to
//! run next (its address space loaded into CR3) before `iretq`. When nothing
//! can run, the kernel idles with interrupts on; when nothing can *ever* run
//! again, it reports how every service ended and stops the machine.

mod loader;
mod platform;
mod space;

use crate::arch::idt::TrapFrame;
use crate::arch::interrupts::{TIMER_VECTOR, exception_name};
use crate::arch::{apic, exit, gdt, paging, syscall, tsc};
use crate::kern::task::{Blocked, Regs, State};
use crate::kern::{After, Kernel, Platform, Resolver};
use core::sync::atomic::{AtomicU32, Ordering};
use faultline_ipc::harness::{ExitCode, SHUTDOWN_MARKER};
use faultline_ipc::kconfig::{KernelConfig, TaskFault};
use hermit_sync::InterruptSpinMutex;
use platform::{IRQ_VECTOR_BASE, IrqLine, MAX_IRQS, MachinePlatform};

struct System {
    kernel: Kernel,
    platform: MachinePlatform,
    /// For each service, the generation whose last kernel entry was a
    /// syscall (0 if it was anything else): such a service may be resumed
    /// with `sysretq`, since `rcx` and `r11` are clobbered by the ABI.
    entered_by_syscall: [u32; faultline_ipc::kconfig::MAX_SERVICES],
}

static SYSTEM: InterruptSpinMutex<Option<System>> = InterruptSpinMutex::new(None);
/// IRQ lines that fired and are not yet handed to their service.
static IRQ_FIRED: AtomicU32 = AtomicU32::new(0);

/// Resolves PCI and VT-d grants against what the boot scan found, and
/// hands out interrupt vectors.
struct BootResolver<'a> {
    irqs: &'a mut heapless::Vec<IrqLine, MAX_IRQS>,
}

impl Resolver for BootResolver<'_> {
    fn pci(&mut self, vendor: u16, device: u16, index: u8) -> Option<(u8, u8, u8)> {
        crate::platform::with_pci(|fs| {
            fs.iter()
                .filter(|f| f.vendor_id == vendor && f.device_id == device)
                .nth(usize::from(index))
                .map(|f| (f.bdf.bus, f.bdf.device, f.bdf.function))
        })
    }

    fn vtd_unit(&mut self, unit: u8) -> Option<(u64, u64)> {
        crate::platform::vtd_unit(unit)
    }

    fn irq(&mut self, task: u8, bits: u32) -> Option<u8> {
        let irq = self.irqs.len() as u8;
        self.irqs
            .push(IrqLine {
                task,
                bits,
                masked: false,
                pending: false,
            })
            .ok()?;
        Some(irq)
    }
}

/// The scheduling quantum: a runnable service keeps the CPU this long
/// before another of the same priority gets it; service timers have this
/// resolution. Each tick is a kernel entry, which is costly under
/// hypervisors that shadow page tables, so it is no finer than needed.
pub const QUANTUM_MS: u32 = 10;

/// Starts the deployment in `config` and never returns.
pub fn run(
    config: &'static KernelConfig,
    images: &'static [&'static [u8]],
    kernel_stack_top: u64,
) -> ! {
    syscall::init(kernel_stack_top);
    crate::platform::set_timer_period_ms(QUANTUM_MS);
    let mut irqs = heapless::Vec::new();
    let mut kernel = match Kernel::new(config, &mut BootResolver { irqs: &mut irqs }) {
        Ok(k) => k,
        Err(e) => {
            log::error!("services: cannot create the deployment: {e}");
            exit::exit(ExitCode::BootFailure);
        }
    };
    for (i, t) in kernel.tasks.iter().enumerate() {
        log::info!(
            "services: {} (priority {}) with {} capabilities",
            t.name,
            t.priority,
            t.caps.len()
        );
        for (h, slot) in t.caps.slots().iter().enumerate() {
            log::debug!("  {}[{h}] {} = {:?}", i, slot.name, slot.cap);
        }
    }
    let mut platform = MachinePlatform {
        config,
        images,
        spaces: heapless::Vec::new(),
        irqs,
        boot_tsc: tsc::read(),
    };
    if let Err((task, e)) = kernel.start_all(&mut platform) {
        log::error!("services: cannot start {}: {e}", kernel.tasks[task].name);
        exit::exit(ExitCode::BootFailure);
    }
    *SYSTEM.lock() = Some(System {
        kernel,
        platform,
        entered_by_syscall: [0; faultline_ipc::kconfig::MAX_SERVICES],
    });
    let mut frame = user_frame(&Regs::default());
    resume_next(&mut frame, false);
    syscall::enter_user(&frame)
}

fn user_frame(r: &Regs) -> TrapFrame {
    TrapFrame {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        vector: 0,
        error_code: 0,
        rip: r.rip,
        cs: u64::from(gdt::USER_CS.bits()),
        rflags: r.rflags,
        rsp: r.rsp,
        ss: u64::from(gdt::USER_SS.bits()),
    }
}

fn save(frame: &TrapFrame) -> Regs {
    Regs {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rcx,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: frame.rip,
        rsp: frame.rsp,
        // A service cannot set IOPL or clear IF for itself.
        rflags: (frame.rflags & 0xcd5) | 0x202,
    }
}

/// Records an interrupt for IRQ line `irq` (from any mode).
pub fn irq_fired(vector: u8) {
    let irq = vector - IRQ_VECTOR_BASE;
    if usize::from(irq) < MAX_IRQS {
        IRQ_FIRED.fetch_or(1 << irq, Ordering::Relaxed);
    }
    apic::eoi();
}

/// Whether `vector` belongs to an IRQ capability.
pub fn is_irq_vector(vector: u8) -> bool {
    (IRQ_VECTOR_BASE..IRQ_VECTOR_BASE + MAX_IRQS as u8).contains(&vector)
}

/// The entry from ring 3: a syscall, an interrupt or a fault.
pub fn user_entry(frame: &mut TrapFrame) {
    if syscall::is_broken_syscall(frame) {
        static WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                "kernel: SYSCALL left the CPU in ring 3 (a hypervisor quirk); handling syscalls from the resulting page faults"
            );
        }
        syscall::recover_broken_syscall(frame);
    }
    let vector = frame.vector;
    let mut rotate = false;
    {
        let mut guard = SYSTEM.lock();
        let Some(sys) = guard.as_mut() else {
            return;
        };
        let Some(cur) = sys.kernel.current else {
            return;
        };
        sys.kernel.tasks[cur].regs = save(frame);
        sys.entered_by_syscall[cur] = if vector == syscall::SYSCALL_VECTOR {
            sys.kernel.tasks[cur].generation
        } else {
            0
        };
        match vector {
            syscall::SYSCALL_VECTOR => match sys.kernel.syscall(&mut sys.platform, cur) {
                After::Continue => {}
                After::Yield => rotate = true,
                After::Exited(report) => {
                    let t = &sys.kernel.tasks[cur];
                    if let State::Exited { code } = t.state {
                        log::info!("service {} exited with code {code}", t.name);
                    }
                    log_woken(report.woken_clients);
                }
            },
            v if v < 32 => service_fault(sys, cur, frame),
            v if v == u64::from(TIMER_VECTOR) => {
                apic::eoi();
                rotate = true;
            }
            v if is_irq_vector(v as u8) => irq_fired(v as u8),
            _ => apic::eoi(),
        }
    }
    resume_next(frame, rotate);
}

fn log_woken(n: usize) {
    if n > 0 {
        log::info!("  {n} waiting client(s) told the peer is dead");
    }
}

fn service_fault(sys: &mut System, cur: usize, frame: &TrapFrame) {
    // SAFETY: reading CR2 has no side effects.
    let cr2 = unsafe { x86::controlregs::cr2() } as u64;
    let vector = frame.vector as u8;
    let fault = TaskFault {
        vector,
        error_code: frame.error_code,
        address: if vector == 14 { cr2 } else { 0 },
        rip: frame.rip,
    };
    let (mnemonic, name) = exception_name(vector);
    let t = &sys.kernel.tasks[cur];
    let (task_name, generation) = (t.name.clone(), t.generation);
    let report = sys.kernel.fault(cur, fault);
    crate::kprintln!(
        "service {task_name} (generation {generation}) faulted: {mnemonic} {name}, error code {:#x}, address {:#x}, RIP {:#x}, RSP {:#x}, CS {:#x}, RFLAGS {:#x}; stopped, other services unaffected",
        fault.error_code,
        fault.address,
        fault.rip,
        frame.rsp,
        frame.cs,
        frame.rflags
    );
    log_woken(report.woken_clients);
}

/// Delivers fired IRQs and expired timers.
fn deliver_events(sys: &mut System) {
    let fired = IRQ_FIRED.swap(0, Ordering::Relaxed);
    for irq in 0..MAX_IRQS {
        if fired & (1 << irq) == 0 {
            continue;
        }
        let Some(line) = sys.platform.irqs.get_mut(irq) else {
            continue;
        };
        if line.masked {
            line.pending = true;
            continue;
        }
        line.masked = true;
        let (task, bits) = (usize::from(line.task), line.bits);
        sys.kernel.post(task, bits);
    }
    for line in sys.platform.irqs.iter_mut() {
        if !line.masked && line.pending {
            line.pending = false;
            line.masked = true;
            let (task, bits) = (usize::from(line.task), line.bits);
            sys.kernel.post(task, bits);
        }
    }
    let now = sys.platform.now_ns();
    sys.kernel.tick(now);
}

/// Picks the next service and loads its registers into `frame` and its
/// address space into CR3, idling while nothing is runnable.
fn resume_next(frame: &mut TrapFrame, rotate: bool) {
    loop {
        {
            let mut guard = SYSTEM.lock();
            let sys = guard.as_mut().expect("services are running");
            deliver_events(sys);
            if let Some(next) = sys.kernel.schedule(rotate) {
                let task = &sys.kernel.tasks[next];
                *frame = user_frame(&task.regs);
                syscall::mark_sysret(frame, sys.entered_by_syscall[next] == task.generation);
                let root = sys.platform.spaces[next].as_ref().expect("loaded").root();
                if paging::active_root() != root {
                    // SAFETY: every service space shares the kernel half,
                    // so the kernel stays mapped across the switch.
                    unsafe { paging::activate(root) };
                }
                return;
            }
            if sys.kernel.quiescent() {
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

/// Reports how every service ended and stops the machine: success unless a
/// client is stuck waiting on a server (a deadlock) or a service exited with
/// a failure code.
fn finish(sys: &mut System) -> ! {
    let mut ok = true;
    crate::kprintln!("kernel: no service can run again; final states:");
    for t in &sys.kernel.tasks {
        let what: heapless::String<64> = match t.state {
            State::Exited { code } => {
                ok &= code == 0;
                fmt64(format_args!("exited with code {code}"))
            }
            State::Faulted => fmt64(format_args!(
                "stopped after a fault (generation {})",
                t.generation
            )),
            State::Blocked(Blocked::Recv { .. }) => fmt64(format_args!("waiting for messages")),
            State::Blocked(Blocked::Wait { .. }) => {
                fmt64(format_args!("waiting for notifications"))
            }
            State::Blocked(b) => {
                ok = false;
                fmt64(format_args!("DEADLOCKED in {b:?}"))
            }
            State::Runnable => fmt64(format_args!("runnable")),
        };
        crate::kprintln!("  {}: {what}", t.name);
    }
    crate::kprintln!("{SHUTDOWN_MARKER}");
    exit::exit(if ok {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

fn fmt64(args: core::fmt::Arguments) -> heapless::String<64> {
    let mut s = heapless::String::new();
    let _ = core::fmt::write(&mut s, args);
    s
}
