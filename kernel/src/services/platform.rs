//! The kernel core's [`Platform`] on the real machine.

use super::loader;
use super::space::UserSpace;
use crate::arch::{apic, paging, tsc};
use crate::kern::Platform;
use crate::kern::task::Regs;
use crate::pci::Bdf;
use faultline_ipc::abi::Error;
use faultline_ipc::kconfig::{KernelConfig, MAX_SERVICES};

/// First vector handed to IRQ capabilities.
pub const IRQ_VECTOR_BASE: u8 = 0x50;
/// Most IRQ capabilities in a deployment.
pub const MAX_IRQS: usize = 16;

/// One interrupt granted to a service.
#[derive(Clone, Copy, Debug)]
pub struct IrqLine {
    pub task: u8,
    pub bits: u32,
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
}

impl MachinePlatform {
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

    fn check_writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<(), Error> {
        self.space(task)?
            .copy(ptr, len as usize, true, |_, _, _| {})
    }

    fn now_ns(&self) -> u64 {
        tsc::cycles_to_ns(tsc::read().wrapping_sub(self.boot_tsc))
    }

    fn tsc(&self) -> (u64, u64) {
        (tsc::read(), tsc::hz())
    }

    fn log(&mut self, name: &str, line: &[u8]) {
        let text = core::str::from_utf8(line).unwrap_or("<not UTF-8>");
        let us = crate::console::uptime_us();
        crate::kprintln!(
            "[{:>5}.{:03} {name}] {}",
            us / 1000,
            us % 1000,
            text.trim_end()
        );
    }

    fn map_mmio(&mut self, task: usize, base: u64, len: u64) -> Result<u64, Error> {
        self.space_mut(task)?.map_mmio(base, len)
    }

    fn alloc_dma(&mut self, task: usize, bytes: u64) -> Result<(u64, u64), Error> {
        self.space_mut(task)?.alloc_dma(bytes)
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
        (
            0xfee0_0000 | (u64::from(apic::id() & 0xff) << 12),
            u32::from(IRQ_VECTOR_BASE + irq),
        )
    }

    fn irq_unmask(&mut self, irq: u8) {
        if let Some(line) = self.irqs.get_mut(usize::from(irq)) {
            line.masked = false;
        }
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
            old.release();
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
