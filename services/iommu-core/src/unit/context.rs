//! The mode-specific half of attach and detach: where a device's context
//! entry lives and what it points at.
//!
//! Legacy mode: the root entry for the bus points at a context table of 256
//! 16-byte entries, and the entry points at the domain's second-level
//! tables. Scalable mode: the root entry's low half serves devfn 0-127 and
//! its high half devfn 128-255, each pointing at a table of 128 32-byte
//! entries; the entry points at the device's PASID directory, whose entry 0
//! points at a PASID table whose entry 0 (RID_PASID) names the domain id and
//! the same second-level tables with PGTT = 2.

use embedded_hal::delay::DelayNs;
use faultline_vtd::TranslationMode;

use super::{DomainId, Unit};
use crate::entry::{self, ENTRY_BYTES, SCALABLE_CONTEXT_BYTES};
use crate::error::Error;
use crate::hw::{DmaMemory, Registers};
use crate::pagetable::PAGE_SIZE;
use crate::source::SourceId;

/// Most frames one attach allocates: tables, context table, PASID
/// directory and PASID table.
const MAX_ATTACH_FRAMES: usize = 4;

impl<R: Registers, M: DmaMemory, D: DelayNs> Unit<R, M, D> {
    fn scalable(&self) -> bool {
        self.config.mode == TranslationMode::Scalable
    }

    /// The root-table qword that holds `source`'s context-table pointer.
    fn root_slot(&self, source: SourceId) -> u64 {
        let entry = self.root + ENTRY_BYTES * u64::from(source.bus());
        if self.scalable() && source.devfn() >= 128 {
            entry + 8
        } else {
            entry
        }
    }

    fn context_bytes(&self) -> u64 {
        if self.scalable() {
            SCALABLE_CONTEXT_BYTES
        } else {
            ENTRY_BYTES
        }
    }

    fn context_slot(&self, table: u64, source: SourceId) -> u64 {
        let index = if self.scalable() {
            source.devfn() & 0x7f
        } else {
            source.devfn()
        };
        table + self.context_bytes() * u64::from(index)
    }

    fn write_flushed(&mut self, paddr: u64, value: u64) {
        self.mem.write_u64(paddr, value);
        if !self.ecap.coherency() {
            self.mem.flush(paddr, 8);
        }
    }

    /// `count` zeroed frames, all or none, flushed if the unit does not snoop.
    fn alloc_frames(&mut self, count: usize) -> Result<[u64; MAX_ATTACH_FRAMES], Error> {
        let mut frames = [0; MAX_ATTACH_FRAMES];
        for i in 0..count {
            match self.mem.alloc_frame() {
                Some(frame) => frames[i] = frame,
                None => {
                    for &frame in &frames[..i] {
                        self.mem.free_frame(frame);
                    }
                    return Err(Error::OutOfTableMemory);
                }
            }
            if !self.ecap.coherency() {
                self.mem.flush(frames[i], PAGE_SIZE as usize);
            }
        }
        Ok(frames)
    }

    /// Builds `source`'s translation structures for domain `id` and makes
    /// its context entry present (last). Returns the second-level root and,
    /// in scalable mode, the PASID directory and table.
    pub(super) fn install_context(
        &mut self,
        source: SourceId,
        id: DomainId,
    ) -> Result<(u64, Option<(u64, u64)>), Error> {
        let root_slot = self.root_slot(source);
        let existing = self.mem.read_u64(root_slot);
        let new_table = existing & entry::PRESENT == 0;
        let count = 1 + usize::from(new_table) + if self.scalable() { 2 } else { 0 };
        let frames = self.alloc_frames(count)?;
        let mut rest = frames[1..count].iter().copied();
        let tables = frames[0];
        let levels = self.width.levels();
        let context_table = match new_table {
            true => {
                let table = rest.next().unwrap_or_default();
                self.write_flushed(root_slot, entry::root_entry(table).0);
                table
            }
            false => existing & entry::POINTER_MASK,
        };
        let at = self.context_slot(context_table, source);
        if !self.scalable() {
            let (low, high) = entry::context_entry(tables, levels, id);
            self.write_entry(at, low, high);
            return Ok((tables, None));
        }
        let directory = rest.next().unwrap_or_default();
        let pasid_table = rest.next().unwrap_or_default();
        let [low, high] = entry::pasid_entry(tables, levels, id);
        self.write_entry(pasid_table, low, high);
        self.write_flushed(directory, entry::pasid_directory_entry(pasid_table));
        let context = entry::scalable_context_entry(directory);
        for (i, value) in context.iter().enumerate().skip(1) {
            self.mem.write_u64(at + 8 * i as u64, *value);
        }
        self.mem.write_u64(at, context[0]);
        if !self.ecap.coherency() {
            self.mem.flush(at, SCALABLE_CONTEXT_BYTES as usize);
        }
        Ok((tables, Some((directory, pasid_table))))
    }

    /// Makes `source`'s context entry not present (the caller invalidates).
    pub(super) fn remove_context(&mut self, source: SourceId) {
        let table = self.mem.read_u64(self.root_slot(source)) & entry::POINTER_MASK;
        let at = self.context_slot(table, source);
        let bytes = self.context_bytes();
        for offset in (0..bytes).step_by(8) {
            self.mem.write_u64(at + offset, 0);
        }
        if !self.ecap.coherency() {
            self.mem.flush(at, bytes as usize);
        }
    }
}
