//! Where the TSC frequency comes from: the choice, as pure logic over the
//! CPUID values the CPU reported (read in `arch::tsc`).
//!
//! Measuring the TSC against the PIT costs tens of milliseconds of boot
//! time and is only as exact as the PIT's emulation. Most machines say the
//! frequency outright, so the kernel asks them first, in this order:
//!
//! 1. the command line, `tsc.khz=N`, for a host that sets the rate itself
//!    (QEMU's `-icount shift=0` makes the TSC count one per nanosecond of
//!    virtual time, 1 GHz, which no CPUID leaf reports);
//! 2. the hypervisor's timing leaf 0x40000010 (EAX: TSC kHz, EBX: LAPIC
//!    bus kHz), which KVM under QEMU and VMware provide, when the CPU says
//!    it runs under a hypervisor and the hypervisor's maximum leaf
//!    (0x40000000 EAX) reaches it;
//! 3. leaf 0x15 (TSC/crystal ratio EBX/EAX times the crystal in ECX), when
//!    the maximum basic leaf reaches it and all three are non-zero;
//! 4. leaf 0x16 (EAX: base frequency in MHz), which Intel documents as the
//!    nominal rate of an invariant TSC;
//! 5. otherwise the PIT ([`Source::Pit`], measured by the caller).

use core::fmt;

/// The CPUID values the choice depends on (zero where a leaf is absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidClock {
    /// CPUID.0:EAX, the maximum basic leaf.
    pub max_leaf: u32,
    /// CPUID.15h: EAX (denominator), EBX (numerator), ECX (crystal Hz).
    pub leaf_15: [u32; 3],
    /// CPUID.16h:EAX, the base frequency in MHz.
    pub leaf_16_mhz: u32,
    /// CPUID.1:ECX.31, running under a hypervisor.
    pub hypervisor: bool,
    /// CPUID.40000000h:EAX, the hypervisor's maximum leaf.
    pub hv_max_leaf: u32,
    /// CPUID.40000010h: EAX (TSC kHz), EBX (LAPIC bus kHz).
    pub hv_timing: [u32; 2],
}

/// Where a frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    HypervisorLeaf,
    CrystalLeaf,
    BaseFrequencyLeaf,
    Pit,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CommandLine => "command line tsc.khz",
            Self::HypervisorLeaf => "CPUID 0x40000010",
            Self::CrystalLeaf => "CPUID 0x15",
            Self::BaseFrequencyLeaf => "CPUID 0x16",
            Self::Pit => "PIT-calibrated",
        })
    }
}

/// A TSC frequency and what said so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frequency {
    pub tsc_hz: u64,
    pub source: Source,
    /// The LAPIC timer's input clock, when the same source gives it.
    pub lapic_hz: Option<u64>,
}

const HV_TIMING_LEAF: u32 = 0x4000_0010;
/// Hypervisor leaves live in 0x40000000..=0x400000ff; a larger maximum is
/// a CPU echoing another leaf, not a hypervisor's answer.
const HV_LAST_LEAF: u32 = 0x4000_00ff;

/// The frequency the CPUID values or the command line state, or None when
/// only the PIT can tell.
pub fn choose(cmdline_khz: Option<u32>, c: &CpuidClock) -> Option<Frequency> {
    if let Some(khz) = cmdline_khz.filter(|&k| k != 0) {
        return Some(Frequency {
            tsc_hz: u64::from(khz) * 1000,
            source: Source::CommandLine,
            lapic_hz: None,
        });
    }
    let [hv_tsc_khz, hv_bus_khz] = c.hv_timing;
    if c.hypervisor && (HV_TIMING_LEAF..=HV_LAST_LEAF).contains(&c.hv_max_leaf) && hv_tsc_khz != 0 {
        return Some(Frequency {
            tsc_hz: u64::from(hv_tsc_khz) * 1000,
            source: Source::HypervisorLeaf,
            lapic_hz: (hv_bus_khz != 0).then(|| u64::from(hv_bus_khz) * 1000),
        });
    }
    let [denominator, numerator, crystal_hz] = c.leaf_15;
    if c.max_leaf >= 0x15 && denominator != 0 && numerator != 0 && crystal_hz != 0 {
        return Some(Frequency {
            tsc_hz: u64::from(crystal_hz) * u64::from(numerator) / u64::from(denominator),
            source: Source::CrystalLeaf,
            // The LAPIC timer counts the core crystal clock.
            lapic_hz: Some(u64::from(crystal_hz)),
        });
    }
    if c.max_leaf >= 0x16 && c.leaf_16_mhz != 0 {
        return Some(Frequency {
            tsc_hz: u64::from(c.leaf_16_mhz) * 1_000_000,
            source: Source::BaseFrequencyLeaf,
            lapic_hz: None,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KVM under QEMU with an invariant TSC: hypervisor leaves up to
    /// 0x40000010, TSC 2.994 GHz, LAPIC bus 1 GHz.
    fn kvm() -> CpuidClock {
        CpuidClock {
            max_leaf: 0x10,
            hypervisor: true,
            hv_max_leaf: 0x4000_0010,
            hv_timing: [2_994_000, 1_000_000],
            ..CpuidClock::default()
        }
    }

    #[test]
    fn the_command_line_wins() {
        let f = choose(Some(1_000_000), &kvm()).expect("given");
        assert_eq!(f.tsc_hz, 1_000_000_000);
        assert_eq!(f.source, Source::CommandLine);
        // tsc.khz=0 means nothing.
        assert_eq!(
            choose(Some(0), &kvm()).map(|f| f.source),
            Some(Source::HypervisorLeaf)
        );
    }

    #[test]
    fn the_hypervisor_leaf_needs_the_bit_and_the_maximum_leaf() {
        let f = choose(None, &kvm()).expect("hypervisor leaf");
        assert_eq!(f.tsc_hz, 2_994_000_000);
        assert_eq!(f.lapic_hz, Some(1_000_000_000));
        let no_bit = CpuidClock {
            hypervisor: false,
            ..kvm()
        };
        assert_eq!(choose(None, &no_bit), None);
        let short = CpuidClock {
            hv_max_leaf: 0x4000_0001,
            ..kvm()
        };
        assert_eq!(choose(None, &short), None);
        // A CPU that echoes a basic leaf for 0x40000000 is not a hypervisor.
        let echo = CpuidClock {
            hv_max_leaf: 0x0000_000d,
            ..kvm()
        };
        assert_eq!(choose(None, &echo), None);
        let no_bus = CpuidClock {
            hv_timing: [2_994_000, 0],
            ..kvm()
        };
        assert_eq!(choose(None, &no_bus).and_then(|f| f.lapic_hz), None);
    }

    #[test]
    fn crystal_then_base_frequency_then_nothing() {
        // 24 MHz crystal, ratio 188/2: 2.256 GHz.
        let intel = CpuidClock {
            max_leaf: 0x16,
            leaf_15: [2, 188, 24_000_000],
            leaf_16_mhz: 2_300,
            ..CpuidClock::default()
        };
        let f = choose(None, &intel).expect("crystal");
        assert_eq!(
            (f.tsc_hz, f.source, f.lapic_hz),
            (2_256_000_000, Source::CrystalLeaf, Some(24_000_000))
        );
        // No crystal frequency: leaf 0x16.
        let no_crystal = CpuidClock {
            leaf_15: [2, 188, 0],
            ..intel
        };
        let f = choose(None, &no_crystal).expect("base frequency");
        assert_eq!(
            (f.tsc_hz, f.source),
            (2_300_000_000, Source::BaseFrequencyLeaf)
        );
        // Leaves beyond the maximum are not read.
        let old = CpuidClock {
            max_leaf: 0x0d,
            ..intel
        };
        assert_eq!(choose(None, &old), None);
    }
}
