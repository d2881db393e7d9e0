//! The Root System Description Pointer.
//!
//! The RSDP is where ACPI discovery starts: PVH's `start_info.rsdp_paddr`
//! points at it. ACPI 1.0 defines 20 bytes with one checksum and a 32-bit RSDT
//! address; ACPI 2.0 (revision >= 2) extends it to 36 bytes with a second
//! checksum and a 64-bit XSDT address. The XSDT is preferred when present,
//! as the specification asks, and the RSDT is used otherwise (QEMU's SeaBIOS
//! hands out a revision 0 RSDP with an RSDT only). A bad RSDP leaves nothing
//! to trust, so every error here is fatal to [`parse`](super::parse).

use super::PhysMemory;
use super::error::AcpiError;
use super::sdt::{OemId, Signature, checksum, read_exact};

/// A validated RSDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// 0 for ACPI 1.0; 2 and up for the extended structure.
    pub revision: u8,
    pub oem_id: OemId,
    pub rsdt_address: u32,
    /// Length of the structure: 20 for revision < 2, else the length field.
    pub length: u32,
    /// The XSDT address; 0 for revision < 2.
    pub xsdt_address: u64,
}

/// The root table the RSDP leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootTable {
    Rsdt(u64),
    Xsdt(u64),
}

impl RootTable {
    pub fn signature(&self) -> Signature {
        match self {
            Self::Rsdt(_) => Signature::RSDT,
            Self::Xsdt(_) => Signature::XSDT,
        }
    }

    pub fn paddr(&self) -> u64 {
        match *self {
            Self::Rsdt(p) | Self::Xsdt(p) => p,
        }
    }

    /// Size of one table pointer in the root table.
    pub(crate) fn entry_size(&self) -> usize {
        match self {
            Self::Rsdt(_) => 4,
            Self::Xsdt(_) => 8,
        }
    }
}

impl Rsdp {
    pub const SIGNATURE: [u8; 8] = *b"RSD PTR ";
    /// Size of the ACPI 1.0 structure covered by the first checksum.
    pub const V1_SIZE: usize = 20;
    /// Size of the ACPI 2.0 structure covered by the extended checksum.
    pub const V2_SIZE: usize = 36;

    /// Reads and validates the RSDP at `paddr`.
    pub fn read(mem: &impl PhysMemory, paddr: u64) -> Result<Self, AcpiError> {
        let v1: &[u8; Self::V1_SIZE] = read_exact(mem, paddr, Self::V1_SIZE)?
            .try_into()
            .map_err(|_| AcpiError::unreadable(paddr, Self::V1_SIZE))?;
        if !v1.starts_with(&Self::SIGNATURE) {
            return Err(AcpiError::RsdpSignature { paddr });
        }
        match checksum(v1) {
            0 => {}
            sum => return Err(AcpiError::RsdpChecksum { sum }),
        }
        let [
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            o0,
            o1,
            o2,
            o3,
            o4,
            o5,
            revision,
            r0,
            r1,
            r2,
            r3,
        ] = *v1;
        let mut rsdp = Self {
            revision,
            oem_id: OemId([o0, o1, o2, o3, o4, o5]),
            rsdt_address: u32::from_le_bytes([r0, r1, r2, r3]),
            length: Self::V1_SIZE as u32,
            xsdt_address: 0,
        };
        if revision < 2 {
            return Ok(rsdp);
        }

        let v2: &[u8; Self::V2_SIZE] = read_exact(mem, paddr, Self::V2_SIZE)?
            .try_into()
            .map_err(|_| AcpiError::unreadable(paddr, Self::V2_SIZE))?;
        let [
            ..,
            l0,
            l1,
            l2,
            l3,
            x0,
            x1,
            x2,
            x3,
            x4,
            x5,
            x6,
            x7,
            _,
            _,
            _,
            _,
        ] = *v2;
        rsdp.length = u32::from_le_bytes([l0, l1, l2, l3]);
        if (rsdp.length as usize) < Self::V2_SIZE {
            return Err(AcpiError::RsdpLength {
                length: rsdp.length,
            });
        }
        // The extended checksum covers the whole structure; like Linux, check
        // the 36 bytes this parser knows rather than trust a longer length.
        match checksum(v2) {
            0 => {}
            sum => return Err(AcpiError::RsdpExtendedChecksum { sum }),
        }
        rsdp.xsdt_address = u64::from_le_bytes([x0, x1, x2, x3, x4, x5, x6, x7]);
        Ok(rsdp)
    }

    /// The root table to walk: the XSDT when the RSDP is ACPI 2.0+ and names
    /// one, else the RSDT.
    pub fn root_table(&self) -> Result<RootTable, AcpiError> {
        if self.revision >= 2 && self.xsdt_address != 0 {
            Ok(RootTable::Xsdt(self.xsdt_address))
        } else if self.rsdt_address != 0 {
            Ok(RootTable::Rsdt(u64::from(self.rsdt_address)))
        } else {
            Err(AcpiError::NoRootTable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{TestMem, rsdp_v1, rsdp_v2};

    #[test]
    fn v1_rsdp_leads_to_the_rsdt() {
        let mem = TestMem::new().with(0xf5250, rsdp_v1(0x0ffe_232d));
        let rsdp = Rsdp::read(&mem, 0xf5250).unwrap();
        assert_eq!(rsdp.revision, 0);
        assert_eq!(rsdp.oem_id, OemId(*b"BOCHS "));
        assert_eq!(rsdp.length, 20);
        assert_eq!(rsdp.root_table(), Ok(RootTable::Rsdt(0x0ffe_232d)));
    }

    #[test]
    fn v2_rsdp_prefers_the_xsdt() {
        let mem = TestMem::new().with(0xe0000, rsdp_v2(0x1000, 0x1_0000_2000));
        let rsdp = Rsdp::read(&mem, 0xe0000).unwrap();
        assert_eq!(rsdp.revision, 2);
        assert_eq!(rsdp.length, 36);
        assert_eq!(rsdp.root_table(), Ok(RootTable::Xsdt(0x1_0000_2000)));

        let mem = TestMem::new().with(0xe0000, rsdp_v2(0x1000, 0));
        let rsdp = Rsdp::read(&mem, 0xe0000).unwrap();
        assert_eq!(rsdp.root_table(), Ok(RootTable::Rsdt(0x1000)));

        let mem = TestMem::new().with(0xe0000, rsdp_v2(0, 0));
        let rsdp = Rsdp::read(&mem, 0xe0000).unwrap();
        assert_eq!(rsdp.root_table(), Err(AcpiError::NoRootTable));
    }

    #[test]
    fn bad_signature_checksums_and_length_are_errors() {
        let mut bad = rsdp_v1(0x1000);
        bad[0] = b'X';
        let mem = TestMem::new().with(0xe0000, bad);
        assert_eq!(
            Rsdp::read(&mem, 0xe0000),
            Err(AcpiError::RsdpSignature { paddr: 0xe0000 })
        );

        let mut bad = rsdp_v1(0x1000);
        bad[8] = bad[8].wrapping_add(0x3c);
        let mem = TestMem::new().with(0xe0000, bad);
        assert_eq!(
            Rsdp::read(&mem, 0xe0000),
            Err(AcpiError::RsdpChecksum { sum: 0x3c })
        );

        let mut bad = rsdp_v2(0x1000, 0x2000);
        bad[34] = 1; // reserved byte, covered only by the extended checksum
        let mem = TestMem::new().with(0xe0000, bad);
        assert_eq!(
            Rsdp::read(&mem, 0xe0000),
            Err(AcpiError::RsdpExtendedChecksum { sum: 1 })
        );

        let mut bad = rsdp_v2(0x1000, 0x2000);
        bad[20] = 20; // was 36
        bad[33] = bad[33].wrapping_add(16); // keep the extended checksum at zero
        let mem = TestMem::new().with(0xe0000, bad);
        assert_eq!(
            Rsdp::read(&mem, 0xe0000),
            Err(AcpiError::RsdpLength { length: 20 })
        );
    }

    #[test]
    fn unreadable_rsdp_is_an_error() {
        let mem = TestMem::new().with(0xe0000, rsdp_v1(0x1000));
        assert!(matches!(
            Rsdp::read(&mem, 0xd0000),
            Err(AcpiError::Unreadable { .. })
        ));
        // A v2 RSDP whose extension is cut off by the end of readable memory.
        let mut short = rsdp_v2(0x1000, 0x2000);
        short.truncate(24);
        let mem = TestMem::new().with(0xe0000, short);
        assert!(matches!(
            Rsdp::read(&mem, 0xe0000),
            Err(AcpiError::Unreadable { len: 36, .. })
        ));
    }
}
