//! The ECAP register (offset 0x10, 64-bit): invalidation, interrupt
//! remapping, PASID/page-request support and which translation modes
//! (legacy or scalable; first- or second-level) the hardware implements.
//!
//! [`ExtendedCapability`] decodes each field on demand, named after what it
//! means, with the VT-d abbreviation in the doc comment. The translation-mode
//! helpers at the end are what the IOMMU service uses to honour a
//! deployment's choice of mode, and what the boot report prints.

use crate::{bit, field};

/// The raw ECAP register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ExtendedCapability(pub u64);

/// How the root table is interpreted (RTADDR.TTM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TranslationMode {
    /// Root → context → second-level tables, indexed by requester ID only.
    Legacy,
    /// Root → scalable context → PASID directory/table → first- or second-level tables.
    Scalable,
}

impl ExtendedCapability {
    /// Every bit this crate decodes; the rest are reserved.
    pub const DEFINED_BITS: u64 = 0x000f_fffe_e6f3_ffdf;

    /// C (0): page-walk coherency (table reads snoop the CPU caches).
    pub const fn coherency(self) -> bool {
        bit(self.0, 0)
    }

    /// QI (1): queued invalidation.
    pub const fn queued_invalidation(self) -> bool {
        bit(self.0, 1)
    }

    /// DT (2): device-TLB (ATS) support.
    pub const fn device_tlb(self) -> bool {
        bit(self.0, 2)
    }

    /// IR (3): interrupt remapping.
    pub const fn interrupt_remapping(self) -> bool {
        bit(self.0, 3)
    }

    /// EIM (4): extended (x2APIC, 32-bit destination) interrupt mode.
    pub const fn extended_interrupt_mode(self) -> bool {
        bit(self.0, 4)
    }

    /// PT (6): pass-through translation type.
    pub const fn pass_through(self) -> bool {
        bit(self.0, 6)
    }

    /// SC (7): snoop control.
    pub const fn snoop_control(self) -> bool {
        bit(self.0, 7)
    }

    /// IRO (17:8) decoded: byte offset of the IOTLB register pair (IRO × 16).
    pub const fn iotlb_register_offset(self) -> usize {
        field(self.0, 8, 10) as usize * 16
    }

    /// MHMV (23:20): largest interrupt-entry-cache handle mask.
    pub const fn max_handle_mask(self) -> u8 {
        field(self.0, 20, 4) as u8
    }

    /// MTS (25): memory type support.
    pub const fn memory_type(self) -> bool {
        bit(self.0, 25)
    }

    /// NEST (26): nested (first-level over second-level) translation.
    pub const fn nested_translation(self) -> bool {
        bit(self.0, 26)
    }

    /// PRS (29): page requests (PRI) are reported through the page request queue.
    pub const fn page_requests(self) -> bool {
        bit(self.0, 29)
    }

    /// ERS (30): execute-requested DMA.
    pub const fn execute_requests(self) -> bool {
        bit(self.0, 30)
    }

    /// SRS (31): supervisor-privileged DMA requests.
    pub const fn supervisor_requests(self) -> bool {
        bit(self.0, 31)
    }

    /// NWFS (33): no-write-flag support for ATS.
    pub const fn no_write_flag(self) -> bool {
        bit(self.0, 33)
    }

    /// EAFS (34): extended-accessed flag in first-level tables.
    pub const fn extended_accessed_flag(self) -> bool {
        bit(self.0, 34)
    }

    /// PSS (39:35) decoded: PASID width in bits (PSS + 1).
    pub const fn pasid_bits(self) -> u8 {
        field(self.0, 35, 5) as u8 + 1
    }

    /// PASID (40): process address space IDs.
    pub const fn pasid(self) -> bool {
        bit(self.0, 40)
    }

    /// DIT (41): device-TLB invalidation throttling.
    pub const fn device_tlb_invalidation_throttle(self) -> bool {
        bit(self.0, 41)
    }

    /// PDS (42): page-request drain in invalidation-wait descriptors.
    pub const fn page_request_drain(self) -> bool {
        bit(self.0, 42)
    }

    /// SMTS (43): scalable-mode translation.
    pub const fn scalable_mode(self) -> bool {
        bit(self.0, 43)
    }

    /// VCS (44): virtual command registers.
    pub const fn virtual_command(self) -> bool {
        bit(self.0, 44)
    }

    /// SLADS (45): second-level accessed/dirty bits.
    pub const fn second_level_accessed_dirty(self) -> bool {
        bit(self.0, 45)
    }

    /// SLTS (46): second-level translation in scalable mode (PGTT=2).
    pub const fn second_level_translation(self) -> bool {
        bit(self.0, 46)
    }

    /// FLTS (47): first-level translation in scalable mode (PGTT=1).
    pub const fn first_level_translation(self) -> bool {
        bit(self.0, 47)
    }

    /// SMPWCS (48): scalable-mode page-walk coherency.
    pub const fn scalable_page_walk_coherency(self) -> bool {
        bit(self.0, 48)
    }

    /// RPS (49): RID_PASID field in scalable-mode context entries.
    pub const fn rid_pasid(self) -> bool {
        bit(self.0, 49)
    }

    /// ADMS (50): abort DMA mode.
    pub const fn abort_dma_mode(self) -> bool {
        bit(self.0, 50)
    }

    /// RPRIVS (51): RID_PRIV field in scalable-mode context entries.
    pub const fn rid_privilege(self) -> bool {
        bit(self.0, 51)
    }

    /// Whether legacy-mode translation can be used. The architecture has no
    /// bit that withdraws it, so this is always true; kept as a function so
    /// a future spec revision that deprecates it changes one place.
    pub const fn legacy_mode_supported(self) -> bool {
        true
    }

    /// Whether scalable-mode translation can be used (SMTS).
    pub const fn scalable_mode_supported(self) -> bool {
        self.scalable_mode()
    }

    /// Scalable mode with second-level tables (PGTT=2) for DMA remapping.
    /// QEMU with `x-flts=on` offers scalable mode *without* this.
    pub const fn scalable_second_level_supported(self) -> bool {
        self.scalable_mode() && self.second_level_translation()
    }

    /// Scalable mode with first-level tables (PGTT=1).
    pub const fn scalable_first_level_supported(self) -> bool {
        self.scalable_mode() && self.first_level_translation()
    }

    /// Whether `mode` can be used.
    pub const fn supports(self, mode: TranslationMode) -> bool {
        match mode {
            TranslationMode::Legacy => self.legacy_mode_supported(),
            TranslationMode::Scalable => self.scalable_mode_supported(),
        }
    }
}
