//! One-line `Display` summaries of CAP and ECAP for the boot report.
//!
//! Every field is printed as `NAME=value` with the VT-d spec's name, and
//! every flag explicitly as `NAME=0` or `NAME=1` (never just "present when
//! set"), so a reader or a test can grep for `SMTS=0` as reliably as for
//! `SMTS=1`. The features that decide how the IOMMU service comes up are
//! printed first.

use core::fmt;

use crate::cap::{AddressWidths, Capability, LargePageSizes};
use crate::ecap::ExtendedCapability;

/// Writes `NAME=0` or `NAME=1`, preceded by a space.
fn flag(f: &mut fmt::Formatter<'_>, name: &str, value: bool) -> fmt::Result {
    write!(f, " {name}={}", u8::from(value))
}

/// Writes `SAGAW=39,48-bit` (or `none`), noting reserved bits if any are set.
fn address_widths(f: &mut fmt::Formatter<'_>, widths: AddressWidths) -> fmt::Result {
    f.write_str("SAGAW=")?;
    let mut first = true;
    for width in widths.widths() {
        if !first {
            f.write_str(",")?;
        }
        write!(f, "{}", width.address_bits())?;
        first = false;
    }
    f.write_str(if first { "none" } else { "-bit" })?;
    let reserved = widths.bits() & !AddressWidths::all().bits();
    if reserved != 0 {
        write!(f, "+reserved:{reserved:#x}")?;
    }
    Ok(())
}

/// Writes ` SLLPS=2M,1G` (or `none`), noting reserved bits if any are set.
fn large_pages(f: &mut fmt::Formatter<'_>, sizes: LargePageSizes) -> fmt::Result {
    f.write_str(" SLLPS=")?;
    let names = [
        (LargePageSizes::SIZE_2M, "2M"),
        (LargePageSizes::SIZE_1G, "1G"),
    ];
    let mut first = true;
    for (size, name) in names {
        if sizes.contains(size) {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
    }
    if first {
        f.write_str("none")?;
    }
    let reserved = sizes.bits() & !LargePageSizes::all().bits();
    if reserved != 0 {
        write!(f, "+reserved:{reserved:#x}")?;
    }
    Ok(())
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        address_widths(f, self.supported_address_widths())?;
        write!(f, " MGAW={}", self.max_guest_address_width())?;
        write!(f, " ND={}-bit-DID", self.domain_id_bits())?;
        write!(f, " FRO={:#x}", self.fault_recording_offset())?;
        write!(f, " NFR={}", self.fault_recording_count())?;
        large_pages(f, self.second_level_large_pages())?;
        write!(f, " MAMV={}", self.max_address_mask())?;
        flag(f, "PSI", self.page_selective_invalidation())?;
        flag(f, "CM", self.caching_mode())?;
        flag(f, "RWBF", self.required_write_buffer_flush())?;
        flag(f, "AFL", self.advanced_fault_logging())?;
        flag(f, "PLMR", self.protected_low_memory_region())?;
        flag(f, "PHMR", self.protected_high_memory_region())?;
        flag(f, "ZLR", self.zero_length_read())?;
        flag(f, "DWD", self.write_draining())?;
        flag(f, "DRD", self.read_draining())?;
        flag(f, "FL1GP", self.first_level_1g_pages())?;
        flag(f, "FL5LP", self.first_level_5_level_paging())?;
        flag(f, "PI", self.posted_interrupts())?;
        flag(f, "ESRTPS", self.enhanced_set_rtp())?;
        flag(f, "ESIRTPS", self.enhanced_set_irtp())
    }
}

impl fmt::Display for ExtendedCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QI={}", u8::from(self.queued_invalidation()))?;
        flag(f, "IR", self.interrupt_remapping())?;
        flag(f, "PT", self.pass_through())?;
        flag(f, "SC", self.snoop_control())?;
        flag(f, "PRS", self.page_requests())?;
        flag(f, "PASID", self.pasid())?;
        flag(f, "SMTS", self.scalable_mode())?;
        flag(f, "FLTS", self.first_level_translation())?;
        flag(f, "SLTS", self.second_level_translation())?;
        write!(f, " IRO={:#x}", self.iotlb_register_offset())?;
        write!(f, " MHMV={}", self.max_handle_mask())?;
        write!(f, " PSS={}-bit", self.pasid_bits())?;
        flag(f, "C", self.coherency())?;
        flag(f, "DT", self.device_tlb())?;
        flag(f, "EIM", self.extended_interrupt_mode())?;
        flag(f, "MTS", self.memory_type())?;
        flag(f, "NEST", self.nested_translation())?;
        flag(f, "ERS", self.execute_requests())?;
        flag(f, "SRS", self.supervisor_requests())?;
        flag(f, "NWFS", self.no_write_flag())?;
        flag(f, "EAFS", self.extended_accessed_flag())?;
        flag(f, "DIT", self.device_tlb_invalidation_throttle())?;
        flag(f, "PDS", self.page_request_drain())?;
        flag(f, "VCS", self.virtual_command())?;
        flag(f, "SLADS", self.second_level_accessed_dirty())?;
        flag(f, "SMPWCS", self.scalable_page_walk_coherency())?;
        flag(f, "RPS", self.rid_pasid())?;
        flag(f, "ADMS", self.abort_dma_mode())?;
        flag(f, "RPRIVS", self.rid_privilege())
    }
}
