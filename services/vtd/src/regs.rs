//! The VT-d remapping-hardware register map.
//!
//! Each register is a [`Register`] constant carrying its offset *and* its
//! architectural access width, so the one accessor that touches the MMIO
//! can refuse a mismatched access instead of trusting every caller: QEMU
//! `assert`s on an 8-byte write to most 32-bit registers (FSTS, FECTL,
//! FEDATA, PMEN, ICS, IECTL, ...), which aborts the whole VM. The bit layouts
//! of the command, status and event-control registers are `bitflags` types.
//!
//! Registers whose position depends on CAP/ECAP (the IOTLB pair at ECAP.IRO
//! and the fault recording registers at CAP.FRO) are built by
//! [`iotlb_registers`] and [`fault_record`].

use bitflags::bitflags;

/// Architectural access width of a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// Must be accessed with 4-byte reads and writes.
    W32,
    /// Must be accessed with 8-byte reads and writes.
    W64,
}

impl Width {
    /// Access size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Width::W32 => 4,
            Width::W64 => 8,
        }
    }
}

/// One register: its name (for diagnostics), byte offset from the
/// remapping unit's MMIO base, and architectural width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Register {
    pub name: &'static str,
    pub offset: usize,
    pub width: Width,
}

impl Register {
    const fn w32(name: &'static str, offset: usize) -> Self {
        Self {
            name,
            offset,
            width: Width::W32,
        }
    }

    const fn w64(name: &'static str, offset: usize) -> Self {
        Self {
            name,
            offset,
            width: Width::W64,
        }
    }

    /// Offset one past the register's last byte.
    pub const fn end(self) -> usize {
        self.offset + self.width.bytes()
    }
}

/// Version.
pub const VER: Register = Register::w32("VER", 0x00);
/// Capability.
pub const CAP: Register = Register::w64("CAP", 0x08);
/// Extended capability.
pub const ECAP: Register = Register::w64("ECAP", 0x10);
/// Global command (write-only).
pub const GCMD: Register = Register::w32("GCMD", 0x18);
/// Global status.
pub const GSTS: Register = Register::w32("GSTS", 0x1c);
/// Root table address.
pub const RTADDR: Register = Register::w64("RTADDR", 0x20);
/// Context command.
pub const CCMD: Register = Register::w64("CCMD", 0x28);
/// Fault status.
pub const FSTS: Register = Register::w32("FSTS", 0x34);
/// Fault event control.
pub const FECTL: Register = Register::w32("FECTL", 0x38);
/// Fault event data.
pub const FEDATA: Register = Register::w32("FEDATA", 0x3c);
/// Fault event address.
pub const FEADDR: Register = Register::w32("FEADDR", 0x40);
/// Fault event upper address.
pub const FEUADDR: Register = Register::w32("FEUADDR", 0x44);
/// Advanced fault log.
pub const AFLOG: Register = Register::w64("AFLOG", 0x58);
/// Protected memory enable.
pub const PMEN: Register = Register::w32("PMEN", 0x64);
/// Invalidation queue head.
pub const IQH: Register = Register::w64("IQH", 0x80);
/// Invalidation queue tail.
pub const IQT: Register = Register::w64("IQT", 0x88);
/// Invalidation queue address.
pub const IQA: Register = Register::w64("IQA", 0x90);
/// Invalidation completion status.
pub const ICS: Register = Register::w32("ICS", 0x9c);
/// Invalidation event control.
pub const IECTL: Register = Register::w32("IECTL", 0xa0);
/// Invalidation event data.
pub const IEDATA: Register = Register::w32("IEDATA", 0xa4);
/// Invalidation event address.
pub const IEADDR: Register = Register::w32("IEADDR", 0xa8);
/// Invalidation event upper address.
pub const IEUADDR: Register = Register::w32("IEUADDR", 0xac);
/// Interrupt remapping table address.
pub const IRTA: Register = Register::w64("IRTA", 0xb8);
/// Page request queue head.
pub const PQH: Register = Register::w64("PQH", 0xc0);
/// Page request queue tail.
pub const PQT: Register = Register::w64("PQT", 0xc8);
/// Page request queue address.
pub const PQA: Register = Register::w64("PQA", 0xd0);
/// Page request status.
pub const PRS: Register = Register::w32("PRS", 0xdc);
/// Page request event control.
pub const PECTL: Register = Register::w32("PECTL", 0xe0);
/// Page request event data.
pub const PEDATA: Register = Register::w32("PEDATA", 0xe4);
/// Page request event address.
pub const PEADDR: Register = Register::w32("PEADDR", 0xe8);
/// Page request event upper address.
pub const PEUADDR: Register = Register::w32("PEUADDR", 0xec);

/// Every fixed-offset register, in offset order.
pub const ALL: [Register; 31] = [
    VER, CAP, ECAP, GCMD, GSTS, RTADDR, CCMD, FSTS, FECTL, FEDATA, FEADDR, FEUADDR, AFLOG, PMEN,
    IQH, IQT, IQA, ICS, IECTL, IEDATA, IEADDR, IEUADDR, IRTA, PQH, PQT, PQA, PRS, PECTL, PEDATA,
    PEADDR, PEUADDR,
];

/// The IOTLB register pair at `iro` (= `ExtendedCapability::iotlb_register_offset`):
/// IVA (invalidate address) at `iro` and IOTLB (invalidate command) at `iro + 8`.
pub const fn iotlb_registers(iro: usize) -> [Register; 2] {
    [Register::w64("IVA", iro), Register::w64("IOTLB", iro + 8)]
}

/// The registers of one 128-bit fault recording register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRecordRegisters {
    /// Bits 63:0: the faulting address (FI).
    pub low: Register,
    /// Bits 127:64: source ID, reason, PASID, type and the F bit (127).
    pub high: Register,
    /// Bits 127:96 alone: the dword holding F, which software clears by
    /// writing 1 with a 4-byte write (QEMU asserts on an 8-byte one).
    pub status: Register,
}

/// Fault recording register `index`, given `fro` (= `Capability::fault_recording_offset`).
pub const fn fault_record(fro: usize, index: usize) -> FaultRecordRegisters {
    let base = fro + 16 * index;
    FaultRecordRegisters {
        low: Register::w64("FRCD.lo", base),
        high: Register::w64("FRCD.hi", base + 8),
        status: Register::w32("FRCD.dw3", base + 12),
    }
}

bitflags! {
    /// GCMD: one bit per command. Write-only; see [`GlobalStatus`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct GlobalCommand: u32 {
        /// Translation enable.
        const TE = 1 << 31;
        /// Set root table pointer (one-shot).
        const SRTP = 1 << 30;
        /// Set fault log (one-shot).
        const SFL = 1 << 29;
        /// Enable advanced fault logging.
        const EAFL = 1 << 28;
        /// Write buffer flush (one-shot).
        const WBF = 1 << 27;
        /// Queued invalidation enable.
        const QIE = 1 << 26;
        /// Interrupt remapping enable.
        const IRE = 1 << 25;
        /// Set interrupt remap table pointer (one-shot).
        const SIRTP = 1 << 24;
        /// Compatibility format interrupt.
        const CFI = 1 << 23;
    }
}

impl GlobalCommand {
    /// The enable bits, which GCMD must keep repeating: every GCMD write
    /// replaces all of them.
    pub const PERSISTENT: Self = Self::TE
        .union(Self::EAFL)
        .union(Self::QIE)
        .union(Self::IRE)
        .union(Self::CFI);

    /// The GSTS bits that report this command's effect (same positions).
    pub const fn status(self) -> GlobalStatus {
        GlobalStatus::from_bits_retain(self.bits())
    }
}

bitflags! {
    /// GSTS: the status bit for each [`GlobalCommand`] bit, at the same position.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct GlobalStatus: u32 {
        /// Translation enabled.
        const TES = 1 << 31;
        /// Root table pointer set (latched by the last SRTP).
        const RTPS = 1 << 30;
        /// Fault log pointer set.
        const FLS = 1 << 29;
        /// Advanced fault logging enabled.
        const AFLS = 1 << 28;
        /// Write buffer flush still in progress.
        const WBFS = 1 << 27;
        /// Queued invalidation enabled.
        const QIES = 1 << 26;
        /// Interrupt remapping enabled.
        const IRES = 1 << 25;
        /// Interrupt remap table pointer set.
        const IRTPS = 1 << 24;
        /// Compatibility format interrupts enabled.
        const CFIS = 1 << 23;
    }
}

impl GlobalStatus {
    /// The GCMD value that keeps every currently enabled feature enabled:
    /// start the next GCMD write from this (the one-shot bits dropped, as
    /// the VT-d spec's "Status & 0x96FFFFFF" recipe does) and add one command.
    pub const fn persistent_command(self) -> GlobalCommand {
        GlobalCommand::from_bits_truncate(self.bits()).intersection(GlobalCommand::PERSISTENT)
    }
}

bitflags! {
    /// FSTS. Build it with `from_bits_retain` so [`FaultStatus::fault_record_index`]
    /// sees the FRI field.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct FaultStatus: u32 {
        /// Primary fault overflow (RW1C).
        const PFO = 1 << 0;
        /// Primary pending fault: some fault recording register has F=1 (read-only).
        const PPF = 1 << 1;
        /// Advanced fault overflow (RW1C).
        const AFO = 1 << 2;
        /// Advanced pending fault (RW1C).
        const APF = 1 << 3;
        /// Invalidation queue error (RW1C).
        const IQE = 1 << 4;
        /// Invalidation completion error (RW1C).
        const ICE = 1 << 5;
        /// Invalidation time-out error (RW1C).
        const ITE = 1 << 6;
    }
}

impl FaultStatus {
    /// The bits software clears by writing 1 (everything but PPF).
    pub const WRITE_ONE_TO_CLEAR: Self = Self::PFO
        .union(Self::AFO)
        .union(Self::APF)
        .union(Self::IQE)
        .union(Self::ICE)
        .union(Self::ITE);

    /// FRI (bits 15:8): the first fault recording register to read, valid while PPF is set.
    pub const fn fault_record_index(self) -> u8 {
        (self.bits() >> 8) as u8
    }
}

bitflags! {
    /// FECTL, IECTL and PECTL: interrupt mask and pending bits of an event.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct EventControl: u32 {
        /// Interrupt mask; set at reset.
        const IM = 1 << 31;
        /// Interrupt pending (read-only).
        const IP = 1 << 30;
    }
}

bitflags! {
    /// PRS: page request status.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PageRequestStatus: u32 {
        /// Pending page request (RW1C); clear it before reading PQH/PQT.
        const PPR = 1 << 0;
        /// Page request overflow (RW1C).
        const PRO = 1 << 1;
    }
}
