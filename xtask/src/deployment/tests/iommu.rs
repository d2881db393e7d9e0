//! The VT-d units' holder and the drivers that need it: `vtd = true`
//! grants every unit of the machine with its fault interrupt, nothing on a
//! machine without an IOMMU, and a bus-master driver on a machine with an
//! IOMMU must hold a client channel to the holder.

use super::errors::svc;
use super::*;
use faultline_ipc::kconfig::{CapSpec, KernelConfig};

/// Lines 1-2 of a manifest whose machine has an IOMMU.
const IOMMU_HEAD: &str = "description = \"x\"\n[machine.iommu]\n";

/// `IOMMU_HEAD` + `SUP` + `rest` (whose first line is line 8).
fn with_iommu(rest: &str) -> String {
    format!("{IOMMU_HEAD}{SUP}{rest}")
}

/// The iommu service (lines 8-12 with `extra` on line 12).
fn iommu(extra: &str) -> String {
    svc("iommu", "iommu", &format!("vtd = true\n{extra}"))
}

/// A driver of edu with a DMA budget (lines 13-18).
fn driver() -> String {
    svc(
        "drv",
        "ping",
        "pci = [{ name = \"edu\", device = \"1234:11e8\" }]\ndma-kib = 8\n",
    )
}

const CHANNEL: &str = "[[channels]]\nname = \"iommu\"\nclient = \"drv\"\nserver = \"iommu\"\n";

fn caps(config: &KernelConfig, service: &str) -> Vec<(String, CapSpec)> {
    config
        .services
        .iter()
        .find(|s| s.name.as_str() == service)
        .expect("service")
        .caps
        .iter()
        .map(|c| (c.name.as_str().to_string(), c.kind.clone()))
        .collect()
}

#[test]
fn vtd_grants_every_unit_of_the_machine_by_number() {
    let d = parse_str(&with_iommu(&iommu(""))).unwrap_or_else(|e| panic!("{e:#}"));
    let c = d.system.unwrap().config;
    assert_eq!(
        caps(&c, "iommu"),
        [
            ("vtd0".to_string(), CapSpec::VtdMmio { unit: 0 }),
            (
                "vtd0-fault".to_string(),
                CapSpec::VtdIrq {
                    unit: 0,
                    bits: 1 << 1
                }
            ),
        ]
    );
    assert_eq!(super::super::q35::vtd_units(true).len(), 1);
    assert!(super::super::q35::vtd_units(false).is_empty());
}

#[test]
fn the_holder_picks_the_fault_interrupt_bit() {
    let d =
        parse_str(&with_iommu(&iommu("vtd-fault-bit = 28\n"))).unwrap_or_else(|e| panic!("{e:#}"));
    let c = d.system.unwrap().config;
    assert_eq!(
        caps(&c, "iommu")[1],
        (
            "vtd0-fault".to_string(),
            CapSpec::VtdIrq {
                unit: 0,
                bits: 1 << 28
            }
        )
    );
}

#[test]
fn each_unit_has_its_own_fault_bit() {
    let text = with_iommu(&iommu("vtd-fault-bit = 5\n"));
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    let (_, holder) = d.manifest.services_in_order()[1];
    assert_eq!([0, 1, 2].map(|u| holder.vtd_fault_bit(u)), [5, 6, 7]);
    let d = parse_str(&with_iommu(&iommu(""))).unwrap_or_else(|e| panic!("{e:#}"));
    let (_, holder) = d.manifest.services_in_order()[1];
    assert_eq!(holder.vtd_fault_bit(3), 4);
}

#[test]
fn vtd_on_a_machine_without_an_iommu_is_refused() {
    assert_eq!(
        err(&with_sup(&iommu(""))),
        "t.toml:12: service iommu: vtd = true, but the machine has no IOMMU (no [machine.iommu]), so there are no VT-d units to grant"
    );
}

#[test]
fn a_fault_bit_needs_vtd_and_is_a_notification_bit() {
    assert_eq!(
        err(&with_iommu(&svc("ping", "ping", "vtd-fault-bit = 3\n"))),
        "t.toml:12: service ping: vtd-fault-bit without vtd = true"
    );
    assert_eq!(
        err(&with_iommu(&iommu("vtd-fault-bit = 29\n"))),
        "t.toml:13: service iommu: irq vtd0-fault: bit 29 is outside 0..=28"
    );
    // The default bit, 1, is taken by a notification aimed at the holder.
    let text = with_iommu(&format!(
        "{}{}",
        iommu(""),
        svc(
            "pong",
            "pong",
            "notify = [{ name = \"poke\", service = \"iommu\", bit = 1 }]\n"
        )
    ));
    assert_eq!(
        err(&text),
        "t.toml:17: service pong: notify poke: bit 1 of service iommu is already taken by service iommu: irq vtd0-fault (line 12)"
    );
    // And a chosen bit may not clash with the holder's own IRQs.
    let text = with_iommu(&iommu(
        "vtd-fault-bit = 4\npci = [{ name = \"e\", device = \"1234:11e8\" }]\nirqs = [{ name = \"i\", bit = 4, pci = \"e\" }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:13: service iommu: irq vtd0-fault: bit 4 of service iommu is already taken by service iommu: irq i (line 15)"
    );
}

#[test]
fn a_bus_master_driver_needs_a_channel_to_the_iommu_service() {
    let text = with_iommu(&format!("{}{}", iommu(""), driver()));
    assert_eq!(
        err(&text),
        "t.toml:18: service drv: drives pci edu with a DMA budget (a bus-master device), but has no client channel to service iommu, which holds the VT-d units; on a machine with an IOMMU its device may not DMA until iommu attaches it: add [[channels]] with client = \"drv\" and server = \"iommu\""
    );
    // A channel the other way round is no help.
    let backwards = "[[channels]]\nname = \"drv\"\nclient = \"iommu\"\nserver = \"drv\"\n";
    let text = with_iommu(&format!("{}{}{backwards}", iommu(""), driver()));
    assert!(err(&text).contains("has no client channel to service iommu"));
    // Nor is a client channel to another service.
    let elsewhere = "[[channels]]\nname = \"sup\"\nclient = \"drv\"\nserver = \"sup\"\n";
    let text = with_iommu(&format!("{}{}{elsewhere}", iommu(""), driver()));
    assert!(err(&text).contains("has no client channel to service iommu"));
    // Nobody holds the units.
    let msg = err(&with_iommu(&driver()));
    assert_eq!(
        msg.split(';').next().unwrap_or_default(),
        "t.toml:13: service drv: drives pci edu with a DMA budget (a bus-master device), but no service holds the VT-d units (vtd0)"
    );
}

#[test]
fn a_driver_with_its_channel_builds_and_so_do_devices_without_dma() {
    let text = with_iommu(&format!("{}{}{CHANNEL}", iommu(""), driver()));
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let c = d.system.unwrap().config;
    let names: Vec<String> = caps(&c, "drv").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["edu", "dma", "iommu"]);
    // A PCI function without a DMA budget, or a DMA budget without a PCI
    // function, is no bus-master driver.
    let text = with_iommu(&format!(
        "{}{}{}",
        iommu("dma-kib = 64\n"),
        svc(
            "pong",
            "pong",
            "pci = [{ name = \"edu\", device = \"1234:11e8\" }]\n"
        ),
        svc("ping", "ping", "dma-kib = 4\n")
    ));
    parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn without_an_iommu_a_driver_builds_with_a_warning() {
    let d = parse_str(&with_sup(&driver())).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        d.warnings,
        [
            "t.toml:13: service drv: drives pci edu with a DMA budget on a machine without an IOMMU: its device's DMA is not isolated"
        ]
    );
    assert!(d.system.is_some());
}
