//! DMA isolation: what only an IOMMU service may ask, what a driver's
//! names mean, and the bus-master gate. The world and helpers here are
//! shared with `pins` (frames kept past their owner until the IOMMU
//! service lets them go) and `irq_routes` (interrupt remapping).

use super::*;

// The IOMMU service is not task 0, so a bit or shift keyed by its index
// is tested with a nonzero index.
pub(super) const DRIVER: usize = 0;
pub(super) const IOMMU: usize = 1;
pub(super) const OTHER: usize = 2;

/// The iommu service's handles.
pub(super) const SERVER_H: u64 = 0;
pub(super) const VTD: u64 = 2;
pub(super) const IOMMU_DMA: u64 = 3;
/// The driver's handles (0 is its client end of channel 0).
pub(super) const EDU: u64 = 1;
pub(super) const DMA: u64 = 2;
/// `other`'s DMA handle.
pub(super) const OTHER_DMA: u64 = 1;

pub(super) const BDF: (u8, u8, u8) = (0, 3, 0);
pub(super) const BREAKPOINT: TaskFault = TaskFault {
    vector: 3,
    error_code: 0,
    address: 0,
    rip: 0x40_1000,
};
pub(super) const BDF_WORD: u64 = 3 << 3;
pub(super) const COMMAND: u64 = 4;

/// A driver of the edu device (client of channel 0), iommu (VT-d
/// registers, server of channels 0 and 1), and another client without a
/// device (channel 1); on a machine with a VT-d unit unless `iommu` is
/// false.
pub(super) fn dma_world(iommu: bool) -> (Kernel, FakePlatform) {
    dma_world_with(iommu, &[])
}

/// [`dma_world`], with `extra` granted to `other` after its two handles.
pub(super) fn dma_world_with(iommu: bool, extra: &[CapConfig]) -> (Kernel, FakePlatform) {
    let mut other = std::vec![
        cap("iommu", CapSpec::Client { channel: 1 }),
        cap("dma", CapSpec::Dma { bytes: 8192 }),
    ];
    other.extend_from_slice(extra);
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "dma".try_into().unwrap(),
        services: [
            service(
                "driver",
                2,
                &[
                    cap("iommu", CapSpec::Client { channel: 0 }),
                    edu(),
                    cap("dma", CapSpec::Dma { bytes: 16384 }),
                ],
            ),
            service(
                "iommu",
                1,
                &[
                    cap(
                        "driver",
                        CapSpec::Server {
                            channel: 0,
                            badge: 1,
                        },
                    ),
                    cap(
                        "other",
                        CapSpec::Server {
                            channel: 1,
                            badge: 2,
                        },
                    ),
                    cap("vtd0", CapSpec::VtdMmio { unit: 0 }),
                    cap("dma", CapSpec::Dma { bytes: 65536 }),
                    cap("vtd0-fault", CapSpec::VtdIrq { unit: 0, bits: 1 }),
                ],
            ),
            service("other", 2, &other),
        ]
        .into_iter()
        .collect(),
        channels: [
            ChannelConfig {
                name: "driver".try_into().unwrap(),
                client: DRIVER as u8,
                server: IOMMU as u8,
            },
            ChannelConfig {
                name: "other".try_into().unwrap(),
                client: OTHER as u8,
                server: IOMMU as u8,
            },
        ]
        .into_iter()
        .collect(),
    };
    let mut r = OneDevice::new();
    if iommu {
        r.vtd = Some((0xfed9_0000, 0x1000));
    }
    let mut k = Kernel::new(&config, &mut r).unwrap();
    let mut p = FakePlatform::new(3);
    k.start_all(&mut p).unwrap();
    (k, p)
}

/// `client` calls the iommu service (handle 0) and the service receives
/// it; returns the reply token.
pub(super) fn pending_call(k: &mut Kernel, p: &mut FakePlatform, client: usize) -> u64 {
    p.put(client, REQ, b"map");
    let client_end = 0;
    sys(
        k,
        p,
        client,
        Sysnum::Call,
        [client_end, REQ, 3, REPLY, MAX_MESSAGE as u64, 0],
    );
    sys(
        k,
        p,
        IOMMU,
        Sysnum::Recv,
        [BUF, MAX_MESSAGE as u64, 0, 0, 0, 0],
    );
    let (status, [_, _, _, token]) = result(k, IOMMU);
    assert_eq!(status, 0);
    token
}

pub(super) fn alloc(
    k: &mut Kernel,
    p: &mut FakePlatform,
    task: usize,
    handle: u64,
    bytes: u64,
) -> [u64; 4] {
    sys(k, p, task, Sysnum::DmaAlloc, [handle, bytes, 0, 0, 0, 0]);
    let (status, values) = result(k, task);
    assert_eq!(status, 0);
    values
}

pub(super) fn status(k: &Kernel, task: usize) -> u64 {
    result(k, task).0
}

pub(super) fn command_write(k: &mut Kernel, p: &mut FakePlatform, value: u64) -> (u64, [u64; 4]) {
    sys(
        k,
        p,
        DRIVER,
        Sysnum::PciConfigWrite,
        [EDU, COMMAND, 2, value, 0, 0],
    );
    result(k, DRIVER)
}

pub(super) fn translated(k: &mut Kernel, p: &mut FakePlatform, on: u64) -> u64 {
    sys(
        k,
        p,
        IOMMU,
        Sysnum::DeviceTranslated,
        [VTD, BDF_WORD, on, 0, 0, 0],
    );
    status(k, IOMMU)
}

#[test]
fn drivers_get_buffer_numbers_not_physical_addresses() {
    let (mut k, mut p) = dma_world(true);
    let first = alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    let second = alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    assert_eq!((first[1], first[2]), (0, 0), "buffer 0, no address");
    assert_eq!((second[1], second[2]), (1, 0), "buffer 1, no address");
    // The IOMMU service programs tables: it sees its own frames.
    let own = alloc(&mut k, &mut p, IOMMU, IOMMU_DMA, 4096);
    assert_eq!(own[1], 0);
    assert_eq!(own[2], 0x1234_5000 + 2 * 0x10_0000);
    // Without an IOMMU there is nothing to hide.
    let (mut k, mut p) = dma_world(false);
    assert_eq!(alloc(&mut k, &mut p, DRIVER, DMA, 4096)[2], 0x1234_5000);
}

#[test]
fn a_service_has_at_most_max_buffers() {
    let (mut k, mut p) = dma_world(true);
    k.tasks[IOMMU].caps = {
        let mut caps = k.tasks[IOMMU].caps.clone();
        if let Ok(Cap::Dma { budget, .. }) = caps.get_mut(IOMMU_DMA) {
            *budget = 1 << 30;
        }
        caps
    };
    for _ in 0..dma::MAX_BUFFERS {
        alloc(&mut k, &mut p, IOMMU, IOMMU_DMA, 4096);
    }
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::DmaAlloc,
        [IOMMU_DMA, 4096, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::OutOfMemory as u64);
    assert_eq!(p.dma_requests.len(), dma::MAX_BUFFERS, "nothing allocated");
}

#[test]
fn only_an_iommu_service_may_ask_what_a_client_names() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    let _ = pending_call(&mut k, &mut p, DRIVER);
    for (nr, args) in [
        (Sysnum::ClientPci, [0, EDU, 0, 0, 0, 0]),
        (Sysnum::ClientFaults, [0, EDU, 0, 0, 0, 0]),
        (Sysnum::ClientDma, [0, 0, 0, 4096, 0, 0]),
        (Sysnum::DmaUnpin, [0; 6]),
        (Sysnum::DmaRevoked, [0; 6]),
    ] {
        sys(&mut k, &mut p, OTHER, nr, args);
        assert_eq!(status(&k, OTHER), Error::NotPermitted as u64, "{nr:?}");
    }
    // DeviceTranslated takes the VT-d capability itself.
    sys(
        &mut k,
        &mut p,
        OTHER,
        Sysnum::DeviceTranslated,
        [OTHER_DMA, BDF_WORD, 1, 0, 0, 0],
    );
    assert_eq!(status(&k, OTHER), Error::WrongKind as u64);
    assert!(!k.translated.contains(BDF));
}

#[test]
fn client_pci_resolves_the_callers_own_handle_during_its_call() {
    let (mut k, mut p) = dma_world(true);
    let token = pending_call(&mut k, &mut p, DRIVER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [token, EDU, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, IOMMU), (0, [BDF_WORD, 0, 0, 0]));
    // The driver's other handles are not PCI functions.
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [token, DMA, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::WrongKind as u64);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [token, 9, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::BadHandle as u64);
    // `other` holds no device: its handle 1 is its DMA budget.
    let other = pending_call(&mut k, &mut p, OTHER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [other, EDU, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::WrongKind as u64);
    // Once answered, the token names nothing.
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::Reply,
        [token, REQ, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), 0);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [token, EDU, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::StaleToken as u64);
    // A forged token neither.
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [token ^ 1, EDU, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::StaleToken as u64);
}

#[test]
fn client_dma_pins_only_whole_pages_inside_the_callers_buffer() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 8192);
    let token = pending_call(&mut k, &mut p, DRIVER);
    let pin = |k: &mut Kernel, p: &mut FakePlatform, buffer, offset, len| {
        sys(
            k,
            p,
            IOMMU,
            Sysnum::ClientDma,
            [token, buffer, offset, len, 0, 0],
        );
        result(k, IOMMU)
    };
    for (buffer, offset, len, want) in [
        (1, 0, 4096, Error::NotFound), // no such buffer
        (0, 0, 0, Error::BadArgument),
        (0, 1, 4096, Error::BadArgument),
        (0, 0, 4095, Error::BadArgument),
        (0, 4096, 8192, Error::BadLength), // past the end
        (0, u64::MAX - 4095, 4096, Error::BadLength),
    ] {
        assert_eq!(
            pin(&mut k, &mut p, buffer, offset, len).0,
            want as u64,
            "{buffer} {offset} {len}"
        );
    }
    assert_eq!(k.pins.count(), 0);
    let (status, [paddr, id, ..]) = pin(&mut k, &mut p, 0, 4096, 4096);
    assert_eq!(status, 0);
    assert_eq!(paddr, 0x1234_5000 + 4096);
    let held = k.pins.get(IOMMU as u8, id).unwrap();
    assert_eq!(
        (held.owner, held.vaddr, held.bytes),
        (DRIVER as u8, 0x6000_0000_0000 + 4096, 4096)
    );
    // `other` has no buffer 0 of its own: it cannot name the driver's.
    let other = pending_call(&mut k, &mut p, OTHER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [other, 0, 0, 4096, 0, 0],
    );
    assert_eq!(status_of(&k), Error::NotFound as u64);
}

pub(super) fn status_of(k: &Kernel) -> u64 {
    status(k, IOMMU)
}

#[test]
fn bus_mastering_waits_for_the_iommu_service() {
    let (mut k, mut p) = dma_world(true);
    // Memory decoding alone is the driver's.
    assert_eq!(command_write(&mut k, &mut p, 0x0002).0, 0);
    // Bus mastering is refused, with the command register's offset.
    assert_eq!(
        command_write(&mut k, &mut p, 0x0006),
        (Error::NotPermitted as u64, [COMMAND, 0, 0, 0])
    );
    assert_eq!(
        p.pci_writes.len(),
        1,
        "the refused write never reached the device"
    );
    // A byte-wide write of the low byte is the same write.
    sys(
        &mut k,
        &mut p,
        DRIVER,
        Sysnum::PciConfigWrite,
        [EDU, COMMAND, 1, 0x04, 0, 0],
    );
    assert_eq!(status(&k, DRIVER), Error::NotPermitted as u64);
    assert_eq!(translated(&mut k, &mut p, 1), 0);
    assert_eq!(command_write(&mut k, &mut p, 0x0006).0, 0);
    assert_eq!(p.pci_writes.last().unwrap().3 & 4, 4);
    // Detached: bus mastering goes off and is refused again.
    assert_eq!(translated(&mut k, &mut p, 0), 0);
    assert_eq!(p.bus_master_off, [BDF]);
    assert_eq!(
        command_write(&mut k, &mut p, 0x0006).0,
        Error::NotPermitted as u64
    );
}

#[test]
fn without_an_iommu_bus_mastering_is_the_drivers() {
    let (mut k, mut p) = dma_world(false);
    assert_eq!(command_write(&mut k, &mut p, 0x0006).0, 0);
}

#[test]
fn device_translated_names_a_granted_function_and_a_state() {
    let (mut k, mut p) = dma_world(true);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::DeviceTranslated,
        [VTD, 0x08, 1, 0, 0, 0],
    );
    assert_eq!(
        status(&k, IOMMU),
        Error::NotFound as u64,
        "00:01.0 is nobody's"
    );
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::DeviceTranslated,
        [VTD, 1 << 16, 1, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::BadArgument as u64);
    assert_eq!(translated(&mut k, &mut p, 2), Error::BadArgument as u64);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::DeviceTranslated,
        [SERVER_H, BDF_WORD, 1, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::WrongKind as u64);
    assert!(!k.translated.contains(BDF));
    assert_eq!(translated(&mut k, &mut p, 1), 0);
    assert_eq!(
        translated(&mut k, &mut p, 1),
        0,
        "vouching again changes nothing"
    );
    assert!(k.translated.contains(BDF));
}

#[test]
fn when_the_iommu_service_stops_every_device_it_vouched_for_stops_mastering() {
    let (mut k, mut p) = dma_world(true);
    assert_eq!(translated(&mut k, &mut p, 1), 0);
    assert_eq!(command_write(&mut k, &mut p, 0x0006).0, 0);
    k.fault(&mut p, IOMMU, BREAKPOINT);
    assert_eq!(p.bus_master_off, [BDF]);
    assert!(!k.translated.contains(BDF));
    assert_eq!(
        command_write(&mut k, &mut p, 0x0006).0,
        Error::NotPermitted as u64
    );
}

#[test]
fn bdf_words_round_trip() {
    use crate::kern::iommu::{bdf_of_word, bdf_word};
    assert_eq!(bdf_word((0, 3, 0)), 0x18);
    assert_eq!(bdf_word((0xff, 0x1f, 7)), 0xffff);
    assert_eq!(bdf_word((1, 2, 3)), 0x0113);
    for w in [0u16, 0x18, 0x0113, 0xffff, 0x8001] {
        assert_eq!(bdf_word(bdf_of_word(w)), u64::from(w));
    }
}

#[test]
fn the_gate_tracks_each_function_on_its_own() {
    let mut t = dma::Translated::default();
    t.insert((0, 3, 0), 0).unwrap();
    t.insert((0, 4, 0), 0).unwrap();
    assert!(t.contains((0, 3, 0)) && t.contains((0, 4, 0)));
    t.remove((0, 3, 0));
    assert!(!t.contains((0, 3, 0)) && t.contains((0, 4, 0)));
    t.insert((0, 5, 0), 1).unwrap();
    assert_eq!(t.drop_holder(0).as_slice(), [(0, 4, 0)]);
    assert!(t.contains((0, 5, 0)) && !t.contains((0, 4, 0)));
    for d in 0..dma::MAX_TRANSLATED as u8 - 1 {
        t.insert((1, d, 0), 1).unwrap();
    }
    assert_eq!(t.insert((2, 0, 0), 1), Err(Error::OutOfMemory));
    assert_eq!(
        t.insert((0, 5, 0), 0),
        Ok(()),
        "one already there needs no room"
    );
}

#[test]
fn client_pci_names_the_unit_whose_scope_covers_the_function() {
    let (mut k, mut p) = dma_world(true);
    // The fake platform's one unit covers bus 0 only.
    k.tasks[DRIVER].caps = {
        let mut caps = k.tasks[DRIVER].caps.clone();
        if let Ok(Cap::Pci { bus, .. }) = caps.get_mut(EDU) {
            *bus = 5;
        }
        caps
    };
    let token = pending_call(&mut k, &mut p, DRIVER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientPci,
        [token, EDU, 0, 0, 0, 0],
    );
    assert_eq!(result(&k, IOMMU), (0, [0x0518, u64::MAX, 0, 0]), "no unit");
}

#[test]
fn vtd_info_describes_the_callers_own_unit() {
    let (mut k, mut p) = dma_world(true);
    sys(&mut k, &mut p, IOMMU, Sysnum::VtdInfo, [VTD, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, IOMMU), (0, [39, 0, 1, 0]));
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::VtdInfo,
        [IOMMU_DMA, 0, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::WrongKind as u64);
    sys(
        &mut k,
        &mut p,
        DRIVER,
        Sysnum::VtdInfo,
        [EDU, 0, 0, 0, 0, 0],
    );
    assert_eq!(status(&k, DRIVER), Error::WrongKind as u64);
    sys(&mut k, &mut p, IOMMU, Sysnum::VtdInfo, [40, 0, 0, 0, 0, 0]);
    assert_eq!(status(&k, IOMMU), Error::BadHandle as u64);
}
