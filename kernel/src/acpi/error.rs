//! Errors of the ACPI parser.
//!
//! Firmware tables are input, not truth: every way a table can be wrong is a
//! variant here, carrying the table signature, the byte offset inside the table
//! and the offending values, so that a boot report line such as
//! `DMAR: truncated DRHD at offset 0x30: length 16 exceeds table end (0x38)`
//! tells the reader exactly which byte to look at. The parser never panics on
//! bad input; it returns one of these instead.

use core::fmt;

use super::sdt::Signature;

/// The kind of structure inside a table that an error refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// The fixed part at the start of a table: the 36-byte SDT header plus the
    /// table-specific fields that follow it (e.g. the MADT's local APIC address).
    Header,
    /// A physical-address entry of the RSDT (4 bytes) or XSDT (8 bytes).
    TablePointer,
    /// An MADT interrupt controller structure, by its type byte.
    MadtEntry(u8),
    /// An MCFG configuration space base address allocation (16 bytes).
    EcamAllocation,
    /// DMAR remapping structure type 0.
    Drhd,
    /// DMAR remapping structure type 1.
    Rmrr,
    /// DMAR remapping structure type 2.
    Atsr,
    /// DMAR remapping structure type 3.
    Rhsa,
    /// A DMAR remapping structure of a type this parser does not decode.
    Remapping(u16),
    /// A DMAR device scope inside a DRHD, RMRR or ATSR.
    DeviceScope,
    /// The (device, function) path of a DMAR device scope.
    ScopePath,
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Header => f.write_str("header"),
            Self::TablePointer => f.write_str("table pointer"),
            Self::MadtEntry(0) => f.write_str("local APIC entry"),
            Self::MadtEntry(1) => f.write_str("I/O APIC entry"),
            Self::MadtEntry(2) => f.write_str("interrupt source override"),
            Self::MadtEntry(5) => f.write_str("local APIC address override"),
            Self::MadtEntry(9) => f.write_str("local x2APIC entry"),
            Self::MadtEntry(t) => write!(f, "entry type {t}"),
            Self::EcamAllocation => f.write_str("ECAM allocation"),
            Self::Drhd => f.write_str("DRHD"),
            Self::Rmrr => f.write_str("RMRR"),
            Self::Atsr => f.write_str("ATSR"),
            Self::Rhsa => f.write_str("RHSA"),
            Self::Remapping(t) => write!(f, "remapping structure type {t}"),
            Self::DeviceScope => f.write_str("device scope"),
            Self::ScopePath => f.write_str("device scope path entry"),
        }
    }
}

/// Everything that can be wrong while locating and decoding ACPI tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// [`PhysMemory`](super::PhysMemory) could not provide `len` bytes at
    /// `paddr`. `sig` names the table being read, when the parser knows it.
    Unreadable {
        sig: Option<Signature>,
        paddr: u64,
        len: usize,
    },
    /// No `"RSD PTR "` signature at the given address.
    RsdpSignature { paddr: u64 },
    /// The first 20 bytes of the RSDP do not sum to zero.
    RsdpChecksum { sum: u8 },
    /// The 36 bytes of an ACPI 2.0+ RSDP do not sum to zero.
    RsdpExtendedChecksum { sum: u8 },
    /// An ACPI 2.0+ RSDP whose length field is smaller than 36.
    RsdpLength { length: u32 },
    /// The RSDP holds neither an RSDT nor an XSDT address.
    NoRootTable,
    /// The table at `paddr` does not carry the signature it was looked up by.
    SignatureMismatch {
        expected: Signature,
        found: Signature,
        paddr: u64,
    },
    /// The bytes of the table (its `length` of them) do not sum to zero.
    Checksum { sig: Signature, sum: u8 },
    /// A structure (or the table header) shorter than its fixed layout.
    TooShort {
        sig: Signature,
        structure: Structure,
        offset: usize,
        length: usize,
        min: usize,
    },
    /// A structure whose length runs past the end of the table or, for a
    /// device scope, of the remapping structure (`within`) that holds it.
    Truncated {
        sig: Signature,
        structure: Structure,
        offset: usize,
        length: usize,
        end: usize,
        within: Option<Structure>,
    },
    /// A DMAR device scope whose path is not a whole number of 2-byte
    /// (device, function) entries.
    OddScopePath {
        sig: Signature,
        offset: usize,
        length: usize,
    },
    /// A DMAR device scope path entry that is not a PCI device/function.
    BadScopePath {
        sig: Signature,
        offset: usize,
        device: u8,
        function: u8,
    },
    /// A DRHD whose register base is zero or not 4 KiB aligned.
    BadRegisterBase {
        sig: Signature,
        offset: usize,
        base: u64,
    },
    /// An RMRR whose (inclusive) limit lies below its base.
    RmrrLimitBelowBase {
        sig: Signature,
        offset: usize,
        base: u64,
        limit: u64,
    },
    /// An MCFG allocation whose end bus is below its start bus.
    BusRange {
        sig: Signature,
        offset: usize,
        start: u8,
        end: u8,
    },
    /// More structures of one kind than the parser has room for.
    TooMany {
        sig: Signature,
        structure: Structure,
        capacity: usize,
    },
    /// The list of tables found is full; `sig` is the first table not listed.
    TableListFull { sig: Signature, capacity: usize },
    /// A second table with the same signature; the first one is kept.
    Duplicate { sig: Signature, paddr: u64 },
}

impl AcpiError {
    /// The error a [`PhysMemory`](super::PhysMemory) implementation returns
    /// for a range it cannot provide.
    pub const fn unreadable(paddr: u64, len: usize) -> Self {
        Self::Unreadable {
            sig: None,
            paddr,
            len,
        }
    }

    /// Attributes an [`AcpiError::Unreadable`] without a signature to `sig`.
    pub(crate) fn in_table(self, sig: Signature) -> Self {
        match self {
            Self::Unreadable {
                sig: None,
                paddr,
                len,
            } => Self::Unreadable {
                sig: Some(sig),
                paddr,
                len,
            },
            other => other,
        }
    }

    /// The signature of the table the error is about, if it is about one.
    pub fn signature(&self) -> Option<Signature> {
        match *self {
            Self::Unreadable { sig, .. } => sig,
            Self::RsdpSignature { .. }
            | Self::RsdpChecksum { .. }
            | Self::RsdpExtendedChecksum { .. }
            | Self::RsdpLength { .. }
            | Self::NoRootTable => None,
            Self::SignatureMismatch { expected, .. } => Some(expected),
            Self::Checksum { sig, .. }
            | Self::TooShort { sig, .. }
            | Self::Truncated { sig, .. }
            | Self::OddScopePath { sig, .. }
            | Self::BadScopePath { sig, .. }
            | Self::BadRegisterBase { sig, .. }
            | Self::RmrrLimitBelowBase { sig, .. }
            | Self::BusRange { sig, .. }
            | Self::TooMany { sig, .. }
            | Self::TableListFull { sig, .. }
            | Self::Duplicate { sig, .. } => Some(sig),
        }
    }
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unreadable { sig, paddr, len } => {
                if let Some(sig) = sig {
                    write!(f, "{sig}: ")?;
                }
                write!(
                    f,
                    "cannot read {len:#x} bytes at physical address {paddr:#x}"
                )
            }
            Self::RsdpSignature { paddr } => {
                write!(f, "RSDP: no \"RSD PTR \" signature at {paddr:#x}")
            }
            Self::RsdpChecksum { sum } => write!(f, "RSDP: checksum mismatch (sum {sum:#04x})"),
            Self::RsdpExtendedChecksum { sum } => {
                write!(f, "RSDP: extended checksum mismatch (sum {sum:#04x})")
            }
            Self::RsdpLength { length } => {
                write!(f, "RSDP: length {length} is below the 36 bytes of ACPI 2.0")
            }
            Self::NoRootTable => f.write_str("RSDP: neither an RSDT nor an XSDT address"),
            Self::SignatureMismatch {
                expected,
                found,
                paddr,
            } => write!(f, "{expected}: table at {paddr:#x} has signature {found}"),
            Self::Checksum { sig, sum } => write!(f, "{sig}: checksum mismatch (sum {sum:#04x})"),
            Self::TooShort {
                sig,
                structure,
                offset,
                length,
                min,
            } => write!(
                f,
                "{sig}: {structure} at offset {offset:#x} is too short: length {length}, needs {min}"
            ),
            Self::Truncated {
                sig,
                structure,
                offset,
                length,
                end,
                within,
            } => {
                write!(
                    f,
                    "{sig}: truncated {structure} at offset {offset:#x}: length {length} exceeds "
                )?;
                match within {
                    Some(parent) => write!(f, "{parent} end ({end:#x})"),
                    None => write!(f, "table end ({end:#x})"),
                }
            }
            Self::OddScopePath {
                sig,
                offset,
                length,
            } => write!(
                f,
                "{sig}: device scope at offset {offset:#x} has length {length}: \
                 path is not whole (device, function) pairs"
            ),
            Self::BadScopePath {
                sig,
                offset,
                device,
                function,
            } => write!(
                f,
                "{sig}: device scope at offset {offset:#x} has path entry \
                 {device:#04x}.{function:#x}, not a PCI device.function"
            ),
            Self::BadRegisterBase { sig, offset, base } => write!(
                f,
                "{sig}: DRHD at offset {offset:#x} has register base {base:#x}: \
                 must be non-zero and 4 KiB aligned"
            ),
            Self::RmrrLimitBelowBase {
                sig,
                offset,
                base,
                limit,
            } => write!(
                f,
                "{sig}: RMRR at offset {offset:#x} has limit {limit:#x} below base {base:#x}"
            ),
            Self::BusRange {
                sig,
                offset,
                start,
                end,
            } => write!(
                f,
                "{sig}: ECAM allocation at offset {offset:#x} has end bus {end:#04x} \
                 below start bus {start:#04x}"
            ),
            Self::TooMany {
                sig,
                structure,
                capacity,
            } => write!(f, "{sig}: {structure} count exceeds capacity {capacity}"),
            Self::TableListFull { sig, capacity } => write!(
                f,
                "{sig}: table list full ({capacity} tables); this and later tables are not listed"
            ),
            Self::Duplicate { sig, paddr } => {
                write!(
                    f,
                    "{sig}: duplicate table at {paddr:#x} ignored; the first one is used"
                )
            }
        }
    }
}

impl core::error::Error for AcpiError {}
