//! The manifest's shape: what `services/deployments/<name>.toml` may say.
//!
//! These types mirror the TOML one to one and are parsed strictly (every
//! table denies unknown keys). Values that are checked afterwards keep their
//! [`Spanned`] position so an error can name the line; nothing here decides
//! whether a value is acceptable beyond its type (that is `validate`).
//!
//! ```toml
//! [services.pong]
//! crate = "faultline-pong"
//! priority = 1
//! memory-kib = 128
//! restart = { backoff-ms = 20, max-restarts = 3 }   # or "hold" (default)
//! # The right to handle a PCI function's DMA faults and nothing else
//! # (index default 0, deadline-ms 1..=60000, default 100).
//! faults = [{ name = "edu", device = "1234:11e8", index = 0, deadline-ms = 50 }]
//!
//! [[channels]]
//! name = "pong"
//! client = "ping"
//! server = "pong"
//! ```

use faultline_ipc::harness::ExitCode;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// One line saying what the deployment is for.
    pub description: String,
    pub machine: Machine,
    #[serde(default)]
    pub expect: Expect,
    /// Services by name. The map's order is meaningless: manifest order is
    /// recovered from the keys' spans (see [`Manifest::services_in_order`]).
    #[serde(default)]
    pub services: BTreeMap<Spanned<String>, Service>,
    /// Channels, in manifest order (which is channel index order).
    #[serde(default)]
    pub channels: Vec<Channel>,
}

impl Manifest {
    /// The services in the order the manifest lists them.
    pub fn services_in_order(&self) -> Vec<(&Spanned<String>, &Service)> {
        let mut v: Vec<_> = self.services.iter().collect();
        v.sort_by_key(|(k, _)| k.span().start);
        v
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Machine {
    /// Guest RAM in MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: Spanned<u64>,
    /// The Intel VT-d IOMMU; absent means the machine has none.
    pub iommu: Option<Iommu>,
    /// `-device` arguments for PCI devices, e.g. `"edu"`.
    #[serde(default)]
    pub devices: Vec<Spanned<String>>,
    /// The kernel command line.
    #[serde(default)]
    pub kernel_args: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Iommu {
    /// `intel-iommu` properties as `key=value`.
    #[serde(default = "no_options")]
    pub options: Spanned<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    /// How the run must end (default: success).
    #[serde(default)]
    pub exit: ExpectedExit,
    /// Text that must appear on the console, in this order.
    #[serde(default)]
    pub output: Vec<String>,
    /// Text that must appear on the console, in any order (lines of
    /// services that run side by side).
    #[serde(default)]
    pub output_anywhere: Vec<String>,
    /// Text that must not appear on the console.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Seconds before the run counts as hung (default 60).
    pub timeout_secs: Option<u64>,
    /// Whether `cargo xtask test` runs this deployment (default true). The
    /// benchmark deployment sets it false: its figures need 100,000s of
    /// round trips, which take minutes under slow virtualisation; `cargo
    /// xtask bench` runs it.
    #[serde(default = "yes")]
    pub scenario: bool,
    /// The scenario shows the kernel's own boot checks of grants: grants
    /// that xtask's q35 machine map refuses (RAM, platform registers,
    /// bridges) are reported as warnings instead of errors and built
    /// anyway, so the kernel must refuse them (default false).
    #[serde(default)]
    pub kernel_refuses_grants: bool,
    /// The scenario makes tens of thousands of VM exits (a fault storm):
    /// under a KVM without hardware nested paging (EPT/NPT), where each
    /// costs a tenth of a millisecond and more and the run would take most
    /// of an hour, its KVM run is skipped with the reason and its TCG run
    /// counts alone; on a KVM with nested paging it runs under both
    /// (default false).
    #[serde(default)]
    pub heavy: bool,
}

fn yes() -> bool {
    true
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            exit: ExpectedExit::default(),
            output: Vec::new(),
            output_anywhere: Vec::new(),
            absent: Vec::new(),
            timeout_secs: None,
            scenario: true,
            kernel_refuses_grants: false,
            heavy: false,
        }
    }
}

/// The expected `isa-debug-exit` code, by name.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedExit {
    #[default]
    Success,
    Failure,
    Panic,
    Exception,
    BootFailure,
    NoIommu,
}

impl ExpectedExit {
    pub fn code(self) -> ExitCode {
        match self {
            Self::Success => ExitCode::Success,
            Self::Failure => ExitCode::Failure,
            Self::Panic => ExitCode::Panic,
            Self::Exception => ExitCode::Exception,
            Self::BootFailure => ExitCode::BootFailure,
            Self::NoIommu => ExitCode::NoIommu,
        }
    }
}

/// One service: a separate ring-3 program and what it may touch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Service {
    /// The package under `services/` whose binary of the same name this is.
    #[serde(rename = "crate")]
    pub krate: Spanned<String>,
    /// 0 (most important) to 15.
    pub priority: Spanned<u64>,
    /// Budget for ELF segments, stack and page tables, in KiB.
    pub memory_kib: Spanned<u64>,
    /// Stack size in KiB (default 16).
    pub stack_kib: Option<Spanned<u64>>,
    /// What happens when it faults (default: hold).
    pub restart: Option<Spanned<Restart>>,
    /// Holds the Supervisor capability and starts first.
    pub supervisor: Option<Spanned<bool>>,
    /// Owns every VT-d unit's registers (`vtd0`, `vtd1`, ...) and each
    /// unit's fault event interrupt (`vtd0-fault`, ...): the IOMMU service.
    pub vtd: Option<Spanned<bool>>,
    /// The notification bit of VT-d unit 0's fault event interrupt (unit
    /// `i` gets this bit plus `i`); only with `vtd = true` (default 1).
    pub vtd_fault_bit: Option<Spanned<u64>>,
    /// Cargo features of the service's crate to build it with (besides
    /// `image`), e.g. `["scalable"]`.
    #[serde(default)]
    pub features: Vec<Spanned<String>>,
    #[serde(default)]
    pub mmio: Vec<MmioGrant>,
    #[serde(default)]
    pub pci: Vec<PciGrant>,
    #[serde(default)]
    pub irqs: Vec<IrqGrant>,
    /// DMA budget in KiB (a capability named "dma").
    pub dma_kib: Option<Spanned<u64>>,
    #[serde(default)]
    pub notify: Vec<NotifyGrant>,
    /// The right to handle PCI functions' DMA faults (see [`FaultsGrant`]).
    #[serde(default)]
    pub faults: Vec<FaultsGrant>,
}

/// Default stack size in KiB.
pub const DEFAULT_STACK_KIB: u64 = 16;
/// Default notification bit of VT-d unit 0's fault event interrupt.
pub const DEFAULT_VTD_FAULT_BIT: u64 = 1;
/// Default `deadline-ms` of a `faults` grant: how long its holder has to
/// answer each DMA fault of the function, in milliseconds.
pub const DEFAULT_FAULT_DEADLINE_MS: u64 = 100;

impl Service {
    pub fn is_supervisor(&self) -> bool {
        self.supervisor.as_ref().is_some_and(|s| *s.get_ref())
    }

    /// Whether it holds the VT-d units (`vtd = true`).
    pub fn holds_vtd(&self) -> bool {
        self.vtd.as_ref().is_some_and(|v| *v.get_ref())
    }

    /// The notification bit of VT-d unit `unit`'s fault event interrupt:
    /// `vtd-fault-bit` (default 1) plus the unit's number.
    pub fn vtd_fault_bit(&self, unit: u64) -> u64 {
        self.vtd_fault_bit
            .as_ref()
            .map_or(DEFAULT_VTD_FAULT_BIT, |b| *b.get_ref())
            + unit
    }

    pub fn stack_kib(&self) -> u64 {
        self.stack_kib
            .as_ref()
            .map_or(DEFAULT_STACK_KIB, |s| *s.get_ref())
    }

    pub fn restart(&self) -> Restart {
        self.restart
            .as_ref()
            .map_or(Restart::Hold, |r| *r.get_ref())
    }
}

/// `restart = "hold"` or `restart = { backoff-ms = N, max-restarts = N }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    Hold,
    Backoff { backoff_ms: u64, max_restarts: u64 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BackoffTable {
    backoff_ms: u64,
    max_restarts: u64,
}

impl<'de> Deserialize<'de> for Restart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Restart;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"hold\" or { backoff-ms = N, max-restarts = N }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Restart, E> {
                match s {
                    "hold" => Ok(Restart::Hold),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Restart, A::Error> {
                let t =
                    BackoffTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Restart::Backoff {
                    backoff_ms: t.backoff_ms,
                    max_restarts: t.max_restarts,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Physical MMIO `[base, base + size)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MmioGrant {
    pub name: Spanned<String>,
    pub base: Spanned<u64>,
    pub size: Spanned<u64>,
}

/// The `index`-th PCI function with `device` = `"vvvv:dddd"` (hex), and
/// the memory BARs of it the service may map (each a capability named
/// `<name>-bar<N>`, resolved from the BAR at boot).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PciGrant {
    pub name: Spanned<String>,
    pub device: Spanned<String>,
    pub index: Option<Spanned<u64>>,
    #[serde(default)]
    pub bars: Vec<Spanned<u64>>,
}

/// `faults = [{ name = "edu", device = "1234:11e8", index = 0,
/// deadline-ms = 50 }]`: the right to handle the DMA faults of the
/// `index`-th PCI function (default 0) with `device` = `"vvvv:dddd"` (hex),
/// answering each within `deadline-ms` (1..=60000, default
/// [`DEFAULT_FAULT_DEADLINE_MS`]). A capability named `name`, and nothing
/// else: no config space, BARs, interrupts or bus mastering. One handler
/// per function; the holder is a client of the IOMMU service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FaultsGrant {
    pub name: Spanned<String>,
    pub device: Spanned<String>,
    pub index: Option<Spanned<u64>>,
    pub deadline_ms: Option<Spanned<u64>>,
}

impl FaultsGrant {
    pub fn index(&self) -> u64 {
        self.index.as_ref().map_or(0, |i| *i.get_ref())
    }

    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
            .as_ref()
            .map_or(DEFAULT_FAULT_DEADLINE_MS, |d| *d.get_ref())
    }
}

/// The MSI of the service's PCI grant named `pci`, delivered to the holder
/// as notification bit `bit`. The kernel programs the device's MSI.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IrqGrant {
    pub name: Spanned<String>,
    pub bit: Spanned<u64>,
    pub pci: Spanned<String>,
}

/// The right to post notification bit `bit` to `service`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifyGrant {
    pub name: Spanned<String>,
    pub service: Spanned<String>,
    pub bit: Spanned<u64>,
}

/// A channel between one client and one server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Channel {
    pub name: Spanned<String>,
    pub client: Spanned<String>,
    pub server: Spanned<String>,
    /// Reported to the server with every message (default: index + 1).
    pub badge: Option<Spanned<u64>>,
    /// The capability's name in the client (default: the channel's name).
    pub client_cap: Option<Spanned<String>>,
    /// The capability's name in the server (default: the channel's name).
    pub server_cap: Option<Spanned<String>>,
}

fn no_options() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

fn default_memory() -> Spanned<u64> {
    Spanned::new(0..0, 256)
}
