//! Pins: frames an IOMMU service mapped outlive their owner, are revoked
//! when it stops, and are given back once, when the IOMMU service lets
//! them go (or stops itself).

use super::iommu::*;
use super::*;
use faultline_ipc::abi::NOTIFY_DMA_REVOKED;

#[test]
fn a_stopped_owners_pinned_frames_wait_for_the_iommu_service() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 8192);
    let token = pending_call(&mut k, &mut p, DRIVER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 8192, 0, 0],
    );
    let id = result(&k, IOMMU).1[1];
    // The same first page, mapped twice (two IOVAs).
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 4096, 0, 0],
    );
    let second = result(&k, IOMMU).1[1];
    assert_ne!(id, second);
    // Nothing is revoked while the owner lives, and releasing a live pin
    // frees nothing (the frames are still the owner's).
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaRevoked, [0; 6]);
    assert_eq!(status(&k, IOMMU), Error::NotFound as u64);
    k.fault(&mut p, DRIVER, BREAKPOINT);
    assert_eq!(
        p.kept,
        [
            (DRIVER, 0x6000_0000_0000, 8192),
            (DRIVER, 0x6000_0000_0000, 4096)
        ]
    );
    assert_ne!(k.tasks[IOMMU].notifications & NOTIFY_DMA_REVOKED, 0);
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaRevoked, [0; 6]);
    assert_eq!(result(&k, IOMMU), (0, [id, 0, 0, 0]));
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaUnpin, [id, 0, 0, 0, 0, 0]);
    assert_eq!(status(&k, IOMMU), 0);
    // The second page is free; the first is still pinned by `second`.
    assert_eq!(p.freed, [0x1234_5000 + 4096]);
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaRevoked, [0; 6]);
    assert_eq!(result(&k, IOMMU), (0, [second, 0, 0, 0]));
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::DmaUnpin,
        [second, 0, 0, 0, 0, 0],
    );
    assert_eq!(p.freed, [0x1234_5000 + 4096, 0x1234_5000]);
    // Released ids are gone, and nothing is left to revoke.
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaUnpin, [id, 0, 0, 0, 0, 0]);
    assert_eq!(status(&k, IOMMU), Error::NotFound as u64);
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaRevoked, [0; 6]);
    assert_eq!(status(&k, IOMMU), Error::NotFound as u64);
    assert_eq!(p.freed.len(), 2, "each frame given back once");
}

#[test]
fn releasing_a_live_pin_frees_nothing() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    let token = pending_call(&mut k, &mut p, DRIVER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 4096, 0, 0],
    );
    let id = result(&k, IOMMU).1[1];
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaUnpin, [id, 0, 0, 0, 0, 0]);
    assert_eq!(status(&k, IOMMU), 0);
    assert!(p.freed.is_empty());
    assert_eq!(k.pins.count(), 0);
    // Stopping the owner now keeps nothing back.
    k.fault(&mut p, DRIVER, BREAKPOINT);
    assert!(p.kept.is_empty());
    assert_eq!(k.tasks[IOMMU].notifications & NOTIFY_DMA_REVOKED, 0);
}

#[test]
fn when_the_iommu_service_stops_its_revoked_pins_free_their_frames() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    let token = pending_call(&mut k, &mut p, DRIVER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 4096, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), 0);
    k.fault(&mut p, DRIVER, BREAKPOINT);
    assert!(p.freed.is_empty());
    k.fault(&mut p, IOMMU, BREAKPOINT);
    assert_eq!(p.freed, [0x1234_5000]);
    assert_eq!(k.pins.count(), 0);
}

#[test]
fn a_restarted_service_has_no_buffers_of_its_predecessor() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    k.fault(&mut p, DRIVER, BREAKPOINT);
    k.restart(&mut p, DRIVER).unwrap();
    let token = pending_call(&mut k, &mut p, DRIVER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 4096, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::NotFound as u64);
}

#[test]
fn pins_run_out_with_a_typed_error() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    let token = pending_call(&mut k, &mut p, DRIVER);
    for _ in 0..dma::MAX_PINS {
        sys(
            &mut k,
            &mut p,
            IOMMU,
            Sysnum::ClientDma,
            [token, 0, 0, 4096, 0, 0],
        );
        assert_eq!(status(&k, IOMMU), 0);
    }
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 4096, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), Error::OutOfMemory as u64);
}

#[test]
fn a_second_iommu_service_cannot_release_anothers_pin() {
    let mut pins = dma::Pins::default();
    let pin = dma::Pin {
        holder: 0,
        owner: 1,
        vaddr: 0,
        paddr: 0x1000,
        bytes: 4096,
        revoked: true,
    };
    let id = pins.pin(pin).unwrap();
    assert_eq!(pins.count(), 1);
    assert_eq!(pins.release(5, id), Err(Error::NotFound));
    assert_eq!(pins.next_revoked(5), None);
    assert_eq!(pins.release(0, id).unwrap().as_slice(), [0x1000]);
    // A new pin in the same slot has a new id.
    let again = pins.pin(pin).unwrap();
    assert_ne!(again, id);
    assert_eq!(pins.release(0, id), Err(Error::NotFound));
}

#[test]
fn stopping_one_owner_revokes_its_pins_only() {
    let (mut k, mut p) = dma_world(true);
    alloc(&mut k, &mut p, DRIVER, DMA, 4096);
    alloc(&mut k, &mut p, OTHER, OTHER_DMA, 4096);
    let token = pending_call(&mut k, &mut p, DRIVER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 4096, 0, 0],
    );
    let driver_pin = result(&k, IOMMU).1[1];
    let token = pending_call(&mut k, &mut p, OTHER);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::ClientDma,
        [token, 0, 0, 4096, 0, 0],
    );
    assert_eq!(status(&k, IOMMU), 0);
    assert_eq!(k.pins.count(), 2);
    k.fault(&mut p, OTHER, BREAKPOINT);
    k.tasks[IOMMU].notifications = 0;
    // The driver's pin lives on; only `other`'s range was kept back.
    assert_eq!(p.kept, [(OTHER, 0x6000_0000_0000 + 0x10_0000, 4096)]);
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaRevoked, [0; 6]);
    let revoked = result(&k, IOMMU).1[0];
    assert_ne!(revoked, driver_pin);
    sys(
        &mut k,
        &mut p,
        IOMMU,
        Sysnum::DmaUnpin,
        [revoked, 0, 0, 0, 0, 0],
    );
    sys(&mut k, &mut p, IOMMU, Sysnum::DmaRevoked, [0; 6]);
    assert_eq!(status(&k, IOMMU), Error::NotFound as u64);
    assert_eq!(p.freed, [0x1234_5000 + 0x10_0000]);
    // A restarted owner's earlier pins are not revoked twice.
    k.restart(&mut p, OTHER).unwrap();
    k.fault(&mut p, OTHER, BREAKPOINT);
    assert_eq!(p.kept.len(), 1);
    assert_eq!(k.tasks[IOMMU].notifications & NOTIFY_DMA_REVOKED, 0);
}
