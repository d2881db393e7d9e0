//! Checks of a manifest's `[machine]` table: guest memory, PCI devices and
//! the `intel-iommu` properties QEMU would refuse at start-up (with an error
//! that is easy to misread as a Faultline bug).

use super::Source;
use super::schema::Machine;
use anyhow::{Result, bail};

/// Checks `[machine]`; the error names the line.
pub(super) fn check(src: &Source, machine: &Machine) -> Result<()> {
    let mem = &machine.memory_mib;
    if !(64..=65536).contains(mem.get_ref()) {
        bail!(
            "{}: memory-mib = {} is outside 64..=65536",
            src.at(mem.span()),
            mem.get_ref()
        );
    }
    for dev in &machine.devices {
        if dev.get_ref().trim().is_empty() || dev.get_ref().starts_with("intel-iommu") {
            bail!(
                "{}: device {:?}: devices are PCI devices; the IOMMU is configured in [machine.iommu]",
                src.at(dev.span()),
                dev.get_ref()
            );
        }
    }
    if let Some(iommu) = &machine.iommu {
        check_iommu_options(iommu.options.get_ref()).map_err(|e| {
            anyhow::anyhow!(
                "{}: [machine.iommu] options: {e}",
                src.at(iommu.options.span())
            )
        })?;
    }
    Ok(())
}

const IOMMU_KEYS: &[&str] = &[
    "aw-bits",
    "caching-mode",
    "device-iotlb",
    "dma-drain",
    "dma-translation",
    "pt",
    "intremap",
    "eim",
    "x-scalable-mode",
    "x-flts",
    "x-pasid-mode",
    "fs1gp",
    "snoop-control",
    "stale-tm",
];

/// Checks `intel-iommu` properties against the combinations QEMU refuses.
pub fn check_iommu_options(options: &[String]) -> Result<(), String> {
    let mut get = std::collections::BTreeMap::new();
    for opt in options {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| format!("{opt:?} is not key=value"))?;
        if !IOMMU_KEYS.contains(&k) {
            return Err(format!(
                "unknown intel-iommu property {k:?} (known: {})",
                IOMMU_KEYS.join(", ")
            ));
        }
        if get.insert(k, v).is_some() {
            return Err(format!("{k:?} given twice"));
        }
    }
    let on = |k: &str| {
        get.get(k)
            .is_some_and(|v| matches!(*v, "on" | "true" | "yes"))
    };
    let aw = get.get("aw-bits").copied().unwrap_or("48");
    if !matches!(aw, "39" | "48") {
        return Err(format!("aw-bits={aw}: QEMU supports 39 or 48"));
    }
    if on("x-flts") && (!on("x-scalable-mode") || aw != "48") {
        return Err("x-flts needs x-scalable-mode=on and aw-bits=48".into());
    }
    if on("x-pasid-mode") && !on("x-scalable-mode") {
        return Err("x-pasid-mode needs x-scalable-mode=on".into());
    }
    if on("x-pasid-mode") && on("device-iotlb") {
        return Err(
            "x-pasid-mode with device-iotlb is refused by QEMU (no PASID device IOTLB)".into(),
        );
    }
    if on("x-scalable-mode") && get.get("dma-drain").is_some_and(|v| *v == "off") {
        return Err("scalable mode needs dma-drain".into());
    }
    Ok(())
}
