//! Checks of who holds the VT-d units and who must talk to their holder.
//!
//! The IOMMU service (`vtd = true`) alone holds every VT-d unit's
//! registers and fault interrupt, so a second holder is an error that
//! names the units. On a machine with an IOMMU the kernel refuses a
//! function's bus mastering until the IOMMU service has attached it to a
//! domain, so a driver of a bus-master device (a service holding a PCI
//! function and a DMA budget) that has no client channel to the IOMMU
//! service could never DMA: the build refuses it rather than let it fail
//! at run time. On a machine without an IOMMU such a driver is allowed,
//! with a warning that its DMA is not isolated. A DMA fault handler (a
//! service with `faults` grants) likewise needs a client channel to the
//! IOMMU service, which alone sees the faults; without an IOMMU it has
//! nothing to handle and is an error.

use super::q35;
use super::schema::{Manifest, Service};
use super::validate::Errors;
use std::ops::Range;

type Services<'a> = [(&'a toml::Spanned<String>, &'a Service)];

/// The capability names of `units` VT-d units: `vtd0, vtd1, ...`.
pub fn unit_names(units: usize) -> String {
    let names: Vec<String> = (0..units).map(|u| format!("vtd{u}")).collect();
    names.join(", ")
}

/// VT-d ownership and the drivers' channels to the owner.
pub(super) fn check(errs: &mut Errors, m: &Manifest, services: &Services) {
    let units = q35::vtd_units(m.machine.iommu.is_some()).len();
    let mut owner: Option<(&str, Range<usize>)> = None;
    for (key, s) in services {
        let sname = key.get_ref().as_str();
        let Some(vtd) = s.vtd.as_ref().filter(|v| *v.get_ref()) else {
            if let Some(bit) = &s.vtd_fault_bit {
                errs.push(
                    bit.span(),
                    format_args!("service {sname}: vtd-fault-bit without vtd = true"),
                );
            }
            continue;
        };
        if units == 0 {
            errs.push(
                vtd.span(),
                format_args!(
                    "service {sname}: vtd = true, but the machine has no IOMMU (no [machine.iommu]), so there are no VT-d units to grant"
                ),
            );
            continue;
        }
        match &owner {
            Some((first, at)) => errs.push(
                vtd.span(),
                format_args!(
                    "service {sname}: vtd = true, but service {first} already holds the VT-d units ({}) (line {})",
                    unit_names(units),
                    errs.line(at.clone())
                ),
            ),
            None => owner = Some((sname, vtd.span())),
        }
    }
    for (key, s) in services {
        check_driver(errs, m, key.get_ref(), s, units, owner.as_ref());
        check_fault_handler(errs, m, key.get_ref(), s, units, owner.as_ref());
    }
}

/// Whether `sname` is the client of a channel to `iommu`.
fn has_client_channel(m: &Manifest, sname: &str, iommu: &str) -> bool {
    m.channels
        .iter()
        .any(|c| c.client.get_ref() == sname && c.server.get_ref() == iommu)
}

/// A service holding `faults` grants handles DMA faults that only the
/// IOMMU service sees, and is told them (and vouched for, with
/// `ClientFaults`) in calls to it: like a bus-master driver, it needs a
/// client channel to the IOMMU service, so a machine without an IOMMU, a
/// deployment without an IOMMU service, and the IOMMU service itself
/// cannot hold one.
fn check_fault_handler(
    errs: &mut Errors,
    m: &Manifest,
    sname: &str,
    s: &Service,
    units: usize,
    owner: Option<&(&str, Range<usize>)>,
) {
    let Some(g) = s.faults.first() else {
        return;
    };
    let what = format!("service {sname}: faults {}", g.name.get_ref());
    let span = g.name.span();
    if units == 0 {
        errs.push(
            span,
            format_args!(
                "{what}: the machine has no IOMMU (no [machine.iommu]), so there are no DMA faults to handle"
            ),
        );
        return;
    }
    if s.holds_vtd() {
        errs.push(
            span,
            format_args!(
                "{what}: service {sname} holds the VT-d units itself; a fault handler is a client of the IOMMU service, which sees every fault already"
            ),
        );
        return;
    }
    let Some((iommu, _)) = owner else {
        errs.push(
            span,
            format_args!(
                "{what}: no service holds the VT-d units ({}); a fault handler is told its faults by the IOMMU service (`vtd = true`)",
                unit_names(units)
            ),
        );
        return;
    };
    if !has_client_channel(m, sname, iommu) {
        errs.push(
            span,
            format_args!(
                "{what}: a fault handler needs a client channel to service {iommu}, which holds the VT-d units and reports their faults: add [[channels]] with client = \"{sname}\" and server = \"{iommu}\""
            ),
        );
    }
}

/// A service holding a PCI function and a DMA budget drives a bus-master
/// device: with an IOMMU it needs a client channel to the IOMMU service.
fn check_driver(
    errs: &mut Errors,
    m: &Manifest,
    sname: &str,
    s: &Service,
    units: usize,
    owner: Option<&(&str, Range<usize>)>,
) {
    let (Some(pci), Some(dma)) = (s.pci.first(), &s.dma_kib) else {
        return;
    };
    if s.holds_vtd() {
        return;
    }
    let device = pci.name.get_ref();
    if units == 0 {
        errs.warn(
            dma.span(),
            format_args!(
                "service {sname}: drives pci {device} with a DMA budget on a machine without an IOMMU: its device's DMA is not isolated"
            ),
        );
        return;
    }
    let Some((iommu, _)) = owner else {
        errs.push(
            dma.span(),
            format_args!(
                "service {sname}: drives pci {device} with a DMA budget (a bus-master device), but no service holds the VT-d units ({}); on a machine with an IOMMU a driver needs the IOMMU service (`vtd = true`) to attach its device before it may DMA",
                unit_names(units)
            ),
        );
        return;
    };
    if !has_client_channel(m, sname, iommu) {
        errs.push(
            dma.span(),
            format_args!(
                "service {sname}: drives pci {device} with a DMA budget (a bus-master device), but has no client channel to service {iommu}, which holds the VT-d units; on a machine with an IOMMU its device may not DMA until {iommu} attaches it: add [[channels]] with client = \"{sname}\" and server = \"{iommu}\""
            ),
        );
    }
}
