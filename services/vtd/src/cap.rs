//! The CAP register (offset 0x08, 64-bit): what the remapping hardware's
//! second-level translation, fault recording and invalidation offer.
//!
//! [`Capability`] wraps the raw value and decodes each field on demand,
//! named after what it means; the VT-d spec abbreviation is in each doc
//! comment (and in the `Display` summary) so both spellings are findable.
//! Fields that are counts or offsets are returned already scaled (NFR+1,
//! FRO×16, MGAW+1), so callers cannot forget the encoding.

use bitflags::bitflags;

use crate::{bit, field};

/// The raw CAP register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Capability(pub u64);

bitflags! {
    /// SAGAW: the second-level page-table depths the hardware walks.
    /// Reserved bits (0 and 4) are retained as read.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct AddressWidths: u8 {
        /// 39-bit AGAW, 3-level table.
        const BITS_39 = 1 << 1;
        /// 48-bit AGAW, 4-level table.
        const BITS_48 = 1 << 2;
        /// 57-bit AGAW, 5-level table.
        const BITS_57 = 1 << 3;
    }
}

/// One adjusted guest address width, i.e. one second-level table depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressWidth {
    Bits39,
    Bits48,
    Bits57,
}

impl AddressWidth {
    /// All widths, narrowest first.
    pub const ALL: [AddressWidth; 3] = [Self::Bits39, Self::Bits48, Self::Bits57];

    /// Width of the input address in bits.
    pub const fn address_bits(self) -> u8 {
        match self {
            Self::Bits39 => 39,
            Self::Bits48 => 48,
            Self::Bits57 => 57,
        }
    }

    /// Number of page-table levels.
    pub const fn levels(self) -> u8 {
        match self {
            Self::Bits39 => 3,
            Self::Bits48 => 4,
            Self::Bits57 => 5,
        }
    }

    /// The context entry's AW field encoding (levels − 2).
    pub const fn context_aw(self) -> u8 {
        self.levels() - 2
    }

    /// The SAGAW bit that advertises this width.
    pub const fn flag(self) -> AddressWidths {
        match self {
            Self::Bits39 => AddressWidths::BITS_39,
            Self::Bits48 => AddressWidths::BITS_48,
            Self::Bits57 => AddressWidths::BITS_57,
        }
    }
}

impl AddressWidths {
    /// The architecturally defined widths present, narrowest first.
    pub fn widths(self) -> impl Iterator<Item = AddressWidth> {
        AddressWidth::ALL
            .into_iter()
            .filter(move |w| self.contains(w.flag()))
    }
}

bitflags! {
    /// SLLPS / large page sizes. Reserved bits are retained as read.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct LargePageSizes: u8 {
        /// 2 MiB pages (21-bit offset).
        const SIZE_2M = 1 << 0;
        /// 1 GiB pages (30-bit offset).
        const SIZE_1G = 1 << 1;
    }
}

impl Capability {
    /// Every bit this crate decodes; the rest are reserved.
    pub const DEFINED_BITS: u64 = 0xd9ff_ffbf_ff7f_1fff;

    /// ND (2:0) decoded: width of a domain identifier in bits (4 + 2·ND).
    pub const fn domain_id_bits(self) -> u8 {
        4 + 2 * field(self.0, 0, 3) as u8
    }

    /// ND (2:0) decoded: number of domains the hardware supports.
    pub const fn domain_count(self) -> u32 {
        1 << self.domain_id_bits()
    }

    /// AFL (3): advanced fault logging.
    pub const fn advanced_fault_logging(self) -> bool {
        bit(self.0, 3)
    }

    /// RWBF (4): software must flush the write buffer after table updates.
    pub const fn required_write_buffer_flush(self) -> bool {
        bit(self.0, 4)
    }

    /// PLMR (5): protected low-memory region.
    pub const fn protected_low_memory_region(self) -> bool {
        bit(self.0, 5)
    }

    /// PHMR (6): protected high-memory region.
    pub const fn protected_high_memory_region(self) -> bool {
        bit(self.0, 6)
    }

    /// CM (7): caching mode; not-present entries may be cached, so every
    /// change (including not-present → present) needs an invalidation.
    pub const fn caching_mode(self) -> bool {
        bit(self.0, 7)
    }

    /// SAGAW (12:8): supported second-level table depths.
    pub const fn supported_address_widths(self) -> AddressWidths {
        AddressWidths::from_bits_retain(field(self.0, 8, 5) as u8)
    }

    /// MGAW (21:16) decoded: maximum guest address width in bits (MGAW + 1).
    pub const fn max_guest_address_width(self) -> u8 {
        field(self.0, 16, 6) as u8 + 1
    }

    /// ZLR (22): zero-length DMA reads are honoured.
    pub const fn zero_length_read(self) -> bool {
        bit(self.0, 22)
    }

    /// FRO (33:24) decoded: byte offset of the first fault recording register (FRO × 16).
    pub const fn fault_recording_offset(self) -> usize {
        field(self.0, 24, 10) as usize * 16
    }

    /// SLLPS (37:34): second-level large page sizes.
    pub const fn second_level_large_pages(self) -> LargePageSizes {
        LargePageSizes::from_bits_retain(field(self.0, 34, 4) as u8)
    }

    /// PSI (39): page-selective IOTLB invalidation.
    pub const fn page_selective_invalidation(self) -> bool {
        bit(self.0, 39)
    }

    /// NFR (47:40) decoded: number of fault recording registers (NFR + 1).
    pub const fn fault_recording_count(self) -> u16 {
        field(self.0, 40, 8) as u16 + 1
    }

    /// MAMV (53:48): largest address mask for page-selective invalidation.
    pub const fn max_address_mask(self) -> u8 {
        field(self.0, 48, 6) as u8
    }

    /// DWD (54): write draining.
    pub const fn write_draining(self) -> bool {
        bit(self.0, 54)
    }

    /// DRD (55): read draining.
    pub const fn read_draining(self) -> bool {
        bit(self.0, 55)
    }

    /// FL1GP (56): 1 GiB pages in first-level tables.
    pub const fn first_level_1g_pages(self) -> bool {
        bit(self.0, 56)
    }

    /// PI (59): posted interrupts.
    pub const fn posted_interrupts(self) -> bool {
        bit(self.0, 59)
    }

    /// FL5LP (60): 5-level first-level tables.
    pub const fn first_level_5_level_paging(self) -> bool {
        bit(self.0, 60)
    }

    /// ESIRTPS (62): SIRTP also invalidates the interrupt entry cache.
    pub const fn enhanced_set_irtp(self) -> bool {
        bit(self.0, 62)
    }

    /// ESRTPS (63): SRTP also invalidates context, PASID and IOTLB caches.
    pub const fn enhanced_set_rtp(self) -> bool {
        bit(self.0, 63)
    }
}
