//! The deployment config's encoding and every check `KernelConfig::decode`
//! makes.

use super::*;

fn sample() -> KernelConfig {
    let mut services = Vec::new();
    let mut caps = Vec::new();
    caps.push(CapConfig {
        name: "pong".try_into().unwrap(),
        kind: CapSpec::Client { channel: 0 },
    })
    .unwrap();
    services
        .push(ServiceConfig {
            name: "ping".try_into().unwrap(),
            image: 0,
            priority: 2,
            memory_pages: 64,
            stack_pages: 4,
            restart: RestartPolicy::Restart {
                backoff_ms: 10,
                max_restarts: 3,
            },
            caps,
        })
        .unwrap();
    let mut caps = Vec::new();
    caps.push(CapConfig {
        name: "ping".try_into().unwrap(),
        kind: CapSpec::Server {
            channel: 0,
            badge: 7,
        },
    })
    .unwrap();
    services
        .push(ServiceConfig {
            name: "pong".try_into().unwrap(),
            image: 1,
            priority: 1,
            memory_pages: 64,
            stack_pages: 4,
            restart: RestartPolicy::Hold,
            caps,
        })
        .unwrap();
    let mut channels = Vec::new();
    channels
        .push(ChannelConfig {
            name: "ping".try_into().unwrap(),
            client: 0,
            server: 1,
        })
        .unwrap();
    KernelConfig {
        version: CONFIG_VERSION,
        deployment: "t".try_into().unwrap(),
        services,
        channels,
    }
}

#[test]
fn round_trips() {
    let c = sample();
    let mut buf = [0u8; 1024];
    let bytes = c.encode(&mut buf).unwrap().to_vec();
    assert_eq!(KernelConfig::decode(&bytes), Ok(c));
}

#[test]
fn refuses_trailing_truncated_and_other_versions() {
    let mut c = sample();
    let mut buf = [0u8; 1024];
    let mut bytes = c.encode(&mut buf).unwrap().to_vec();
    bytes.push(0);
    assert_eq!(
        KernelConfig::decode(&bytes),
        Err(ConfigError::TrailingBytes { extra: 1 })
    );
    bytes.pop();
    bytes.pop();
    assert_eq!(KernelConfig::decode(&bytes), Err(ConfigError::Decode));
    c.version = 99;
    let bytes = c.encode(&mut buf).unwrap().to_vec();
    assert_eq!(
        KernelConfig::decode(&bytes),
        Err(ConfigError::Version { found: 99 })
    );
}

fn encoded(c: &KernelConfig) -> std::vec::Vec<u8> {
    let mut buf = [0u8; 1024];
    c.encode(&mut buf).unwrap().to_vec()
}

fn grant(c: &mut KernelConfig, service: usize, name: &str, kind: CapSpec) {
    c.services[service]
        .caps
        .push(CapConfig {
            name: name.try_into().unwrap(),
            kind,
        })
        .unwrap();
}

const EDU: CapSpec = CapSpec::Pci {
    vendor: 0x1234,
    device: 0x11e8,
    index: 0,
};

#[test]
fn irqs_and_bars_name_a_pci_grant_of_their_own_service() {
    let mut c = sample();
    grant(&mut c, 1, "edu", EDU);
    grant(&mut c, 1, "edu-bar0", CapSpec::PciBar { pci: 1, bar: 0 });
    grant(&mut c, 1, "edu-irq", CapSpec::Irq { bits: 2, pci: 1 });
    assert!(KernelConfig::decode(&encoded(&c)).is_ok());
    let bad = |kind: CapSpec| {
        let mut c = c.clone();
        grant(&mut c, 1, "x", kind);
        KernelConfig::decode(&encoded(&c))
    };
    let refused = Err(ConfigError::BadIndex {
        service: 1,
        what: "capability",
    });
    // Handle 0 is a channel end, 9 does not exist, BAR 6 does not exist,
    // and BAR 0 is already granted.
    assert_eq!(bad(CapSpec::Irq { bits: 4, pci: 0 }), refused);
    assert_eq!(bad(CapSpec::Irq { bits: 4, pci: 9 }), refused);
    assert_eq!(bad(CapSpec::PciBar { pci: 0, bar: 0 }), refused);
    assert_eq!(bad(CapSpec::PciBar { pci: 1, bar: 6 }), refused);
    assert_eq!(bad(CapSpec::PciBar { pci: 1, bar: 0 }), refused);
    assert!(bad(CapSpec::PciBar { pci: 1, bar: 5 }).is_ok());
}

#[test]
fn each_vtd_unit_has_one_holder_and_its_irq_goes_with_it() {
    let mut c = sample();
    grant(&mut c, 0, "vtd0", CapSpec::VtdMmio { unit: 0 });
    grant(
        &mut c,
        0,
        "vtd0-fault",
        CapSpec::VtdIrq { unit: 0, bits: 1 },
    );
    grant(&mut c, 1, "vtd1", CapSpec::VtdMmio { unit: 1 });
    assert_eq!(KernelConfig::decode(&encoded(&c)), Ok(c.clone()));
    let mut second = c.clone();
    grant(&mut second, 1, "vtd0", CapSpec::VtdMmio { unit: 0 });
    assert_eq!(
        KernelConfig::decode(&encoded(&second)),
        Err(ConfigError::VtdOwner {
            service: 1,
            unit: 0
        })
    );
    let mut foreign_irq = c.clone();
    grant(
        &mut foreign_irq,
        1,
        "irq",
        CapSpec::VtdIrq { unit: 0, bits: 1 },
    );
    assert_eq!(
        KernelConfig::decode(&encoded(&foreign_irq)),
        Err(ConfigError::BadIndex {
            service: 1,
            what: "capability"
        })
    );
}

#[test]
fn the_supervisor_strictly_outranks_everyone() {
    let mut c = sample();
    grant(&mut c, 1, "supervisor", CapSpec::Supervisor);
    // pong (priority 1) supervises; ping has priority 2.
    assert!(KernelConfig::decode(&encoded(&c)).is_ok());
    for p in [1, 0] {
        c.services[0].priority = p;
        assert_eq!(
            KernelConfig::decode(&encoded(&c)),
            Err(ConfigError::SupervisorPriority { service: 1 }),
            "ping at priority {p}"
        );
    }
    c.services[0].priority = 2;
    grant(&mut c, 0, "supervisor", CapSpec::Supervisor);
    assert_eq!(
        KernelConfig::decode(&encoded(&c)),
        Err(ConfigError::SupervisorPriority { service: 0 }),
        "two supervisors"
    );
}

#[test]
fn refuses_a_channel_end_held_by_the_wrong_service() {
    let mut c = sample();
    c.services[0].caps[0].kind = CapSpec::Server {
        channel: 0,
        badge: 1,
    };
    let mut buf = [0u8; 1024];
    let bytes = c.encode(&mut buf).unwrap().to_vec();
    assert!(matches!(
        KernelConfig::decode(&bytes),
        Err(ConfigError::BadIndex { .. })
    ));
}

fn edu_faults(deadline_ms: u32) -> CapSpec {
    CapSpec::Faults {
        vendor: 0x1234,
        device: 0x11e8,
        index: 0,
        deadline_ms,
    }
}

#[test]
fn a_fault_handler_deadline_is_1_ms_to_a_minute() {
    for ms in [1, 50, MAX_FAULT_DEADLINE_MS] {
        let mut c = sample();
        grant(&mut c, 1, "edu-faults", edu_faults(ms));
        assert_eq!(KernelConfig::decode(&encoded(&c)), Ok(c.clone()), "{ms}");
    }
    assert_eq!(MAX_FAULT_DEADLINE_MS, 60_000);
    for ms in [0, MAX_FAULT_DEADLINE_MS + 1, u32::MAX] {
        let mut c = sample();
        grant(&mut c, 1, "edu-faults", edu_faults(ms));
        assert_eq!(
            KernelConfig::decode(&encoded(&c)),
            Err(ConfigError::BadDeadline { service: 1, ms }),
            "{ms}"
        );
    }
    let e = ConfigError::BadDeadline { service: 1, ms: 0 };
    assert_eq!(
        std::format!("{e}"),
        "service 1: fault handler deadline 0 ms is outside 1..=60000"
    );
}

#[test]
fn a_fault_handler_grant_is_no_pci_function_for_irqs_and_bars() {
    let mut c = sample();
    grant(&mut c, 1, "edu-faults", edu_faults(100));
    let refused = Err(ConfigError::BadIndex {
        service: 1,
        what: "capability",
    });
    for kind in [
        CapSpec::Irq { bits: 2, pci: 1 },
        CapSpec::PciBar { pci: 1, bar: 0 },
    ] {
        let mut c = c.clone();
        grant(&mut c, 1, "x", kind.clone());
        assert_eq!(KernelConfig::decode(&encoded(&c)), refused, "{kind:?}");
    }
}

#[test]
fn the_faults_grant_is_the_last_variant_and_the_version_says_so() {
    // Older variants keep their postcard tags: Supervisor is still 10,
    // Faults is appended as 11.
    let mut buf = [0u8; 16];
    assert_eq!(
        postcard::to_slice(&CapSpec::Supervisor, &mut buf).unwrap(),
        &[10]
    );
    assert_eq!(postcard::to_slice(&edu_faults(1), &mut buf).unwrap()[0], 11);
    assert_eq!(CONFIG_VERSION, 4);
}
