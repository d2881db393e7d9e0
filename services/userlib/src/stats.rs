//! A fixed-size latency histogram for benchmarks.
//!
//! Recording 100,000 samples per figure and sorting them would need 400 KiB
//! per service; a log-linear histogram (the HDR histogram idea) needs 13
//! KiB whatever the sample count, and lives in a `static` without `unsafe`
//! (its counters are atomics, bumped outside the timed region). Values
//! below 256 have a bucket each, so they are exact; above, each power of
//! two is split into 128 buckets, so a reported quantile is within 1/256 of
//! the true sample (it reports the middle of the bucket). [`cycles`] reads
//! the clock the samples are taken with.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
const EXACT: usize = 2 * SUB;
/// Buckets: 256 exact, then 128 per power of two from 2^8 to 2^31.
pub const BUCKETS: usize = EXACT + (32 - SUB_BITS as usize - 1) * SUB;

/// Counts of `u32` samples (e.g. cycles).
pub struct Histogram {
    counts: [AtomicU32; BUCKETS],
    total: AtomicU32,
    max: AtomicU32,
    sum: AtomicU64,
}

/// Bucket of `v`.
fn bucket(v: u32) -> usize {
    let v = v as usize;
    if v < EXACT {
        return v;
    }
    let msb = usize::BITS - 1 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    EXACT + (shift as usize - 1) * SUB + ((v >> shift) - SUB)
}

/// Smallest value and width of bucket `b`.
fn bounds(b: usize) -> (u64, u64) {
    if b < EXACT {
        return (b as u64, 1);
    }
    let shift = (b - EXACT) / SUB + 1;
    let sub = (b - EXACT) % SUB + SUB;
    ((sub as u64) << shift, 1 << shift)
}

impl Histogram {
    pub const fn new() -> Self {
        Self {
            counts: [const { AtomicU32::new(0) }; BUCKETS],
            total: AtomicU32::new(0),
            max: AtomicU32::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn clear(&self) {
        for c in &self.counts {
            c.store(0, Relaxed);
        }
        self.total.store(0, Relaxed);
        self.max.store(0, Relaxed);
        self.sum.store(0, Relaxed);
    }

    pub fn record(&self, v: u32) {
        self.counts[bucket(v)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        self.max.fetch_max(v, Relaxed);
        self.sum.fetch_add(u64::from(v), Relaxed);
    }

    pub fn count(&self) -> u32 {
        self.total.load(Relaxed)
    }

    pub fn max(&self) -> u32 {
        self.max.load(Relaxed)
    }

    pub fn mean(&self) -> u64 {
        self.sum.load(Relaxed) / u64::from(self.count().max(1))
    }

    /// The sample of rank `ceil(count * per_mille / 1000)` (the median is
    /// 500, p99 is 990): exact below 256, else the middle of its bucket.
    /// 0 with no samples.
    pub fn quantile(&self, per_mille: u32) -> u64 {
        let n = u64::from(self.count());
        if n == 0 {
            return 0;
        }
        let rank = (n * u64::from(per_mille.min(1000))).div_ceil(1000).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(c.load(Relaxed));
            if seen >= rank {
                let (low, width) = bounds(b);
                return (low + width / 2).min(u64::from(self.max()));
            }
        }
        u64::from(self.max())
    }
}

/// The time-stamp counter, in cycles. RDTSC is allowed in ring 3 (the
/// kernel leaves CR4.TSD clear); it is not serializing, which is fine for
/// intervals of hundreds of cycles and more.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn cycles() -> u64 {
    // SAFETY: RDTSC only reads the counter; it has no memory effects and
    // is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_u32_range_in_order() {
        let mut expected_low = 0u64;
        for b in 0..BUCKETS {
            let (low, width) = bounds(b);
            assert_eq!(low, expected_low, "bucket {b}");
            assert_eq!(bucket(low as u32), b);
            assert_eq!(bucket((low + width - 1) as u32), b);
            expected_low = low + width;
        }
        assert_eq!(expected_low, 1 << 32);
        assert_eq!(bucket(u32::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_match_sorting_within_the_bucket_precision() {
        let h = Histogram::new();
        let mut samples: std::vec::Vec<u32> = std::vec::Vec::new();
        let mut x = 0x2545_f491_u32;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = 900 + x % 3000 + if x.is_multiple_of(100) { 50_000 } else { 0 };
            samples.push(v);
            h.record(v);
        }
        samples.sort_unstable();
        for per_mille in [500, 990, 1000] {
            let rank = (samples.len() * per_mille as usize).div_ceil(1000);
            let truth = u64::from(samples[rank - 1]);
            let got = h.quantile(per_mille);
            assert!(
                got.abs_diff(truth) <= truth / 128,
                "{per_mille}: {got} vs {truth}"
            );
        }
        assert_eq!(h.count(), 10_000);
        h.clear();
        assert_eq!((h.count(), h.quantile(500)), (0, 0));
        for v in [5, 7, 200] {
            h.record(v);
        }
        assert_eq!((h.quantile(500), h.quantile(990), h.max()), (7, 200, 200));
    }
}
