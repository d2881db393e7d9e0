//! Interrupt remapping on a unit: the table, IRTA, GCMD.SIRTP, the
//! interrupt entry cache invalidation and GCMD.IRE.
//!
//! The table is one DMA frame of [`TABLE_ENTRIES`] entries, all not present
//! except those given, written before the unit is told about the table, so
//! no interrupt is ever remapped through a half-written entry. GCMD.CFI is
//! never set: with remapping on, a compatibility-format MSI (one that names
//! a vector directly, as any DMA write of the right address can) is
//! blocked by the unit, so a device can raise only what its entries yield.
//! When remapping is already on (an earlier IOMMU service set it up and
//! stopped), the new table replaces the old one in one SIRTP while IRE
//! stays set, followed by the global interrupt entry cache invalidation
//! the spec asks after every SIRTP; IRE is never cleared, so no interrupt
//! bypasses remapping meanwhile.

use embedded_hal::delay::DelayNs;
use faultline_vtd::regs::{self, GlobalCommand, GlobalStatus};

use super::Unit;
use crate::entry::ENTRY_BYTES;
use crate::error::{Error, Operation, Unsupported};
use crate::hw::{DmaMemory, Registers};
use crate::interrupt::{self, InterruptMode, Irte, TABLE_ENTRIES};
use crate::pagetable::PAGE_SIZE;
use crate::queue::Descriptor;

impl<R: Registers, M: DmaMemory, D: DelayNs> Unit<R, M, D> {
    /// Turns interrupt remapping on with `entries` (index, entry) present
    /// and every other entry blocking. Needs ECAP.IR, and ECAP.EIM for
    /// [`InterruptMode::X2Apic`].
    pub fn enable_interrupt_remapping(
        &mut self,
        mode: InterruptMode,
        entries: &[(u16, Irte)],
    ) -> Result<(), Error> {
        if !self.ecap.interrupt_remapping() {
            return Err(Error::Unsupported(Unsupported::InterruptRemapping));
        }
        if mode == InterruptMode::X2Apic && !self.ecap.extended_interrupt_mode() {
            return Err(Error::Unsupported(Unsupported::ExtendedInterruptMode));
        }
        // Checked before anything is allocated or written.
        for &(index, irte) in entries {
            if index >= TABLE_ENTRIES {
                return Err(Error::NoSuchInterruptEntry);
            }
            if irte.encode(mode).is_none() {
                return Err(Error::Unsupported(Unsupported::ExtendedInterruptMode));
            }
        }
        let table = self.mem.alloc_frame().ok_or(Error::OutOfTableMemory)?;
        for &(index, irte) in entries {
            if let Some((low, high)) = irte.encode(mode) {
                self.write_entry(table + u64::from(index) * ENTRY_BYTES, low, high);
            }
        }
        if !self.ecap.coherency() {
            self.mem.flush(table, PAGE_SIZE as usize);
        }
        self.mmio
            .write(regs::IRTA, interrupt::table_address_register(table, mode));
        self.command(GlobalCommand::SIRTP, Operation::SetInterruptTable)?;
        self.invalidate(&[Descriptor::interrupt_entries_global()])?;
        let status = GlobalStatus::from_bits_retain(self.mmio.read32(regs::GSTS));
        if !status.contains(GlobalStatus::IRES) {
            self.command(GlobalCommand::IRE, Operation::EnableInterruptRemapping)?;
        }
        if let Some((old, _)) = self.interrupts.replace((table, mode)) {
            self.mem.free_frame(old);
        }
        Ok(())
    }

    /// The remapping table's address and mode, once remapping is on.
    pub fn interrupt_table(&self) -> Option<(u64, InterruptMode)> {
        self.interrupts
    }
}
