//! Fault handler grants (`faults`): the right to handle one PCI function's
//! DMA faults, with a deadline. Named like a PCI grant, one handler per
//! function, deadline 1..=60000 ms (default 100), and the holder is a
//! client of the IOMMU service. Manifests start their own text at line 8.

use super::errors::svc;
use super::*;
use crate::deployment::schema::DEFAULT_FAULT_DEADLINE_MS;
use faultline_ipc::kconfig::{CapSpec, KernelConfig};

/// `[machine.iommu]` + `SUP` + `rest` (whose first line is line 8).
fn with_iommu(rest: &str) -> String {
    format!("description = \"x\"\n[machine.iommu]\n{SUP}{rest}")
}

/// The iommu service (lines 8-12).
fn iommu() -> String {
    svc("iommu", "iommu", "vtd = true\n")
}

/// A fault handler `name` (lines from 13 with `faults` on its line 5).
fn handler(name: &str, faults: &str) -> String {
    svc(name, "ping", &format!("faults = [{faults}]\n"))
}

fn channel(client: &str) -> String {
    format!("[[channels]]\nname = \"{client}\"\nclient = \"{client}\"\nserver = \"iommu\"\n")
}

const EDU: &str = "{ name = \"edu\", device = \"1234:11e8\", index = 0, deadline-ms = 50 }";

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

fn config(text: &str) -> KernelConfig {
    parse_str(text)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .system
        .expect("a system")
        .config
}

#[test]
fn a_faults_grant_is_a_capability_of_its_own_name_and_kind() {
    let c = config(&with_iommu(&format!(
        "{}{}{}",
        iommu(),
        handler("h", EDU),
        channel("h")
    )));
    assert_eq!(
        caps(&c, "h"),
        [
            (
                "edu".to_string(),
                CapSpec::Faults {
                    vendor: 0x1234,
                    device: 0x11e8,
                    index: 0,
                    deadline_ms: 50
                }
            ),
            ("h".to_string(), CapSpec::Client { channel: 0 }),
        ]
    );
}

#[test]
fn index_defaults_to_0_and_the_deadline_to_100_ms() {
    assert_eq!(DEFAULT_FAULT_DEADLINE_MS, 100);
    let c = config(&with_iommu(&format!(
        "{}{}{}",
        iommu(),
        handler("h", "{ name = \"edu\", device = \"1234:11e8\" }"),
        channel("h")
    )));
    assert_eq!(
        caps(&c, "h")[0].1,
        CapSpec::Faults {
            vendor: 0x1234,
            device: 0x11e8,
            index: 0,
            deadline_ms: 100
        }
    );
    let c = config(&with_iommu(&format!(
        "{}{}{}",
        iommu(),
        handler(
            "h",
            "{ name = \"edu\", device = \"1234:11e8\", index = 2, deadline-ms = 60000 }"
        ),
        channel("h")
    )));
    assert_eq!(
        caps(&c, "h")[0].1,
        CapSpec::Faults {
            vendor: 0x1234,
            device: 0x11e8,
            index: 2,
            deadline_ms: 60_000
        }
    );
}

#[test]
fn the_deadline_is_1_ms_to_a_minute() {
    for ms in [0, 60_001] {
        let faults = format!("{{ name = \"edu\", device = \"1234:11e8\", deadline-ms = {ms} }}");
        let text = with_iommu(&format!(
            "{}{}{}",
            iommu(),
            handler("h", &faults),
            channel("h")
        ));
        assert_eq!(
            err(&text),
            format!("t.toml:17: service h: faults edu: deadline-ms = {ms} is outside 1..=60000")
        );
    }
    let faults = "{ name = \"edu\", device = \"1234:11e8\", deadline-ms = 1 }";
    config(&with_iommu(&format!(
        "{}{}{}",
        iommu(),
        handler("h", faults),
        channel("h")
    )));
}

#[test]
fn the_function_is_named_and_refused_as_a_pci_grant_is() {
    let bad = |faults: &str| {
        err(&with_iommu(&format!(
            "{}{}{}",
            iommu(),
            handler("h", faults),
            channel("h")
        )))
    };
    assert_eq!(
        bad("{ name = \"edu\", device = \"edu\" }"),
        "t.toml:17: service h: faults edu: device \"edu\" is not vendor:device in hex, e.g. \"1234:11e8\""
    );
    let msg = bad("{ name = \"host\", device = \"8086:29c0\" }");
    assert!(
        msg.starts_with("t.toml:17: service h: faults host: 8086:29c0 is "),
        "{msg}"
    );
    assert!(
        msg.ends_with("bridges and chipset functions are the kernel's, never granted"),
        "{msg}"
    );
    assert_eq!(
        bad("{ name = \"edu\", device = \"1234:11e8\", index = 256 }"),
        "t.toml:17: service h: faults edu: index 256 is outside 0..=255"
    );
    let msg = bad("{ name = \"edu\", device = \"1234:11e8\", deadline = 5 }");
    assert!(
        msg.starts_with("t.toml:17: unknown field `deadline`"),
        "{msg}"
    );
}

#[test]
fn a_function_has_one_fault_handler() {
    let text = with_iommu(&format!(
        "{}{}{}{}{}",
        iommu(),
        handler("h", EDU),
        handler("g", "{ name = \"e\", device = \"1234:11e8\" }"),
        channel("h"),
        channel("g")
    ));
    assert_eq!(
        err(&text),
        "t.toml:22: service g: faults e: the DMA faults of PCI device 1234:11e8 index 0 are already handled by service h: faults edu (line 17); a function has one fault handler"
    );
    // Within one service too.
    let text = with_iommu(&format!(
        "{}{}{}",
        iommu(),
        handler(
            "h",
            "{ name = \"a\", device = \"1234:11e8\" },\n { name = \"b\", device = \"1234:11e8\", index = 0 }"
        ),
        channel("h")
    ));
    assert!(
        err(&text).contains("faults b: the DMA faults of PCI device 1234:11e8 index 0 are already handled by service h: faults a"),
        "{}",
        err(&text)
    );
    // Another function of the same vendor:device has its own handler, and
    // the driver holding the function is no fault handler.
    let text = with_iommu(&format!(
        "{}{}{}{}{}{}",
        iommu(),
        handler("h", EDU),
        handler("g", "{ name = \"e\", device = \"1234:11e8\", index = 1 }"),
        svc(
            "drv",
            "pong",
            "pci = [{ name = \"edu\", device = \"1234:11e8\" }]\n"
        ),
        channel("h"),
        channel("g")
    ));
    config(&text);
}

#[test]
fn a_fault_handler_needs_a_client_channel_to_the_iommu_service() {
    let text = with_iommu(&format!("{}{}", iommu(), handler("h", EDU)));
    assert_eq!(
        err(&text),
        "t.toml:17: service h: faults edu: a fault handler needs a client channel to service iommu, which holds the VT-d units and reports their faults: add [[channels]] with client = \"h\" and server = \"iommu\""
    );
    // A channel the other way round is no help.
    let backwards = "[[channels]]\nname = \"h\"\nclient = \"iommu\"\nserver = \"h\"\n";
    let text = with_iommu(&format!("{}{}{backwards}", iommu(), handler("h", EDU)));
    assert!(err(&text).contains("needs a client channel to service iommu"));
    // Nobody holds the units.
    assert_eq!(
        err(&with_iommu(&handler("h", EDU))),
        "t.toml:12: service h: faults edu: no service holds the VT-d units (vtd0); a fault handler is told its faults by the IOMMU service (`vtd = true`)"
    );
    // No IOMMU at all: no faults to handle.
    assert_eq!(
        err(&with_sup(&handler("h", EDU))),
        "t.toml:12: service h: faults edu: the machine has no IOMMU (no [machine.iommu]), so there are no DMA faults to handle"
    );
    // The IOMMU service is nobody's fault handler.
    let text = with_iommu(&svc(
        "iommu",
        "iommu",
        &format!("vtd = true\nfaults = [{EDU}]\n"),
    ));
    assert_eq!(
        err(&text),
        "t.toml:13: service iommu: faults edu: service iommu holds the VT-d units itself; a fault handler is a client of the IOMMU service, which sees every fault already"
    );
}

#[test]
fn a_faults_grant_name_is_a_capability_name_of_its_service() {
    let text = with_iommu(&format!(
        "{}{}{}",
        iommu(),
        svc(
            "h",
            "ping",
            &format!("pci = [{{ name = \"edu\", device = \"1234:11e8\" }}]\nfaults = [{EDU}]\n")
        ),
        channel("h")
    ));
    assert_eq!(
        err(&text),
        "t.toml:18: service h: capability name \"edu\" is already used by this service (line 17)"
    );
    let text = with_iommu(&format!(
        "{}{}{}",
        iommu(),
        handler("h", "{ name = \"Edu\", device = \"1234:11e8\" }"),
        channel("h")
    ));
    assert_eq!(
        err(&text),
        "t.toml:17: service h: capability name \"Edu\": use 1 to 24 bytes of a-z, 0-9 and -"
    );
}

#[test]
fn an_irq_cannot_name_a_faults_grant() {
    let text = with_iommu(&format!(
        "{}{}{}",
        iommu(),
        svc(
            "h",
            "ping",
            &format!("faults = [{EDU}]\nirqs = [{{ name = \"i\", bit = 3, pci = \"edu\" }}]\n")
        ),
        channel("h")
    ));
    assert_eq!(
        err(&text),
        "t.toml:18: service h: irq i: pci \"edu\" names none of this service's pci grants"
    );
}
