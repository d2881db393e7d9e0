//! System description table headers.
//!
//! Every ACPI table other than the RSDP starts with the same 36-byte header
//! (signature, length, revision, checksum, OEM identification). This module
//! decodes that header and loads a whole table through
//! [`PhysMemory`], checking that its length covers the header and that its
//! bytes sum to zero, before any table-specific decoder looks at the body.

use core::fmt;

use super::PhysMemory;
use super::error::{AcpiError, Structure};
use super::reader::Reader;

/// A 4-byte ACPI table signature such as `DMAR`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 4]);

impl Signature {
    pub const RSDT: Self = Self(*b"RSDT");
    pub const XSDT: Self = Self(*b"XSDT");
    /// The MADT's signature is `APIC`.
    pub const MADT: Self = Self(*b"APIC");
    pub const MCFG: Self = Self(*b"MCFG");
    pub const DMAR: Self = Self(*b"DMAR");
    /// The FADT's signature is `FACP`.
    pub const FADT: Self = Self(*b"FACP");
    /// Stands in for a table whose header could not be read.
    pub const UNKNOWN: Self = Self(*b"????");
}

/// Writes printable ASCII as is and anything else as `\xNN`.
fn write_ascii(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        if b.is_ascii_graphic() || b == b' ' {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ascii(f, &self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(\"{self}\")")
    }
}

/// The 6-byte OEM identifier of the RSDP and of each table.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OemId(pub [u8; 6]);

impl OemId {
    /// The identifier without the trailing spaces or NULs that pad it.
    pub fn trimmed(&self) -> &[u8] {
        let len = self
            .0
            .iter()
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(0, |i| i + 1);
        self.0.get(..len).unwrap_or(&[])
    }
}

impl fmt::Display for OemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ascii(f, self.trimmed())
    }
}

impl fmt::Debug for OemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OemId(\"{self}\")")
    }
}

/// The common header of every system description table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdtHeader {
    pub signature: Signature,
    /// Length of the whole table, header included.
    pub length: u32,
    pub revision: u8,
    pub checksum: u8,
    pub oem_id: OemId,
    pub oem_table_id: [u8; 8],
    pub oem_revision: u32,
    pub creator_id: [u8; 4],
    pub creator_revision: u32,
}

impl SdtHeader {
    pub const SIZE: usize = 36;

    /// Decodes the header at the start of `bytes`. It does not check the
    /// length or checksum, which need the whole table.
    pub fn decode(bytes: &[u8]) -> Result<Self, AcpiError> {
        let sig = Signature(
            bytes
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .unwrap_or(*b"????"),
        );
        let r = Reader::new(sig, Structure::Header, 0, bytes);
        r.require(Self::SIZE)?;
        Ok(Self {
            signature: sig,
            length: r.u32(4)?,
            revision: r.u8(8)?,
            checksum: r.u8(9)?,
            oem_id: OemId(r.array(10)?),
            oem_table_id: r.array(16)?,
            oem_revision: r.u32(24)?,
            creator_id: r.array(28)?,
            creator_revision: r.u32(32)?,
        })
    }
}

/// The byte sum of `bytes`; a valid ACPI table sums to zero.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

/// Reads `len` bytes at `paddr`, making sure the memory gave all of them.
pub(crate) fn read_exact(
    mem: &impl PhysMemory,
    paddr: u64,
    len: usize,
) -> Result<&[u8], AcpiError> {
    mem.read(paddr, len)?
        .get(..len)
        .ok_or(AcpiError::unreadable(paddr, len))
}

/// Reads and decodes the header of the table at `paddr`.
pub(crate) fn read_header(mem: &impl PhysMemory, paddr: u64) -> Result<SdtHeader, AcpiError> {
    SdtHeader::decode(read_exact(mem, paddr, SdtHeader::SIZE)?)
}

/// Reads the whole table that `header` (read from `paddr`) describes and
/// checks its length and checksum.
pub(crate) fn read_table<'m>(
    mem: &'m impl PhysMemory,
    paddr: u64,
    header: &SdtHeader,
) -> Result<&'m [u8], AcpiError> {
    let sig = header.signature;
    let length = header.length as usize;
    if length < SdtHeader::SIZE {
        return Err(AcpiError::TooShort {
            sig,
            structure: Structure::Header,
            offset: 0,
            length,
            min: SdtHeader::SIZE,
        });
    }
    let bytes = read_exact(mem, paddr, length).map_err(|e| e.in_table(sig))?;
    match checksum(bytes) {
        0 => Ok(bytes),
        sum => Err(AcpiError::Checksum { sig, sum }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{TestMem, sdt};

    #[test]
    fn signature_display_escapes_unprintable_bytes() {
        assert_eq!(format!("{}", Signature::DMAR), "DMAR");
        assert_eq!(format!("{}", Signature(*b"A\0\xffZ")), "A\\x00\\xffZ");
        assert_eq!(format!("{:?}", Signature::MADT), "Signature(\"APIC\")");
        assert_eq!(format!("{}", OemId(*b"BOCHS ")), "BOCHS");
        assert_eq!(format!("{}", OemId(*b"\0\0\0\0\0\0")), "");
    }

    #[test]
    fn decodes_header_fields() {
        let table = sdt(b"DMAR", 1, &[0xaa; 12]);
        let h = SdtHeader::decode(&table).unwrap();
        assert_eq!(h.signature, Signature::DMAR);
        assert_eq!(h.length, 48);
        assert_eq!(h.revision, 1);
        assert_eq!(h.oem_id, OemId(*b"BOCHS "));
        assert_eq!(checksum(&table), 0);
    }

    #[test]
    fn header_shorter_than_36_bytes_is_an_error() {
        let err = SdtHeader::decode(b"DMAR\x10\0\0\0").unwrap_err();
        assert!(matches!(
            err,
            AcpiError::TooShort {
                min: 36,
                length: 8,
                ..
            }
        ));
    }

    #[test]
    fn read_table_checks_length_and_checksum() {
        let mut table = sdt(b"MCFG", 1, &[0; 8]);
        let mem = TestMem::new().with(0x1000, table.clone());
        let h = read_header(&mem, 0x1000).unwrap();
        assert_eq!(read_table(&mem, 0x1000, &h).unwrap().len(), 44);

        table[40] = 0x3c;
        let mem = TestMem::new().with(0x1000, table.clone());
        let h = read_header(&mem, 0x1000).unwrap();
        assert_eq!(
            read_table(&mem, 0x1000, &h),
            Err(AcpiError::Checksum {
                sig: Signature::MCFG,
                sum: 0x3c
            })
        );

        table[4] = 20; // length below the header size
        let mem = TestMem::new().with(0x1000, table);
        let h = read_header(&mem, 0x1000).unwrap();
        assert!(matches!(
            read_table(&mem, 0x1000, &h),
            Err(AcpiError::TooShort { length: 20, .. })
        ));
    }
}
