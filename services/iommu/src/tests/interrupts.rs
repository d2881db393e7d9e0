//! Interrupt remapping as the service sets it up: every device line the
//! fake kernel reports gets an entry naming its function, and the kernel is
//! asked to repoint exactly those lines.

use faultline_iommu_core::Error as CoreError;
use faultline_iommu_core::Unsupported;
use faultline_iommu_core::model::{Interrupt, InterruptFault};
use userlib::IrqRoute;

use super::*;
use crate::interrupts::{InterruptRoutes, RemapError, remap_interrupts};

/// The kernel's interrupt lines: `None` for a line that is not a device's.
#[derive(Default)]
struct FakeLines {
    lines: Vec<Option<IrqRoute>>,
    remapped: Vec<(u8, u16)>,
    refuse_route: Option<u8>,
    refuse_remap: Option<u8>,
}

impl InterruptRoutes for FakeLines {
    fn route(&mut self, irq: u8) -> Result<Option<IrqRoute>, SysError> {
        if self.refuse_route == Some(irq) {
            return Err(SysError::Kernel(AbiError::BadHandle));
        }
        self.lines
            .get(usize::from(irq))
            .copied()
            .ok_or(SysError::Kernel(AbiError::NotFound))
    }

    fn remap(&mut self, irq: u8, irte: u16) -> Result<(), SysError> {
        if self.refuse_remap == Some(irq) {
            return Err(SysError::Kernel(AbiError::NotFound));
        }
        self.remapped.push((irq, irte));
        Ok(())
    }
}

const EDU_VECTOR: u8 = 0x51;
const NIC_VECTOR: u8 = 0x52;

/// Line 0 is the unit's fault interrupt, 1 is EDU's MSI, 2 is NIC's.
fn lines() -> FakeLines {
    FakeLines {
        lines: vec![
            None,
            Some(IrqRoute {
                bdf: EDU,
                vector: EDU_VECTOR,
                apic_id: 0,
            }),
            Some(IrqRoute {
                bdf: NIC,
                vector: NIC_VECTOR,
                apic_id: 0,
            }),
        ],
        ..FakeLines::default()
    }
}

/// The MSI address Faultline's kernel programs for entry `irte`.
fn msi_address(irte: u16) -> u64 {
    let h = u64::from(irte);
    0xfee0_0000 | (h & 0x7fff) << 5 | 1 << 4 | (h >> 15 & 1) << 2
}

fn unit(config: ModelConfig) -> (Model, Unit<ModelRegisters, ModelMemory, ModelDelay>) {
    let model = Model::new(config);
    let unit = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config::default(),
    )
    .expect("bring-up");
    (model, unit)
}

/// Rule: each device line gets the entry of its number, naming its
/// function and vector; non-device lines are skipped; each function's MSI
/// yields its own vector and nothing else.
#[test]
fn every_device_line_is_remapped_to_its_function() {
    let (model, mut unit) = unit(ModelConfig::qemu());
    let mut k = lines();
    assert_eq!(remap_interrupts(&mut unit, &mut k), Ok(2));
    assert_eq!(k.remapped, [(1, 1), (2, 2)]);
    assert!(model.interrupt_remapping_enabled());
    assert_eq!(
        model.deliver_msi(source(EDU), msi_address(1), 0),
        Ok(Interrupt {
            vector: EDU_VECTOR,
            destination: 0
        })
    );
    assert_eq!(
        model
            .deliver_msi(source(NIC), msi_address(2), 0)
            .map(|i| i.vector),
        Ok(NIC_VECTOR)
    );
    // EDU naming NIC's entry, or the fault line's, or writing a
    // compatibility-format MSI with NIC's vector: nothing.
    assert_eq!(
        model.deliver_msi(source(EDU), msi_address(2), 0),
        Err(InterruptFault::SourceRejected)
    );
    assert_eq!(
        model.deliver_msi(source(EDU), msi_address(0), 0),
        Err(InterruptFault::EntryNotPresent)
    );
    assert_eq!(
        model.deliver_msi(source(EDU), 0xfee0_0000, u32::from(NIC_VECTOR)),
        Err(InterruptFault::CompatibilityBlocked)
    );
}

/// Rule: with no device interrupts remapping is still on, and blocks
/// everything.
#[test]
fn no_device_lines_still_blocks() {
    let (model, mut unit) = unit(ModelConfig::qemu());
    let mut k = FakeLines {
        lines: vec![None],
        ..FakeLines::default()
    };
    assert_eq!(remap_interrupts(&mut unit, &mut k), Ok(0));
    assert!(model.interrupt_remapping_enabled());
    assert_eq!(
        model.deliver_msi(source(EDU), 0xfee0_0000, 0x30),
        Err(InterruptFault::CompatibilityBlocked)
    );
}

/// Rule: a kernel that will not say what a line is stops the setup before
/// remapping is on (no device would be left naming a missing entry).
#[test]
fn a_refused_route_leaves_remapping_off() {
    let (model, mut unit) = unit(ModelConfig::qemu());
    let mut k = FakeLines {
        refuse_route: Some(2),
        ..lines()
    };
    assert!(matches!(
        remap_interrupts(&mut unit, &mut k),
        Err(RemapError::Route { irq: 2, .. })
    ));
    assert!(!model.interrupt_remapping_enabled());
    assert!(k.remapped.is_empty());
}

/// Rule: a refused repointing is reported with its line; remapping stays on.
#[test]
fn a_refused_remap_names_the_line() {
    let (model, mut unit) = unit(ModelConfig::qemu());
    let mut k = FakeLines {
        refuse_remap: Some(2),
        ..lines()
    };
    assert!(matches!(
        remap_interrupts(&mut unit, &mut k),
        Err(RemapError::Remap { irq: 2, .. })
    ));
    assert!(model.interrupt_remapping_enabled());
    assert_eq!(k.remapped, [(1, 1)]);
}

/// Rule: without ECAP.IR, or with an APIC id only x2APIC mode can name on
/// a unit without ECAP.EIM, the core refuses and nothing is repointed.
#[test]
fn units_that_cannot_remap_refuse() {
    let (_, mut unit) = unit(ModelConfig::qemu().ecap_bit(3, false));
    let mut k = lines();
    assert_eq!(
        remap_interrupts(&mut unit, &mut k),
        Err(RemapError::Unit(CoreError::Unsupported(
            Unsupported::InterruptRemapping
        )))
    );
    let (_, mut unit) = super::interrupts::unit(ModelConfig::qemu());
    let mut k = lines();
    k.lines[1] = Some(IrqRoute {
        bdf: EDU,
        vector: EDU_VECTOR,
        apic_id: 0x100,
    });
    assert_eq!(
        remap_interrupts(&mut unit, &mut k),
        Err(RemapError::Unit(CoreError::Unsupported(
            Unsupported::ExtendedInterruptMode
        )))
    );
    assert!(k.remapped.is_empty());
}

/// Rule: an interrupt remapping fault is logged as a blocked interrupt
/// request naming its entry (the record's bits 63:48), not as a DMA fault.
#[test]
fn interrupt_faults_are_logged_as_such() {
    let (model, mut unit) = unit(ModelConfig::qemu());
    remap_interrupts(&mut unit, &mut lines()).unwrap();
    assert!(model.deliver_msi(source(EDU), msi_address(2), 0).is_err());
    let mut logged = Vec::new();
    unit.drain_faults(|f| logged.push(crate::faults::FaultLine(&f).to_string()));
    assert_eq!(
        logged,
        [
            "interrupt request from 00:03.0 blocked: entry 2: not from the function the entry \
          names (reason 0x26)"
        ]
    );
}
