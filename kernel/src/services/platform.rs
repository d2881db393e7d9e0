//! The kernel core's [`Platform`] on the real machine.

use super::devices;
use super::loader;
use super::space::UserSpace;
use crate::arch::{paging, tsc};
use crate::kern::Platform;
use crate::kern::task::Regs;
use crate::pci::Bdf;
use faultline_ipc::abi::Error;
use faultline_ipc::kconfig::{KernelConfig, MAX_SERVICES};

/// First vector handed to IRQ capabilities.
pub const IRQ_VECTOR_BASE: u8 = 0x50;
/// Most IRQ capabilities in a deployment.
pub const MAX_IRQS: usize = 16;

/// One interrupt granted to a service: the MSI of one PCI function, or a
/// VT-d unit's fault event interrupt.
#[derive(Clone, Copy, Debug)]
pub struct IrqLine {
    pub task: u8,
    pub bits: u32,
    /// The function whose MSI the kernel programmed with this line's
    /// vector; `None` for a VT-d unit's interrupt, which its IOMMU service
    /// programs.
    pub bdf: Option<(u8, u8, u8)>,
    /// The interrupt remapping entry the MSI names, once the IOMMU
    /// service has routed it (remappable format); `None`: compatibility
    /// format.
    pub remap: Option<u16>,
    /// Delivered and not yet acknowledged.
    pub masked: bool,
    /// Fired again while masked.
    pub pending: bool,
}

pub struct MachinePlatform {
    pub config: &'static KernelConfig,
    pub images: &'static [&'static [u8]],
    pub spaces: heapless::Vec<Option<UserSpace>, MAX_SERVICES>,
    pub irqs: heapless::Vec<IrqLine, MAX_IRQS>,
    pub boot_tsc: u64,
    /// Per service: when (ns since boot) the devices it drove are quiet,
    /// so its memory may be reused.
    pub quiet_at: [u64; MAX_SERVICES],
    /// Functions in a function-level reset, and when it completes.
    pub resetting: heapless::Vec<((u8, u8, u8), u64), MAX_SERVICES>,
    /// Address spaces of stopped drivers whose devices are not quiet yet:
    /// freed once the time passes.
    pub retiring: heapless::Vec<(UserSpace, u64), MAX_SERVICES>,
    /// Per-service console budgets.
    pub logs: [crate::kern::logline::LogBudget; MAX_SERVICES],
    /// Per-service floating-point registers, used only where the boot
    /// probe found that floating point cannot be made to fault.
    pub fpu: [crate::arch::cpu::FpuState; MAX_SERVICES],
    /// The service whose floating-point registers are live.
    pub fpu_owner: Option<usize>,
}

/// Copies a message: whole words with `rep movsq`, the rest with `rep
/// movsb` (the compiler's `memcpy` first aligns the destination byte by
/// byte, which a message copy does not need).
///
/// # Safety
///
/// `from` must be readable and `to` writable for `len` bytes, and the two
/// ranges must not overlap.
#[inline(always)]
unsafe fn copy_message(from: *const u8, to: *mut u8, len: usize) {
    // SAFETY: the caller's contract; `rep movs` copies forward (the kernel
    // runs with DF clear) exactly `rcx` units and touches nothing else.
    unsafe {
        core::arch::asm!(
            "rep movsq",
            "mov ecx, {tail:e}",
            "rep movsb",
            tail = in(reg) len & 7,
            inout("rcx") len / 8 => _,
            inout("rsi") from => _,
            inout("rdi") to => _,
            options(nostack, preserves_flags)
        );
    }
}

impl MachinePlatform {
    /// Frees `space` now, or once `quiet_at` has passed if a device its
    /// service drove may still be writing into its memory.
    fn retire(&mut self, space: UserSpace, quiet_at: u64) {
        if self.now_ns() >= quiet_at {
            return space.release();
        }
        if let Err((space, at)) = self.retiring.push((space, quiet_at)) {
            // No room to wait in: wait here (bounded by FLR_NS).
            while self.now_ns() < at {
                core::hint::spin_loop();
            }
            space.release();
        }
    }

    /// Frees retired spaces whose devices are quiet now, and restores the
    /// BARs of functions whose reset has completed.
    pub fn reap(&mut self) {
        if self.retiring.is_empty() && self.resetting.is_empty() {
            return; // the common case, on every pass through the scheduler
        }
        let now = self.now_ns();
        let mut i = 0;
        while i < self.retiring.len() {
            if self.retiring[i].1 <= now {
                let (space, _) = self.retiring.swap_remove(i);
                space.release();
            } else {
                i += 1;
            }
        }
        let done: heapless::Vec<(u8, u8, u8), MAX_SERVICES> = self
            .resetting
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(bdf, _)| *bdf)
            .collect();
        for bdf in done {
            self.finish_reset(bdf);
        }
    }

    /// Completes a function-level reset of `bdf` (waiting out the rest of
    /// it if needed): its BARs are restored.
    fn finish_reset(&mut self, bdf: (u8, u8, u8)) {
        let Some(i) = self.resetting.iter().position(|(b, _)| *b == bdf) else {
            return;
        };
        let (_, at) = self.resetting.swap_remove(i);
        while self.now_ns() < at {
            core::hint::spin_loop();
        }
        devices::restore_after_reset(bdf);
    }

    #[inline(always)]
    fn space(&self, task: usize) -> Result<&UserSpace, Error> {
        self.spaces
            .get(task)
            .and_then(Option::as_ref)
            .ok_or(Error::BadPointer)
    }

    fn space_mut(&mut self, task: usize) -> Result<&mut UserSpace, Error> {
        self.spaces
            .get_mut(task)
            .and_then(Option::as_mut)
            .ok_or(Error::BadPointer)
    }
}

impl Platform for MachinePlatform {
    fn read_user(&mut self, task: usize, ptr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let len = buf.len();
        let dst = buf.as_mut_ptr();
        self.space(task)?.copy(ptr, len, false, |off, src, n| {
            // SAFETY: `src` is the direct-map address of a page the service
            // maps user-readable, `n` bytes stay within that page, and
            // `dst + off .. + n` is within `buf`.
            unsafe { core::ptr::copy_nonoverlapping(src, dst.add(off), n) }
        })
    }

    fn write_user(&mut self, task: usize, ptr: u64, data: &[u8]) -> Result<(), Error> {
        let src = data.as_ptr();
        // Check the whole range first so a failure writes nothing.
        self.check_writable(task, ptr, data.len() as u64)?;
        self.space(task)?
            .copy(ptr, data.len(), true, |off, dst, n| {
                // SAFETY: as in `read_user`, with the page mapped user-writable.
                unsafe { core::ptr::copy_nonoverlapping(src.add(off), dst, n) }
            })
    }

    #[inline(always)]
    fn copy_between(
        &mut self,
        from: usize,
        src: u64,
        to: usize,
        dst: u64,
        dst_hint: u64,
        len: usize,
    ) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let a = self.space(from)?;
        // The hint is `writable`'s direct address of `dst`, for at least
        // `len` bytes (the kernel's contract), else a lookup.
        let to_direct = match dst_hint {
            0 => self.space(to)?.direct(dst, len, true),
            hint => Some(hint as *mut u8),
        };
        if let (Some(from), Some(to)) = (a.direct(src, len, false), to_direct) {
            // SAFETY: both ranges are checked whole and contiguous (`direct`,
            // or the hint `writable` took from it); distinct owners' frames.
            unsafe { copy_message(from, to, len) };
            return Ok(());
        }
        let b = self.space(to)?;
        // Both ranges whole first, so a failure writes nothing.
        a.check(src, len, false)?;
        b.check(dst, len, true)?;
        b.copy(dst, len, true, |off, to, n| {
            // Both are direct-map addresses of pages mapped as required
            // (checked above) and `m` bytes stay within both pages.
            let _ = a.copy(src + off as u64, n, false, |o, from, m| {
                // SAFETY: as said above; the two services' frames are distinct.
                unsafe { core::ptr::copy_nonoverlapping(from, to.add(o), m) }
            });
        })
    }

    #[inline(always)]
    fn writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<u64, Error> {
        let len = usize::try_from(len).map_err(|_| Error::BadPointer)?;
        Ok(self.space(task)?.check_direct(ptr, len, true)? as u64)
    }

    #[inline(always)]
    fn check_writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<(), Error> {
        let len = usize::try_from(len).map_err(|_| Error::BadPointer)?;
        self.space(task)?.check(ptr, len, true)
    }

    fn stage(&mut self, stage: crate::kern::fastpath::Stage) {
        super::stages::mark(stage);
    }

    fn now_ns(&self) -> u64 {
        tsc::cycles_to_ns(tsc::read().wrapping_sub(self.boot_tsc))
    }

    fn tsc(&self) -> (u64, u64) {
        (tsc::read(), tsc::hz())
    }

    fn log(&mut self, task: Option<usize>, name: &str, line: &[u8]) {
        let now = self.now_ns();
        match task.and_then(|t| self.logs.get_mut(t)) {
            Some(budget) => super::logging::service_line(budget, now, name, line),
            None => super::logging::kernel_line(line),
        }
    }

    fn map_mmio(
        &mut self,
        task: usize,
        base: u64,
        len: u64,
        hole: Option<(u64, u64)>,
    ) -> Result<u64, Error> {
        self.space_mut(task)?.map_mmio(base, len, hole)
    }

    fn alloc_dma(&mut self, task: usize, bytes: u64) -> Result<(u64, u64), Error> {
        self.space_mut(task)?.alloc_dma(bytes)
    }

    fn dma_keep(&mut self, task: usize, vaddr: u64, bytes: u64) {
        if let Ok(space) = self.space_mut(task) {
            space.disown(vaddr, bytes);
        }
    }

    fn dma_free(&mut self, paddr: u64) {
        let frame = crate::mm::PhysFrame::containing(paddr);
        if crate::memory::with(|m| m.frames.deallocate(frame)).is_err() {
            log::error!("kernel: kept DMA frame {paddr:#x} was not allocated");
        }
    }

    fn bus_master_off(&mut self, bdf: (u8, u8, u8)) {
        devices::bus_master_off(bdf);
    }

    fn pci_read(&mut self, (bus, device, function): (u8, u8, u8), offset: u16, width: u8) -> u32 {
        crate::platform::pci_config_read(
            Bdf {
                bus,
                device,
                function,
            },
            offset,
            width,
        )
    }

    fn pci_write(
        &mut self,
        (bus, device, function): (u8, u8, u8),
        offset: u16,
        width: u8,
        value: u32,
    ) {
        crate::platform::pci_config_write(
            Bdf {
                bus,
                device,
                function,
            },
            offset,
            width,
            value,
        )
    }

    fn irq_msi(&self, irq: u8) -> (u64, u32) {
        match self.irqs.get(usize::from(irq)).and_then(|l| l.remap) {
            Some(irte) => {
                let (address, data) = devices::remappable_msi(irte);
                (address, u32::from(data))
            }
            None => (devices::msi_address(), u32::from(IRQ_VECTOR_BASE + irq)),
        }
    }

    fn irq_route(&self, irq: u8) -> Result<crate::kern::IrqRouteInfo, Error> {
        let line = self.irqs.get(usize::from(irq)).ok_or(Error::NotFound)?;
        let bdf = line.bdf.ok_or(Error::WrongKind)?;
        Ok((bdf, IRQ_VECTOR_BASE + irq, crate::arch::apic::id()))
    }

    fn vtd_unit_of(&self, (bus, device, function): (u8, u8, u8)) -> Option<u8> {
        crate::platform::vtd_unit_of(Bdf {
            bus,
            device,
            function,
        })
    }

    fn vtd_info(&self, unit: u8) -> Option<(u8, u16, bool)> {
        crate::platform::vtd_info(unit)
    }

    fn irq_remap(&mut self, irq: u8, irte: Option<u16>) -> Result<(), Error> {
        let line = self.irqs.get_mut(usize::from(irq)).ok_or(Error::NotFound)?;
        let bdf = line.bdf.ok_or(Error::WrongKind)?;
        line.remap = irte;
        let (address, data) = self.irq_msi(irq);
        devices::program_msi_raw(bdf, address, data as u16).map_err(|_| Error::NotFound)
    }

    fn irq_unmask(&mut self, irq: u8) {
        if let Some(line) = self.irqs.get_mut(usize::from(irq)) {
            line.masked = false;
        }
    }

    fn irq_rearm(&mut self, irq: u8) {
        if let Some(line) = self.irqs.get_mut(usize::from(irq)) {
            line.masked = false;
            line.pending = false;
            let Some(bdf) = line.bdf else {
                return;
            };
            self.finish_reset(bdf);
            let (address, data) = self.irq_msi(irq);
            if let Err(e) = devices::program_msi_raw(bdf, address, data as u16) {
                log::error!("kernel: cannot program MSI again for IRQ {irq}: {e}");
            }
        }
    }

    fn quiesce(&mut self, task: usize, bdf: (u8, u8, u8)) {
        let q = devices::quiesce(bdf);
        let quiet = self.now_ns() + q.quiet_in_ns;
        if let Some(at) = self.quiet_at.get_mut(task) {
            *at = (*at).max(quiet);
        }
        if q.reset {
            let _ = self.resetting.push((bdf, quiet));
        }
        for line in self.irqs.iter_mut().filter(|l| l.bdf == Some(bdf)) {
            line.masked = true;
            line.pending = false;
        }
        let (b, d, f) = bdf;
        crate::kprintln!(
            "kernel: quiesced {b:02x}:{d:02x}.{f} after its driver stopped: bus master, decoders and MSI off{}",
            if q.reset {
                ", function-level reset"
            } else {
                ""
            }
        );
    }

    fn load(&mut self, task: usize) -> Result<Regs, Error> {
        let s = self.config.services.get(task).ok_or(Error::NotFound)?;
        let image = *self
            .images
            .get(usize::from(s.image))
            .ok_or(Error::NotFound)?;
        if let Some(old) = self.spaces.get_mut(task).and_then(Option::take) {
            if paging::active_root() == old.root() {
                // SAFETY: the kernel's own tables map everything the kernel
                // uses; the old space is about to be freed.
                unsafe { paging::activate(paging::active_root_of_kernel()) };
            }
            self.retire(old, self.quiet_at[task]);
        }
        // A fresh start has fresh floating-point registers too.
        if let Some(state) = self.fpu.get_mut(task) {
            *state = crate::arch::cpu::FpuState::clean();
        }
        if self.fpu_owner == Some(task) {
            self.fpu_owner = None;
        }
        let mut space = UserSpace::new(s.memory_pages)?;
        let regs = match loader::load(image, &mut space, s.stack_pages) {
            Ok(regs) => regs,
            Err(e) => {
                log::error!("service {}: cannot load its image: {e}", s.name);
                space.release();
                return Err(Error::OutOfMemory);
            }
        };
        log::debug!("service {}: loaded, {} frames", s.name, space.frames_used());
        while self.spaces.len() <= task {
            let _ = self.spaces.push(None);
        }
        self.spaces[task] = Some(space);
        Ok(regs)
    }
}
