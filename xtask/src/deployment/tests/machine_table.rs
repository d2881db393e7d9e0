//! The `[machine]` table at the edges of each rule: guest memory, devices,
//! the `intel-iommu` combinations QEMU refuses, and the run's time limit.

use super::*;

fn machine(body: &str) -> Result<Deployment> {
    parse_str(&format!("description = \"x\"\n[machine]\n{body}"))
}

#[test]
fn guest_memory_is_64_mib_to_64_gib() {
    for ok in [64, 65536] {
        assert!(machine(&format!("memory-mib = {ok}\n")).is_ok(), "{ok}");
    }
    for bad in [63, 65537] {
        let msg = format!(
            "{:#}",
            machine(&format!("memory-mib = {bad}\n")).unwrap_err()
        );
        assert_eq!(
            msg,
            format!("t.toml:3: memory-mib = {bad} is outside 64..=65536")
        );
    }
}

#[test]
fn devices_are_named_pci_devices_other_than_the_iommu() {
    assert!(machine("devices = [\"edu\", \"e1000e,netdev=n\"]\n").is_ok());
    for bad in ["", "  ", "intel-iommu,aw-bits=48"] {
        let msg = format!(
            "{:#}",
            machine(&format!("devices = [\"edu\",\n  {bad:?}]\n")).unwrap_err()
        );
        assert!(msg.starts_with("t.toml:4: device "), "{bad:?}: {msg}");
        assert!(msg.contains("[machine.iommu]"), "{msg}");
    }
}

#[test]
fn iommu_options_qemu_accepts() {
    let s = |v: &[&str]| check_iommu_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    for ok in [
        &[][..],
        &["aw-bits=39"],
        &["aw-bits=48", "x-scalable-mode=on", "x-flts=on"],
        &["x-scalable-mode=true", "x-flts=yes"],
        &["x-scalable-mode=on", "x-pasid-mode=on", "device-iotlb=off"],
        &["device-iotlb=on", "x-pasid-mode=off"],
        &["x-scalable-mode=on", "dma-drain=on"],
        &["x-scalable-mode=off", "dma-drain=off"],
        &["x-flts=off"],
    ] {
        assert_eq!(s(ok), Ok(()), "{ok:?}");
    }
}

#[test]
fn iommu_options_qemu_refuses() {
    let s = |v: &[&str]| check_iommu_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let cases: &[(&[&str], &str)] = &[
        (&["aw-bits=52"], "aw-bits=52: QEMU supports 39 or 48"),
        (
            &["x-flts=on"],
            "x-flts needs x-scalable-mode=on and aw-bits=48",
        ),
        (
            &["x-flts=on", "x-scalable-mode=on", "aw-bits=39"],
            "x-flts needs x-scalable-mode=on and aw-bits=48",
        ),
        (
            &["x-pasid-mode=on"],
            "x-pasid-mode needs x-scalable-mode=on",
        ),
        (
            &["x-scalable-mode=on", "x-pasid-mode=on", "device-iotlb=on"],
            "x-pasid-mode with device-iotlb is refused by QEMU (no PASID device IOTLB)",
        ),
        (
            &["x-scalable-mode=on", "dma-drain=off"],
            "scalable mode needs dma-drain",
        ),
        (&["pt=on", "pt=on"], "\"pt\" given twice"),
    ];
    for (options, want) in cases {
        assert_eq!(s(options), Err(want.to_string()), "{options:?}");
    }
}

#[test]
fn a_run_times_out_after_60_seconds_unless_the_deployment_says() {
    let d = parse_str(HEAD).unwrap();
    assert_eq!(d.timeout_secs(), 60);
    let d = parse_str(&format!("{HEAD}[expect]\ntimeout-secs = 7\n")).unwrap();
    assert_eq!(d.timeout_secs(), 7);
}

#[test]
fn lines_are_counted_from_one() {
    let src = Source {
        path: Path::new("m.toml"),
        text: "a\nb\n\nc",
    };
    assert_eq!(src.line(0), 1);
    assert_eq!(src.line(1), 1);
    assert_eq!(src.line(2), 2);
    assert_eq!(src.line(5), 4);
    // Past the end is the last line.
    assert_eq!(src.line(99), 4);
    assert_eq!(src.at(2..3), "m.toml:2");
}

#[test]
fn missing_crates_are_reported_when_building() {
    let text = with_sup(&errors::svc("x", "nonexistent", ""));
    let d = parse_str(&text).unwrap();
    assert_eq!(d.missing_crates.len(), 1);
    let msg = format!("{:#}", d.require_crates().unwrap_err());
    assert!(
        msg.starts_with("t.toml:9: service x: crate \"faultline-nonexistent\""),
        "{msg}"
    );
    assert!(parse_str(HEAD).unwrap().require_crates().is_ok());
}
