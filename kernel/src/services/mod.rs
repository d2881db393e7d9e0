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

mod cell;
mod devices;
mod loader;
mod logging;
mod platform;
mod probe;
mod resume;
mod space;
mod stages;

use resume::{resume_into, resume_next, switch_to_woken};

use crate::arch::idt::TrapFrame;
use crate::arch::interrupts::{TIMER_VECTOR, exception_name};
use crate::arch::{apic, exit, gdt, syscall, tsc};
use crate::kern::fastpath::Stage;
use crate::kern::grants::GrantError;
use crate::kern::task::{Blocked, Regs, State};
use crate::kern::{After, Kernel, MmioRegion, Platform, Resolver};
use core::sync::atomic::{AtomicU32, Ordering};
use faultline_ipc::abi::Sysnum;
use faultline_ipc::harness::{ExitCode, SHUTDOWN_MARKER};
use faultline_ipc::kconfig::{KernelConfig, TaskFault};
use platform::{IRQ_VECTOR_BASE, IrqLine, MAX_IRQS, MachinePlatform};

struct System {
    kernel: Kernel,
    platform: MachinePlatform,
    /// For each service, the generation whose last kernel entry was a
    /// syscall (0 if it was anything else): such a service may be resumed
    /// with `sysretq`, since `rcx` and `r11` are clobbered by the ABI.
    ///
    /// Kept so that the in-place syscall entry never writes it: every
    /// resume sets it to the resumed generation (whatever the service's
    /// next entry, while it runs it has not been interrupted), and the IDT
    /// path sets it to 0 for an interrupt or fault. So a running service's
    /// entry names its generation, and so does a blocked one's (it blocked
    /// in a system call and has not run since).
    entered_by_syscall: [u32; faultline_ipc::kconfig::MAX_SERVICES],
    /// The TSC when a service last ran.
    last_ran_tsc: u64,
}

static SYSTEM: cell::KernelCell<Option<System>> = cell::KernelCell::new(None);
/// IRQ lines that fired and are not yet handed to their service.
static IRQ_FIRED: AtomicU32 = AtomicU32::new(0);

/// Resolves grants against what the boot scan and the firmware found, and
/// hands out interrupt vectors (programming each device's MSI with its
/// own).
struct BootResolver<'a> {
    irqs: &'a mut heapless::Vec<IrqLine, MAX_IRQS>,
    machine: crate::kern::grants::MachineMap,
    /// Every device's BARs, which raw MMIO grants must stay clear of.
    bars: crate::kern::grants::MachineMap,
}

impl Resolver for BootResolver<'_> {
    fn pci(&mut self, vendor: u16, device: u16, index: u8) -> Result<(u8, u8, u8), GrantError> {
        let bdf = devices::resolve_pci(vendor, device, index)?;
        // With an IOMMU, a function masters the bus only once the IOMMU
        // service has attached it (the kernel's gate); whatever firmware
        // left on goes off before any service runs.
        if crate::platform::vtd_unit(0).is_some() {
            devices::bus_master_off(bdf);
        }
        Ok(bdf)
    }

    fn pci_bar(&mut self, bdf: (u8, u8, u8), bar: u8) -> Result<MmioRegion, GrantError> {
        devices::resolve_bar(&self.machine, bdf, bar)
    }

    fn mmio(&mut self, base: u64, len: u64) -> Result<(), GrantError> {
        self.machine.check_mmio(base, len)?;
        self.bars.check_mmio(base, len)
    }

    fn vtd_unit(&mut self, unit: u8) -> Option<(u64, u64)> {
        crate::platform::vtd_unit(unit)
    }

    fn vtd_irq(&mut self, task: u8, _unit: u8, bits: u32) -> Result<u8, GrantError> {
        let irq = self.irqs.len() as u8;
        if usize::from(irq) >= MAX_IRQS {
            return Err(GrantError::NoVector);
        }
        self.irqs
            .push(IrqLine {
                task,
                bits,
                bdf: None,
                remap: None,
                masked: false,
                pending: false,
            })
            .map_err(|_| GrantError::NoVector)?;
        Ok(irq)
    }

    fn irq(&mut self, task: u8, bits: u32, bdf: (u8, u8, u8)) -> Result<u8, GrantError> {
        let irq = self.irqs.len() as u8;
        if usize::from(irq) >= MAX_IRQS {
            return Err(GrantError::NoVector);
        }
        devices::program_msi(bdf, IRQ_VECTOR_BASE + irq)?;
        self.irqs
            .push(IrqLine {
                task,
                bits,
                bdf: Some(bdf),
                remap: None,
                masked: false,
                pending: false,
            })
            .map_err(|_| GrantError::NoVector)?;
        Ok(irq)
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
    if syscall::entry_address() != faultline_ipc::harness::SYSCALL_ENTRY {
        log::warn!(
            "kernel: the syscall entry is at {:#x}, not at the documented {:#x}",
            syscall::entry_address(),
            faultline_ipc::harness::SYSCALL_ENTRY
        );
    }
    crate::arch::cpu::forbid_floating_point();
    nmi_self_test();
    let _ = BOOT.set((config, images));
    probe::start()
}

/// What [`run`] hands to [`start`] across the syscall probe.
static BOOT: hermit_sync::OnceCell<(&'static KernelConfig, &'static [&'static [u8]])> =
    hermit_sync::OnceCell::new();
/// NMIs reported so far.
static NMIS_REPORTED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// How long [`nmi_self_test`] waits for its NMI, in milliseconds. A
/// self-NMI is taken at once on hardware and under TCG; under nested KVM it
/// waits for the next VM entry of the outer hypervisor, which a busy host
/// can delay by whole milliseconds (seen: more than 1 ms on an AMD host
/// with a software nested KVM). The wait ends as soon as the NMI is counted.
const NMI_SELF_TEST_MS: u64 = 200;

/// Sends this CPU an NMI and checks it was taken and counted, not fatal.
fn nmi_self_test() {
    let before = crate::arch::interrupts::nmis();
    let sent = tsc::read();
    apic::send_nmi_to_self();
    let deadline = sent + tsc::hz() / 1000 * NMI_SELF_TEST_MS;
    while crate::arch::interrupts::nmis() == before && tsc::read() < deadline {
        core::hint::spin_loop();
    }
    let waited_us = tsc::cycles_to_ns(tsc::read().wrapping_sub(sent)) / 1000;
    let taken = crate::arch::interrupts::nmis() - before;
    NMIS_REPORTED.store(crate::arch::interrupts::nmis(), Ordering::Relaxed);
    if taken > 0 {
        crate::kprintln!(
            "kernel: NMI self-test: an NMI in ring 0 was taken and logged, not fatal ({waited_us} us)"
        );
    } else {
        log::warn!("kernel: NMI self-test: no NMI arrived within {NMI_SELF_TEST_MS} ms");
    }
}

/// Reports NMIs taken since the last report (one line however many).
fn report_nmis() {
    let now = crate::arch::interrupts::nmis();
    if now == NMIS_REPORTED.load(Ordering::Relaxed) {
        return; // nothing new: no write on the scheduler's path
    }
    let seen = NMIS_REPORTED.swap(now, Ordering::Relaxed);
    if now > seen {
        crate::kprintln!(
            "kernel: {} NMI(s) taken ({} since boot); logged, not charged to any service",
            now - seen,
            now
        );
    }
}

/// Starts the deployment once the probe has run; never returns.
fn start() -> ! {
    let (config, images) = *BOOT.get().expect("run stored the deployment");
    crate::platform::set_timer_period_ms(QUANTUM_MS);
    let mut irqs = heapless::Vec::new();
    let mut resolver = BootResolver {
        irqs: &mut irqs,
        machine: crate::platform::machine_map(),
        bars: devices::bar_map(),
    };
    let mut kernel = match Kernel::new(config, &mut resolver) {
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
    for t in &kernel.tasks {
        if let Some(r) = &t.refused {
            crate::kprintln!(
                "kernel: service {} not started: grant {}: {}",
                t.name,
                r.grant,
                r.error
            );
        }
    }
    let held: heapless::Vec<(u8, u8, u8), 64> = kernel
        .tasks
        .iter()
        .flat_map(|t| t.caps.slots().iter())
        .filter_map(|s| match s.cap {
            crate::kern::caps::Cap::Pci {
                bus,
                device,
                function,
            } => Some((bus, device, function)),
            _ => None,
        })
        .collect();
    devices::isolate_unclaimed(&held, kernel.iommu);
    let mut platform = MachinePlatform {
        config,
        images,
        spaces: heapless::Vec::new(),
        irqs,
        boot_tsc: tsc::read(),
        quiet_at: [0; faultline_ipc::kconfig::MAX_SERVICES],
        resetting: heapless::Vec::new(),
        retiring: heapless::Vec::new(),
        logs: Default::default(),
        fpu: [crate::arch::cpu::FpuState::clean(); faultline_ipc::kconfig::MAX_SERVICES],
        fpu_owner: None,
    };
    if let Err((task, e)) = kernel.start_all(&mut platform) {
        log::error!("services: cannot start {}: {e}", kernel.tasks[task].name);
        exit::exit(ExitCode::BootFailure);
    }
    *SYSTEM.lock() = Some(System {
        kernel,
        platform,
        entered_by_syscall: [0; faultline_ipc::kconfig::MAX_SERVICES],
        last_ran_tsc: tsc::read(),
    });
    let mut frame = user_frame(&Regs::default());
    resume_into(&mut frame, false);
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
        rflags: (frame.rflags & syscall::USER_FLAGS_KEPT) | crate::kern::task::USER_RFLAGS,
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

/// The entry from ring 3 through the IDT: an interrupt, a fault, or a
/// system call that did not reach the in-place entry (the boot probe's, or
/// one a machine with the SYSCALL quirk delivered as a page fault).
pub fn user_entry(frame: &mut TrapFrame) {
    if probe::probing() {
        return probe::entry(frame);
    }
    if syscall::is_broken_syscall(frame) {
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
            syscall::SYSCALL_VECTOR => rotate = system_call(sys, cur),
            v if v < 32 => service_fault(sys, cur, frame),
            v if v == u64::from(TIMER_VECTOR) => {
                apic::eoi();
                rotate = true;
            }
            v if is_irq_vector(v as u8) => irq_fired(v as u8),
            _ => apic::eoi(),
        }
    }
    resume_into(frame, rotate);
}

/// The entry stub's table: for system call `nr` (below its length), the
/// function that handles it in place. Each system call with a fast path
/// gets a copy of [`in_place`] of its own, with the others' cases compiled
/// out: a smaller function keeps its values in fewer registers, saves
/// fewer on entry, and needs no dispatch of its own. Every other number,
/// in the table or past its end, goes to [`syscall_in_place`].
#[unsafe(no_mangle)]
pub static SYSCALL_IN_PLACE: [extern "C" fn() -> syscall::Resume; syscall::IN_PLACE_TABLE_LEN] = {
    const CALL: u64 = Sysnum::Call as u64;
    const REPLY_RECV: u64 = Sysnum::ReplyRecv as u64;
    const NOTIFY_WAIT: u64 = Sysnum::NotifyWait as u64;
    const NOTIFY_RECV: u64 = Sysnum::NotifyRecv as u64;
    let mut table =
        [syscall_in_place as extern "C" fn() -> syscall::Resume; syscall::IN_PLACE_TABLE_LEN];
    table[CALL as usize] = in_place::<CALL>;
    table[REPLY_RECV as usize] = in_place::<REPLY_RECV>;
    table[NOTIFY_WAIT as usize] = in_place::<NOTIFY_WAIT>;
    table[NOTIFY_RECV as usize] = in_place::<NOTIFY_RECV>;
    table
};

/// The system call whose registers the entry stub saved in the running
/// service's [`Regs`], one without a fast path: the general path and a
/// scheduler pass. Returns the registers to resume (see `arch::syscall`).
pub extern "C" fn syscall_in_place() -> syscall::Resume {
    in_place::<{ u64::MAX }>()
}

/// The system call whose registers the entry stub saved in the running
/// service's [`Regs`], number `NR` (`u64::MAX`: one without a fast path):
/// the IPC fast path if it applies, else the general path and a scheduler
/// pass. Returns the registers to resume (see `arch::syscall`).
#[inline(always)]
extern "C" fn in_place<const NR: u64>() -> syscall::Resume {
    stages::begin();
    let mut guard = SYSTEM.lock();
    stages::mark(Stage::Lock);
    let sys = guard.as_mut().expect("a service made the system call");
    let cur = sys.kernel.current.expect("a service made the system call");
    // The stub sanitised RFLAGS; `entered_by_syscall[cur]` already names
    // this generation (see `System::entered_by_syscall`).
    let len = sys.kernel.tasks[cur].regs.rdx;
    debug_assert!(NR == u64::MAX || NR == sys.kernel.tasks[cur].regs.rax);
    if let Some(next) = sys.kernel.fastpath_for(&mut sys.platform, cur, NR) {
        // A task blocked in a system call has a resumable RIP (it ran
        // there); the general pass stops it otherwise, and resumes one
        // in the last page of the lower half with `iretq`.
        if crate::kern::entry::sysret_safe(sys.kernel.tasks[next].regs.rip) {
            // Not noted as "last ran": quiescence needs that only to a
            // quantum, and the timer's entries note it.
            let resume = switch_to_woken(sys, next);
            drop(guard);
            stages::end(NR, len);
            return resume;
        }
        drop(guard);
        return resume_next(false);
    }
    drop(guard);
    syscall_slow(cur)
}

/// The general path of a system call the fast path left alone.
#[cold]
#[inline(never)]
fn syscall_slow(cur: usize) -> syscall::Resume {
    let rotate = {
        let mut guard = SYSTEM.lock();
        let sys = guard.as_mut().expect("a service made the system call");
        system_call(sys, cur)
    };
    resume_next(rotate)
}

/// Runs a system call on the general path; returns whether the scheduler
/// should rotate among equals (a yield).
fn system_call(sys: &mut System, cur: usize) -> bool {
    match sys.kernel.syscall(&mut sys.platform, cur) {
        After::Continue => false,
        After::Yield => true,
        After::Exited(report) => {
            let t = &sys.kernel.tasks[cur];
            if let State::Exited { code } = t.state {
                log::info!("service {} exited with code {code}", t.name);
            }
            log_woken(report.woken_clients);
            false
        }
    }
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
    let report = sys.kernel.fault(&mut sys.platform, cur, fault);
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
    sys.platform.reap();
}

/// Reports how every service ended and stops the machine: success unless a
/// client is stuck waiting on a server (a deadlock, see
/// `Kernel::ended_well`) or a service exited with a failure code.
fn finish(sys: &mut System) -> ! {
    let mut ok = true;
    stages::report();
    crate::kprintln!("kernel: no service can run again; final states:");
    for (i, t) in sys.kernel.tasks.iter().enumerate() {
        let well = sys.kernel.ended_well(i);
        ok &= well;
        let what: heapless::String<64> = match t.state {
            State::Exited { code } => fmt64(format_args!("exited with code {code}")),
            State::Faulted if t.refused.is_some() => {
                fmt64(format_args!("never started (a grant was refused)"))
            }
            State::Faulted => fmt64(format_args!(
                "stopped after a fault (generation {})",
                t.generation
            )),
            State::Blocked(Blocked::Recv { .. }) => fmt64(format_args!("waiting for messages")),
            State::Blocked(Blocked::Wait { .. }) => {
                fmt64(format_args!("waiting for notifications"))
            }
            State::Blocked(Blocked::AwaitingReply { channel, .. }) if well => fmt64(format_args!(
                "waiting for a deferred reply on channel {channel}"
            )),
            State::Blocked(b) => fmt64(format_args!("DEADLOCKED in {b:?}")),
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
