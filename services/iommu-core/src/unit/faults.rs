//! Draining a unit's fault recording registers and programming its fault
//! event interrupt (record layout and QEMU's behaviour: `crate::fault`).

use embedded_hal::delay::DelayNs;
use faultline_vtd::regs::{self, FaultStatus};

use super::Unit;
use crate::fault::{FaultRecord, FaultSummary, RECORD_FAULT};
use crate::hw::{DmaMemory, Registers};

impl<R: Registers, M: DmaMemory, D: DelayNs> Unit<R, M, D> {
    /// Reads, clears and hands to `sink` every pending fault record, from
    /// FSTS.FRI on, then clears FSTS.PFO if it was set.
    pub fn drain_faults(&mut self, mut sink: impl FnMut(FaultRecord)) -> FaultSummary {
        let mut summary = FaultSummary::default();
        let status = FaultStatus::from_bits_retain(self.mmio.read32(regs::FSTS));
        let count = usize::from(self.cap.fault_recording_count());
        if status.contains(FaultStatus::PPF) {
            let first = usize::from(status.fault_record_index()) % count;
            for i in 0..count {
                let record =
                    regs::fault_record(self.cap.fault_recording_offset(), (first + i) % count);
                let high = self.mmio.read(record.high);
                if high & RECORD_FAULT == 0 {
                    break;
                }
                let low = self.mmio.read(record.low);
                self.mmio.write(record.status, 1 << 31);
                if let Some(fault) = FaultRecord::decode(low, high) {
                    summary.records += 1;
                    sink(fault);
                }
            }
        }
        if status.contains(FaultStatus::PFO) {
            self.mmio
                .write(regs::FSTS, u64::from(FaultStatus::PFO.bits()));
            summary.overflow = true;
        }
        summary
    }

    /// Programs the fault event interrupt (the MSI address and data the
    /// kernel granted) and unmasks it.
    pub fn enable_fault_interrupt(&mut self, address: u32, data: u16) {
        self.mmio.write(regs::FEDATA, u64::from(data));
        self.mmio.write(regs::FEADDR, u64::from(address & !3));
        self.mmio.write(regs::FEUADDR, 0);
        self.mmio.write(regs::FECTL, 0);
    }
}
