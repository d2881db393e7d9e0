//! Attach, map, unmap, query and detach, and every refusal.

use super::*;
use faultline_iommu_core::FaultReason;
use faultline_ipc::protocol::iommu::{DomainInfo, IommuError, Mode};

/// Rule: Attach gives the caller's device a domain of its own (nothing
/// mapped, so its DMA faults) and only then tells the kernel the device
/// may master the bus.
#[test]
fn attach_gives_an_empty_domain_and_vouches_for_the_device() {
    let (model, mut s, mut k) = qemu();
    assert_eq!(
        model.translate(source(EDU), 0x1000, false),
        Err(FaultReason::RootNotPresent)
    );
    let r = call(&mut s, &mut k, A, attach(0));
    let IommuResponse::Attached(info) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        info,
        DomainInfo {
            domain: info.domain,
            bdf: EDU,
            address_width: 48,
            mode: Mode::Legacy,
            mapped_pages: 0,
        }
    );
    assert_ne!(info.domain, 0);
    assert!(k.translated.contains(&EDU));
    assert!(!k.translated.contains(&NIC));
    assert!(model.translate(source(EDU), 0x1000, false).is_err());
    // Attaching again changes nothing (same domain).
    assert_eq!(
        call(&mut s, &mut k, A, attach(0)),
        IommuResponse::Attached(info)
    );
    assert_eq!(s.attachments().len(), 1);
}

/// Rule: a device the caller does not hold is NoSuchDevice, for every
/// request, and nothing is attached or vouched for.
#[test]
fn unknown_device_is_refused() {
    let (_model, mut s, mut k) = qemu();
    for request in [
        attach(3),
        map(3, 0, 1, 0, 4096),
        unmap(3, 0, 4096),
        IommuRequest::Query { pci: 3 },
        IommuRequest::Detach { pci: 3 },
    ] {
        assert_eq!(
            call(&mut s, &mut k, A, request),
            IommuResponse::Refused(IommuError::NoSuchDevice),
            "{request:?}"
        );
    }
    assert!(s.attachments().is_empty());
    assert!(k.translated.is_empty());
    assert_eq!(k.live_pins(), 0);
}

/// Rule: before Attach, a held device has no domain: map, unmap, query
/// and detach are NotAttached and take no pin.
#[test]
fn requests_before_attach_are_not_attached() {
    let (_model, mut s, mut k) = qemu();
    for request in [
        map(0, 0, 1, 0, 4096),
        unmap(0, 0, 4096),
        IommuRequest::Query { pci: 0 },
        IommuRequest::Detach { pci: 0 },
    ] {
        assert_eq!(
            call(&mut s, &mut k, A, request),
            IommuResponse::Refused(IommuError::NotAttached),
            "{request:?}"
        );
    }
    assert_eq!(k.live_pins(), 0);
}

/// Rule: after Mapped, the device reaches exactly the caller's buffer at
/// the offset asked for; Query counts the pages; one pin per mapping.
#[test]
fn map_reaches_the_buffer() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    assert_eq!(
        call(&mut s, &mut k, A, map(0, 0x8000_0000, 1, 0x2000, 0x3000)),
        IommuResponse::Mapped {
            iova: 0x8000_0000,
            len: 0x3000
        }
    );
    assert_eq!(
        model.translate(source(EDU), 0x8000_0008, true),
        Ok(0x10_2008)
    );
    assert_eq!(
        model.translate(source(EDU), 0x8000_2ff8, false),
        Ok(0x10_4ff8)
    );
    assert!(model.translate(source(EDU), 0x8000_3000, false).is_err());
    let read_only = IommuRequest::Map {
        pci: 0,
        iova: 0x9000_0000,
        buffer: 1,
        offset: 0,
        len: 0x1000,
        access: Access::READ,
        page: PageSize::Small,
    };
    assert!(matches!(
        call(&mut s, &mut k, A, read_only),
        IommuResponse::Mapped { .. }
    ));
    assert_eq!(
        model.translate(source(EDU), 0x9000_0000, true),
        Err(FaultReason::WriteDenied)
    );
    assert_eq!(k.live_pins(), 2);
    let IommuResponse::Domain(info) = call(&mut s, &mut k, A, IommuRequest::Query { pci: 0 })
    else {
        panic!()
    };
    assert_eq!(info.mapped_pages, 4);
    assert_eq!(s.mappings().iter().filter(|m| m.badge == A).count(), 2);
}

/// Rule: a map request that is misaligned, empty, out of range, names a
/// buffer the caller does not hold or runs past its end, or asks for no
/// access, is refused with its own error; nothing is mapped and no pin
/// is left behind.
#[test]
fn bad_map_requests_are_refused_and_leave_nothing() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    let cases = [
        (map(0, 0x1000, 1, 0, 0), IommuError::BadAlignment),
        (map(0, 0x1800, 1, 0, 0x1000), IommuError::BadAlignment),
        (map(0, 0x1000, 1, 0x800, 0x1000), IommuError::BadAlignment),
        (map(0, 0x1000, 1, 0, 0x1800), IommuError::BadAlignment),
        (map(0, 1 << 48, 1, 0, 0x1000), IommuError::OutOfRange),
        (
            map(0, (1 << 48) - 0x1000, 1, 0, 0x2000),
            IommuError::OutOfRange,
        ),
        (map(0, !0xfff, 1, 0, 0x2000), IommuError::OutOfRange),
        (map(0, 0x1000, 9, 0, 0x1000), IommuError::NotPermitted),
        (map(0, 0x1000, 1, 0xf000, 0x2000), IommuError::OutOfRange),
    ];
    for (request, error) in cases {
        assert_eq!(
            call(&mut s, &mut k, A, request),
            IommuResponse::Refused(error),
            "{request:?}"
        );
    }
    let no_access = IommuRequest::Map {
        pci: 0,
        iova: 0x1000,
        buffer: 1,
        offset: 0,
        len: 0x1000,
        access: Access {
            read: false,
            write: false,
        },
        page: PageSize::Small,
    };
    assert_eq!(
        call(&mut s, &mut k, A, no_access),
        IommuResponse::Refused(IommuError::NotPermitted)
    );
    assert_eq!(k.live_pins(), 0);
    assert!(s.mappings().is_empty());
    assert!(model.translate(source(EDU), 0x1000, false).is_err());
}

/// Rule: a range that overlaps a mapping of the device is Overlap, checked
/// before anything is pinned; the same IOVA in another device's domain is
/// not an overlap.
#[test]
fn overlap_is_refused_before_pinning() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, B, attach(0));
    call(&mut s, &mut k, A, map(0, 0x1000, 1, 0, 0x2000));
    for (iova, len) in [(0x2000, 0x1000), (0, 0x2000), (0, 0x10000)] {
        assert_eq!(
            call(&mut s, &mut k, A, map(0, iova, 1, 0x4000, len)),
            IommuResponse::Refused(IommuError::Overlap)
        );
    }
    assert_eq!(k.live_pins(), 1);
    assert_eq!(
        call(&mut s, &mut k, B, map(0, 0x1000, 1, 0, 0x2000)),
        IommuResponse::Mapped {
            iova: 0x1000,
            len: 0x2000
        }
    );
    assert_eq!(model.translate(source(EDU), 0x1000, false), Ok(0x10_0000));
    assert_eq!(model.translate(source(NIC), 0x1000, false), Ok(0x20_0000));
}

/// Rule: 2 MiB pages need a 2 MiB-aligned IOVA, offset, length and frames
/// (else BadAlignment, the pin released) and a unit with SLLPS 2M (else
/// Unsupported).
#[test]
fn large_pages() {
    let large = |iova, offset, len| IommuRequest::Map {
        pci: 0,
        iova,
        buffer: 2,
        offset,
        len,
        access: Access::READ_WRITE,
        page: PageSize::Large,
    };
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    assert_eq!(
        call(&mut s, &mut k, A, large(0x4000_0000, 0, 4 * MIB)),
        IommuResponse::Mapped {
            iova: 0x4000_0000,
            len: 4 * MIB
        }
    );
    assert_eq!(
        model.translate(source(EDU), 0x4000_0000 + 3 * MIB + 8, true),
        Ok(0x4000_0000 + 3 * MIB + 8)
    );
    assert_eq!(
        call(&mut s, &mut k, A, large(0x8000_1000, 0, 2 * MIB)),
        IommuResponse::Refused(IommuError::BadAlignment)
    );
    // A buffer whose frames are not 2 MiB-aligned: pinned, then released.
    k.buffers.insert(
        (A, 3),
        Buffer {
            paddr: 0x1000_1000,
            len: 4 * MIB,
        },
    );
    let unaligned = IommuRequest::Map {
        pci: 0,
        iova: 0x8000_0000,
        buffer: 3,
        offset: 0,
        len: 2 * MIB,
        access: Access::READ_WRITE,
        page: PageSize::Large,
    };
    assert_eq!(
        call(&mut s, &mut k, A, unaligned),
        IommuResponse::Refused(IommuError::BadAlignment)
    );
    assert_eq!(k.live_pins(), 1);

    let no_sllps = ModelConfig {
        cap: ModelConfig::qemu().cap & !(0xf << 34),
        ..ModelConfig::qemu()
    };
    let (_model, mut s, mut k) = service(no_sllps);
    call(&mut s, &mut k, A, attach(0));
    assert_eq!(
        call(&mut s, &mut k, A, large(0x4000_0000, 0, 2 * MIB)),
        IommuResponse::Refused(IommuError::Unsupported)
    );
    assert_eq!(k.live_pins(), 0);
}

/// Rule: after Unmapped, the device's DMA there faults even though it was
/// translated (and cached) just before, and only then is the pin released.
#[test]
fn unmap_invalidates_then_releases_the_pin() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, A, map(0, 0x4000, 1, 0, 0x2000));
    let pin = s.mappings()[0].pin;
    assert_eq!(model.translate(source(EDU), 0x5000, true), Ok(0x10_1000));
    k.unpin_probe = Some((model.clone(), EDU, 0x5000));
    assert_eq!(
        call(&mut s, &mut k, A, unmap(0, 0x4000, 0x2000)),
        IommuResponse::Unmapped {
            iova: 0x4000,
            len: 0x2000
        }
    );
    assert!(model.translate(source(EDU), 0x5000, true).is_err());
    assert_eq!(k.released, [pin]);
    assert_eq!(k.live_pins(), 0);
    assert!(s.mappings().is_empty());
}

/// Rule: an unmap range must cover whole mappings (holes between them are
/// fine); one that cuts a mapping, or covers nothing, is NotMapped and
/// changes nothing.
#[test]
fn unmap_covers_whole_mappings() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, A, map(0, 0x10000, 1, 0, 0x2000));
    call(&mut s, &mut k, A, map(0, 0x20000, 1, 0x4000, 0x1000));
    for (iova, len, error) in [
        (0x11000, 0x1000, IommuError::NotMapped),
        (0x10000, 0x1000, IommuError::NotMapped),
        (0xf000, 0x2000, IommuError::NotMapped),
        (0x30000, 0x1000, IommuError::NotMapped),
        (0x10000, 0, IommuError::BadAlignment),
        (0x10800, 0x1000, IommuError::BadAlignment),
    ] {
        assert_eq!(
            call(&mut s, &mut k, A, unmap(0, iova, len)),
            IommuResponse::Refused(error),
            "{iova:#x}+{len:#x}"
        );
    }
    assert_eq!(s.mappings().len(), 2);
    assert_eq!(model.translate(source(EDU), 0x11000, false), Ok(0x10_1000));
    assert_eq!(
        call(&mut s, &mut k, A, unmap(0, 0x8000, 0x20000)),
        IommuResponse::Unmapped {
            iova: 0x8000,
            len: 0x20000
        }
    );
    assert!(s.mappings().is_empty());
    assert_eq!(k.live_pins(), 0);
    assert!(model.translate(source(EDU), 0x20000, false).is_err());
}

/// Rule: Detach removes every mapping (the device faults, context not
/// present), releases their pins, takes the device off the bus, and the
/// device can be attached afresh.
#[test]
fn detach_removes_everything() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, A, map(0, 0x1000, 1, 0, 0x1000));
    call(&mut s, &mut k, A, map(0, 0x8000, 1, 0x8000, 0x2000));
    assert_eq!(model.translate(source(EDU), 0x1000, false), Ok(0x10_0000));
    assert_eq!(model.translate(source(EDU), 0x9000, false), Ok(0x10_9000));
    k.unpin_probe = Some((model.clone(), EDU, 0x9000));
    assert_eq!(
        call(&mut s, &mut k, A, IommuRequest::Detach { pci: 0 }),
        IommuResponse::Detached
    );
    assert_eq!(
        model.translate(source(EDU), 0x1000, false),
        Err(FaultReason::ContextNotPresent)
    );
    assert_eq!(k.live_pins(), 0);
    assert!(!k.translated.contains(&EDU));
    assert!(s.mappings().is_empty() && s.attachments().is_empty());
    assert_eq!(
        call(&mut s, &mut k, A, IommuRequest::Query { pci: 0 }),
        IommuResponse::Refused(IommuError::NotAttached)
    );
    assert!(matches!(
        call(&mut s, &mut k, A, attach(0)),
        IommuResponse::Attached(_)
    ));
}

/// Rule: a device attached by one client cannot be used by another, even
/// if the other names it: every request is NotPermitted and the owner's
/// mappings and domain are untouched.
#[test]
fn another_clients_device_is_not_permitted() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, A, map(0, 0x1000, 1, 0, 0x1000));
    // B somehow holds a handle to A's device.
    k.devices.insert((B, 5), EDU);
    for request in [
        attach(5),
        map(5, 0x8000, 1, 0, 0x1000),
        unmap(5, 0x1000, 0x1000),
        IommuRequest::Query { pci: 5 },
        IommuRequest::Detach { pci: 5 },
    ] {
        assert_eq!(
            call(&mut s, &mut k, B, request),
            IommuResponse::Refused(IommuError::NotPermitted),
            "{request:?}"
        );
    }
    assert_eq!(model.translate(source(EDU), 0x1000, false), Ok(0x10_0000));
    assert!(model.translate(source(EDU), 0x8000, false).is_err());
    assert_eq!(s.mappings().len(), 1);
    assert_eq!(k.live_pins(), 1);
    assert!(k.translated.contains(&EDU));
    // And A cannot map B's buffer: A's buffer 1 is its own.
    assert_eq!(
        call(&mut s, &mut k, A, map(0, 0x2000, 1, 0, 0x1000)),
        IommuResponse::Mapped {
            iova: 0x2000,
            len: 0x1000
        }
    );
    assert_eq!(model.translate(source(EDU), 0x2000, false), Ok(0x10_0000));
}

/// Rule: when the kernel will not let the device master the bus, Attach
/// is NotPermitted and the domain is taken down again.
#[test]
fn attach_refused_by_the_kernel_leaves_no_domain() {
    let (model, mut s, mut k) = qemu();
    k.refuse_translated = true;
    assert_eq!(
        call(&mut s, &mut k, A, attach(0)),
        IommuResponse::Refused(IommuError::NotPermitted)
    );
    assert!(s.attachments().is_empty());
    assert_eq!(
        model.translate(source(EDU), 0, false),
        Err(FaultReason::ContextNotPresent)
    );
}

/// Rule: when the mapping table is full, Map is OutOfTableMemory before
/// anything is pinned.
#[test]
fn full_mapping_table_is_out_of_table_memory() {
    let (_model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    for i in 0..crate::service::MAX_MAPPINGS as u64 {
        assert!(matches!(
            call(&mut s, &mut k, A, map(0, i << 12, 1, 0, 0x1000)),
            IommuResponse::Mapped { .. }
        ));
    }
    let pins = k.live_pins();
    assert_eq!(
        call(&mut s, &mut k, A, map(0, 1 << 30, 1, 0, 0x1000)),
        IommuResponse::Refused(IommuError::OutOfTableMemory)
    );
    assert_eq!(k.live_pins(), pins);
}

/// Rule: when the unit's invalidation never completes, Unmap is
/// HardwareTimeout, the pin is never released (the IOTLB may still hold
/// the frames) and the unit refuses everything after.
#[test]
fn a_unit_that_times_out_keeps_the_pins_and_is_not_used_again() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, A, map(0, 0x1000, 1, 0, 0x1000));
    model.set_queue_stuck(true);
    assert_eq!(
        call(&mut s, &mut k, A, unmap(0, 0x1000, 0x1000)),
        IommuResponse::Refused(IommuError::HardwareTimeout)
    );
    assert_eq!(k.live_pins(), 1);
    assert!(k.released.is_empty());
    assert_eq!(s.quarantined(), 1);
    model.set_queue_stuck(false);
    assert_eq!(
        call(&mut s, &mut k, A, map(0, 0x8000, 1, 0, 0x1000)),
        IommuResponse::Refused(IommuError::HardwareTimeout)
    );
    assert_eq!(k.live_pins(), 1);
}

/// Rule: in scalable mode the same requests give the same isolation, and
/// the domain says it is scalable.
#[test]
fn scalable_mode_domains() {
    let model = Model::new(ModelConfig::qemu_scalable());
    let config = Config {
        mode: faultline_vtd::TranslationMode::Scalable,
        ..Config::default()
    };
    let unit = Unit::bring_up(model.registers(), model.memory(), model.delay(), config).unwrap();
    let mut s = Service::new();
    assert!(s.add_unit(0, unit).is_ok());
    let mut k = FakeKernel::new();
    let IommuResponse::Attached(info) = call(&mut s, &mut k, A, attach(0)) else {
        panic!()
    };
    assert_eq!(info.mode, Mode::Scalable);
    call(&mut s, &mut k, A, map(0, 0x1000, 1, 0x3000, 0x1000));
    assert_eq!(model.translate(source(EDU), 0x1010, true), Ok(0x10_3010));
    assert!(model.translate(source(NIC), 0x1010, true).is_err());
    call(&mut s, &mut k, A, unmap(0, 0x1000, 0x1000));
    assert!(model.translate(source(EDU), 0x1010, true).is_err());
    assert_eq!(k.live_pins(), 0);
}

/// Rule: a device is attached only on the unit whose DMAR scope covers it;
/// one that no started unit covers is NotPermitted, with no domain and no
/// vouching.
#[test]
fn a_device_no_started_unit_covers_is_not_permitted() {
    let (model, mut s, mut k) = qemu();
    // The fake kernel's unit 0 covers bus 0 only.
    let far = 0x0118;
    k.devices.insert((A, 7), far);
    assert_eq!(
        call(&mut s, &mut k, A, attach(7)),
        IommuResponse::Refused(IommuError::NotPermitted)
    );
    assert!(s.attachments().is_empty());
    assert!(k.translated.is_empty());
    assert_eq!(
        model.translate(source(far), 0, false),
        Err(FaultReason::RootNotPresent)
    );
}
