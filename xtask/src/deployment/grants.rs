//! Checks of the hardware a manifest grants: MMIO ranges, PCI functions
//! and their BARs, the right to handle a function's DMA faults, and the
//! notification bits that IRQs and `notify` grants
//! deliver.
//!
//! Two rules stand behind them. Single ownership: an MMIO page, a PCI
//! function, VT-d unit 0's registers and a service's notification bit each
//! belong to one grant, so no two services (or two grants of one service)
//! can act on the same hardware or mean two things by the same bit. And
//! the machine is the kernel's: no grant reaches RAM, the platform's own
//! registers, a bridge or a chipset function (the map is in `q35`).

use super::q35;
use super::schema::Service;
use super::validate::Errors;
use faultline_ipc::abi::NOTIFY_USER_BITS;
use faultline_ipc::kconfig::MAX_FAULT_DEADLINE_MS;
use std::collections::BTreeMap;
use std::ops::Range;

/// Highest notification bit a deployment may assign: the top of
/// [`NOTIFY_USER_BITS`] (29, 30 and 31 are the kernel's: DMA revoked,
/// timer and task fault).
pub const MAX_BIT: u64 = (u32::BITS - 1 - NOTIFY_USER_BITS.leading_zeros()) as u64;
/// A type-0 PCI header has six BARs.
const MAX_BAR: u64 = 5;
/// Physical addresses are at most 52 bits wide.
const PHYS_LIMIT: u64 = 1 << 52;

/// Parses `"vvvv:dddd"` (hex).
pub fn parse_pci_id(s: &str) -> Option<(u16, u16)> {
    let (v, d) = s.split_once(':')?;
    let hex = |x: &str| {
        (x.len() == 4 && x.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u16::from_str_radix(x, 16).ok())
            .flatten()
    };
    Some((hex(v)?, hex(d)?))
}

type Services<'a> = [(&'a toml::Spanned<String>, &'a Service)];

/// MMIO grants: page-aligned, non-empty, inside the physical address space,
/// clear of RAM and the platform's registers on a machine with
/// `memory_mib` MiB (see `q35`), and clear of each other (across all
/// services).
pub(super) fn check_mmio(errs: &mut Errors, services: &Services, memory_mib: u64) {
    let mut seen: Vec<(Range<u64>, String, Range<usize>)> = Vec::new();
    for (key, s) in services {
        let sname = key.get_ref();
        for g in &s.mmio {
            let (base, size) = (*g.base.get_ref(), *g.size.get_ref());
            let what = format!("service {sname}: mmio {}", g.name.get_ref());
            if size == 0 {
                errs.push(g.size.span(), format_args!("{what}: size is zero"));
                continue;
            }
            if !base.is_multiple_of(4096) || !size.is_multiple_of(4096) {
                errs.push(
                    g.base.span(),
                    format_args!(
                        "{what}: base {base:#x} and size {size:#x} must be multiples of 4096"
                    ),
                );
                continue;
            }
            let Some(end) = base.checked_add(size).filter(|e| *e <= PHYS_LIMIT) else {
                errs.push(
                    g.base.span(),
                    format_args!("{what}: [{base:#x}, +{size:#x}) lies beyond the 52-bit physical address space"),
                );
                continue;
            };
            let range = base..end;
            if let Some(r) = q35::conflict(&range, memory_mib) {
                let instead = if r.instead.is_empty() {
                    "grant a device's registers by PCI BAR (`pci = [{ ..., bars = [N] }]`)"
                } else {
                    r.instead
                };
                errs.push_machine(
                    g.base.span(),
                    format_args!(
                        "{what}: [{base:#x}, {end:#x}) overlaps {} [{:#x}, {:#x}); {instead}",
                        r.name, r.range.start, r.range.end
                    ),
                );
                continue;
            }
            if let Some((_, other, at)) = seen
                .iter()
                .find(|(r, _, _)| r.start < range.end && range.start < r.end)
            {
                errs.push(
                    g.base.span(),
                    format_args!(
                        "{what}: [{base:#x}, {end:#x}) overlaps {other} (line {})",
                        errs.line(at.clone())
                    ),
                );
                continue;
            }
            seen.push((range, what, g.base.span()));
        }
    }
}

/// PCI grants: a well-formed `vendor:device` that is neither a bridge nor
/// a chipset function, one owner per function, and BARs 0..=5, each
/// listed once.
pub(super) fn check_pci(errs: &mut Errors, services: &Services) {
    let mut owners: BTreeMap<(u16, u16, u64), (String, Range<usize>)> = BTreeMap::new();
    for (key, s) in services {
        for g in &s.pci {
            let what = format!("service {}: pci {}", key.get_ref(), g.name.get_ref());
            let Some((vendor, device)) = grantable_id(errs, &what, &g.device) else {
                continue;
            };
            check_bars(errs, &what, &g.bars);
            let Some(index) = function_index(errs, &what, g.index.as_ref()) else {
                continue;
            };
            if let Some((other, at)) = owners.get(&(vendor, device, index)) {
                errs.push(
                    g.device.span(),
                    format_args!(
                        "{what}: PCI device {vendor:04x}:{device:04x} index {index} is already granted to {other} (line {})",
                        errs.line(at.clone())
                    ),
                );
            } else {
                owners.insert((vendor, device, index), (what, g.device.span()));
            }
        }
    }
}

/// Fault handler grants (`faults`): the function is named as a PCI grant
/// names it (and refused the same way), the deadline is 1 ms to a minute,
/// and each function has one fault handler across the deployment (two
/// handlers for one device could each answer its faults differently).
pub(super) fn check_faults(errs: &mut Errors, services: &Services) {
    let mut handlers: BTreeMap<(u16, u16, u64), (String, Range<usize>)> = BTreeMap::new();
    for (key, s) in services {
        for g in &s.faults {
            let what = format!("service {}: faults {}", key.get_ref(), g.name.get_ref());
            let Some((vendor, device)) = grantable_id(errs, &what, &g.device) else {
                continue;
            };
            if let Some(d) = &g.deadline_ms {
                let ms = *d.get_ref();
                if !(1..=u64::from(MAX_FAULT_DEADLINE_MS)).contains(&ms) {
                    errs.push(
                        d.span(),
                        format_args!(
                            "{what}: deadline-ms = {ms} is outside 1..={MAX_FAULT_DEADLINE_MS}"
                        ),
                    );
                }
            }
            let Some(index) = function_index(errs, &what, g.index.as_ref()) else {
                continue;
            };
            if let Some((other, at)) = handlers.get(&(vendor, device, index)) {
                errs.push(
                    g.device.span(),
                    format_args!(
                        "{what}: the DMA faults of PCI device {vendor:04x}:{device:04x} index {index} are already handled by {other} (line {}); a function has one fault handler",
                        errs.line(at.clone())
                    ),
                );
            } else {
                handlers.insert((vendor, device, index), (what, g.device.span()));
            }
        }
    }
}

/// A grant's `device`: a well-formed `vendor:device` that is neither a
/// bridge nor a chipset function.
fn grantable_id(
    errs: &mut Errors,
    what: &str,
    device: &toml::Spanned<String>,
) -> Option<(u16, u16)> {
    let Some((vendor, id)) = parse_pci_id(device.get_ref()) else {
        errs.push(
            device.span(),
            format_args!(
                "{what}: device {:?} is not vendor:device in hex, e.g. \"1234:11e8\"",
                device.get_ref()
            ),
        );
        return None;
    };
    if let Some(function) = q35::refused_function(vendor, id) {
        errs.push_machine(
            device.span(),
            format_args!(
                "{what}: {vendor:04x}:{id:04x} is {function}; bridges and chipset functions are the kernel's, never granted"
            ),
        );
        return None;
    }
    Some((vendor, id))
}

/// A grant's `index` (default 0): which function of that vendor:device,
/// in scan order, 0..=255.
fn function_index(
    errs: &mut Errors,
    what: &str,
    index: Option<&toml::Spanned<u64>>,
) -> Option<u64> {
    let Some(i) = index else {
        return Some(0);
    };
    let n = *i.get_ref();
    if n > 255 {
        errs.push(
            i.span(),
            format_args!("{what}: index {n} is outside 0..=255"),
        );
        return None;
    }
    Some(n)
}

/// A PCI grant's `bars`: each a BAR number (0..=5), none twice. Whether a
/// BAR is a memory BAR (and not the upper half of a 64-bit one) is known
/// only at boot; the kernel checks it there.
fn check_bars(errs: &mut Errors, what: &str, bars: &[toml::Spanned<u64>]) {
    let mut seen: BTreeMap<u64, Range<usize>> = BTreeMap::new();
    for bar in bars {
        let n = *bar.get_ref();
        if n > MAX_BAR {
            errs.push(
                bar.span(),
                format_args!("{what}: bars: {n} is not a BAR number (0..={MAX_BAR})"),
            );
        } else if let Some(at) = seen.get(&n) {
            errs.push(
                bar.span(),
                format_args!(
                    "{what}: bars: BAR {n} is already listed (line {})",
                    errs.line(at.clone())
                ),
            );
        } else {
            seen.insert(n, bar.span());
        }
    }
}

/// Notification bits: in range, and each bit a service receives comes from
/// one source (one of its IRQs, the fault interrupt of one of the
/// machine's `units` VT-d units, or one notify grant aimed at it).
pub(super) fn check_bits(errs: &mut Errors, services: &Services, units: usize) {
    let mut used: BTreeMap<(String, u64), (String, Range<usize>)> = BTreeMap::new();
    let mut claim = |errs: &mut Errors, target: &str, bit: &toml::Spanned<u64>, what: String| {
        let b = *bit.get_ref();
        if b > MAX_BIT {
            errs.push(
                bit.span(),
                format_args!("{what}: bit {b} is outside 0..={MAX_BIT}"),
            );
        } else if let Some((other, at)) = used.get(&(target.to_string(), b)) {
            errs.push(
                bit.span(),
                format_args!(
                    "{what}: bit {b} of service {target} is already taken by {other} (line {})",
                    errs.line(at.clone())
                ),
            );
        } else {
            used.insert((target.to_string(), b), (what, bit.span()));
        }
    };
    for (key, s) in services {
        let sname = key.get_ref().as_str();
        for g in &s.irqs {
            let what = format!("service {sname}: irq {}", g.name.get_ref());
            claim(errs, sname, &g.bit, what);
        }
        if s.holds_vtd() {
            let span = s
                .vtd_fault_bit
                .as_ref()
                .map_or_else(|| s.vtd.as_ref().expect("vtd = true").span(), |b| b.span());
            for unit in 0..units as u64 {
                let bit = toml::Spanned::new(span.clone(), s.vtd_fault_bit(unit));
                claim(
                    errs,
                    sname,
                    &bit,
                    format!("service {sname}: irq vtd{unit}-fault"),
                );
            }
        }
    }
    for (key, s) in services {
        let sname = key.get_ref().as_str();
        for g in &s.notify {
            let what = format!("service {sname}: notify {}", g.name.get_ref());
            claim(errs, g.service.get_ref(), &g.bit, what);
        }
    }
}
