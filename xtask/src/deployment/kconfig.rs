//! Laying a validated manifest out as the [`KernelConfig`] the kernel gets.
//!
//! The layout is fixed and documented because services find their handles
//! by it (or by name through `CapLookup`):
//!
//! - Services: the supervisor first (index 0), then the others in manifest
//!   order.
//! - Images: one per distinct crate, numbered in service order.
//! - Channels: in manifest order; the default badge is index + 1.
//! - A service's capabilities, in handle order: `supervisor`, per VT-d
//!   unit `vtd<N>` (its registers) and `vtd<N>-fault` (its fault event
//!   interrupt, notification bit `vtd-fault-bit` + N), its `mmio` grants, `pci` grants (each followed by its `bars`, named
//!   `<pci name>-bar<N>`), `irqs`, `dma`, `notify` grants, `faults` grants
//!   (each in manifest order), then one end per channel it is on, in
//!   channel order (its client end or its server end).
//!
//! Capability names must be unique within a service and at most
//! [`MAX_CAP_NAME`] bytes; a service holds at most [`MAX_CAPS`].

use super::grants::parse_pci_id;
use super::q35;
use super::schema::{Manifest, Restart};
use super::validate::{Errors, valid_name};
use faultline_ipc::abi::MAX_CAP_NAME;
use faultline_ipc::kconfig::{
    CONFIG_VERSION, CapConfig, CapSpec, ChannelConfig, KernelConfig, MAX_CAPS, RestartPolicy,
    ServiceConfig,
};
use std::collections::BTreeMap;
use std::ops::Range;

/// A deployment's services as the kernel will start them.
#[derive(Debug)]
pub struct System {
    pub config: KernelConfig,
    /// The crate each image is built from, by image index.
    pub images: Vec<String>,
    /// The cargo features (besides `image`) each image is built with, by
    /// image index.
    pub features: Vec<Vec<String>>,
    /// Per service, in `config.services` order.
    pub services: Vec<ServicePlan>,
}

/// What building and checking one service's image needs to know.
#[derive(Debug)]
pub struct ServicePlan {
    pub name: String,
    pub krate: String,
    pub image: usize,
    pub memory_kib: u64,
    pub stack_kib: u64,
    /// `path:line` of the service's `memory-kib`, for budget errors.
    pub at: String,
}

struct Cap {
    name: String,
    span: Range<usize>,
    kind: CapSpec,
}

fn bits(bit: u64) -> u32 {
    1u32 << bit
}

/// Builds the system; returns `None` (with errors pushed) if a service's
/// capability names clash or are too many.
pub(super) fn assemble(errs: &mut Errors, name: &str, m: &Manifest) -> Option<System> {
    let listed = m.services_in_order();
    if listed.is_empty() {
        return None;
    }
    let units = q35::vtd_units(m.machine.iommu.is_some()).len() as u8;
    let mut order: Vec<usize> = (0..listed.len())
        .filter(|&i| listed[i].1.is_supervisor())
        .collect();
    order.extend((0..listed.len()).filter(|&i| !listed[i].1.is_supervisor()));
    let index: BTreeMap<&str, u8> = order
        .iter()
        .enumerate()
        .map(|(pos, &i)| (listed[i].0.get_ref().as_str(), pos as u8))
        .collect();

    let mut images: Vec<String> = Vec::new();
    let mut features = Vec::new();
    let mut plans = Vec::new();
    let mut services = heapless::Vec::new();
    for &i in &order {
        let (key, s) = listed[i];
        let sname = key.get_ref().as_str();
        let mut caps: Vec<Cap> = Vec::new();
        if let Some(v) = s.supervisor.as_ref().filter(|v| *v.get_ref()) {
            caps.push(Cap {
                name: "supervisor".into(),
                span: v.span(),
                kind: CapSpec::Supervisor,
            });
        }
        if let Some(v) = s.vtd.as_ref().filter(|v| *v.get_ref()) {
            for unit in 0..units {
                caps.push(Cap {
                    name: format!("vtd{unit}"),
                    span: v.span(),
                    kind: CapSpec::VtdMmio { unit },
                });
                caps.push(Cap {
                    name: format!("vtd{unit}-fault"),
                    span: v.span(),
                    kind: CapSpec::VtdIrq {
                        unit,
                        bits: bits(s.vtd_fault_bit(u64::from(unit))),
                    },
                });
            }
        }
        for g in &s.mmio {
            caps.push(Cap {
                name: g.name.get_ref().clone(),
                span: g.name.span(),
                kind: CapSpec::Mmio {
                    base: *g.base.get_ref(),
                    len: *g.size.get_ref(),
                },
            });
        }
        let mut pci_handles: BTreeMap<&str, u8> = BTreeMap::new();
        for g in &s.pci {
            let (vendor, device) = parse_pci_id(g.device.get_ref()).expect("validated");
            pci_handles.insert(g.name.get_ref().as_str(), caps.len() as u8);
            let pci = caps.len() as u8;
            caps.push(Cap {
                name: g.name.get_ref().clone(),
                span: g.name.span(),
                kind: CapSpec::Pci {
                    vendor,
                    device,
                    index: g.index.as_ref().map_or(0, |i| *i.get_ref() as u8),
                },
            });
            for bar in &g.bars {
                caps.push(Cap {
                    name: format!("{}-bar{}", g.name.get_ref(), bar.get_ref()),
                    span: bar.span(),
                    kind: CapSpec::PciBar {
                        pci,
                        bar: *bar.get_ref() as u8,
                    },
                });
            }
        }
        for g in &s.irqs {
            let Some(&pci) = pci_handles.get(g.pci.get_ref().as_str()) else {
                errs.push(
                    g.pci.span(),
                    format_args!(
                        "service {sname}: irq {}: pci {:?} names none of this service's pci grants",
                        g.name.get_ref(),
                        g.pci.get_ref()
                    ),
                );
                continue;
            };
            caps.push(Cap {
                name: g.name.get_ref().clone(),
                span: g.name.span(),
                kind: CapSpec::Irq {
                    bits: bits(*g.bit.get_ref()),
                    pci,
                },
            });
        }
        if let Some(d) = &s.dma_kib {
            caps.push(Cap {
                name: "dma".into(),
                span: d.span(),
                kind: CapSpec::Dma {
                    bytes: d.get_ref() * 1024,
                },
            });
        }
        for g in &s.notify {
            caps.push(Cap {
                name: g.name.get_ref().clone(),
                span: g.name.span(),
                kind: CapSpec::Notification {
                    target: index[g.service.get_ref().as_str()],
                    bits: bits(*g.bit.get_ref()),
                },
            });
        }
        for g in &s.faults {
            let (vendor, device) = parse_pci_id(g.device.get_ref()).expect("validated");
            caps.push(Cap {
                name: g.name.get_ref().clone(),
                span: g.name.span(),
                kind: CapSpec::Faults {
                    vendor,
                    device,
                    index: g.index() as u8,
                    deadline_ms: g.deadline_ms() as u32,
                },
            });
        }
        for (ch, c) in m.channels.iter().enumerate() {
            let (role, kind) = if c.client.get_ref() == sname {
                (&c.client_cap, CapSpec::Client { channel: ch as u8 })
            } else if c.server.get_ref() == sname {
                let badge = c.badge.as_ref().map_or(ch as u64 + 1, |b| *b.get_ref());
                (
                    &c.server_cap,
                    CapSpec::Server {
                        channel: ch as u8,
                        badge,
                    },
                )
            } else {
                continue;
            };
            let (cap_name, span) = match role {
                Some(n) => (n.get_ref().clone(), n.span()),
                None => (c.name.get_ref().clone(), c.name.span()),
            };
            caps.push(Cap {
                name: cap_name,
                span,
                kind,
            });
        }
        check_caps(errs, sname, &caps);

        let image = match images.iter().position(|k| k == s.krate.get_ref()) {
            Some(i) => i,
            None => {
                images.push(s.krate.get_ref().clone());
                features.push(super::features::of(s));
                images.len() - 1
            }
        };
        plans.push(ServicePlan {
            name: sname.to_string(),
            krate: s.krate.get_ref().clone(),
            image,
            memory_kib: *s.memory_kib.get_ref(),
            stack_kib: s.stack_kib(),
            at: errs.src.at(s.memory_kib.span()),
        });
        if !errs.is_empty() {
            continue;
        }
        let restart = match s.restart() {
            Restart::Hold => RestartPolicy::Hold,
            Restart::Backoff {
                backoff_ms,
                max_restarts,
            } => RestartPolicy::Restart {
                backoff_ms: backoff_ms as u32,
                max_restarts: max_restarts as u32,
            },
        };
        let mut table = heapless::Vec::new();
        for c in caps {
            table
                .push(CapConfig {
                    name: c.name.as_str().try_into().expect("checked length"),
                    kind: c.kind,
                })
                .expect("checked count");
        }
        services
            .push(ServiceConfig {
                name: sname.try_into().expect("checked length"),
                image: image as u8,
                priority: *s.priority.get_ref() as u8,
                memory_pages: (s.memory_kib.get_ref() / 4) as u32,
                stack_pages: (s.stack_kib() / 4) as u32,
                restart,
                caps: table,
            })
            .expect("checked count");
    }
    if !errs.is_empty() {
        return None;
    }
    let mut channels = heapless::Vec::new();
    for c in &m.channels {
        channels
            .push(ChannelConfig {
                name: c.name.get_ref().as_str().try_into().expect("checked"),
                client: index[c.client.get_ref().as_str()],
                server: index[c.server.get_ref().as_str()],
            })
            .expect("checked count");
    }
    Some(System {
        config: KernelConfig {
            version: CONFIG_VERSION,
            deployment: name.try_into().expect("checked length"),
            services,
            channels,
        },
        images,
        features,
        services: plans,
    })
}

fn check_caps(errs: &mut Errors, sname: &str, caps: &[Cap]) {
    let mut seen: BTreeMap<&str, Range<usize>> = BTreeMap::new();
    for c in caps {
        if !valid_name(&c.name) || c.name.len() > MAX_CAP_NAME {
            errs.push(
                c.span.clone(),
                format_args!(
                    "service {sname}: capability name {:?}: use 1 to {MAX_CAP_NAME} bytes of a-z, 0-9 and -",
                    c.name
                ),
            );
        }
        if let Some(at) = seen.get(c.name.as_str()) {
            errs.push(
                c.span.clone(),
                format_args!(
                    "service {sname}: capability name {:?} is already used by this service (line {})",
                    c.name,
                    errs.line(at.clone())
                ),
            );
        } else {
            seen.insert(&c.name, c.span.clone());
        }
    }
    if caps.len() > MAX_CAPS {
        errs.push(
            caps[MAX_CAPS].span.clone(),
            format_args!(
                "service {sname}: {} capabilities; a service holds at most {MAX_CAPS}",
                caps.len()
            ),
        );
    }
}
