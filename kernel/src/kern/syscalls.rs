//! System-call dispatch: decode, check, act, and store the results in the
//! caller's saved registers (or block it).
//!
//! Every refusal is an [`Error`] in the caller's `rax`; none stops the
//! caller. Refusals are logged, rate-limited per service.

use super::caps::Cap;
use super::ipc::Outcome;
use super::task::State;
use super::{Kernel, Platform};
use faultline_ipc::abi::{Error, MAX_CAP_NAME, MAX_LOG, MAX_MESSAGE, Sysnum};
use faultline_ipc::kconfig::{TaskState, TaskStatus};

/// Refusals logged per service before going quiet.
const REFUSALS_LOGGED: u32 = 32;
/// The PCI command register, and its bus-master bit.
const COMMAND: u16 = 0x04;
const BUS_MASTER: u32 = 1 << 2;

/// What the glue must do after a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Resume or reschedule as usual.
    Continue,
    /// Give other services of the same priority a turn.
    Yield,
    /// The caller exited.
    Exited(super::StopReport),
}

impl Kernel {
    /// Handles the syscall the current registers of `caller` describe.
    pub fn syscall(&mut self, p: &mut impl Platform, caller: usize) -> After {
        let regs = self.tasks[caller].regs;
        let args = regs.args();
        let Some(nr) = Sysnum::from_raw(regs.rax) else {
            self.refuse(p, caller, regs.rax, Error::BadSyscall, 0);
            return After::Continue;
        };
        let result = match nr {
            Sysnum::Exit => return After::Exited(self.exit(p, caller, args[0] as u32)),
            Sysnum::Yield => {
                self.tasks[caller].regs.set_result(0, [0; 4]);
                return After::Yield;
            }
            Sysnum::Log => self.log(p, caller, args[0], args[1]),
            Sysnum::Time => {
                let (tsc, hz) = p.tsc();
                Ok(Outcome::Done([tsc, hz, p.now_ns(), 0]))
            }
            Sysnum::SetTimer => {
                self.tasks[caller].timer = (args[0] != 0).then_some(args[0]);
                Ok(Outcome::Done([0; 4]))
            }
            Sysnum::Call => self.call(p, caller, args),
            Sysnum::Send => self.send(p, caller, args),
            Sysnum::Recv => self.recv(p, caller, args),
            Sysnum::Reply => self.reply(p, caller, args),
            Sysnum::Notify => self.notify(caller, args[0]),
            Sysnum::Wait => Ok(self.wait(caller, args[0])),
            Sysnum::ReplyRecv => self.reply_recv(p, caller, args),
            Sysnum::NotifyWait => self.notify_wait(caller, args),
            Sysnum::NotifyRecv => self.notify_recv(p, caller, args),
            Sysnum::IrqAck => self.irq(caller, args[0]).map(|irq| {
                p.irq_unmask(irq);
                Outcome::Done([0; 4])
            }),
            Sysnum::IrqInfo => self.irq(caller, args[0]).map(|irq| {
                let (addr, data) = p.irq_msi(irq);
                Outcome::Done([addr, u64::from(data), 0, 0])
            }),
            Sysnum::ClientPci => self.client_pci(p, caller, args[0], args[1]),
            Sysnum::ClientFaults => self.client_faults(p, caller, args[0], args[1]),
            Sysnum::VtdInfo => self.vtd_info(p, caller, args[0]),
            Sysnum::ClientDma => self.client_dma(caller, args),
            Sysnum::DmaUnpin => self.dma_unpin(p, caller, args[0]),
            Sysnum::DmaRevoked => self.dma_revoked(caller),
            Sysnum::DeviceTranslated => self.device_translated(p, caller, args),
            Sysnum::IrqRoute => self.irq_route(p, caller, args),
            Sysnum::IrqRemap => self.irq_remap(p, caller, args),
            Sysnum::MmioMap => self.mmio_map(p, caller, args[0]),
            Sysnum::DmaAlloc => self.dma_alloc(p, caller, args[0], args[1]),
            Sysnum::PciConfigRead | Sysnum::PciConfigWrite => self.pci_config(p, caller, nr, args),
            Sysnum::CapLookup => self.cap_lookup(p, caller, args[0], args[1]),
            Sysnum::TaskStatus => self.task_status(p, caller, args),
            Sysnum::TaskRestart => match self.tasks[caller].caps.is_supervisor(args[0]) {
                Ok(()) => {
                    let task = usize::try_from(args[1]).unwrap_or(usize::MAX);
                    self.restart(p, task)
                        .map(|()| Outcome::Done([0; 4]))
                        .map_err(|e| (e, 0))
                }
                Err(e) => Err((e, 0)),
            },
        };
        match result {
            Ok(Outcome::Done(values)) => self.tasks[caller].regs.set_result(0, values),
            Ok(Outcome::Blocked) => {}
            Err((e, value)) => self.refuse(p, caller, nr as u64, e, value),
        }
        After::Continue
    }

    fn refuse(&mut self, p: &mut impl Platform, caller: usize, nr: u64, e: Error, value: u64) {
        let t = &mut self.tasks[caller];
        t.regs.set_result(e as u64, [value, 0, 0, 0]);
        t.state = State::Runnable;
        self.note(caller);
        let t = &mut self.tasks[caller];
        // Expected outcomes of IPC are not misuse.
        if matches!(
            e,
            Error::PeerDead | Error::PeerRestarted | Error::Truncated | Error::NotFound
        ) {
            return;
        }
        t.refusals += 1;
        if t.refusals <= REFUSALS_LOGGED {
            let mut line = heapless::String::<96>::new();
            let _ = core::fmt::write(
                &mut line,
                format_args!("kernel: refused syscall {nr} from {}: {e}", t.name),
            );
            if t.refusals == REFUSALS_LOGGED {
                let _ = line.push_str(" (further refusals not logged)");
            }
            p.log(None, "kernel", line.as_bytes());
        }
    }

    /// The interrupt behind IRQ capability `handle`.
    fn irq(&self, caller: usize, handle: u64) -> Result<u8, (Error, u64)> {
        match self.tasks[caller].caps.get(handle) {
            Ok(Cap::Irq { irq, .. }) => Ok(*irq),
            Ok(_) => Err((Error::WrongKind, 0)),
            Err(e) => Err((e, 0)),
        }
    }

    fn log(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        ptr: u64,
        len: u64,
    ) -> Result<Outcome, (Error, u64)> {
        let (buf, len) = read_bounded::<MAX_LOG>(p, caller, ptr, len).map_err(|e| (e, 0))?;
        let name = self.tasks[caller].name.clone();
        p.log(Some(caller), &name, &buf[..len]);
        Ok(Outcome::Done([0; 4]))
    }

    pub(super) fn notify(&mut self, caller: usize, handle: u64) -> Result<Outcome, (Error, u64)> {
        match self.tasks[caller].caps.get(handle) {
            Ok(&Cap::Notification { target, bits }) => {
                let target = usize::from(target);
                if self.tasks[target].state.is_stopped() {
                    return Err((Error::PeerDead, 0));
                }
                self.post(target, bits);
                Ok(Outcome::Done([0; 4]))
            }
            Ok(_) => Err((Error::WrongKind, 0)),
            Err(e) => Err((e, 0)),
        }
    }

    fn mmio_map(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        handle: u64,
    ) -> Result<Outcome, (Error, u64)> {
        let cap = self.tasks[caller]
            .caps
            .get_mut(handle)
            .map_err(|e| (e, 0))?;
        let Cap::Mmio {
            base,
            len,
            hole,
            mapped_at,
            ..
        } = cap
        else {
            return Err((Error::WrongKind, 0));
        };
        let (base, len, hole) = (*base, *len, *hole);
        let virt = match *mapped_at {
            Some(v) => v,
            None => {
                let v = p.map_mmio(caller, base, len, hole).map_err(|e| (e, 0))?;
                if let Ok(Cap::Mmio { mapped_at, .. }) = self.tasks[caller].caps.get_mut(handle) {
                    *mapped_at = Some(v);
                }
                v
            }
        };
        Ok(Outcome::Done([virt, len, 0, 0]))
    }

    fn dma_alloc(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        handle: u64,
        bytes: u64,
    ) -> Result<Outcome, (Error, u64)> {
        let full = self.tasks[caller].dma.is_full();
        let cap = self.tasks[caller]
            .caps
            .get_mut(handle)
            .map_err(|e| (e, 0))?;
        let Cap::Dma { budget, used } = cap else {
            return Err((Error::WrongKind, 0));
        };
        if bytes == 0 {
            return Err((Error::BadLength, 0));
        }
        let pages = bytes.div_ceil(4096).saturating_mul(4096);
        if used.saturating_add(pages) > *budget || full {
            return Err((Error::OutOfMemory, 0));
        }
        *used += pages;
        match p.alloc_dma(caller, pages) {
            Ok((vaddr, paddr)) => {
                let t = &mut self.tasks[caller];
                let buffer = t.dma.len() as u64;
                let _ = t.dma.push(super::dma::Buffer {
                    vaddr,
                    paddr,
                    bytes: pages,
                });
                // Physical addresses are the IOMMU service's business; a
                // driver names its memory by buffer number.
                let shown = if self.iommu && !self.is_iommu_service(caller) {
                    0
                } else {
                    paddr
                };
                Ok(Outcome::Done([vaddr, buffer, shown, 0]))
            }
            Err(e) => {
                if let Ok(Cap::Dma { used, .. }) = self.tasks[caller].caps.get_mut(handle) {
                    *used -= pages;
                }
                Err((e, 0))
            }
        }
    }

    fn pci_config(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        nr: Sysnum,
        args: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        let bdf = match self.tasks[caller].caps.get(args[0]) {
            Ok(&Cap::Pci {
                bus,
                device,
                function,
            }) => (bus, device, function),
            Ok(_) => return Err((Error::WrongKind, 0)),
            Err(e) => return Err((e, 0)),
        };
        let (offset, width) = (args[1], args[2]);
        if !matches!(width, 1 | 2 | 4) || offset >= 4096 || offset % width != 0 {
            return Err((Error::BadArgument, 0));
        }
        let (offset, width) = (offset as u16, width as u8);
        if nr == Sysnum::PciConfigRead {
            return Ok(Outcome::Done([
                u64::from(p.pci_read(bdf, offset, width)),
                0,
                0,
                0,
            ]));
        }
        // Only what the allow-list names; the refused byte's offset is
        // returned so a driver can tell what it may not touch.
        let current = p.pci_read(bdf, offset, width);
        let value = args[3] as u32;
        let mut cfg = |o: u16, w: u8| p.pci_read(bdf, o, w);
        let merged = super::pci_policy::merge_write(&mut cfg, offset, width, value, current)
            .map_err(|r| (Error::NotPermitted, u64::from(r.offset)))?;
        // The bus-master gate: only a function the IOMMU service attached
        // to a domain with translation on may master the bus.
        if offset == COMMAND
            && merged & BUS_MASTER != 0
            && self.iommu
            && !self.translated.contains(bdf)
        {
            return Err((Error::NotPermitted, u64::from(COMMAND)));
        }
        p.pci_write(bdf, offset, width, merged);
        Ok(Outcome::Done([0; 4]))
    }

    fn cap_lookup(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        ptr: u64,
        len: u64,
    ) -> Result<Outcome, (Error, u64)> {
        let (name, len) = read_bounded::<MAX_CAP_NAME>(p, caller, ptr, len).map_err(|e| (e, 0))?;
        let (handle, kind) = self.tasks[caller]
            .caps
            .lookup(&name[..len])
            .map_err(|e| (e, 0))?;
        Ok(Outcome::Done([u64::from(handle), kind as u64, 0, 0]))
    }

    fn task_status(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, index, buf, cap, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        self.tasks[caller]
            .caps
            .is_supervisor(handle)
            .map_err(|e| (e, 0))?;
        let t = usize::try_from(index)
            .ok()
            .and_then(|i| self.tasks.get(i))
            .ok_or((Error::NotFound, 0))?;
        let status = TaskStatus {
            name: t.name.clone(),
            state: match t.state {
                State::Faulted => TaskState::Faulted,
                State::Exited { code } => TaskState::Exited { code },
                _ => TaskState::Running,
            },
            generation: t.generation,
            restarts: t.restarts,
            fault: t.fault,
            policy: t.policy,
        };
        let mut bytes = [0u8; MAX_MESSAGE];
        let used = postcard::to_slice(&status, &mut bytes)
            .map_err(|_| (Error::OutOfMemory, 0))?
            .len();
        if (cap as usize) < used {
            return Err((Error::BadLength, used as u64));
        }
        p.write_user(caller, buf, &bytes[..used])
            .map_err(|e| (e, 0))?;
        Ok(Outcome::Done([used as u64, 0, 0, 0]))
    }
}

/// Copies `len` (at most `N`) bytes of the caller's memory at `ptr` into a
/// kernel buffer: `BadLength` past `N`, `BadPointer` if not mapped for it.
pub(super) fn read_bounded<const N: usize>(
    p: &mut impl Platform,
    caller: usize,
    ptr: u64,
    len: u64,
) -> Result<([u8; N], usize), Error> {
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= N)
        .ok_or(Error::BadLength)?;
    let mut buf = [0u8; N];
    p.read_user(caller, ptr, &mut buf[..len])?;
    Ok((buf, len))
}
