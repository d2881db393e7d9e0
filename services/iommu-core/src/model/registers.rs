//! The model's register file: offsets and widths as the VT-d spec defines
//! them (written out here, not taken from `faultline_vtd::regs`, so a wrong
//! width there cannot hide a wrong access here), and what each write does.

use super::prq::PrqReg;
use super::{Event, State};

/// What lives at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Ver,
    Cap,
    Ecap,
    Gcmd,
    Gsts,
    Rtaddr,
    Fsts,
    Fectl,
    Fedata,
    Feaddr,
    Feuaddr,
    Iqh,
    Iqt,
    Iqa,
    Ics,
    Irta,
    RecordLow(usize),
    RecordHigh(usize),
    /// PQH, PQT, PQA, PRS or the page request event registers (ECAP.PRS).
    PageRequest(PrqReg),
    /// A register the model does not implement (name); touching it panics.
    Unmodelled(&'static str),
}

const W32: &[(usize, &str)] = &[
    (0x00, "VER"),
    (0x18, "GCMD"),
    (0x1c, "GSTS"),
    (0x34, "FSTS"),
    (0x38, "FECTL"),
    (0x3c, "FEDATA"),
    (0x40, "FEADDR"),
    (0x44, "FEUADDR"),
    (0x64, "PMEN"),
    (0x9c, "ICS"),
    (0xa0, "IECTL"),
    (0xa4, "IEDATA"),
    (0xa8, "IEADDR"),
    (0xac, "IEUADDR"),
    (0xdc, "PRS"),
    (0xe0, "PECTL"),
    (0xe4, "PEDATA"),
    (0xe8, "PEADDR"),
    (0xec, "PEUADDR"),
];

const W64: &[(usize, &str)] = &[
    (0x08, "CAP"),
    (0x10, "ECAP"),
    (0x20, "RTADDR"),
    (0x28, "CCMD"),
    (0x58, "AFLOG"),
    (0x80, "IQH"),
    (0x88, "IQT"),
    (0x90, "IQA"),
    (0xb8, "IRTA"),
    (0xc0, "PQH"),
    (0xc8, "PQT"),
    (0xd0, "PQA"),
];

const GSTS_TES: u32 = 1 << 31;
const GSTS_RTPS: u32 = 1 << 30;
const GSTS_QIES: u32 = 1 << 26;
const GSTS_WBFS: u32 = 1 << 27;
const GSTS_IRES: u32 = 1 << 25;
const GSTS_IRTPS: u32 = 1 << 24;
const GSTS_CFIS: u32 = 1 << 23;
const CMD_IRE: u32 = 1 << 25;
const CMD_SIRTP: u32 = 1 << 24;
const CMD_CFI: u32 = 1 << 23;
const CMD_TE: u32 = 1 << 31;
const CMD_SRTP: u32 = 1 << 30;
const CMD_WBF: u32 = 1 << 27;
const CMD_QIE: u32 = 1 << 26;
/// TE, EAFL, QIE, IRE, CFI: the enables GCMD must repeat on every write.
const PERSISTENT: u32 = 0x9680_0000;
/// SRTP, SFL, WBF, SIRTP: commands that fire once.
const ONE_SHOT: u32 = 0x6900_0000;

fn name_of(offset: usize) -> &'static str {
    W32.iter()
        .chain(W64)
        .find(|(o, _)| *o == offset)
        .map_or("?", |(_, n)| n)
}

impl State {
    /// The register at `offset` and its width in bytes.
    fn decode(&self, offset: usize) -> Option<(Reg, usize)> {
        let fro = ((self.config.cap >> 24) & 0x3ff) as usize * 16;
        let iro = ((self.config.ecap >> 8) & 0x3ff) as usize * 16;
        if offset >= fro && offset < fro + 16 * self.record_count() && offset.is_multiple_of(8) {
            let index = (offset - fro) / 16;
            let reg = if offset.is_multiple_of(16) {
                Reg::RecordLow(index)
            } else {
                Reg::RecordHigh(index)
            };
            return Some((reg, 8));
        }
        if offset == iro || offset == iro + 8 {
            return Some((
                Reg::Unmodelled(if offset == iro { "IVA" } else { "IOTLB" }),
                8,
            ));
        }
        let reg = match offset {
            0x00 => Reg::Ver,
            0x08 => Reg::Cap,
            0x10 => Reg::Ecap,
            0x18 => Reg::Gcmd,
            0x1c => Reg::Gsts,
            0x20 => Reg::Rtaddr,
            0x34 => Reg::Fsts,
            0x38 => Reg::Fectl,
            0x3c => Reg::Fedata,
            0x40 => Reg::Feaddr,
            0x44 => Reg::Feuaddr,
            0x80 => Reg::Iqh,
            0x88 => Reg::Iqt,
            0x90 => Reg::Iqa,
            0x9c => Reg::Ics,
            0xb8 => Reg::Irta,
            other => PrqReg::at(other).map_or(Reg::Unmodelled(name_of(other)), Reg::PageRequest),
        };
        let width = if W32.iter().any(|(o, _)| *o == offset) {
            4
        } else if W64.iter().any(|(o, _)| *o == offset) {
            8
        } else {
            return None;
        };
        Some((reg, width))
    }

    pub(super) fn read_fsts(&self) -> u32 {
        let pending = self.records.iter().any(|r| r.1 >> 63 != 0);
        let mut value = self.fsts;
        if pending {
            value |= 1 << 1 | (self.fri as u32) << 8;
        }
        value
    }

    pub(super) fn read(&mut self, offset: usize, size: usize) -> u64 {
        self.register_reads += 1;
        let Some((reg, width)) = self.decode(offset) else {
            panic!("model: {size}-byte read at {offset:#x}, where no register is");
        };
        assert_eq!(
            size, width,
            "model: {size}-byte read of the {width}-byte register at {offset:#x}"
        );
        match reg {
            Reg::Ver => 0x10,
            Reg::Cap => self.config.cap,
            Reg::Ecap => self.config.ecap,
            Reg::Gcmd => panic!("model: read of write-only GCMD"),
            Reg::Gsts => u64::from(self.gsts),
            Reg::Rtaddr => self.rtaddr,
            Reg::Fsts => u64::from(self.read_fsts()),
            Reg::Fectl => u64::from(self.fectl),
            Reg::Fedata => u64::from(self.fedata),
            Reg::Feaddr => u64::from(self.feaddr),
            Reg::Feuaddr | Reg::Ics => 0,
            Reg::Iqh => self.iqh,
            Reg::Iqt => self.iqt,
            Reg::Iqa => self.iqa,
            Reg::Irta => self.irta,
            Reg::RecordLow(i) => self.records[i].0,
            Reg::RecordHigh(i) => self.records[i].1,
            Reg::PageRequest(r) => self.prq_read(r),
            Reg::Unmodelled(name) => panic!("model: read of unmodelled {name}"),
        }
    }

    pub(super) fn write(&mut self, offset: usize, size: usize, value: u64) {
        // The one architectural narrow access: clearing F through the high
        // dword of a fault recording register.
        let fro = ((self.config.cap >> 24) & 0x3ff) as usize * 16;
        if size == 4
            && offset >= fro
            && offset < fro + 16 * self.record_count()
            && offset % 16 == 12
        {
            let index = (offset - fro) / 16;
            self.events.push(Event::Write("FRCD.dw3", value));
            if value & (1 << 31) != 0 {
                self.records[index].1 &= !(1 << 63);
            }
            return;
        }
        let Some((reg, width)) = self.decode(offset) else {
            panic!("model: {size}-byte write at {offset:#x}, where no register is");
        };
        assert_eq!(
            size, width,
            "model: {size}-byte write of {value:#x} to the {width}-byte register at {offset:#x} \
             (QEMU aborts)"
        );
        let name = match reg {
            Reg::RecordLow(_) | Reg::RecordHigh(_) => "FRCD",
            _ => name_of(offset),
        };
        self.events.push(Event::Write(name, value));
        match reg {
            Reg::Ver | Reg::Cap | Reg::Ecap | Reg::Gsts | Reg::Iqh | Reg::RecordLow(_) => {
                panic!("model: write to read-only {name}")
            }
            Reg::Gcmd => {
                self.command(value as u32);
                self.gsts_history.push(self.gsts);
            }
            Reg::Rtaddr => {
                assert!(
                    value & 0x3ff == 0 && value & !0xfff & !self.host_mask() == 0,
                    "model: RTADDR {value:#x} sets reserved bits"
                );
                let ttm = value & 0xc00;
                let smts = self.config.ecap & (1 << 43) != 0;
                assert!(
                    ttm == 0 || (ttm == 0x400 && smts),
                    "model: RTADDR {value:#x} asks for a translation table mode the unit lacks"
                );
                self.rtaddr = value;
            }
            Reg::Fsts => {
                let had_iqe = self.fsts & (1 << 4) != 0;
                // PFO, AFO, APF, IQE, ICE, ITE and PRO are write-1-to-clear.
                self.fsts &= !(value as u32 & 0xfd);
                // Clearing IQE lets the queue fetch from IQH again.
                if had_iqe && self.fsts & (1 << 4) == 0 && self.gsts & GSTS_QIES != 0 {
                    self.run_queue();
                }
            }
            Reg::Fectl => {
                assert!(value as u32 & !(1 << 31) == 0, "model: FECTL {value:#x}");
                self.fectl = (self.fectl & (1 << 30)) | value as u32;
                if self.fectl & (1 << 31) == 0 && self.fectl & (1 << 30) != 0 {
                    self.fectl &= !(1 << 30);
                    self.fault_interrupts += 1;
                }
            }
            Reg::Fedata => self.fedata = value as u32 & 0xffff,
            Reg::Feaddr => {
                assert!(
                    value & 3 == 0,
                    "model: FEADDR {value:#x} sets reserved bits"
                );
                self.feaddr = value as u32;
            }
            Reg::Feuaddr | Reg::Ics => {}
            Reg::Iqa => {
                assert!(
                    self.gsts & GSTS_QIES == 0,
                    "model: IQA written while queued invalidation is enabled"
                );
                assert!(
                    value & 0x7f8 == 0 && value & !0xfff & !self.host_mask() == 0,
                    "model: IQA {value:#x} sets reserved bits"
                );
                assert!(
                    value & (1 << 11) == 0 || self.config.ecap & (1 << 43) != 0,
                    "model: 256-bit descriptors without ECAP.SMTS"
                );
                self.iqa = value;
            }
            Reg::Iqt => {
                assert!(
                    value & !0x7fff0 == 0,
                    "model: IQT {value:#x} sets reserved bits"
                );
                self.iqt = value;
                if self.gsts & GSTS_QIES != 0 {
                    self.run_queue();
                }
            }
            Reg::Irta => {
                assert!(
                    self.config.ecap & (1 << 3) != 0,
                    "model: IRTA written on a unit without ECAP.IR"
                );
                assert!(
                    value & 0x7f0 == 0 && value & !0xfff & !self.host_mask() == 0,
                    "model: IRTA {value:#x} sets reserved bits"
                );
                assert!(
                    value & (1 << 11) == 0 || self.config.ecap & (1 << 4) != 0,
                    "model: IRTA.EIME on a unit without ECAP.EIM"
                );
                self.irta = value;
            }
            Reg::RecordHigh(i) => {
                if value & (1 << 63) != 0 {
                    self.records[i].1 &= !(1 << 63);
                }
            }
            Reg::PageRequest(r) => self.prq_write(r, value),
            Reg::Unmodelled(name) => panic!("model: write to unmodelled {name}"),
        }
    }

    fn command(&mut self, value: u32) {
        let changed = (value ^ self.gsts) & PERSISTENT;
        let fired = value & ONE_SHOT;
        assert!(
            (changed | fired).count_ones() <= 1,
            "model: GCMD {value:#x} changes more than one thing (GSTS {:#x})",
            self.gsts
        );
        self.events.push(Event::Command(changed | fired));
        if self.gsts_stuck {
            match fired {
                CMD_SRTP => self.gsts &= !GSTS_RTPS,
                CMD_WBF => self.gsts |= GSTS_WBFS,
                _ => {}
            }
            return;
        }
        match changed | fired {
            0 => {}
            CMD_SRTP => {
                self.root = Some(self.rtaddr & !0xfff);
                self.scalable = self.rtaddr & 0xc00 == 0x400;
                self.gsts |= GSTS_RTPS;
            }
            CMD_WBF => {}
            CMD_SIRTP => {
                assert!(
                    self.config.ecap & (1 << 3) != 0,
                    "model: SIRTP on a unit without ECAP.IR"
                );
                let entries = 1u32 << ((self.irta & 0xf) + 1);
                self.irt = Some((self.irta & !0xfff, entries, self.irta & (1 << 11) != 0));
                self.gsts |= GSTS_IRTPS;
            }
            CMD_IRE if value & CMD_IRE != 0 => {
                assert!(
                    self.gsts & GSTS_IRTPS != 0,
                    "model: interrupt remapping enabled before a table was set"
                );
                self.gsts |= GSTS_IRES;
            }
            CMD_IRE => self.gsts &= !GSTS_IRES,
            CMD_CFI if value & CMD_CFI != 0 => self.gsts |= GSTS_CFIS,
            CMD_CFI => self.gsts &= !GSTS_CFIS,
            CMD_QIE if value & CMD_QIE != 0 => {
                assert!(self.iqt == 0, "model: QIE set with IQT {:#x}", self.iqt);
                self.iqh = 0;
                self.queue_base = self.iqa & !0xfff;
                self.queue_entries = 1 << ((self.iqa & 7) + 8);
                self.gsts |= GSTS_QIES;
            }
            CMD_QIE => {
                assert!(self.iqh == self.iqt, "model: QIE cleared with work queued");
                self.gsts &= !GSTS_QIES;
            }
            CMD_TE if value & CMD_TE != 0 => {
                assert!(
                    self.root.is_some(),
                    "model: translation enabled before a root table was set"
                );
                self.gsts |= GSTS_TES;
            }
            CMD_TE => {
                self.gsts &= !GSTS_TES;
                self.next_record = 0;
            }
            other => panic!("model: GCMD bit {other:#x} is not modelled"),
        }
    }
}
