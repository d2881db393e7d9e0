//! The model's fault recording, as QEMU does it (`vtd_report_frcd_fault`):
//! nothing is recorded while FSTS.PFO is set; a fault from a source that
//! already has a pending record is dropped; a full next record sets PFO and
//! drops the fault; otherwise the record is written, F set, FRI set if no
//! fault was pending, and a fault event raised unless one is outstanding.

use super::State;

const PFO: u32 = 1 << 0;
const PPF: u32 = 1 << 1;
const IQE: u32 = 1 << 4;
const FECTL_IM: u32 = 1 << 31;
const FECTL_IP: u32 = 1 << 30;

impl State {
    pub(super) fn record_fault(&mut self, source: u16, iova: u64, code: u8, write: bool) {
        let before = self.read_fsts();
        let pending_same_source = self
            .records
            .iter()
            .any(|r| r.1 >> 63 != 0 && r.1 as u16 == source);
        if before & PFO != 0 || pending_same_source {
            self.dropped_faults += 1;
            return;
        }
        let index = self.next_record;
        if self.records[index].1 >> 63 != 0 {
            self.dropped_faults += 1;
            self.fsts |= PFO;
            self.fault_event(before);
            return;
        }
        let kind = if write { 0 } else { 1 << 62 };
        self.records[index] = (
            iova & !0xfff,
            u64::from(source) | u64::from(code) << 32 | kind | 1 << 63,
        );
        if before & PPF == 0 {
            self.fri = index;
        }
        self.next_record = (index + 1) % self.record_count();
        self.fault_event(before);
    }

    fn fault_event(&mut self, before: u32) {
        if before & (PPF | PFO | IQE) != 0 {
            return;
        }
        self.fectl |= FECTL_IP;
        if self.fectl & FECTL_IM == 0 {
            self.fectl &= !FECTL_IP;
            self.fault_interrupts += 1;
        }
    }
}
