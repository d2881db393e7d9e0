//! The kernel config's checks: a config the kernel accepts names only
//! services and channels that exist, gives each channel end to the service
//! the channel names, and joins no service to itself. Each rule is checked
//! on its own, at its boundary, through the public decoder the kernel uses.

use faultline_ipc::kconfig::{
    CONFIG_VERSION, CapConfig, CapSpec, ChannelConfig, ConfigError, KernelConfig, RestartPolicy,
    ServiceConfig,
};

fn service(name: &str, caps: &[CapSpec]) -> ServiceConfig {
    ServiceConfig {
        name: name.try_into().unwrap(),
        image: 0,
        priority: 1,
        memory_pages: 16,
        stack_pages: 1,
        restart: RestartPolicy::Hold,
        caps: caps
            .iter()
            .enumerate()
            .map(|(i, kind)| CapConfig {
                name: format!("cap{i}").as_str().try_into().unwrap(),
                kind: kind.clone(),
            })
            .collect(),
    }
}

fn channel(client: u8, server: u8) -> ChannelConfig {
    ChannelConfig {
        name: "ch".try_into().unwrap(),
        client,
        server,
    }
}

fn config(services: Vec<ServiceConfig>, channels: Vec<ChannelConfig>) -> KernelConfig {
    KernelConfig {
        version: CONFIG_VERSION,
        deployment: "k".try_into().unwrap(),
        services: services.into_iter().collect(),
        channels: channels.into_iter().collect(),
    }
}

/// Encodes, then decodes as the kernel does.
fn decode(c: &KernelConfig) -> Result<KernelConfig, ConfigError> {
    let mut buf = [0u8; 4096];
    let bytes = c.encode(&mut buf).unwrap().to_vec();
    KernelConfig::decode(&bytes)
}

fn accepted(c: &KernelConfig) {
    assert_eq!(decode(c).as_ref(), Ok(c));
}

fn refused(c: &KernelConfig, service: u8, what: &'static str) {
    assert_eq!(decode(c), Err(ConfigError::BadIndex { service, what }));
}

/// Service 0 is the client of channel 0, service 1 its server.
fn pair(client_caps: &[CapSpec], server_caps: &[CapSpec]) -> KernelConfig {
    config(
        vec![service("a", client_caps), service("b", server_caps)],
        vec![channel(0, 1)],
    )
}

const CLIENT: CapSpec = CapSpec::Client { channel: 0 };
const SERVER: CapSpec = CapSpec::Server {
    channel: 0,
    badge: 3,
};

#[test]
fn each_channel_end_belongs_to_the_service_the_channel_names() {
    accepted(&pair(&[CLIENT], &[SERVER]));
    // The ends swapped: each is held by the wrong service.
    refused(&pair(&[SERVER], &[]), 0, "capability");
    refused(&pair(&[], &[CLIENT]), 1, "capability");
    // An end of a channel that does not exist.
    refused(
        &pair(&[CapSpec::Client { channel: 1 }], &[]),
        0,
        "capability",
    );
    refused(
        &pair(
            &[],
            &[CapSpec::Server {
                channel: 1,
                badge: 0,
            }],
        ),
        1,
        "capability",
    );
}

#[test]
fn a_notification_targets_an_existing_service() {
    // The last service is a target; one past it is not.
    accepted(&pair(&[CapSpec::Notification { target: 1, bits: 1 }], &[]));
    accepted(&pair(&[CapSpec::Notification { target: 0, bits: 1 }], &[]));
    refused(
        &pair(&[], &[CapSpec::Notification { target: 2, bits: 1 }]),
        1,
        "capability",
    );
    refused(
        &pair(
            &[CapSpec::Notification {
                target: 200,
                bits: 1,
            }],
            &[],
        ),
        0,
        "capability",
    );
}

#[test]
fn grants_without_an_index_are_not_index_checked_and_an_irq_names_its_pci_grant() {
    accepted(&pair(
        &[
            CapSpec::Irq { bits: 1, pci: 4 },
            CapSpec::Mmio {
                base: 0xfeb0_0000,
                len: 0x1000,
            },
            CapSpec::VtdMmio { unit: 9 },
            CapSpec::Dma { bytes: 4096 },
            CapSpec::Pci {
                vendor: 0x1234,
                device: 0x11e8,
                index: 7,
            },
        ],
        &[],
    ));
}

#[test]
fn a_channel_joins_two_existing_distinct_services() {
    let two = || vec![service("a", &[]), service("b", &[])];
    accepted(&config(two(), vec![channel(0, 1), channel(1, 0)]));
    // Client, then server, one past the last service.
    refused(&config(two(), vec![channel(2, 1)]), 2, "channel");
    refused(&config(two(), vec![channel(0, 2)]), 0, "channel");
    refused(&config(two(), vec![channel(9, 9)]), 9, "channel");
    // A service talking to itself.
    refused(&config(two(), vec![channel(1, 1)]), 1, "channel");
    // A later bad channel is found after good ones.
    refused(
        &config(two(), vec![channel(0, 1), channel(0, 0)]),
        0,
        "channel",
    );
}

#[test]
fn an_empty_config_is_valid() {
    accepted(&config(vec![], vec![]));
}

#[test]
fn errors_say_what_was_refused() {
    assert_eq!(
        ConfigError::BadIndex {
            service: 3,
            what: "channel"
        }
        .to_string(),
        "service 3: channel index out of range"
    );
    assert_eq!(
        ConfigError::Version { found: 9 }.to_string(),
        format!("deployment config version 9, kernel expects {CONFIG_VERSION}")
    );
    assert_eq!(
        ConfigError::TrailingBytes { extra: 2 }.to_string(),
        "2 bytes follow the deployment config"
    );
    assert_eq!(
        ConfigError::Decode.to_string(),
        "the deployment config does not decode"
    );
}

#[test]
fn decode_into_replaces_what_was_there() {
    let big = pair(&[CLIENT], &[SERVER]);
    let small = config(vec![service("solo", &[])], vec![]);
    let mut buf = [0u8; 4096];
    let bytes = small.encode(&mut buf).unwrap().to_vec();
    let mut into = big.clone();
    into.decode_into(&bytes).unwrap();
    assert_eq!(into, small);
}
