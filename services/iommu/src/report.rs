//! The unit report the service prints at start, and whether a unit can be
//! brought up in the mode the deployment asked for.
//!
//! The CAP and ECAP summaries are `faultline_vtd`'s `Display`, unchanged:
//! deployments look for substrings such as `SAGAW=`, `QI=1` or `SMTS=1`.

use core::fmt::{self, Display};

use faultline_iommu_core::Registers;
use faultline_vtd::regs::{self, GlobalStatus};
use faultline_vtd::{Capability, ExtendedCapability, TranslationMode, Version};

/// What a unit reports about itself before it is brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub version: Version,
    pub cap: Capability,
    pub ecap: ExtendedCapability,
}

impl Identity {
    /// Reads VER, CAP and ECAP (at their widths: 32, 64, 64 bits).
    pub fn read(raw: &mut impl Registers) -> Self {
        Self {
            version: Version::from_register(raw.read32(regs::VER.offset)),
            cap: Capability(raw.read64(regs::CAP.offset)),
            ecap: ExtendedCapability(raw.read64(regs::ECAP.offset)),
        }
    }
}

/// Whether the unit is translating already (an earlier instance of the
/// service brought it up and stopped).
pub fn translating(raw: &mut impl Registers) -> bool {
    GlobalStatus::from_bits_retain(raw.read32(regs::GSTS.offset)).contains(GlobalStatus::TES)
}

/// Hands `line` each line of unit `index`'s report: version and CAP,
/// ECAP, interrupt remapping, page requests.
pub fn unit_report(index: u8, id: &Identity, mut line: impl FnMut(fmt::Arguments<'_>)) {
    line(format_args!(
        "iommu: VT-d unit {index}: version {}, CAP {:#018x}: {}",
        id.version, id.cap.0, id.cap
    ));
    line(format_args!(
        "iommu: unit {index} ECAP {:#018x}: {}",
        id.ecap.0, id.ecap
    ));
    if id.ecap.interrupt_remapping() {
        line(format_args!(
            "iommu: unit {index}: interrupt remapping present (ECAP.IR=1, EIM={}): enabled after \
             translation",
            u8::from(id.ecap.extended_interrupt_mode())
        ));
    } else {
        line(format_args!(
            "iommu: unit {index}: no interrupt remapping (ECAP.IR=0): \
             interrupts are not isolated from DMA"
        ));
    }
    if id.ecap.page_requests() {
        line(format_args!(
            "iommu: unit {index}: page request queue present (ECAP.PRS=1)"
        ));
    } else {
        line(format_args!(
            "iommu: unit {index}: no page request queue (ECAP.PRS=0): page requests are not \
             available (QEMU 10.0's intel-iommu has none)"
        ));
    }
}

/// Why a unit cannot be brought up in the mode asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeRefusal {
    /// ECAP.QI = 0: the driver core invalidates through the queue only.
    NoQueuedInvalidation,
    /// Scalable mode asked for, ECAP.SMTS = 0.
    NoScalableMode,
    /// Scalable mode asked for, ECAP.SLTS = 0 (no second-level tables in
    /// scalable mode, which the core uses).
    NoScalableSecondLevel,
}

impl Display for ModeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoQueuedInvalidation => "queued invalidation needed but ECAP.QI=0",
            Self::NoScalableMode => "scalable mode requested but ECAP.SMTS=0",
            Self::NoScalableSecondLevel => "scalable mode requested but ECAP.SLTS=0",
        })
    }
}

/// `Err` when `ecap` cannot do `mode` the way the driver core does it.
pub fn check_mode(mode: TranslationMode, ecap: ExtendedCapability) -> Result<(), ModeRefusal> {
    if !ecap.queued_invalidation() {
        return Err(ModeRefusal::NoQueuedInvalidation);
    }
    if mode == TranslationMode::Scalable {
        if !ecap.scalable_mode() {
            return Err(ModeRefusal::NoScalableMode);
        }
        if !ecap.second_level_translation() {
            return Err(ModeRefusal::NoScalableSecondLevel);
        }
    }
    Ok(())
}

/// `legacy` or `scalable`.
pub fn mode_name(mode: TranslationMode) -> &'static str {
    match mode {
        TranslationMode::Legacy => "legacy",
        TranslationMode::Scalable => "scalable",
    }
}
