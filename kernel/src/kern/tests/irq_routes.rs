//! Interrupt remapping: only the IOMMU service routes a unit's device
//! interrupts, and the remappable MSI format it names them with.

use super::iommu::*;
use super::*;

#[test]
fn only_the_iommu_service_routes_interrupts_and_only_device_lines() {
    let (mut k, mut p) = dma_world(true);
    let route = |k: &mut Kernel, p: &mut FakePlatform, task, handle, irq| {
        sys(k, p, task, Sysnum::IrqRoute, [handle, irq, 0, 0, 0, 0]);
        result(k, task)
    };
    assert_eq!(
        route(&mut k, &mut p, IOMMU, VTD, 0),
        (0, [BDF_WORD, 0x40, 7, 1])
    );
    // A VT-d unit's own line: nothing to route, and no refusal.
    assert_eq!(route(&mut k, &mut p, IOMMU, VTD, 1), (0, [0; 4]));
    assert!(!p.logs.iter().any(|(_, l)| l.contains("refused")));
    assert_eq!(
        route(&mut k, &mut p, IOMMU, VTD, 2).0,
        Error::NotFound as u64
    );
    assert_eq!(
        route(&mut k, &mut p, IOMMU, VTD, 256).0,
        Error::NotFound as u64
    );
    assert_eq!(
        route(&mut k, &mut p, IOMMU, IOMMU_DMA, 0).0,
        Error::WrongKind as u64
    );
    assert_eq!(
        route(&mut k, &mut p, DRIVER, DMA, 0).0,
        Error::WrongKind as u64
    );
    let remap = |k: &mut Kernel, p: &mut FakePlatform, task, handle, irq, irte| {
        sys(k, p, task, Sysnum::IrqRemap, [handle, irq, irte, 0, 0, 0]);
        result(k, task).0
    };
    assert_eq!(
        remap(&mut k, &mut p, DRIVER, EDU, 0, 5),
        Error::WrongKind as u64
    );
    assert_eq!(
        remap(&mut k, &mut p, IOMMU, VTD, 0, 1 << 16),
        Error::BadArgument as u64
    );
    assert_eq!(
        remap(&mut k, &mut p, IOMMU, VTD, 1, 5),
        Error::WrongKind as u64
    );
    assert_eq!(
        remap(&mut k, &mut p, IOMMU, VTD, 9, 5),
        Error::NotFound as u64
    );
    assert!(
        p.remapped.is_empty(),
        "nothing reprogrammed by a refused call"
    );
    assert_eq!(remap(&mut k, &mut p, IOMMU, VTD, 0, 0xffff), 0);
    assert_eq!(remap(&mut k, &mut p, IOMMU, VTD, 0, u64::MAX), 0);
    assert_eq!(p.remapped, [(0, Some(0xffff)), (0, None)]);
}

#[test]
fn a_unit_routes_only_the_interrupts_of_functions_it_translates() {
    let (mut k, mut p) = dma_world(true);
    // Line 2 is a device on bus 5, which the fake platform's one unit
    // does not cover.
    p.irq_lines.push(Some((5, 0, 0)));
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::IrqRoute,
        [VTD, 2, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, IOMMU), (0, [0; 4]));
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::IrqRemap,
        [VTD, 2, 3, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::NotPermitted as u64);
    assert!(p.remapped.is_empty());
}

#[test]
fn remappable_msi_format_puts_every_handle_bit_in_its_place() {
    use crate::kern::iommu::remappable_msi;
    assert_eq!(remappable_msi(0), (0xfee0_0010, 0));
    assert_eq!(remappable_msi(1), (0xfee0_0030, 0));
    assert_eq!(remappable_msi(0x7fff), (0xfeef_fff0, 0));
    assert_eq!(remappable_msi(0x8000), (0xfee0_0014, 0));
    for h in [0u16, 1, 2, 0x100, 0x7fff, 0x8000, 0xffff] {
        let (a, _) = remappable_msi(h);
        let back = ((a >> 5) & 0x7fff) | (((a >> 2) & 1) << 15);
        assert_eq!(back, u64::from(h));
        assert_eq!(a >> 20, 0xfee);
    }
}
