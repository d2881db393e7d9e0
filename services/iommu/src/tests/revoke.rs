//! Revocation: the owner of pinned memory stopped.

use super::*;

/// Rule: revoking a pin unmaps every mapping of it (its DMA faults after,
/// though it was cached before) and then releases it; other mappings stay.
#[test]
fn revoke_unmaps_then_releases() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, A, map(0, 0x1000, 1, 0, 0x2000));
    call(&mut s, &mut k, A, map(0, 0x8000, 1, 0x8000, 0x1000));
    let pin = s.mappings()[0].pin;
    assert_eq!(model.translate(source(EDU), 0x2000, true), Ok(0x10_1000));
    k.unpin_probe = Some((model.clone(), EDU, 0x2000));
    let revoked = s.revoke(&mut k, pin);
    assert_eq!(revoked.mappings, 1);
    assert_eq!(revoked.pages, 2);
    assert_eq!(revoked.bdf, Some(EDU));
    assert!(revoked.released);
    assert!(model.translate(source(EDU), 0x2000, true).is_err());
    assert_eq!(model.translate(source(EDU), 0x8000, true), Ok(0x10_8000));
    assert_eq!(k.released, [pin]);
    assert_eq!(s.mappings().len(), 1);
    // The device stays attached, and the range can be mapped again.
    assert!(matches!(
        call(&mut s, &mut k, A, map(0, 0x1000, 1, 0, 0x1000)),
        IommuResponse::Mapped { .. }
    ));
}

/// Rule: a pin the service maps nothing with is released at once.
#[test]
fn revoking_an_unknown_pin_releases_it() {
    let (_model, mut s, mut k) = qemu();
    k.pins.insert(55, (A, 0x10_0000, 0x1000));
    let revoked = s.revoke(&mut k, 55);
    assert_eq!(revoked.mappings, 0);
    assert_eq!(k.released, [55]);
}

/// Rule: when the unit cannot invalidate, a revoked pin is not released
/// (its frames must not be reused while the IOTLB may hold them).
#[test]
fn revoke_keeps_the_pin_when_invalidation_fails() {
    let (model, mut s, mut k) = qemu();
    call(&mut s, &mut k, A, attach(0));
    call(&mut s, &mut k, A, map(0, 0x1000, 1, 0, 0x1000));
    let pin = s.mappings()[0].pin;
    model.set_queue_stuck(true);
    let revoked = s.revoke(&mut k, pin);
    assert!(!revoked.released);
    assert!(k.released.is_empty());
    assert_eq!(s.quarantined(), 1);
}
