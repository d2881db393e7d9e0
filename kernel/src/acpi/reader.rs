//! Bounds-checked little-endian field reads.
//!
//! All ACPI structures are decoded through [`Reader`], which knows which table
//! and which structure it is reading and where that structure sits in the
//! table. A read past the end of the structure becomes
//! [`AcpiError::TooShort`] naming all three, so no decoder ever indexes a slice
//! directly and no malformed table can make the parser panic.

use super::error::{AcpiError, Structure};
use super::sdt::Signature;

/// A view of one structure's bytes, for reading its fields.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    sig: Signature,
    structure: Structure,
    /// Offset of `bytes` within the table, for error messages.
    offset: usize,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
        sig: Signature,
        structure: Structure,
        offset: usize,
        bytes: &'a [u8],
    ) -> Self {
        Self {
            sig,
            structure,
            offset,
            bytes,
        }
    }

    /// Length of the structure in bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Offset of the structure within its table.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The error for a structure that needs at least `min` bytes.
    pub(crate) fn too_short(&self, min: usize) -> AcpiError {
        AcpiError::TooShort {
            sig: self.sig,
            structure: self.structure,
            offset: self.offset,
            length: self.bytes.len(),
            min,
        }
    }

    /// Fails unless the structure is at least `min` bytes long.
    pub(crate) fn require(&self, min: usize) -> Result<(), AcpiError> {
        if self.bytes.len() < min {
            Err(self.too_short(min))
        } else {
            Ok(())
        }
    }

    /// `len` bytes starting at `at`.
    pub(crate) fn bytes(&self, at: usize, len: usize) -> Result<&'a [u8], AcpiError> {
        let end = at
            .checked_add(len)
            .ok_or_else(|| self.too_short(usize::MAX))?;
        self.bytes.get(at..end).ok_or_else(|| self.too_short(end))
    }

    pub(crate) fn array<const N: usize>(&self, at: usize) -> Result<[u8; N], AcpiError> {
        let bytes = self.bytes(at, N)?;
        // `bytes` has exactly N elements, so the conversion cannot fail; map
        // the impossible case to the same error rather than unwrapping.
        bytes
            .try_into()
            .map_err(|_| self.too_short(at.saturating_add(N)))
    }

    pub(crate) fn u8(&self, at: usize) -> Result<u8, AcpiError> {
        Ok(self.array::<1>(at)?[0])
    }

    pub(crate) fn u16(&self, at: usize) -> Result<u16, AcpiError> {
        self.array(at).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&self, at: usize) -> Result<u32, AcpiError> {
        self.array(at).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&self, at: usize) -> Result<u64, AcpiError> {
        self.array(at).map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: Signature = Signature(*b"TEST");

    #[test]
    fn reads_little_endian_fields() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let r = Reader::new(SIG, Structure::Header, 0, &bytes);
        assert_eq!(r.u8(0), Ok(1));
        assert_eq!(r.u16(1), Ok(0x0302));
        assert_eq!(r.u32(0), Ok(0x0403_0201));
        assert_eq!(r.u64(1), Ok(0x0908_0706_0504_0302));
        assert_eq!(r.bytes(7, 2), Ok(&bytes[7..9]));
    }

    #[test]
    fn out_of_bounds_reads_are_errors() {
        let bytes = [0u8; 4];
        let r = Reader::new(SIG, Structure::Drhd, 0x30, &bytes);
        let short = AcpiError::TooShort {
            sig: SIG,
            structure: Structure::Drhd,
            offset: 0x30,
            length: 4,
            min: 8,
        };
        assert_eq!(r.u64(0), Err(short));
        assert!(r.u8(4).is_err());
        assert!(r.u32(usize::MAX - 1).is_err());
        assert!(r.bytes(usize::MAX, 2).is_err());
        assert_eq!(r.require(4), Ok(()));
        assert!(r.require(5).is_err());
    }
}
