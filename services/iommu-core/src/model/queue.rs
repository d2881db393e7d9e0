//! The model's invalidation queue: fetches descriptors from IQH to IQT on
//! each IQT write, executes them against the context cache and IOTLB, and
//! stops with FSTS.IQE at the first malformed one (IQH left pointing at
//! it), as QEMU does. While IQE is set nothing more is fetched; clearing it
//! resumes fetching from IQH.
//!
//! Page group responses (type 9) go to the judge of page requests. A wait
//! descriptor may carry FN (fence, bit 6) and, with ECAP.PDS, PD (page-
//! request drain, bit 7): the drain is recorded as
//! [`Invalidation::PageDrain`] before the wait. The model's PRI device is
//! synchronous, so every request issued before the drain is already in the
//! page request queue and the drain completes at once.

use alloc::format;
use alloc::string::String;

use faultline_vtd::prq::{PageGroupResponse, TYPE_PAGE_GROUP_RESPONSE, WAIT_PAGE_DRAIN};

use super::{ECAP_PDS, ECAP_PRS, Event, Invalidation, State};

const FSTS_IQE: u32 = 1 << 4;

impl State {
    pub(super) fn run_queue(&mut self) {
        if self.queue_stuck || self.fsts & FSTS_IQE != 0 {
            return;
        }
        while self.iqh != self.iqt {
            let index = self.iqh >> 4;
            let at = self.queue_base + 16 * index;
            let low = self.memory.cpu_read(at);
            let high = self.memory.cpu_read(at + 8);
            if let Err(why) = self.execute(low, high) {
                self.queue_errors
                    .push(format!("descriptor {index} ({low:#x}, {high:#x}): {why}"));
                self.fsts |= FSTS_IQE;
                return;
            }
            self.iqh = ((index + 1) % self.queue_entries) << 4;
        }
    }

    fn execute(&mut self, low: u64, high: u64) -> Result<(), String> {
        if core::mem::take(&mut self.reject_next_descriptor) {
            return Err("rejected on request (test knob)".into());
        }
        let kind = (low & 0xf) | ((low >> 9) & 7) << 4;
        let granularity = (low >> 4) & 3;
        let domain = (low >> 16) as u16;
        let done = match kind {
            1 => {
                if low & 0xfffc_0000_0000_ffc0 != 0 || high != 0 {
                    return Err("context-cache descriptor sets reserved bits".into());
                }
                match granularity {
                    1 => {
                        self.context_cache.clear();
                        Invalidation::ContextGlobal
                    }
                    2 => {
                        self.context_cache
                            .retain(|c| c.context.map_or(true, |c| c.domain != domain));
                        Invalidation::ContextDomain { domain }
                    }
                    3 => {
                        let source = (low >> 32) as u16;
                        // FM masks function-number bits 2, 2:1 or 2:0.
                        let ignored: u16 = [0, 0b100, 0b110, 0b111][((low >> 48) & 3) as usize];
                        self.context_cache
                            .retain(|c| c.source & !ignored != source & !ignored);
                        Invalidation::ContextDevice { domain, source }
                    }
                    _ => return Err("context-cache granularity 0 is reserved".into()),
                }
            }
            2 => {
                if low & 0xffff_ffff_0000_f100 != 0 || high & 0xf80 != 0 {
                    return Err("IOTLB descriptor sets reserved bits".into());
                }
                match granularity {
                    1 => {
                        self.iotlb.clear();
                        Invalidation::IotlbGlobal
                    }
                    2 => {
                        self.iotlb.retain(|e| e.domain != domain);
                        Invalidation::IotlbDomain { domain }
                    }
                    3 => {
                        if self.config.cap & (1 << 39) == 0 {
                            return Err("page-selective invalidation without CAP.PSI".into());
                        }
                        let mask = (high & 0x3f) as u8;
                        let mamv = ((self.config.cap >> 48) & 0x3f) as u8;
                        if mask > mamv {
                            return Err(format!("address mask {mask} above MAMV {mamv}"));
                        }
                        let iova = high & !0xfff;
                        let size = 1u64 << (12 + u32::from(mask));
                        if !iova.is_multiple_of(size) {
                            return Err(format!("{iova:#x} not aligned to mask {mask}"));
                        }
                        self.iotlb.retain(|e| {
                            e.domain != domain || e.base + e.size <= iova || e.base >= iova + size
                        });
                        Invalidation::IotlbPages { domain, iova, mask }
                    }
                    _ => return Err("IOTLB granularity 0 is reserved".into()),
                }
            }
            7 => {
                if self.config.ecap & (1 << 43) == 0 {
                    return Err("PASID-cache descriptor without ECAP.SMTS".into());
                }
                if low & 0xfff0_0000_0000_f1c0 != 0 || high != 0 {
                    return Err("PASID-cache descriptor sets reserved bits".into());
                }
                match granularity {
                    // Domain-selective, or PASID-selective within the domain
                    // (only RID_PASID 0 is ever cached).
                    0 | 1 => {
                        self.pasid_cache.retain(|(_, c)| c.domain != domain);
                        Invalidation::PasidCache { domain }
                    }
                    3 => {
                        self.pasid_cache.clear();
                        Invalidation::PasidCacheGlobal
                    }
                    _ => return Err("PASID-cache granularity 2 is reserved".into()),
                }
            }
            4 => {
                if self.config.ecap & (1 << 3) == 0 {
                    return Err("interrupt entry cache descriptor without ECAP.IR".into());
                }
                // Reserved: low 8:5, 26:12 and 63:48, and all of high.
                if low & 0xffff_0000_07ff_f1e0 != 0 || high != 0 {
                    return Err("interrupt entry cache descriptor sets reserved bits".into());
                }
                if low & (1 << 4) == 0 {
                    self.irte_cache.clear();
                    Invalidation::InterruptEntriesGlobal
                } else {
                    let index = (low >> 32) as u16;
                    let mask = ((low >> 27) & 0x1f) as u8;
                    let size = 1u32 << mask;
                    if u32::from(index) % size != 0 {
                        return Err(format!("index {index} not aligned to mask {mask}"));
                    }
                    self.irte_cache.retain(|(i, _)| {
                        u32::from(*i) < u32::from(index) || u32::from(*i) >= u32::from(index) + size
                    });
                    Invalidation::InterruptEntries { index, mask }
                }
            }
            5 => {
                // Bit 6 is FN (fence), bit 7 PD (page-request drain).
                if low & 0xffff_f100 != 0 || high & 3 != 0 {
                    return Err("wait descriptor sets reserved bits".into());
                }
                let drain = low & WAIT_PAGE_DRAIN != 0;
                if drain && self.config.ecap & (1 << ECAP_PDS) == 0 {
                    return Err(
                        "wait descriptor with PD (page-request drain) without ECAP.PDS".into(),
                    );
                }
                let status_write = low & (1 << 5) != 0;
                let interrupt = low & (1 << 4) != 0;
                match (status_write, interrupt) {
                    (true, true) => return Err("wait descriptor with both SW and IF".into()),
                    (false, false) => return Err("wait descriptor with neither SW nor IF".into()),
                    (true, false) => self.memory.device_write32(high, (low >> 32) as u32),
                    (false, true) => {}
                }
                if drain {
                    // Synchronous device: every earlier request is queued.
                    self.events
                        .push(Event::Invalidation(Invalidation::PageDrain));
                }
                Invalidation::Wait
            }
            TYPE_PAGE_GROUP_RESPONSE => {
                if self.config.ecap & (1 << ECAP_PRS) == 0 {
                    return Err("page group response without ECAP.PRS".into());
                }
                let response = PageGroupResponse::decode(low, high)?;
                self.page_group_response(response);
                let group = response.group;
                Invalidation::PageGroupResponse {
                    rid: group.rid,
                    pasid: group.pasid,
                    prg_index: group.prg_index,
                    code: response.code,
                }
            }
            other => return Err(format!("descriptor type {other} is not supported")),
        };
        self.events.push(Event::Invalidation(done));
        Ok(())
    }
}
