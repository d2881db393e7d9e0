//! Checks of a manifest's services and channels, before anything is built.
//!
//! Every rule here is about the deployment as a whole being something the
//! kernel can start and that grants no more than it says: names, priorities
//! and budgets in range, a supervisor that outranks every other service,
//! one owner per device and per VT-d unit, no MMIO grant overlapping
//! another, notification bits that mean one thing each, plain cargo
//! feature names, channels whose two ends are two existing services, and
//! a channel to the IOMMU service from every bus-master driver on a
//! machine with an IOMMU and from every DMA fault handler (`iommu`), one
//! fault handler per function. Capability names
//! and counts are checked where the capabilities are laid out
//! (`kconfig`). All errors are collected, each as `path:line: message`, in
//! line order.

use super::Source;
use super::kconfig::{self, System};
use super::schema::{Manifest, Restart, Service};
use super::{features, grants, iommu, q35};
use faultline_ipc::kconfig::{MAX_CHANNELS, MAX_NAME, MAX_SERVICES};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

/// What [`check`] found.
pub struct Checked {
    pub errors: Vec<String>,
    /// Machine-map refusals reported as warnings: only for a scenario that
    /// shows the kernel refusing them itself (`[expect]
    /// kernel-refuses-grants`).
    pub warnings: Vec<String>,
    pub missing_crates: Vec<String>,
    /// What builds but deserves a word (e.g. DMA that is not isolated).
    pub notes: Vec<String>,
    pub system: Option<System>,
}

/// Collects `path:line: message` errors.
pub(super) struct Errors<'a> {
    pub src: &'a Source<'a>,
    list: Vec<(usize, String)>,
    warnings: Vec<String>,
    notes: Vec<String>,
    kernel_refuses: bool,
}

impl Errors<'_> {
    pub fn push(&mut self, span: Range<usize>, msg: impl std::fmt::Display) {
        self.list
            .push((span.start, format!("{}: {msg}", self.src.at(span))));
    }

    /// Something that builds but deserves a warning.
    pub fn warn(&mut self, span: Range<usize>, msg: impl std::fmt::Display) {
        self.notes.push(format!("{}: {msg}", self.src.at(span)));
    }

    /// The line of a span, to point at an earlier declaration.
    pub fn line(&self, span: Range<usize>) -> usize {
        self.src.line(span.start)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A grant the q35 machine map refuses: an error, or a warning when
    /// the deployment exists to show the kernel refusing it at boot.
    pub fn push_machine(&mut self, span: Range<usize>, msg: impl std::fmt::Display) {
        let line = format!("{}: {msg}", self.src.at(span.clone()));
        if self.kernel_refuses {
            self.warnings.push(line);
        } else {
            self.list.push((span.start, line));
        }
    }

    fn into_sorted(mut self) -> (Vec<String>, Vec<String>, Vec<String>) {
        self.list.sort_by_key(|(at, _)| *at);
        (
            self.list.into_iter().map(|(_, m)| m).collect(),
            self.warnings,
            self.notes,
        )
    }
}

/// Whether `s` is 1 to 24 bytes of `a-z`, `0-9` and `-`.
pub fn valid_name(s: &str) -> bool {
    (1..=MAX_NAME).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks services and channels and, if all is well, lays out the system.
pub fn check(src: &Source, name: &str, m: &Manifest, packages: &BTreeSet<String>) -> Checked {
    let mut errs = Errors {
        src,
        list: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
        kernel_refuses: m.expect.kernel_refuses_grants,
    };
    let mut missing_crates = Vec::new();
    let services = m.services_in_order();
    let known: BTreeSet<&str> = services.iter().map(|(k, _)| k.get_ref().as_str()).collect();

    if !services.is_empty() && name.len() > MAX_NAME {
        errs.push(
            0..0,
            format_args!("deployment name {name:?} is longer than {MAX_NAME} bytes"),
        );
    }
    if let Some((key, _)) = services.get(MAX_SERVICES) {
        errs.push(
            key.span(),
            format_args!(
                "{} services; a deployment has at most {MAX_SERVICES}",
                services.len()
            ),
        );
    }
    let mut supervisors = Vec::new();
    let mut total_kib = 0u64;
    for (key, s) in &services {
        let sname = key.get_ref().as_str();
        if !valid_name(sname) {
            errs.push(
                key.span(),
                format_args!("service name {sname:?}: use 1 to {MAX_NAME} bytes of a-z, 0-9 and -"),
            );
        }
        if !packages.contains(s.krate.get_ref()) {
            let list: Vec<&str> = packages.iter().map(String::as_str).collect();
            missing_crates.push(format!(
                "{}: service {sname}: crate {:?} is not a package under services/ (packages: {})",
                src.at(s.krate.span()),
                s.krate.get_ref(),
                list.join(", ")
            ));
        }
        check_budgets(&mut errs, sname, s);
        total_kib += s.memory_kib.get_ref() + s.dma_kib.as_ref().map_or(0, |d| *d.get_ref());
        if let Some(sup) = s.supervisor.as_ref().filter(|v| *v.get_ref()) {
            supervisors.push((sname, sup.span()));
        }
        for n in &s.notify {
            if !known.contains(n.service.get_ref().as_str()) {
                errs.push(
                    n.service.span(),
                    format_args!(
                        "service {sname}: notify {}: no service named {:?}",
                        n.name.get_ref(),
                        n.service.get_ref()
                    ),
                );
            }
        }
    }
    if let Some((first, _)) = services.first() {
        let limit = m.machine.memory_mib.get_ref() * 1024 / 2;
        if total_kib > limit {
            let span = m.machine.memory_mib.span();
            let span = if span.is_empty() { first.span() } else { span };
            errs.push(
                span,
                format_args!(
                    "services need {total_kib} KiB (memory-kib plus dma-kib), more than half of machine.memory-mib = {} ({limit} KiB)",
                    m.machine.memory_mib.get_ref()
                ),
            );
        }
        match supervisors.as_slice() {
            [] => errs.push(
                first.span(),
                "the deployment has services but no supervisor: set `supervisor = true` on one",
            ),
            [(a, _)] => check_supervisor_rank(&mut errs, &services, a),
            [(a, at), rest @ ..] => {
                for (b, span) in rest {
                    errs.push(
                        span.clone(),
                        format_args!(
                            "service {b}: a second supervisor (service {a} is one, line {}); at most one service may be",
                            errs.line(at.clone())
                        ),
                    );
                }
            }
        }
    }
    grants::check_mmio(&mut errs, &services, *m.machine.memory_mib.get_ref());
    grants::check_pci(&mut errs, &services);
    grants::check_faults(&mut errs, &services);
    let units = q35::vtd_units(m.machine.iommu.is_some()).len();
    grants::check_bits(&mut errs, &services, units);
    features::check(&mut errs, &services);
    check_channels(&mut errs, m, &known);
    iommu::check(&mut errs, m, &services);

    let system = if errs.is_empty() {
        kconfig::assemble(&mut errs, name, m)
    } else {
        None
    };
    let (errors, warnings, notes) = errs.into_sorted();
    Checked {
        errors,
        warnings,
        missing_crates,
        notes,
        system,
    }
}

/// The supervisor strictly outranks every other service (a lower priority
/// number), so that no service, spinning or not, can keep it from running
/// (Hubris' rule; the kernel refuses a config that breaks it). Each
/// service that does not rank below it is named at its `priority`.
fn check_supervisor_rank(
    errs: &mut Errors,
    services: &[(&toml::Spanned<String>, &Service)],
    sup: &str,
) {
    let Some((_, boss)) = services.iter().find(|(k, _)| k.get_ref() == sup) else {
        return;
    };
    let top = *boss.priority.get_ref();
    for (key, s) in services {
        let p = *s.priority.get_ref();
        if key.get_ref() != sup && p <= top {
            errs.push(
                s.priority.span(),
                format_args!(
                    "service {}: priority = {p} does not rank below the supervisor (service {sup}, priority = {top} on line {}); the supervisor must have the strictly highest priority (the lowest number)",
                    key.get_ref(),
                    errs.line(boss.priority.span())
                ),
            );
        }
    }
}

fn check_budgets(errs: &mut Errors, sname: &str, s: &Service) {
    let p = &s.priority;
    if *p.get_ref() > 15 {
        errs.push(
            p.span(),
            format_args!(
                "service {sname}: priority = {} is outside 0..=15",
                p.get_ref()
            ),
        );
    }
    let mem = &s.memory_kib;
    let kib = |errs: &mut Errors, key: &str, v: &toml::Spanned<u64>, range: Range<u64>| {
        let x = *v.get_ref();
        if !range.contains(&x) {
            errs.push(
                v.span(),
                format_args!(
                    "service {sname}: {key} = {x} is outside {}..={}",
                    range.start,
                    range.end - 1
                ),
            );
        } else if !x.is_multiple_of(4) {
            errs.push(
                v.span(),
                format_args!("service {sname}: {key} = {x} is not a multiple of 4 (whole pages)"),
            );
        }
    };
    kib(errs, "memory-kib", mem, 16..16 * 1024 + 1);
    if let Some(stack) = &s.stack_kib {
        kib(errs, "stack-kib", stack, 4..257);
    }
    if s.stack_kib() >= *mem.get_ref() {
        let span = s.stack_kib.as_ref().map_or(mem.span(), |v| v.span());
        errs.push(
            span,
            format_args!(
                "service {sname}: stack-kib = {} must be less than memory-kib = {}",
                s.stack_kib(),
                mem.get_ref()
            ),
        );
    }
    if let Some(dma) = &s.dma_kib {
        kib(errs, "dma-kib", dma, 4..64 * 1024 + 1);
    }
    if let Some(r) = &s.restart
        && let Restart::Backoff {
            backoff_ms,
            max_restarts,
        } = *r.get_ref()
    {
        if !(1..=60_000).contains(&backoff_ms) {
            errs.push(
                r.span(),
                format_args!("service {sname}: backoff-ms = {backoff_ms} is outside 1..=60000"),
            );
        }
        if !(1..=1000).contains(&max_restarts) {
            errs.push(
                r.span(),
                format_args!("service {sname}: max-restarts = {max_restarts} is outside 1..=1000"),
            );
        }
    }
}

/// Channels: unique valid names, two distinct existing ends, and badges
/// that tell a server's clients apart.
fn check_channels(errs: &mut Errors, m: &Manifest, known: &BTreeSet<&str>) {
    if let Some(c) = m.channels.get(MAX_CHANNELS) {
        errs.push(
            c.name.span(),
            format_args!(
                "{} channels; a deployment has at most {MAX_CHANNELS}",
                m.channels.len()
            ),
        );
    }
    let mut names: BTreeMap<&str, Range<usize>> = BTreeMap::new();
    let mut badges: BTreeMap<(&str, u64), (&str, Range<usize>)> = BTreeMap::new();
    for (i, c) in m.channels.iter().enumerate() {
        let cname = c.name.get_ref().as_str();
        if !valid_name(cname) {
            errs.push(
                c.name.span(),
                format_args!("channel name {cname:?}: use 1 to {MAX_NAME} bytes of a-z, 0-9 and -"),
            );
        }
        if let Some(at) = names.get(cname) {
            errs.push(
                c.name.span(),
                format_args!(
                    "channel {cname}: a channel of that name is already declared (line {})",
                    errs.line(at.clone())
                ),
            );
        } else {
            names.insert(cname, c.name.span());
        }
        for (role, end) in [("client", &c.client), ("server", &c.server)] {
            if !known.contains(end.get_ref().as_str()) {
                errs.push(
                    end.span(),
                    format_args!(
                        "channel {cname}: {role} {:?} is not a service of this deployment",
                        end.get_ref()
                    ),
                );
            }
        }
        if c.client.get_ref() == c.server.get_ref() {
            errs.push(
                c.server.span(),
                format_args!(
                    "channel {cname}: client and server are both {}; a channel joins two services",
                    c.server.get_ref()
                ),
            );
        }
        let badge = c.badge.as_ref().map_or(i as u64 + 1, |b| *b.get_ref());
        let span = c.badge.as_ref().map_or(c.name.span(), |b| b.span());
        let server = c.server.get_ref().as_str();
        if let Some((other, at)) = badges.get(&(server, badge)) {
            errs.push(
                span,
                format_args!(
                    "channel {cname}: badge {badge} is already used by channel {other} (line {}) to server {server}",
                    errs.line(at.clone())
                ),
            );
        } else {
            badges.insert((server, badge), (cname, span));
        }
    }
}
