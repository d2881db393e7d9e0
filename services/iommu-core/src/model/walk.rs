//! The model's translation of one DMA request: context cache, IOTLB, then
//! a walk of the root, context and second-level entries in memory, with the
//! checks and fault reasons of the VT-d spec as QEMU applies them
//! (`reference/qemu-vtd.md` §2-3): access rights before reserved bits at
//! every level, a not-present PTE reported as read or write denied.

use super::{CachedContext, IotlbEntry, State};
use crate::fault::FaultReason;

/// A decoded, valid legacy context entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context {
    pub domain: u16,
    table: u64,
    levels: u8,
    fpd: bool,
    /// Scalable mode, from a context entry: the PASID directory still to walk.
    directory: Option<u64>,
}

/// A fault reason code and whether the context entry said FPD.
type Fault = (u8, bool);

/// Bits 63 and 61:52 of a second-level entry are ignored.
const IGNORED: u64 = 0xbff0_0000_0000_0000;

impl State {
    pub(super) fn translate(
        &mut self,
        source: u16,
        iova: u64,
        write: bool,
    ) -> Result<u64, FaultReason> {
        if self.gsts & (1 << 31) == 0 {
            return Ok(iova);
        }
        self.walk(source, iova, write).map_err(|(code, fpd)| {
            // Root, root/context table read and reserved-bit faults are
            // reported even with FPD set.
            let qualified = !matches!(code, 1 | 8 | 9 | 0xa | 0xb | 0x50 | 0x58);
            if !(qualified && fpd) {
                self.record_fault(source, iova, code, write);
            }
            FaultReason::from_code(code)
        })
    }

    fn context(&mut self, source: u16) -> Result<Context, Fault> {
        if let Some(cached) = self.context_cache.iter().find(|c| c.source == source) {
            return cached.context;
        }
        let context = self.read_context(source);
        let cacheable = match context {
            Ok(_) => true,
            Err((code, _)) => self.caching_mode() && matches!(code, 1 | 2),
        };
        if cacheable {
            self.context_cache.push(CachedContext { source, context });
        }
        context
    }

    /// Context, then (scalable mode) the PASID entry through the PASID cache.
    fn resolve(&mut self, source: u16) -> Result<Context, Fault> {
        let context = self.context(source)?;
        let Some(directory) = context.directory else {
            return Ok(context);
        };
        if let Some((_, cached)) = self.pasid_cache.iter().find(|(s, _)| *s == source) {
            return Ok(*cached);
        }
        let resolved = self.read_pasid_entry(directory, context.fpd)?;
        self.pasid_cache.push((source, resolved));
        Ok(resolved)
    }

    /// RID_PASID (0) through the PASID directory and table.
    fn read_pasid_entry(&self, directory: u64, fpd: bool) -> Result<Context, Fault> {
        let dir_entry = self.memory.device_read(directory).ok_or((0x50, false))?;
        let fpd = fpd || dir_entry & 2 != 0;
        if dir_entry & 1 == 0 {
            return Err((0x51, fpd));
        }
        let table = dir_entry & !0xfff & self.host_mask();
        let mut entry = [0u64; 8];
        for (i, qword) in entry.iter_mut().enumerate() {
            *qword = self
                .memory
                .device_read(table + 8 * i as u64)
                .ok_or((0x58, false))?;
        }
        let fpd = fpd || entry[0] & 2 != 0;
        if entry[0] & 1 == 0 {
            return Err((0x59, fpd));
        }
        let aw = (entry[0] >> 2) & 7;
        let sagaw = (self.config.cap >> 8) & 0x1f;
        let pgtt = (entry[0] >> 6) & 7;
        if pgtt != 2 || !(aw == 1 || aw == 2) || sagaw & (1 << aw) == 0 {
            return Err((0x5b, fpd));
        }
        Ok(Context {
            domain: entry[1] as u16,
            table: entry[0] & !0xfff & self.host_mask(),
            levels: aw as u8 + 2,
            fpd,
            directory: None,
        })
    }

    fn read_scalable_context(&self, source: u16) -> Result<Context, Fault> {
        let root = self
            .root
            .expect("translation is on, so a root table was set");
        let at = root + 16 * u64::from(source >> 8);
        let low = self.memory.device_read(at).ok_or((8, false))?;
        let high = self.memory.device_read(at + 8).ok_or((8, false))?;
        for half in [low, high] {
            if half & 0xffe != 0 || half & !0xfff & !self.host_mask() != 0 {
                return Err((0xa, false));
            }
        }
        let half = if source & 0xff >= 128 { high } else { low };
        if half & 1 == 0 {
            return Err((1, false));
        }
        let at = (half & !0xfff) + 32 * u64::from(source & 0x7f);
        let mut entry = [0u64; 4];
        for (i, qword) in entry.iter_mut().enumerate() {
            *qword = self
                .memory
                .device_read(at + 8 * i as u64)
                .ok_or((9, false))?;
        }
        let fpd = entry[0] & 2 != 0;
        if entry[0] & 0x1e0 != 0
            || entry[0] & !0xfff & !self.host_mask() != 0
            || entry[1] & !0x1f_ffff != 0
            || entry[2] != 0
            || entry[3] != 0
        {
            return Err((0xb, false));
        }
        if entry[0] & 1 == 0 {
            return Err((2, fpd));
        }
        assert_eq!(
            entry[1] & 0xf_ffff,
            0,
            "model: only RID_PASID 0 is modelled"
        );
        Ok(Context {
            domain: 0,
            table: 0,
            levels: 0,
            fpd,
            directory: Some(entry[0] & !0xfff & self.host_mask()),
        })
    }

    fn read_context(&self, source: u16) -> Result<Context, Fault> {
        if self.scalable {
            return self.read_scalable_context(source);
        }
        let root = self
            .root
            .expect("translation is on, so a root table was set");
        let at = root + 16 * u64::from(source >> 8);
        let low = self.memory.device_read(at).ok_or((8, false))?;
        let high = self.memory.device_read(at + 8).ok_or((8, false))?;
        if high != 0 || low & 0xffe != 0 || low & !0xfff & !self.host_mask() != 0 {
            return Err((0xa, false));
        }
        if low & 1 == 0 {
            return Err((1, false));
        }
        let at = (low & !0xfff) + 16 * u64::from(source & 0xff);
        let low = self.memory.device_read(at).ok_or((9, false))?;
        let high = self.memory.device_read(at + 8).ok_or((9, false))?;
        let fpd = low & 2 != 0;
        if low & 0xff0 != 0
            || low & !0xfff & !self.host_mask() != 0
            || high & 0xffff_ffff_ff00_0080 != 0
        {
            return Err((0xb, false));
        }
        if low & 1 == 0 {
            return Err((2, fpd));
        }
        let cap = self.config.cap;
        let aw = high & 7;
        let sagaw = (cap >> 8) & 0x1f;
        if (low >> 2) & 3 != 0 || !(aw == 1 || aw == 2) || sagaw & (1 << aw) == 0 {
            return Err((3, fpd));
        }
        let domain = (high >> 8) as u16;
        let domain_bits = 4 + 2 * (cap & 7);
        if (domain_bits < 16 && u64::from(domain) >> domain_bits != 0)
            || (self.caching_mode() && domain == 0)
        {
            return Err((0xb, false));
        }
        Ok(Context {
            domain,
            table: low & !0xfff,
            levels: aw as u8 + 2,
            fpd,
            directory: None,
        })
    }

    fn walk(&mut self, source: u16, iova: u64, write: bool) -> Result<u64, Fault> {
        let context = self.resolve(source)?;
        let denied = (if write { 5 } else { 6 }, context.fpd);
        let agaw = 30 + 9 * (u32::from(context.levels) - 2);
        let mgaw = ((self.config.cap >> 16) & 0x3f) as u32 + 1;
        if iova >> agaw.min(mgaw) != 0 {
            return Err((4, context.fpd));
        }
        let hit = self
            .iotlb
            .iter()
            .position(|e| e.domain == context.domain && e.base <= iova && iova < e.base + e.size);
        if let Some(i) = hit {
            let e = self.iotlb[i];
            if (write && e.write) || (!write && e.read) {
                return Ok(e.paddr + (iova - e.base));
            }
            if !e.read && !e.write {
                return Err(denied);
            }
            self.iotlb.remove(i);
        }
        let sllps = (self.config.cap >> 34) & 0xf;
        let mut table = context.table;
        let (mut read, mut writable) = (true, true);
        for level in (1..=u32::from(context.levels)).rev() {
            let size = 1u64 << (12 + 9 * (level - 1));
            let slot = table + 8 * ((iova >> (12 + 9 * (level - 1))) & 0x1ff);
            let pte = self.memory.device_read(slot).ok_or((7, context.fpd))?;
            read &= pte & 1 != 0;
            writable &= pte & 2 != 0;
            if (write && !writable) || (!write && !read) {
                if self.caching_mode() && pte & 3 == 0 {
                    self.iotlb.push(IotlbEntry {
                        domain: context.domain,
                        base: iova & !0xfff,
                        size: 0x1000,
                        paddr: 0,
                        read: false,
                        write: false,
                    });
                }
                return Err(denied);
            }
            let large = level > 1 && pte & 0x80 != 0;
            let mut reserved = 0x800 | (!self.host_mask() & !IGNORED);
            let mut supported = true;
            if level == 4 {
                reserved |= 0x80;
            } else if large && level == 2 {
                reserved |= 0x1f_f000;
                supported = sllps & 1 != 0;
            } else if large && level == 3 {
                reserved |= 0x3fff_f000;
                supported = sllps & 2 != 0;
            }
            if pte & reserved != 0 || !supported {
                return Err((0xc, context.fpd));
            }
            if level == 1 || large {
                let base = pte & self.host_mask() & !0xfff;
                let paddr = base + (iova & (size - 1));
                if (0xfee0_0000..0xfef0_0000).contains(&paddr) {
                    return Err((0xe, context.fpd));
                }
                self.iotlb.push(IotlbEntry {
                    domain: context.domain,
                    base: iova & !(size - 1),
                    size,
                    paddr: base,
                    read,
                    write: writable,
                });
                return Ok(paddr);
            }
            table = pte & self.host_mask() & !0xfff;
        }
        unreachable!("level 1 always ends the walk")
    }
}
