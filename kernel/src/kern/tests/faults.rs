//! Fault handler capabilities: the right to handle one PCI function's DMA
//! faults, with a deadline, and nothing else. They resolve at boot like a
//! PCI grant, only the IOMMU service reads them (`ClientFaults`, for the
//! client of a call it holds), and no call that takes a PCI function
//! accepts one.

use super::iommu::*;
use super::*;

/// `other`'s fault handler grant for the edu function (after its client
/// end and DMA budget).
const FAULTS: u64 = 2;
const DEADLINE_MS: u32 = 50;

fn edu_faults(index: u8, deadline_ms: u32) -> CapSpec {
    CapSpec::Faults {
        vendor: 0x1234,
        device: 0x11e8,
        index,
        deadline_ms,
    }
}

/// [`dma_world`] where `other` handles the edu function's faults: the
/// driver holds the function, `other` only the right to its faults.
fn faults_world() -> (Kernel, FakePlatform) {
    dma_world_with(true, &[cap("edu-faults", edu_faults(0, DEADLINE_MS))])
}

fn client_faults(k: &mut Kernel, p: &mut FakePlatform, token: u64, handle: u64) -> (u64, [u64; 4]) {
    sys(
        k,
        p,
        IOMMU,
        Sysnum::ClientFaults,
        [token, handle, 0, 0, 0, 0],
    );
    result(k, IOMMU)
}

#[test]
fn a_faults_grant_resolves_to_the_function_like_a_pci_grant_but_of_its_own_kind() {
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "f".try_into().unwrap(),
        services: [
            service(
                "handler",
                1,
                &[
                    cap("edu-faults", edu_faults(0, 75)),
                    // The second edu function does not exist.
                    cap("edu1-faults", edu_faults(1, 75)),
                    // An IRQ names a PCI function; a faults grant is none.
                    cap("edu-irq", CapSpec::Irq { bits: 2, pci: 0 }),
                ],
            ),
            service(
                "bridge",
                2,
                &[cap(
                    "host-faults",
                    CapSpec::Faults {
                        vendor: 0x8086,
                        device: 0x29c0,
                        index: 0,
                        deadline_ms: 75,
                    },
                )],
            ),
        ]
        .into_iter()
        .collect(),
        channels: heapless::Vec::new(),
    };
    let mut r = OneDevice::new();
    let k = Kernel::new(&config, &mut r).unwrap();
    let caps = &k.tasks[0].caps;
    assert_eq!(
        caps.get(0),
        Ok(&Cap::Faults {
            bus: 0,
            device: 3,
            function: 0,
            deadline_ms: 75
        })
    );
    assert_eq!(caps.lookup(b"edu-faults"), Ok((0, CapKind::Faults)));
    // Absent: the handle stays, every use is NotFound, the service starts.
    assert_eq!(caps.get(1), Err(Error::NotFound));
    assert_eq!(caps.lookup(b"edu1-faults"), Ok((1, CapKind::Faults)));
    assert_eq!(
        caps.get(2),
        Err(Error::NotFound),
        "no IRQ on a faults grant"
    );
    assert!(r.irqs.is_empty(), "no MSI programmed for it");
    assert!(k.tasks[0].refused.is_none());
    // A bridge is refused for faults as for a PCI grant: never started.
    let refused = k.tasks[1].refused.as_ref().expect("refused");
    assert_eq!(refused.grant.as_str(), "host-faults");
    assert!(matches!(refused.error, GrantError::Bridge { .. }));
}

#[test]
fn client_faults_reports_the_function_unit_and_deadline_of_the_callers_grant() {
    let (mut k, mut p) = faults_world();
    let token = pending_call(&mut k, &mut p, OTHER);
    assert_eq!(
        client_faults(&mut k, &mut p, token, FAULTS),
        (0, [BDF_WORD, 0, u64::from(DEADLINE_MS), 0])
    );
    // A function no unit's scope covers has no unit.
    k.tasks[OTHER].caps = {
        let mut caps = k.tasks[OTHER].caps.clone();
        if let Ok(Cap::Faults {
            bus, deadline_ms, ..
        }) = caps.get_mut(FAULTS)
        {
            *bus = 5;
            *deadline_ms = 60_000;
        }
        caps
    };
    assert_eq!(
        client_faults(&mut k, &mut p, token, FAULTS),
        (0, [0x0518, u64::MAX, 60_000, 0])
    );
}

#[test]
fn client_faults_takes_only_a_faults_grant_and_client_pci_refuses_one() {
    let (mut k, mut p) = faults_world();
    let token = pending_call(&mut k, &mut p, OTHER);
    // Its client end and DMA budget are no fault handler grants.
    for handle in [0, 1] {
        assert_eq!(
            client_faults(&mut k, &mut p, token, handle).0,
            Error::WrongKind as u64,
            "handle {handle}"
        );
    }
    assert_eq!(
        client_faults(&mut k, &mut p, token, 9).0,
        Error::BadHandle as u64
    );
    // A fault handler's grant does not pass for the function itself.
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [token, FAULTS, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::WrongKind as u64);
    // Nor the function for a right to its faults.
    let driver = pending_call(&mut k, &mut p, DRIVER);
    assert_eq!(
        client_faults(&mut k, &mut p, driver, EDU).0,
        Error::WrongKind as u64
    );
}

#[test]
fn client_faults_needs_a_pending_call_of_the_client() {
    let (mut k, mut p) = faults_world();
    let token = pending_call(&mut k, &mut p, OTHER);
    assert_eq!(
        client_faults(&mut k, &mut p, token ^ 1, FAULTS).0,
        Error::StaleToken as u64,
        "forged"
    );
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::Reply,
        [token, REQ, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), 0);
    assert_eq!(
        client_faults(&mut k, &mut p, token, FAULTS).0,
        Error::StaleToken as u64,
        "answered"
    );
}

#[test]
fn only_the_iommu_service_may_ask_about_a_fault_handler() {
    let (mut k, mut p) = faults_world();
    let token = pending_call(&mut k, &mut p, OTHER);
    // The driver is refused, even with a live token and the right handle
    // (the handler itself is blocked in its call).
    sys(
        &mut k,
        &mut p,
        DRIVER,
        Sysnum::ClientFaults,
        [token, FAULTS, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, DRIVER), Error::NotPermitted as u64);
    // The IOMMU service still may.
    assert_eq!(client_faults(&mut k, &mut p, token, FAULTS).0, 0);
}

#[test]
fn a_faults_grant_grants_no_device_access() {
    let (mut k, mut p) = faults_world();
    for (nr, args) in [
        (Sysnum::PciConfigRead, [FAULTS, 0, 4, 0, 0, 0]),
        (Sysnum::PciConfigWrite, [FAULTS, COMMAND, 2, 6, 0, 0]),
        (Sysnum::IrqInfo, [FAULTS, 0, 0, 0, 0, 0]),
        (Sysnum::IrqAck, [FAULTS, 0, 0, 0, 0, 0]),
        (Sysnum::MmioMap, [FAULTS, 0, 0, 0, 0, 0]),
        (Sysnum::DmaAlloc, [FAULTS, 4096, 0, 0, 0, 0]),
        (Sysnum::VtdInfo, [FAULTS, 0, 0, 0, 0, 0]),
    ] {
        sys(&mut k, &mut p, OTHER, nr, args);
        assert_eq!(status(&k, OTHER), Error::WrongKind as u64, "{nr:?}");
    }
    assert!(
        p.pci_writes.is_empty(),
        "the device's config space was never written"
    );
}

#[test]
fn a_function_held_only_for_its_faults_is_not_granted_to_anyone() {
    let (mut k, mut p) = faults_world();
    // The driver's PCI grant becomes a faults grant too: now nobody holds
    // the function itself.
    k.tasks[DRIVER].caps = {
        let mut caps = k.tasks[DRIVER].caps.clone();
        if let Ok(cap) = caps.get_mut(EDU) {
            *cap = Cap::Faults {
                bus: BDF.0,
                device: BDF.1,
                function: BDF.2,
                deadline_ms: DEADLINE_MS,
            };
        }
        caps
    };
    // The IOMMU service cannot vouch for it: no driver could use it.
    assert_eq!(translated(&mut k, &mut p, 1), Error::NotFound as u64);
    assert!(!k.translated.contains(BDF));
    // Its handlers stopping leaves the device alone: only a holder of the
    // function quiesces it.
    k.fault(&mut p, OTHER, BREAKPOINT);
    k.fault(&mut p, DRIVER, BREAKPOINT);
    assert_eq!(p.quiesced, []);
}

#[test]
fn a_faults_handler_stopping_leaves_the_drivers_device_running() {
    let (mut k, mut p) = faults_world();
    k.fault(&mut p, OTHER, BREAKPOINT);
    assert_eq!(p.quiesced, [], "the handler does not hold the device");
    k.fault(&mut p, DRIVER, BREAKPOINT);
    assert_eq!(p.quiesced, [(DRIVER, BDF)], "its driver does");
}
