//! Host tests of manifest parsing and validation: here the committed
//! deployments; `machine_table` (the `[machine]` table at the edges of
//! each rule), `errors` (one bad manifest per rule, each with its exact
//! message and line), `grants` (ownership of MMIO, PCI, VT-d and
//! notification bits), `machine` (hostile grants the q35 map refuses, and
//! the supervisor's rank), `edges` and `config` (good manifests and the
//! `KernelConfig` they give), `iommu` (the VT-d units' holder and the
//! drivers that need it), `faults` (DMA fault handler grants) and
//! `features` (per-service cargo features).

use super::machine::check_iommu_options;
use super::*;
use faultline_ipc::harness::ExitCode;

mod config;
mod edges;
mod errors;
mod faults;
mod features;
mod grants;
mod iommu;
mod machine;
mod machine_table;

/// The crates the test manifests may name.
fn packages() -> BTreeSet<String> {
    [
        "faultline-supervisor",
        "faultline-ping",
        "faultline-pong",
        "faultline-iommu",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn parse_str(text: &str) -> Result<Deployment> {
    parse("t", Path::new("t.toml"), text, &packages())
}

/// The error a bad manifest gives, as printed.
fn err(text: &str) -> String {
    format!(
        "{:#}",
        parse_str(text).expect_err("the manifest must be refused")
    )
}

/// Lines 1-2 of every test manifest.
const HEAD: &str = "description = \"x\"\n[machine]\n";

/// Lines 3-7: a supervisor.
const SUP: &str = "[services.sup]
crate = \"faultline-supervisor\"
priority = 0
memory-kib = 64
supervisor = true
";

/// `HEAD` + `SUP` + `rest` (whose first line is line 8).
fn with_sup(rest: &str) -> String {
    format!("{HEAD}{SUP}{rest}")
}

#[test]
fn every_committed_deployment_is_valid() {
    for name in all_names().unwrap() {
        let dep = load(&name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        if let Some(system) = &dep.system {
            let mut buf = vec![0u8; 64 * 1024];
            let bytes = system.config.encode(&mut buf).unwrap().to_vec();
            assert_eq!(
                faultline_ipc::kconfig::KernelConfig::decode(&bytes).as_ref(),
                Ok(&system.config),
                "{name}"
            );
        }
    }
}

#[test]
fn service_packages_lists_crates_under_services() {
    let p = service_packages().unwrap();
    assert!(p.contains("faultline-vtd"), "{p:?}");
}

#[test]
fn unknown_key_names_its_line() {
    let msg = err("description = \"x\"\n[machine]\nmemmory-mib = 5\n");
    assert!(msg.starts_with("t.toml:3:"), "{msg}");
    assert!(msg.contains("memmory-mib"), "{msg}");
}

#[test]
fn memory_out_of_range_names_its_line() {
    let msg = err("description = \"x\"\n[machine]\n\nmemory-mib = 8\n");
    assert!(msg.starts_with("t.toml:4: memory-mib = 8"), "{msg}");
}

#[test]
fn iommu_option_rules() {
    let s = |v: &[&str]| check_iommu_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(s(&["x-scalable-mode=on", "x-pasid-mode=on"]).is_ok());
    assert!(
        s(&["x-pasid-mode=on"])
            .unwrap_err()
            .contains("needs x-scalable-mode")
    );
    assert!(s(&["x-flts=on", "x-scalable-mode=on", "aw-bits=39"]).is_err());
    assert!(s(&["aw-bits=57"]).is_err());
    assert!(s(&["bogus=1"]).unwrap_err().contains("unknown"));
    assert!(s(&["pt"]).unwrap_err().contains("key=value"));
    assert!(s(&["pt=on", "pt=off"]).unwrap_err().contains("twice"));
    let msg = err("description = \"x\"\n[machine.iommu]\noptions = [\"x-flts=on\"]\n");
    assert!(msg.starts_with("t.toml:3:"), "{msg}");
}

#[test]
fn iommu_as_a_device_is_refused() {
    let msg = err("description = \"x\"\n[machine]\ndevices = [\"edu\", \"intel-iommu\"]\n");
    assert!(msg.contains("t.toml:3:"), "{msg}");
}

#[test]
fn expected_exit_names() {
    let d = parse_str("description = \"x\"\n[machine]\n[expect]\nexit = \"no-iommu\"\n").unwrap();
    assert_eq!(d.manifest.expect.exit.code(), ExitCode::NoIommu);
}

#[test]
fn a_deployment_without_services_has_no_system() {
    let d = parse_str(HEAD).unwrap();
    assert!(d.system.is_none());
    assert!(d.missing_crates.is_empty());
}
