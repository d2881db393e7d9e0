//! Good manifests and the `KernelConfig` they give: service order, image
//! indexes, capability order and names, badges.

use super::*;
use faultline_ipc::kconfig::{CapSpec, KernelConfig, RestartPolicy};

/// Every kind of grant, the supervisor declared last.
const FULL: &str = r#"
description = "everything"
[machine]
memory-mib = 256
[machine.iommu]

[services.pong]
crate = "faultline-pong"
priority = 1
memory-kib = 128
restart = { backoff-ms = 20, max-restarts = 5 }
notify = [{ name = "wake-ping", service = "ping", bit = 1 }]
mmio = [{ name = "regs", base = 0xfe000000, size = 0x1000 }]
pci = [{ name = "edu", device = "1234:11e8", index = 0, bars = [0, 2] }]
irqs = [{ name = "edu-irq", bit = 3, pci = "edu" }]
dma-kib = 64
vtd = true

[services.ping]
crate = "faultline-ping"
priority = 2
memory-kib = 64
stack-kib = 8

[services.ping2]
crate = "faultline-ping"
priority = 2
memory-kib = 64

[services.boss]
crate = "faultline-supervisor"
priority = 0
memory-kib = 256
supervisor = true

[[channels]]
name = "pong"
client = "ping"
server = "pong"

[[channels]]
name = "pong2"
client = "ping2"
server = "pong"
server-cap = "second"
client-cap = "pong"
badge = 77
"#;

fn full() -> Deployment {
    parse_str(FULL).unwrap_or_else(|e| panic!("{e:#}"))
}

fn cap_names(config: &KernelConfig, service: usize) -> Vec<&str> {
    config.services[service]
        .caps
        .iter()
        .map(|c| c.name.as_str())
        .collect()
}

#[test]
fn the_supervisor_comes_first_then_manifest_order() {
    let d = full();
    let c = &d.system.as_ref().unwrap().config;
    let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["boss", "pong", "ping", "ping2"]);
    assert_eq!(c.deployment.as_str(), "t");
    assert_eq!(c.version, faultline_ipc::kconfig::CONFIG_VERSION);
}

#[test]
fn images_are_shared_by_crate_and_numbered_in_service_order() {
    let d = full();
    let sys = d.system.as_ref().unwrap();
    assert_eq!(
        sys.images,
        ["faultline-supervisor", "faultline-pong", "faultline-ping"]
    );
    let images: Vec<u8> = sys.config.services.iter().map(|s| s.image).collect();
    assert_eq!(images, [0, 1, 2, 2]);
    let plans: Vec<(&str, usize, u64, u64)> = sys
        .services
        .iter()
        .map(|p| (p.name.as_str(), p.image, p.memory_kib, p.stack_kib))
        .collect();
    assert_eq!(
        plans,
        [
            ("boss", 0, 256, 16),
            ("pong", 1, 128, 16),
            ("ping", 2, 64, 8),
            ("ping2", 2, 64, 16)
        ]
    );
    assert_eq!(sys.services[2].at, "t.toml:22");
}

#[test]
fn budgets_priorities_and_restart_policies() {
    let d = full();
    let c = &d.system.as_ref().unwrap().config;
    let pong = &c.services[1];
    assert_eq!(
        (pong.priority, pong.memory_pages, pong.stack_pages),
        (1, 32, 4)
    );
    assert_eq!(
        pong.restart,
        RestartPolicy::Restart {
            backoff_ms: 20,
            max_restarts: 5
        }
    );
    assert_eq!(c.services[2].stack_pages, 2);
    assert_eq!(c.services[0].restart, RestartPolicy::Hold);
}

#[test]
fn capabilities_come_in_the_documented_order() {
    let d = full();
    let c = &d.system.as_ref().unwrap().config;
    assert_eq!(cap_names(c, 0), ["supervisor"]);
    assert_eq!(c.services[0].caps[0].kind, CapSpec::Supervisor);
    assert_eq!(
        cap_names(c, 1),
        [
            "vtd0",
            "vtd0-fault",
            "regs",
            "edu",
            "edu-bar0",
            "edu-bar2",
            "edu-irq",
            "dma",
            "wake-ping",
            "pong",
            "second"
        ]
    );
    let kinds: Vec<&CapSpec> = c.services[1].caps.iter().map(|c| &c.kind).collect();
    assert_eq!(
        kinds,
        [
            &CapSpec::VtdMmio { unit: 0 },
            &CapSpec::VtdIrq {
                unit: 0,
                bits: 1 << 1
            },
            &CapSpec::Mmio {
                base: 0xfe00_0000,
                len: 0x1000
            },
            &CapSpec::Pci {
                vendor: 0x1234,
                device: 0x11e8,
                index: 0
            },
            &CapSpec::PciBar { pci: 3, bar: 0 },
            &CapSpec::PciBar { pci: 3, bar: 2 },
            &CapSpec::Irq {
                bits: 1 << 3,
                pci: 3
            },
            &CapSpec::Dma { bytes: 64 * 1024 },
            &CapSpec::Notification {
                target: 2,
                bits: 1 << 1
            },
            &CapSpec::Server {
                channel: 0,
                badge: 1
            },
            &CapSpec::Server {
                channel: 1,
                badge: 77
            },
        ]
    );
    assert_eq!(cap_names(c, 2), ["pong"]);
    assert_eq!(c.services[2].caps[0].kind, CapSpec::Client { channel: 0 });
    assert_eq!(cap_names(c, 3), ["pong"]);
    assert_eq!(c.services[3].caps[0].kind, CapSpec::Client { channel: 1 });
}

#[test]
fn channels_refer_to_services_by_config_index() {
    let d = full();
    let c = &d.system.as_ref().unwrap().config;
    let ch: Vec<(&str, u8, u8)> = c
        .channels
        .iter()
        .map(|c| (c.name.as_str(), c.client, c.server))
        .collect();
    assert_eq!(ch, [("pong", 2, 1), ("pong2", 3, 1)]);
}

#[test]
fn the_config_encodes_and_the_kernel_decoder_accepts_it() {
    let d = full();
    let c = &d.system.as_ref().unwrap().config;
    let mut buf = vec![0u8; 4096];
    let bytes = c.encode(&mut buf).unwrap().to_vec();
    assert_eq!(KernelConfig::decode(&bytes).as_ref(), Ok(c));
}

#[test]
fn adjacent_mmio_grants_and_distinct_pci_indexes_are_fine() {
    let text = with_sup(
        "[services.a]\ncrate = \"faultline-ping\"\npriority = 1\nmemory-kib = 64\n\
         mmio = [{ name = \"lo\", base = 0xfe001000, size = 0x1000 }, { name = \"hi\", base = 0xfe002000, size = 0x1000 }]\n\
         pci = [{ name = \"e0\", device = \"1234:11e8\" }, { name = \"e1\", device = \"1234:11e8\", index = 1 }]\n\
         irqs = [{ name = \"i\", bit = 28, pci = \"e1\" }]\n\
         notify = [{ name = \"n\", service = \"sup\", bit = 28 }]\n",
    );
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    let c = &d.system.unwrap().config;
    assert_eq!(cap_names(c, 1), ["lo", "hi", "e0", "e1", "i", "n"]);
}

#[test]
fn defaults_hold_and_16_kib_stack() {
    let d = parse_str(&with_sup("")).unwrap();
    let s = &d.system.unwrap().config.services[0];
    assert_eq!((s.stack_pages, s.restart), (4, RestartPolicy::Hold));
}
