//! The unit report and the mode check.

use faultline_iommu_core::model::{QEMU_CAP, QEMU_ECAP, QEMU_ECAP_SCALABLE};
use faultline_ipc::abi::MAX_LOG;
use faultline_vtd::{Capability, ExtendedCapability, TranslationMode, Version};

use crate::report::{Identity, ModeRefusal, check_mode, unit_report};

fn lines(id: &Identity) -> Vec<String> {
    let mut out = Vec::new();
    unit_report(0, id, |args| out.push(args.to_string()));
    out
}

fn qemu(ecap: u64) -> Identity {
    Identity {
        version: Version { major: 1, minor: 0 },
        cap: Capability(QEMU_CAP),
        ecap: ExtendedCapability(ecap),
    }
}

/// Rule: the report carries faultline-vtd's CAP and ECAP summaries
/// unchanged (deployments grep them), each line fits one log line, and it
/// says whether interrupts are isolated and whether page requests exist.
#[test]
fn report_keeps_the_summaries_and_fits_log_lines() {
    for ecap in [
        QEMU_ECAP,
        QEMU_ECAP_SCALABLE | 1 << 40,
        QEMU_ECAP & !(1 << 3),
    ] {
        let id = qemu(ecap);
        let out = lines(&id);
        assert_eq!(
            out[0],
            format!(
                "iommu: VT-d unit 0: version 1.0, CAP {:#018x}: {}",
                QEMU_CAP, id.cap
            )
        );
        assert_eq!(
            out[1],
            format!("iommu: unit 0 ECAP {ecap:#018x}: {}", id.ecap)
        );
        assert!(out[0].contains("SAGAW=39,48-bit"));
        assert!(out[1].contains("QI=1"));
        for line in &out {
            assert!(line.len() <= MAX_LOG, "{} bytes: {line}", line.len());
        }
        if ecap & (1 << 3) != 0 {
            assert!(out[2].contains("interrupt remapping present (ECAP.IR=1, EIM=0)"));
        } else {
            assert!(out[2].contains("interrupts are not isolated from DMA"));
        }
        assert!(out[3].contains("page requests are not available"));
    }
    // QEMU with x-pasid-mode=on adds ECAP.PASID (bit 40).
    let scalable = lines(&qemu(QEMU_ECAP_SCALABLE | 1 << 40));
    for flag in ["PASID=1", "SMTS=1", "SLTS=1"] {
        assert!(scalable[1].contains(flag), "{flag}");
    }
    assert!(lines(&qemu(QEMU_ECAP & !(1 << 3)))[2].contains("ECAP.IR=0"));
    assert!(lines(&qemu(QEMU_ECAP | 1 << 29))[3].contains("ECAP.PRS=1"));
}

/// Rule: legacy mode needs queued invalidation only; scalable mode also
/// needs ECAP.SMTS and ECAP.SLTS, and the refusal names the missing bit.
#[test]
fn mode_check_names_the_missing_bit() {
    let legacy = ExtendedCapability(QEMU_ECAP);
    let scalable = ExtendedCapability(QEMU_ECAP_SCALABLE);
    assert_eq!(check_mode(TranslationMode::Legacy, legacy), Ok(()));
    assert_eq!(check_mode(TranslationMode::Legacy, scalable), Ok(()));
    assert_eq!(check_mode(TranslationMode::Scalable, scalable), Ok(()));
    assert_eq!(
        check_mode(TranslationMode::Scalable, legacy),
        Err(ModeRefusal::NoScalableMode)
    );
    assert_eq!(
        ModeRefusal::NoScalableMode.to_string(),
        "scalable mode requested but ECAP.SMTS=0"
    );
    let no_slts = ExtendedCapability(QEMU_ECAP_SCALABLE & !(1 << 46));
    assert_eq!(
        check_mode(TranslationMode::Scalable, no_slts),
        Err(ModeRefusal::NoScalableSecondLevel)
    );
    let no_qi = ExtendedCapability(QEMU_ECAP & !(1 << 1));
    assert_eq!(
        check_mode(TranslationMode::Legacy, no_qi),
        Err(ModeRefusal::NoQueuedInvalidation)
    );
}
