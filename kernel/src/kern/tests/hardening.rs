//! The rules a hostile service runs into: the PCI configuration allow-list,
//! MSI owned by the kernel, BAR grants with the MSI-X table cut out, grants
//! checked against the machine at boot, and devices quiesced when their
//! driver stops.

use super::*;
use crate::kern::grants::{MachineMap, Reserved};

const DRIVER: usize = 1;
const LAPIC_GRANT: usize = 2;
const BRIDGE_GRANT: usize = 3;

/// supervisor; a driver with edu, its BAR0, its MSI and a raw MMIO grant;
/// a service granted the LAPIC; a service granted the host bridge.
fn drivers() -> (Kernel, FakePlatform, OneDevice) {
    let edu = CapSpec::Pci {
        vendor: 0x1234,
        device: 0x11e8,
        index: 0,
    };
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "t".try_into().unwrap(),
        services: [
            service("sup", 0, &[cap("supervisor", CapSpec::Supervisor)]),
            service(
                "driver",
                1,
                &[
                    cap("edu", edu.clone()),
                    cap("edu-bar0", CapSpec::PciBar { pci: 0, bar: 0 }),
                    cap("edu-irq", CapSpec::Irq { bits: 2, pci: 0 }),
                    cap(
                        "regs",
                        CapSpec::Mmio {
                            base: 0xfeb0_0000,
                            len: 0x1000,
                        },
                    ),
                ],
            ),
            service(
                "lapic",
                2,
                &[cap(
                    "lapic",
                    CapSpec::Mmio {
                        base: 0xfee0_0000,
                        len: 0x1000,
                    },
                )],
            ),
            service(
                "bridge",
                2,
                &[cap(
                    "host",
                    CapSpec::Pci {
                        vendor: 0x8086,
                        device: 0x29c0,
                        index: 0,
                    },
                )],
            ),
        ]
        .into_iter()
        .collect(),
        channels: heapless::Vec::new(),
    };
    let mut machine = MachineMap::default();
    machine.reserve(0, 0x1000_0000, Reserved::Ram);
    machine.reserve(0xfee0_0000, 0xfef0_0000, Reserved::LocalApic);
    let mut r = OneDevice {
        machine,
        irqs: Vec::new(),
        vtd: None,
    };
    let mut k = Kernel::new(&config, &mut r).unwrap();
    let mut p = FakePlatform::new(4);
    k.start_all(&mut p).unwrap();
    (k, p, r)
}

fn write(k: &mut Kernel, p: &mut FakePlatform, offset: u16, width: u8, value: u32) -> (u64, u64) {
    sys(
        k,
        p,
        DRIVER,
        Sysnum::PciConfigWrite,
        [
            0,
            u64::from(offset),
            u64::from(width),
            u64::from(value),
            0,
            0,
        ],
    );
    let (status, values) = result(k, DRIVER);
    (status, values[0])
}

#[test]
fn grants_that_touch_the_machine_keep_their_service_from_starting() {
    let (k, p, _) = drivers();
    let lapic = k.tasks[LAPIC_GRANT].refused.as_ref().expect("refused");
    assert_eq!(lapic.grant.as_str(), "lapic");
    assert!(matches!(
        lapic.error,
        GrantError::Overlaps {
            what: Reserved::LocalApic,
            ..
        }
    ));
    let bridge = k.tasks[BRIDGE_GRANT].refused.as_ref().expect("refused");
    assert!(matches!(bridge.error, GrantError::Bridge { class: 6, .. }));
    // Neither was loaded; everyone else was.
    assert_eq!(p.loads, [0, DRIVER]);
    assert_eq!(k.tasks[LAPIC_GRANT].state, State::Faulted);
    assert!(k.tasks[DRIVER].refused.is_none());
    assert_eq!(k.tasks[DRIVER].state, State::Runnable);
}

#[test]
fn a_refused_service_cannot_be_restarted() {
    let (mut k, mut p, _) = drivers();
    assert_eq!(k.restart(&mut p, LAPIC_GRANT), Err(Error::NotPermitted));
    assert_eq!(p.loads, [0, DRIVER]);
    // The supervisor asking gets the same answer.
    sys(
        &mut k,
        &mut p,
        SUP,
        Sysnum::TaskRestart,
        [0, LAPIC_GRANT as u64, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, SUP).0, Error::NotPermitted as u64);
}

#[test]
fn an_absent_device_only_makes_its_grant_unusable() {
    let (k, ..) = world();
    // `world`'s server holds edu, absent there: it runs, the handle says
    // NotFound.
    assert!(k.tasks[SERVER].refused.is_none());
    assert_eq!(k.tasks[SERVER].state, State::Runnable);
    assert_eq!(k.tasks[SERVER].caps.get(2), Err(Error::NotFound));
}

#[test]
fn an_irq_grant_programs_the_msi_of_its_own_device() {
    let (k, _, r) = drivers();
    assert_eq!(r.irqs, [(DRIVER as u8, 2, (0, 3, 0))]);
    assert_eq!(
        k.tasks[DRIVER].caps.get(2),
        Ok(&caps::Cap::Irq { irq: 0x50, bits: 2 })
    );
}

#[test]
fn a_bar_grant_maps_the_bar_without_its_msix_table() {
    let (mut k, mut p, _) = drivers();
    sys(&mut k, &mut p, DRIVER, Sysnum::MmioMap, [1, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, DRIVER).0, 0);
    assert_eq!(
        p.mapped,
        [(0xfea0_0000, 0x10_0000, Some((0xf_f000, 0x1000)))]
    );
    // A raw grant clear of the machine's ranges maps as granted.
    sys(&mut k, &mut p, DRIVER, Sysnum::MmioMap, [3, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, DRIVER).0, 0);
    assert_eq!(p.mapped[1], (0xfeb0_0000, 0x1000, None));
}

#[test]
fn bars_rom_and_the_interrupt_pin_are_the_kernels() {
    let (mut k, mut p, _) = drivers();
    for (offset, width) in [
        (0x10, 4), // BAR0
        (0x24, 4), // BAR5
        (0x30, 4), // expansion ROM
        (0x3d, 1), // interrupt pin
        (0x0f, 1), // BIST
        (0x0e, 1), // header type
        (0x34, 1), // capability pointer
        (0x02, 2), // device id
    ] {
        let before = p.pci;
        let (status, at) = write(&mut k, &mut p, offset, width, 0xffff_ffff);
        assert_eq!(status, Error::NotPermitted as u64, "offset {offset:#x}");
        assert_eq!(at, u64::from(offset), "the refused byte is reported");
        assert_eq!(p.pci, before, "nothing written at {offset:#x}");
    }
    assert!(p.pci_writes.is_empty());
}

#[test]
fn the_msi_structure_is_the_kernels() {
    let (mut k, mut p, _) = drivers();
    // MSI at 0x40, 64-bit: 14 bytes; every one refused.
    for offset in 0x40..0x4e {
        let (status, _) = write(&mut k, &mut p, offset, 1, 0x11);
        assert_eq!(status, Error::NotPermitted as u64, "MSI byte {offset:#x}");
    }
    // A dword write that covers a writable byte (interrupt line) and three
    // that are the kernel's (pin, min grant, max latency) is refused whole.
    let (status, at) = write(&mut k, &mut p, 0x3c, 4, 0);
    assert_eq!((status, at), (Error::NotPermitted as u64, 0x3d));
    assert!(p.pci_writes.is_empty());
}

#[test]
fn command_writes_keep_only_the_bits_a_driver_may_set() {
    let (mut k, mut p, _) = drivers();
    let (status, _) = write(&mut k, &mut p, 0x04, 2, 0xffff);
    assert_eq!(status, 0);
    // I/O, memory, bus master, parity, SERR, INTx disable; nothing else
    // (not fast back-to-back, not special cycles, not VGA snoop).
    assert_eq!(p.pci_writes, [((0, 3, 0), 0x04, 2, 0x0547)]);
    let (status, _) = write(&mut k, &mut p, 0x04, 1, 0x06);
    assert_eq!(status, 0);
    assert_eq!(p.pci_writes[1], ((0, 3, 0), 0x04, 1, 0x06));
}

#[test]
fn device_specific_and_vendor_registers_are_the_drivers() {
    let (mut k, mut p, _) = drivers();
    // Vendor capability at 0x50 (8 bytes): its header is the kernel's,
    // its body the driver's; 0x58.. is outside every capability.
    assert_eq!(
        write(&mut k, &mut p, 0x50, 1, 0).0,
        Error::NotPermitted as u64
    );
    assert_eq!(
        write(&mut k, &mut p, 0x52, 1, 0).0,
        Error::NotPermitted as u64
    );
    assert_eq!(write(&mut k, &mut p, 0x54, 4, 0xdead_beef).0, 0);
    assert_eq!(write(&mut k, &mut p, 0x80, 4, 0x1234_5678).0, 0);
    assert_eq!(
        p.pci_writes,
        [
            ((0, 3, 0), 0x54, 4, 0xdead_beef),
            ((0, 3, 0), 0x80, 4, 0x1234_5678)
        ]
    );
    // Extended configuration space is not the driver's.
    assert_eq!(
        write(&mut k, &mut p, 0x100, 4, 0).0,
        Error::NotPermitted as u64
    );
}

#[test]
fn a_bridge_header_is_never_writable() {
    let (mut k, mut p, _) = drivers();
    p.pci[0x0e] = 0x01;
    for offset in [0x04, 0x0c, 0x3c, 0x80] {
        assert_eq!(
            write(&mut k, &mut p, offset, 1, 0).0,
            Error::NotPermitted as u64
        );
    }
}

#[test]
fn reads_are_not_restricted() {
    let (mut k, mut p, _) = drivers();
    sys(
        &mut k,
        &mut p,
        DRIVER,
        Sysnum::PciConfigRead,
        [0, 0x40, 4, 0, 0, 0],
    );
    assert_eq!(result(&k, DRIVER), (0, [0x0080_5005, 0, 0, 0]));
}

#[test]
fn a_stopping_driver_quiesces_its_devices_and_restart_rearms_its_msi() {
    let (mut k, mut p, _) = drivers();
    let fault = TaskFault {
        vector: 14,
        error_code: 4,
        address: 0,
        rip: 0,
    };
    k.fault(&mut p, DRIVER, fault);
    assert_eq!(p.quiesced, [(DRIVER, (0, 3, 0))]);
    assert!(p.rearmed.is_empty());
    k.restart(&mut p, DRIVER).unwrap();
    assert_eq!(p.rearmed, [0x50]);
    // Exiting quiesces too; a service with no device quiesces nothing.
    sys(&mut k, &mut p, DRIVER, Sysnum::Exit, [0; 6]);
    assert_eq!(p.quiesced.len(), 2);
    sys(&mut k, &mut p, SUP, Sysnum::Exit, [0; 6]);
    assert_eq!(p.quiesced.len(), 2);
}
