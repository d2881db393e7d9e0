//! The pure rules behind the KVM probe (`probe`): what QEMU's error text
//! says KVM refused, which `-cpu` model to try next, and whether the host's
//! KVM has hardware nested paging. Kept apart from the code that starts
//! QEMU so that they are tested on their own.

/// The MSR that KVM refused, from QEMU's `failed to set MSR 0x10a to ...`.
pub fn refused_msr(error: &str) -> Option<u32> {
    let rest = error.split("failed to set MSR 0x").nth(1)?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u32::from_str_radix(&hex, 16).ok()
}

/// The QEMU CPU feature that makes QEMU write `msr`, where removing it is
/// harmless for Faultline.
pub fn msr_feature(msr: u32) -> Option<&'static str> {
    Some(match msr {
        0x10a => "arch-capabilities", // IA32_ARCH_CAPABILITIES
        0x345 => "pdcm",              // IA32_PERF_CAPABILITIES
        0x3b => "tsc-adjust",         // IA32_TSC_ADJUST
        0x6e0 => "tsc-deadline",      // IA32_TSC_DEADLINE
        0xda0 => "xsaves",            // IA32_XSS
        0x48 => "spec-ctrl",          // IA32_SPEC_CTRL
        0x122 => "rtm",               // IA32_TSX_CTRL
        0xc000_0103 => "rdtscp",      // IA32_TSC_AUX
        0x4b56_4d02 => "kvm-asyncpf", // MSR_KVM_ASYNC_PF_EN
        0x4b56_4d03 => "kvm-steal-time",
        0x4b56_4d04 => "kvm-pv-eoi",
        0x4b56_4d05 => "kvm-poll-control",
        _ => return None,
    })
}

/// Whether QEMU's error says KVM cannot be used at all (no model helps).
pub fn kvm_unavailable(error: &str) -> bool {
    [
        "Could not access KVM kernel module",
        "failed to initialize kvm",
        "failed to initialize KVM",
        "KVM not supported",
        "kvm accelerator not available",
        "No accelerator found",
    ]
    .iter()
    .any(|s| error.contains(s))
}

/// The model to try after `current` failed with `error`, if any.
pub fn next_candidate(current: &str, error: &str) -> Option<String> {
    if kvm_unavailable(error) {
        return None;
    }
    if let Some(feature) = refused_msr(error).and_then(msr_feature) {
        let minus = format!("-{feature}");
        if !current.split(',').any(|f| f == minus) {
            return Some(format!("{current},{minus}"));
        }
    }
    current
        .strip_prefix("max")
        .map(|removed| format!("host{removed}"))
}

/// The rule behind [`kvm_hardware_paging`], from the two module
/// parameters (None: the module is not loaded).
pub fn hardware_paging(ept: Option<&str>, npt: Option<&str>) -> Result<(), String> {
    let on = |v: &str| matches!(v.trim(), "Y" | "y" | "1");
    match (ept, npt) {
        (Some(v), _) if on(v) => Ok(()),
        (_, Some(v)) if on(v) => Ok(()),
        (Some(_), _) => Err("KVM runs without EPT (kvm_intel ept=N)".into()),
        (_, Some(_)) => Err("KVM runs without NPT (kvm_amd npt=0)".into()),
        (None, None) => Err(
            "KVM here is neither kvm_intel nor kvm_amd (e.g. a software KVM): no hardware nested paging"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSR_10A: &str = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0xc000069\n\
        qemu-system-x86_64: target/i386/kvm/kvm.c:3849: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.";

    #[test]
    fn a_refused_msr_removes_its_feature_then_falls_back_to_host() {
        assert_eq!(refused_msr(MSR_10A), Some(0x10a));
        assert_eq!(
            next_candidate("max", MSR_10A).as_deref(),
            Some("max,-arch-capabilities")
        );
        // The same MSR again: the feature is gone already, so try `host`.
        assert_eq!(
            next_candidate("max,-arch-capabilities", MSR_10A).as_deref(),
            Some("host,-arch-capabilities")
        );
        let xss = "error: failed to set MSR 0xda0 to 0x0";
        assert_eq!(
            next_candidate("max,-arch-capabilities", xss).as_deref(),
            Some("max,-arch-capabilities,-xsaves")
        );
        // Nothing left after `host`.
        assert_eq!(next_candidate("host,-arch-capabilities", MSR_10A), None);
    }

    #[test]
    fn an_unknown_error_tries_host_and_no_kvm_stops_at_once() {
        assert_eq!(
            next_candidate("max", "KVM internal error. Suberror: 1").as_deref(),
            Some("host")
        );
        assert_eq!(
            next_candidate("max", "error: failed to set MSR 0x1234 to 0x1").as_deref(),
            Some("host")
        );
        let no_kvm = "Could not access KVM kernel module: Permission denied\n\
                      qemu-system-x86_64: failed to initialize kvm: Permission denied";
        assert!(kvm_unavailable(no_kvm));
        assert_eq!(next_candidate("max", no_kvm), None);
    }

    #[test]
    fn hardware_paging_is_ept_or_npt() {
        assert_eq!(hardware_paging(Some("Y\n"), None), Ok(()));
        assert_eq!(hardware_paging(None, Some("1\n")), Ok(()));
        assert!(hardware_paging(Some("N\n"), None).is_err_and(|e| e.contains("EPT")));
        assert!(hardware_paging(None, Some("0")).is_err_and(|e| e.contains("NPT")));
        assert!(hardware_paging(None, None).is_err());
    }
}
