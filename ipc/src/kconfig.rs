//! The deployment as the kernel receives it.
//!
//! `xtask` validates a deployment manifest, builds each service, and encodes
//! a [`KernelConfig`] with postcard; the kernel embeds the bytes and the
//! service ELFs, decodes the config strictly at boot (with
//! [`KernelConfig::decode`]), and creates exactly the capabilities listed,
//! nothing else. Indexes (service, channel, image) refer to positions in the
//! lists here; names are kept for logs and for [`crate::abi::Sysnum::CapLookup`].
//!
//! The same types describe what the supervisor reads back about a service
//! ([`TaskStatus`]).

use crate::abi::MAX_CAP_NAME;
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Bumped whenever these types change shape; a kernel refuses a config of
/// another version.
pub const CONFIG_VERSION: u32 = 4;
/// Longest DMA fault deadline a [`CapSpec::Faults`] grant may carry, in
/// milliseconds (a minute); the shortest is 1.
pub const MAX_FAULT_DEADLINE_MS: u32 = 60_000;
/// Most services in one deployment.
pub const MAX_SERVICES: usize = 16;
/// Most channels in one deployment.
pub const MAX_CHANNELS: usize = 32;
/// Most capabilities one service holds.
pub const MAX_CAPS: usize = 24;
/// Longest service name.
pub const MAX_NAME: usize = 24;

/// A short, bounded name.
pub type Name = String<MAX_NAME>;
/// A capability's name.
pub type CapName = String<MAX_CAP_NAME>;

/// Everything the kernel needs to start a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelConfig {
    /// Must equal [`CONFIG_VERSION`].
    pub version: u32,
    /// The deployment's name.
    pub deployment: Name,
    /// Services, started in this order; the supervisor (if any) first.
    pub services: Vec<ServiceConfig, MAX_SERVICES>,
    /// Channels between services.
    pub channels: Vec<ChannelConfig, MAX_CHANNELS>,
}

/// One service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub name: Name,
    /// Index of the service's ELF among the embedded images.
    pub image: u8,
    /// 0 is the most important; the scheduler always runs the most
    /// important runnable service.
    pub priority: u8,
    /// Pages of memory the service may occupy: its ELF segments, its stack
    /// and its page tables.
    pub memory_pages: u32,
    /// Pages of stack (a guard page below is extra and never mapped).
    pub stack_pages: u32,
    /// What the supervisor does when the service faults.
    pub restart: RestartPolicy,
    /// Capabilities, in handle order: the service's handle `i` is `caps[i]`.
    pub caps: Vec<CapConfig, MAX_CAPS>,
}

/// What happens to a service that faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Leave it stopped.
    Hold,
    /// Restart it after `backoff_ms`, doubling the back-off on each restart
    /// that follows closely on the last (the supervisor decides what
    /// "closely" is), up to `max_restarts` restarts (then hold).
    Restart { backoff_ms: u32, max_restarts: u32 },
}

/// One capability, named so the service can look it up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapConfig {
    pub name: CapName,
    pub kind: CapSpec,
}

/// What a capability grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapSpec {
    /// The client end of channel `channel`.
    Client { channel: u8 },
    /// The server end of channel `channel`; `badge` is reported with every
    /// message the client sends.
    Server { channel: u8, badge: u64 },
    /// Post `bits` to service `target`.
    Notification { target: u8, bits: u32 },
    /// The MSI of the PCI function this service holds as handle `pci`,
    /// delivered to the holder as `bits`. The kernel programs the device's
    /// MSI address and data itself; the service only enables and handles it.
    Irq { bits: u32, pci: u8 },
    /// Physical MMIO `[base, base + len)`, page-aligned, for registers that
    /// are not a PCI BAR. The kernel checks it against the machine at boot
    /// (never RAM, never the LAPIC, IOAPIC, HPET, ECAM or a VT-d unit).
    Mmio { base: u64, len: u64 },
    /// Memory BAR `bar` (0..=5) of the PCI function this service holds as
    /// handle `pci`, resolved at boot from the BAR itself.
    PciBar { pci: u8, bar: u8 },
    /// The register set of VT-d unit `unit`, resolved from the DMAR at boot.
    /// At most one service holds each unit's registers.
    VtdMmio { unit: u8 },
    /// The fault event interrupt of VT-d unit `unit` (whose registers the
    /// same service holds), delivered as `bits`. The kernel allocates the
    /// vector; the holder programs the unit's fault event registers with
    /// what [`crate::abi::Sysnum::IrqInfo`] reports.
    VtdIrq { unit: u8, bits: u32 },
    /// Allocate up to `bytes` of DMA memory.
    Dma { bytes: u64 },
    /// The `index`-th PCI function (in scan order) with this vendor:device,
    /// resolved at boot.
    Pci { vendor: u16, device: u16, index: u8 },
    /// Control over the other services (status, restart).
    Supervisor,
    /// The right to handle the DMA faults of the `index`-th PCI function
    /// (in scan order) with this vendor:device, resolved at boot like
    /// [`CapSpec::Pci`], answering each within `deadline_ms`
    /// (1..=[`MAX_FAULT_DEADLINE_MS`]). It grants nothing else: no config
    /// space, BARs, interrupts or bus mastering. The IOMMU service learns
    /// the function from the kernel ([`crate::abi::Sysnum::ClientFaults`]).
    /// Kept last so the other variants keep their numbers.
    Faults {
        vendor: u16,
        device: u16,
        index: u8,
        deadline_ms: u32,
    },
}

/// One channel: exactly one client and one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    pub name: Name,
    pub client: u8,
    pub server: u8,
}

/// Why a config was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// postcard could not decode it (truncated, bad variant, overlong).
    Decode,
    /// Bytes left over after the config.
    TrailingBytes { extra: usize },
    /// Written for another version of these types.
    Version { found: u32 },
    /// An index points past its list.
    BadIndex { service: u8, what: &'static str },
    /// The supervisor does not have the strictly highest priority (the
    /// lowest number), or more than one service holds the supervisor
    /// capability.
    SupervisorPriority { service: u8 },
    /// A second service holds VT-d unit `unit`'s registers.
    VtdOwner { service: u8, unit: u8 },
    /// A fault handler grant's deadline is 0 or above
    /// [`MAX_FAULT_DEADLINE_MS`].
    BadDeadline { service: u8, ms: u32 },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Decode => write!(f, "the deployment config does not decode"),
            Self::TrailingBytes { extra } => {
                write!(f, "{extra} bytes follow the deployment config")
            }
            Self::Version { found } => {
                write!(
                    f,
                    "deployment config version {found}, kernel expects {CONFIG_VERSION}"
                )
            }
            Self::BadIndex { service, what } => {
                write!(f, "service {service}: {what} index out of range")
            }
            Self::SupervisorPriority { service } => write!(
                f,
                "service {service}: the supervisor must be the only one and strictly outrank every other service"
            ),
            Self::VtdOwner { service, unit } => write!(
                f,
                "service {service}: VT-d unit {unit}'s registers already belong to another service"
            ),
            Self::BadDeadline { service, ms } => write!(
                f,
                "service {service}: fault handler deadline {ms} ms is outside 1..={MAX_FAULT_DEADLINE_MS}"
            ),
        }
    }
}

impl KernelConfig {
    /// Encodes the config into `buf`, returning the bytes used.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a mut [u8], postcard::Error> {
        postcard::to_slice(self, buf)
    }

    /// Decodes and checks a config: exact length, version, every index in
    /// range, every channel end held by the service the channel names.
    pub fn decode(bytes: &[u8]) -> Result<Self, ConfigError> {
        let mut config = KernelConfig {
            version: 0,
            deployment: Name::new(),
            services: Vec::new(),
            channels: Vec::new(),
        };
        config.decode_into(bytes)?;
        Ok(config)
    }

    /// [`KernelConfig::decode`] into `self`, one service at a time, so a
    /// kernel can decode into a static without holding several copies of
    /// the whole config on its stack. On error `self` is left partly
    /// filled and must not be used.
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), ConfigError> {
        fn take<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(T, &[u8]), ConfigError> {
            postcard::take_from_bytes(bytes).map_err(|_| ConfigError::Decode)
        }
        // The layout postcard gives the struct: fields in order, each Vec as
        // a varint length and its elements.
        let (version, rest): (u32, _) = take(bytes)?;
        if version != CONFIG_VERSION {
            return Err(ConfigError::Version { found: version });
        }
        let (deployment, mut rest): (Name, _) = take(rest)?;
        self.version = version;
        self.deployment = deployment;
        let (count, r): (usize, _) = take(rest)?;
        rest = r;
        self.services.clear();
        for _ in 0..count {
            let (service, r): (ServiceConfig, _) = take(rest)?;
            self.services
                .push(service)
                .map_err(|_| ConfigError::Decode)?;
            rest = r;
        }
        let (count, r): (usize, _) = take(rest)?;
        rest = r;
        self.channels.clear();
        for _ in 0..count {
            let (channel, r): (ChannelConfig, _) = take(rest)?;
            self.channels
                .push(channel)
                .map_err(|_| ConfigError::Decode)?;
            rest = r;
        }
        if !rest.is_empty() {
            return Err(ConfigError::TrailingBytes { extra: rest.len() });
        }
        self.check()
    }

    /// Every index in range, every channel end held by the service the
    /// channel names, no channel from a service to itself, every fault
    /// handler deadline within 1..=[`MAX_FAULT_DEADLINE_MS`].
    fn check(&self) -> Result<(), ConfigError> {
        let config = self;
        let services = config.services.len();
        for (i, s) in config.services.iter().enumerate() {
            let service = i as u8;
            for cap in &s.caps {
                let ok = match cap.kind {
                    CapSpec::Client { channel } => config
                        .channels
                        .get(usize::from(channel))
                        .is_some_and(|c| c.client == service),
                    CapSpec::Server { channel, .. } => config
                        .channels
                        .get(usize::from(channel))
                        .is_some_and(|c| c.server == service),
                    CapSpec::Notification { target, .. } => usize::from(target) < services,
                    CapSpec::Irq { pci, .. } => is_pci(s, pci),
                    CapSpec::VtdIrq { unit, .. } => {
                        s.caps.iter().any(|c| c.kind == CapSpec::VtdMmio { unit })
                    }
                    CapSpec::PciBar { pci, bar } => {
                        bar <= 5
                            && is_pci(s, pci)
                            && s.caps
                                .iter()
                                .filter(|c| c.kind == CapSpec::PciBar { pci, bar })
                                .count()
                                == 1
                    }
                    CapSpec::Faults { deadline_ms, .. } => {
                        if deadline_ms == 0 || deadline_ms > MAX_FAULT_DEADLINE_MS {
                            return Err(ConfigError::BadDeadline {
                                service,
                                ms: deadline_ms,
                            });
                        }
                        true
                    }
                    _ => true,
                };
                if !ok {
                    return Err(ConfigError::BadIndex {
                        service,
                        what: "capability",
                    });
                }
            }
        }
        check_supervisor(config)?;
        check_vtd_owners(config)?;
        for c in &config.channels {
            if usize::from(c.client) >= services
                || usize::from(c.server) >= services
                || c.client == c.server
            {
                return Err(ConfigError::BadIndex {
                    service: c.client,
                    what: "channel",
                });
            }
        }
        Ok(())
    }
}

/// Whether handle `pci` of service `s` is a PCI function grant.
fn is_pci(s: &ServiceConfig, pci: u8) -> bool {
    s.caps
        .get(usize::from(pci))
        .is_some_and(|c| matches!(c.kind, CapSpec::Pci { .. }))
}

/// Hubris' rule: the supervisor outranks everyone, so no service it
/// supervises can starve it. At most one service holds the supervisor
/// capability, and its priority is strictly lower (more important) than
/// every other service's.
fn check_supervisor(config: &KernelConfig) -> Result<(), ConfigError> {
    let holds = |s: &ServiceConfig| s.caps.iter().any(|c| c.kind == CapSpec::Supervisor);
    let mut supervisors = config.services.iter().enumerate().filter(|(_, s)| holds(s));
    let Some((index, sup)) = supervisors.next() else {
        return Ok(());
    };
    let service = index as u8;
    if supervisors.next().is_some() {
        return Err(ConfigError::SupervisorPriority { service });
    }
    let outranked = config
        .services
        .iter()
        .enumerate()
        .any(|(i, s)| i != index && s.priority <= sup.priority);
    if outranked {
        return Err(ConfigError::SupervisorPriority { service });
    }
    Ok(())
}

/// Each VT-d unit's registers have one holder: the IOMMU service owns the
/// unit alone (a second holder could turn translation off).
fn check_vtd_owners(config: &KernelConfig) -> Result<(), ConfigError> {
    let mut seen: heapless::Vec<u8, MAX_CAPS> = heapless::Vec::new();
    for (i, s) in config.services.iter().enumerate() {
        for c in &s.caps {
            if let CapSpec::VtdMmio { unit } = c.kind {
                if seen.contains(&unit) {
                    return Err(ConfigError::VtdOwner {
                        service: i as u8,
                        unit,
                    });
                }
                let _ = seen.push(unit);
            }
        }
    }
    Ok(())
}

/// A service's state, as the supervisor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Running,
    /// Stopped by a fault; waiting for the supervisor.
    Faulted,
    /// Stopped by its own exit.
    Exited {
        code: u32,
    },
    /// Held: stopped, and not to be restarted. (Reserved: today the
    /// kernel reports a held service as `Faulted`; the supervisor records
    /// its own decision to hold.)
    Held,
}

/// The fault that stopped a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFault {
    /// CPU exception vector.
    pub vector: u8,
    pub error_code: u64,
    /// Faulting address (CR2) for page faults.
    pub address: u64,
    pub rip: u64,
}

/// What [`crate::abi::Sysnum::TaskStatus`] reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub name: Name,
    pub state: TaskState,
    /// Starts at 1; each restart adds 1.
    pub generation: u32,
    pub restarts: u32,
    pub fault: Option<TaskFault>,
    pub policy: RestartPolicy,
}

#[cfg(test)]
mod tests;
