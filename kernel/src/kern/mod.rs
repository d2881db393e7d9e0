//! The kernel proper: services, capabilities, IPC, scheduling, faults.
//!
//! This is pure logic over a [`Platform`] that does everything touching the
//! machine (copying to and from a service's memory through its page tables,
//! mapping MMIO, allocating DMA memory, PCI config cycles, (re)loading a
//! service's image). The bare-metal glue implements `Platform` on the real
//! hardware; the host tests implement it over plain buffers, so every IPC
//! rule, every refusal and every restart path is tested with `cargo test`.
//!
//! The kernel runs with interrupts disabled and is entered only by a syscall,
//! an interrupt or a fault from ring 3: each entry saves the current
//! service's registers into its [`Task`], runs one of the functions here to
//! completion, and then resumes whichever service [`Kernel::schedule`]
//! picks. There is one kernel stack, no kernel threads, no blocking inside
//! the kernel.

pub mod caps;
pub mod dma;
pub mod entry;
pub mod fastpath;
pub mod grants;
pub mod iommu;
mod ipc;
mod lifecycle;
pub mod logline;
pub mod pci_policy;
mod sched;
mod syscalls;
pub mod task;

#[cfg(test)]
mod tests;

use caps::{Cap, CapTable};
use faultline_ipc::abi::{Error, MAX_MESSAGE, NOTIFY_TASK_FAULT};
use faultline_ipc::kconfig::{CapSpec, KernelConfig, MAX_CHANNELS, MAX_SERVICES};
use grants::GrantError;
use task::{Regs, Task};

pub use lifecycle::StopReport;
pub use syscalls::After;

/// What the kernel needs from the machine.
pub trait Platform {
    /// Copies `buf.len()` bytes from service `task`'s memory at `ptr`; the
    /// range must be mapped user-readable.
    fn read_user(&mut self, task: usize, ptr: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Copies `data` into service `task`'s memory at `ptr`; the range must
    /// be mapped user-writable.
    fn write_user(&mut self, task: usize, ptr: u64, data: &[u8]) -> Result<(), Error>;
    /// Whether `[ptr, ptr + len)` is mapped user-writable in `task`.
    fn check_writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<(), Error>;
    /// [`Platform::check_writable`], returning a hint (0 for none) that
    /// [`Platform::copy_between`] may use to reach `[ptr, ptr + len)`
    /// again without looking it up: the kernel keeps it with a blocked
    /// service's buffer, which stays mapped as it is while the service
    /// waits (a service's mappings change only when it is stopped, and
    /// then its state is discarded with the hint).
    fn writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<u64, Error> {
        self.check_writable(task, ptr, len).map(|()| 0)
    }
    /// Copies `len` bytes (at most [`MAX_MESSAGE`]) from service `from`'s
    /// memory at `src` straight into service `to`'s at `dst`: `src` must be
    /// mapped user-readable for `from` and `dst` user-writable for `to`, and
    /// both are checked before anything is written. `dst_hint` is
    /// [`Platform::writable`]'s for a range starting at `dst` at least
    /// `len` long, or 0.
    fn copy_between(
        &mut self,
        from: usize,
        src: u64,
        to: usize,
        dst: u64,
        dst_hint: u64,
        len: usize,
    ) -> Result<(), Error> {
        let _ = dst_hint;
        let mut bounce = [0u8; MAX_MESSAGE];
        let bounce = bounce.get_mut(..len).ok_or(Error::BadLength)?;
        self.read_user(from, src, bounce)?;
        self.write_user(to, dst, bounce)
    }
    /// Marks the end of a stage of the IPC fast path, for the instrumented
    /// build's breakdown (nothing otherwise).
    fn stage(&mut self, stage: fastpath::Stage) {
        let _ = stage;
    }
    /// Nanoseconds since boot.
    fn now_ns(&self) -> u64;
    /// The TSC and its frequency.
    fn tsc(&self) -> (u64, u64);
    /// Prints a line from service `task` (named `name`), within its
    /// console budget, escaped and attributed; `None` for a line the kernel
    /// composed.
    fn log(&mut self, task: Option<usize>, name: &str, line: &[u8]);
    /// Maps physical MMIO into `task` (uncached, user, no-execute), leaving
    /// `hole` (offset, length within the region) unmapped.
    fn map_mmio(
        &mut self,
        task: usize,
        base: u64,
        len: u64,
        hole: Option<(u64, u64)>,
    ) -> Result<u64, Error>;
    /// Allocates zeroed contiguous DMA memory for `task`: `(vaddr, paddr)`.
    fn alloc_dma(&mut self, task: usize, bytes: u64) -> Result<(u64, u64), Error>;
    /// A PCI config read of `width` (1, 2, 4) bytes.
    fn pci_read(&mut self, bdf: (u8, u8, u8), offset: u16, width: u8) -> u32;
    /// A PCI config write.
    fn pci_write(&mut self, bdf: (u8, u8, u8), offset: u16, width: u8, value: u32);
    /// The MSI address and data for interrupt `irq`.
    fn irq_msi(&self, irq: u8) -> (u64, u32);
    /// Re-enables interrupt `irq`.
    fn irq_unmask(&mut self, irq: u8);
    /// Programs the MSI of the device behind `irq` again (after its driver
    /// restarted: stopping the driver disabled it).
    fn irq_rearm(&mut self, irq: u8);
    /// Stops PCI function `bdf` from doing anything on its own: decoders
    /// and bus mastering off, interrupts masked, a function-level reset
    /// where it has one. Called when the service holding it stops; the
    /// stopped service's memory is not reused until the device is quiet.
    fn quiesce(&mut self, task: usize, bdf: (u8, u8, u8));
    /// (Re)creates `task`'s address space from its image and returns its
    /// entry registers.
    fn load(&mut self, task: usize) -> Result<Regs, Error>;
    /// Keeps the frames behind `[vaddr, vaddr + bytes)` of `task`'s DMA
    /// memory when its address space is freed: a device may still reach
    /// them until the IOMMU service releases them (see [`dma`]).
    fn dma_keep(&mut self, task: usize, vaddr: u64, bytes: u64);
    /// Gives back one kept 4 KiB frame.
    fn dma_free(&mut self, paddr: u64);
    /// Turns bus mastering off on `bdf` (nothing else).
    fn bus_master_off(&mut self, bdf: (u8, u8, u8));
    /// Interrupt line `irq`: `(bdf, vector, apic_id)` of a PCI function's
    /// MSI; `WrongKind` for another kind of line, `NotFound` past the last.
    fn irq_route(&self, irq: u8) -> Result<IrqRouteInfo, Error>;
    /// The VT-d unit (its `VtdMmio` unit number) whose DMAR scope covers
    /// function `bdf`.
    fn vtd_unit_of(&self, bdf: (u8, u8, u8)) -> Option<u8>;
    /// What the DMAR says of VT-d unit `unit`: host address width in bits,
    /// segment, and whether it translates every unlisted function.
    fn vtd_info(&self, unit: u8) -> Option<(u8, u16, bool)>;
    /// Reprograms line `irq`'s MSI in remappable format naming entry
    /// `irte`, or in compatibility format for `None`.
    fn irq_remap(&mut self, irq: u8, irte: Option<u16>) -> Result<(), Error>;
}

/// A device interrupt line: its PCI function, vector and destination APIC.
pub type IrqRouteInfo = ((u8, u8, u8), u8, u32);

/// A channel: one client, one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    pub client: u8,
    pub server: u8,
    /// The badge of the server's end, as granted (server ends never
    /// change, not even across a restart), so delivery need not look it up.
    pub badge: u64,
}

// One bit per service in `Kernel::runnable` and `Kernel::queued`.
const _: () = assert!(MAX_SERVICES <= 32);

/// Every service and channel of the running deployment.
pub struct Kernel {
    pub tasks: heapless::Vec<Task, MAX_SERVICES>,
    /// Capabilities as granted at boot, to grant afresh on restart.
    initial_caps: heapless::Vec<CapTable, MAX_SERVICES>,
    pub channels: heapless::Vec<Channel, MAX_CHANNELS>,
    /// The service whose registers are live (the one last resumed).
    pub current: Option<usize>,
    /// Monotonic stamp ordering queued senders (FIFO within a priority).
    stamp: u64,
    /// Round-robin position within a priority.
    last_run: usize,
    /// The tasks whose state is `Runnable`, one bit each, and those queued
    /// to deliver a message (`CallQueued`, `SendQueued`): kept by
    /// [`Kernel::note`] after every change of state, so the fast path
    /// learns who else wants the CPU or a server without a scan.
    runnable: u32,
    queued: u32,
    /// The machine has a VT-d unit: bus mastering and physical addresses
    /// go through the IOMMU service (see [`dma`]).
    pub iommu: bool,
    /// Ranges of DMA memory the IOMMU services pinned.
    pub pins: dma::Pins,
    /// Functions attached to a domain with translation on.
    pub translated: dma::Translated,
}

/// How one grant resolves on this machine, checked against it (see
/// [`grants`]): [`GrantError::Absent`] leaves the grant unusable; any other
/// error keeps the service from starting.
pub trait Resolver {
    /// The PCI function, refused if it is a bridge or chipset function.
    fn pci(&mut self, vendor: u16, device: u16, index: u8) -> Result<(u8, u8, u8), GrantError>;
    /// Memory BAR `bar` of `bdf`: `(base, len, hole)`, where `hole` is the
    /// part holding the function's MSI-X table and pending bits.
    fn pci_bar(&mut self, bdf: (u8, u8, u8), bar: u8) -> Result<MmioRegion, GrantError>;
    /// Checks a raw MMIO grant against the machine.
    fn mmio(&mut self, base: u64, len: u64) -> Result<(), GrantError>;
    /// VT-d unit `unit`'s registers: `(base, len)`.
    fn vtd_unit(&mut self, unit: u8) -> Option<(u64, u64)>;
    /// Allocates an interrupt vector for the fault event interrupt of
    /// VT-d unit `unit`, granted to `task` as `bits` (the holder programs
    /// the unit's fault event registers with it).
    fn vtd_irq(&mut self, task: u8, unit: u8, bits: u32) -> Result<u8, GrantError>;
    /// Allocates an interrupt vector for an IRQ grant of `task` and
    /// programs `bdf`'s MSI with it.
    fn irq(&mut self, task: u8, bits: u32, bdf: (u8, u8, u8)) -> Result<u8, GrantError>;
}

/// An MMIO region a grant resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRegion {
    pub base: u64,
    pub len: u64,
    /// `(offset, len)` left unmapped.
    pub hole: Option<(u64, u64)>,
}

/// A grant the kernel refused at boot: the service it belongs to never
/// starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub grant: faultline_ipc::kconfig::CapName,
    pub error: GrantError,
}

impl Kernel {
    /// Creates the services and capabilities `config` describes, exactly.
    /// Services are not started; call [`Kernel::start_all`].
    pub fn new(config: &KernelConfig, resolver: &mut impl Resolver) -> Result<Kernel, Error> {
        let mut k = Kernel {
            tasks: heapless::Vec::new(),
            initial_caps: heapless::Vec::new(),
            channels: heapless::Vec::new(),
            current: None,
            stamp: 0,
            last_run: 0,
            runnable: 0,
            queued: 0,
            iommu: resolver.vtd_unit(0).is_some(),
            pins: dma::Pins::default(),
            translated: dma::Translated::default(),
        };
        for c in &config.channels {
            k.channels
                .push(Channel {
                    client: c.client,
                    server: c.server,
                    badge: 0,
                })
                .map_err(|_| Error::OutOfMemory)?;
        }
        for (i, s) in config.services.iter().enumerate() {
            let mut caps = CapTable::default();
            let mut refused = None;
            for grant in &s.caps {
                let cap = match resolve(&grant.kind, i as u8, &caps, resolver) {
                    Ok(cap) => cap,
                    Err(error) => {
                        if error.refuses_start() && refused.is_none() {
                            refused = Some(Refusal {
                                grant: grant.name.clone(),
                                error,
                            });
                        }
                        Cap::Unresolved {
                            kind: grant_kind(&grant.kind),
                        }
                    }
                };
                caps.push(grant.name.clone(), cap)?;
            }
            k.initial_caps
                .push(caps.clone())
                .map_err(|_| Error::OutOfMemory)?;
            let mut task = Task::new(s.name.clone(), s.priority, s.restart, caps);
            task.refused = refused;
            k.tasks.push(task).map_err(|_| Error::OutOfMemory)?;
        }
        for (i, c) in k.channels.iter_mut().enumerate() {
            let server = k.initial_caps.get(usize::from(c.server));
            c.badge = server
                .into_iter()
                .flat_map(|caps| caps.slots())
                .find_map(|slot| match slot.cap {
                    Cap::Server { channel, badge } if usize::from(channel) == i => Some(badge),
                    _ => None,
                })
                .unwrap_or(0);
        }
        Ok(k)
    }

    /// Loads and starts every service, except those a refused grant keeps
    /// stopped (they stay `Faulted`, with [`Task::refused`] saying why, and
    /// cannot be restarted).
    pub fn start_all(&mut self, p: &mut impl Platform) -> Result<(), (usize, Error)> {
        for i in 0..self.tasks.len() {
            if self.tasks[i].refused.is_some() {
                continue;
            }
            let regs = p.load(i).map_err(|e| (i, e))?;
            let t = &mut self.tasks[i];
            t.regs = regs;
            t.state = task::State::Runnable;
            self.note(i);
        }
        Ok(())
    }

    /// The service holding the supervisor capability, if any.
    pub fn supervisor(&self) -> Option<usize> {
        self.tasks
            .iter()
            .position(|t| t.caps.slots().iter().any(|s| s.cap == Cap::Supervisor))
    }

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    /// Posts notification `bits` to `target`, waking it if it waits for any.
    #[inline]
    pub fn post(&mut self, target: usize, bits: u32) {
        let Some(t) = self.tasks.get_mut(target) else {
            return;
        };
        if t.state.is_stopped() {
            return;
        }
        t.notifications |= bits;
        let mask = match t.state {
            task::State::Blocked(task::Blocked::Wait { mask }) => mask,
            task::State::Blocked(task::Blocked::Recv { mask, .. }) => mask,
            _ => return,
        };
        let ready = t.notifications & mask;
        if ready != 0 {
            t.notifications &= !ready;
            let kind = faultline_ipc::abi::RecvKind::Notification as u64;
            match t.state {
                task::State::Blocked(task::Blocked::Wait { .. }) => {
                    t.regs.set_result(0, [u64::from(ready), 0, 0, 0])
                }
                _ => t.regs.set_result(0, [kind, u64::from(ready), 0, 0]),
            }
            t.state = task::State::Runnable;
            // From waiting, so it was neither runnable nor queued.
            self.runnable |= 1 << target;
        }
    }

    /// Records task `i`'s state in [`Kernel::runnable`] and
    /// [`Kernel::queued`]; called after every change of a task's state.
    #[inline]
    fn note(&mut self, i: usize) {
        let bit = 1u32 << i;
        let (runnable, queued) = match self.tasks[i].state {
            task::State::Runnable => (bit, 0),
            task::State::Blocked(
                task::Blocked::CallQueued { .. } | task::Blocked::SendQueued { .. },
            ) => (0, bit),
            _ => (0, 0),
        };
        self.runnable = (self.runnable & !bit) | runnable;
        self.queued = (self.queued & !bit) | queued;
    }

    /// Whether [`Kernel::runnable`] and [`Kernel::queued`] say what the
    /// tasks' states say (tests check it after every step).
    #[cfg(test)]
    pub(crate) fn masks_agree(&self) -> bool {
        let (mut runnable, mut queued) = (0, 0);
        for (i, t) in self.tasks.iter().enumerate() {
            match t.state {
                task::State::Runnable => runnable |= 1 << i,
                task::State::Blocked(
                    task::Blocked::CallQueued { .. } | task::Blocked::SendQueued { .. },
                ) => queued |= 1 << i,
                _ => {}
            }
        }
        (runnable, queued) == (self.runnable, self.queued)
    }

    /// Called on every timer tick: fires expired service timers.
    pub fn tick(&mut self, now_ns: u64) {
        for i in 0..self.tasks.len() {
            if self.tasks[i].timer.is_some_and(|d| now_ns >= d) {
                self.tasks[i].timer = None;
                self.post(i, faultline_ipc::abi::NOTIFY_TIMER);
            }
        }
    }

    /// Tells the supervisor a service stopped.
    fn notify_supervisor(&mut self) {
        if let Some(s) = self.supervisor() {
            self.post(s, NOTIFY_TASK_FAULT);
        }
    }
}

/// The kind a grant would have, for an unresolved placeholder.
fn grant_kind(spec: &CapSpec) -> faultline_ipc::abi::CapKind {
    use faultline_ipc::abi::CapKind;
    match spec {
        CapSpec::Client { .. } => CapKind::Client,
        CapSpec::Server { .. } => CapKind::Server,
        CapSpec::Notification { .. } => CapKind::Notification,
        CapSpec::Irq { .. } | CapSpec::VtdIrq { .. } => CapKind::Irq,
        CapSpec::Mmio { .. } | CapSpec::PciBar { .. } | CapSpec::VtdMmio { .. } => CapKind::Mmio,
        CapSpec::Dma { .. } => CapKind::Dma,
        CapSpec::Pci { .. } => CapKind::Pci,
        CapSpec::Supervisor => CapKind::Supervisor,
        CapSpec::Faults { .. } => CapKind::Faults,
    }
}

/// The PCI function held as handle `pci` in `caps` (granted earlier in the
/// same table); absent if that grant did not resolve.
fn pci_of(caps: &CapTable, pci: u8) -> Result<(u8, u8, u8), GrantError> {
    match caps.slots().get(usize::from(pci)).map(|s| &s.cap) {
        Some(&Cap::Pci {
            bus,
            device,
            function,
        }) => Ok((bus, device, function)),
        _ => Err(GrantError::Absent),
    }
}

fn resolve(
    spec: &CapSpec,
    task: u8,
    caps: &CapTable,
    r: &mut impl Resolver,
) -> Result<Cap, GrantError> {
    Ok(match *spec {
        CapSpec::Client { channel } => Cap::Client {
            channel,
            peer_generation: 1,
        },
        CapSpec::Server { channel, badge } => Cap::Server { channel, badge },
        CapSpec::Notification { target, bits } => Cap::Notification { target, bits },
        CapSpec::Irq { bits, pci } => {
            let bdf = pci_of(caps, pci)?;
            Cap::Irq {
                irq: r.irq(task, bits, bdf)?,
                bits,
            }
        }
        CapSpec::VtdIrq { unit, bits } => {
            r.vtd_unit(unit).ok_or(GrantError::Absent)?;
            Cap::Irq {
                irq: r.vtd_irq(task, unit, bits)?,
                bits,
            }
        }
        CapSpec::Mmio { base, len } => {
            r.mmio(base, len)?;
            Cap::Mmio {
                base,
                len,
                hole: None,
                mapped_at: None,
                vtd: None,
            }
        }
        CapSpec::PciBar { pci, bar } => {
            let region = r.pci_bar(pci_of(caps, pci)?, bar)?;
            Cap::Mmio {
                base: region.base,
                len: region.len,
                hole: region.hole,
                mapped_at: None,
                vtd: None,
            }
        }
        CapSpec::VtdMmio { unit } => {
            let (base, len) = r.vtd_unit(unit).ok_or(GrantError::Absent)?;
            Cap::Mmio {
                base,
                len,
                hole: None,
                mapped_at: None,
                vtd: Some(unit),
            }
        }
        CapSpec::Dma { bytes } => Cap::Dma {
            budget: bytes,
            used: 0,
        },
        CapSpec::Pci {
            vendor,
            device,
            index,
        } => {
            let (bus, device, function) = r.pci(vendor, device, index)?;
            Cap::Pci {
                bus,
                device,
                function,
            }
        }
        CapSpec::Supervisor => Cap::Supervisor,
        // The function is found exactly as for a PCI grant (and refused
        // or absent the same way), but the capability is of its own kind.
        CapSpec::Faults {
            vendor,
            device,
            index,
            deadline_ms,
        } => {
            let (bus, device, function) = r.pci(vendor, device, index)?;
            Cap::Faults {
                bus,
                device,
                function,
                deadline_ms,
            }
        }
    })
}
