//! Page requests without the page request queue: Linux's validity rules
//! (`crate::prq::check`), the page group response and drain wait
//! descriptors, and the refusals that happen before any page request
//! register is touched (so they run on QEMU's model, which has none).

use super::*;
use crate::error::{Error, Unsupported};
use crate::prq::{self, GroupId, Malformed, Overflow, PageGroupResponse, PageRequest, PrqBatch};
use crate::queue::{self, Descriptor};

/// A well-formed user read of a canonical page.
fn read_request() -> PageRequest {
    PageRequest {
        rid: EDU.0,
        pasid: Some(5),
        exec: false,
        privileged: false,
        read: true,
        write: false,
        last: true,
        prg_index: 3,
        address: 0x7fff_ffff_f000,
    }
}

/// Rule: an ordinary read, write, read+write or exec-only request of a
/// canonical user page passes, as does a stop marker.
#[test]
fn well_formed_requests_pass() {
    let r = read_request();
    assert_eq!(prq::check(&r), Ok(()));
    assert_eq!(prq::check(&PageRequest { write: true, ..r }), Ok(()));
    let w = PageRequest {
        read: false,
        write: true,
        ..r
    };
    assert_eq!(prq::check(&w), Ok(()));
    let x = PageRequest {
        read: false,
        exec: true,
        ..r
    };
    assert_eq!(prq::check(&x), Ok(()));
    let stop = PageRequest { read: false, ..r };
    assert!(stop.is_stop_marker());
    assert_eq!(prq::check(&stop), Ok(()));
    // The upper canonical half is canonical too (privilege is its own rule).
    let high = PageRequest {
        address: 0xffff_8000_0000_0000,
        ..r
    };
    assert_eq!(prq::check(&high), Ok(()));
}

/// Rule (Linux: `!is_canonical_address`): an address whose bits 63:47 are
/// not all equal is malformed, whatever the access.
#[test]
fn non_canonical_address_is_malformed() {
    for address in [
        0x8000_0000_0000,
        0x0001_0000_0000_0000,
        0xfff0_7fff_ffff_f000,
    ] {
        let r = PageRequest {
            address,
            ..read_request()
        };
        assert_eq!(prq::check(&r), Err(Malformed::NonCanonical), "{address:#x}");
    }
    // Checked first: a non-canonical privileged exec read reports the address.
    let all = PageRequest {
        address: 0x8000_0000_0000,
        privileged: true,
        exec: true,
        ..read_request()
    };
    assert_eq!(prq::check(&all), Err(Malformed::NonCanonical));
}

/// Rule (Linux: `pm_req && (rd_req | wr_req)`): a privileged-mode request
/// that reads or writes is malformed; privileged with neither is not.
#[test]
fn privileged_access_is_malformed() {
    let base = PageRequest {
        privileged: true,
        ..read_request()
    };
    assert_eq!(prq::check(&base), Err(Malformed::PrivilegedAccess));
    let write = PageRequest {
        read: false,
        write: true,
        ..base
    };
    assert_eq!(prq::check(&write), Err(Malformed::PrivilegedAccess));
    let neither = PageRequest {
        read: false,
        ..base
    };
    assert_eq!(prq::check(&neither), Ok(()));
    // Checked before the exec rule.
    let exec = PageRequest { exec: true, ..base };
    assert_eq!(prq::check(&exec), Err(Malformed::PrivilegedAccess));
}

/// Rule (Linux: `exe_req && rd_req`): an execute request that also reads
/// is malformed; execute with write only is not this rule's business.
#[test]
fn exec_read_is_malformed() {
    let r = PageRequest {
        exec: true,
        ..read_request()
    };
    assert_eq!(prq::check(&r), Err(Malformed::ExecRead));
    let exec_write = PageRequest {
        read: false,
        write: true,
        ..r
    };
    assert_eq!(prq::check(&exec_write), Ok(()));
}

/// Rule: each refusal has its own log line.
#[test]
fn malformed_texts_differ() {
    let texts = [
        Malformed::NonCanonical.text(),
        Malformed::PrivilegedAccess.text(),
        Malformed::ExecRead.text(),
    ];
    assert!(texts.iter().all(|t| !t.is_empty()));
    assert_ne!(texts[0], texts[1]);
    assert_ne!(texts[1], texts[2]);
    assert_ne!(texts[0], texts[2]);
    assert_eq!(Malformed::ExecRead.to_string(), texts[2]);
}

/// Rule: a page group response is the type-9 descriptor the format crate
/// encodes, and decodes back to the same group and code.
#[test]
fn page_group_response_descriptor() {
    let r = PageGroupResponse {
        group: read_request().group(),
        code: prq::RESPONSE_INVALID,
    };
    let d = Descriptor::page_group_response(r);
    assert_eq!((d.low, d.high), r.encode());
    assert_eq!(d.low & 0xf, queue::TYPE_PAGE_GROUP_RESPONSE);
    assert_eq!(PageGroupResponse::decode(d.low, d.high), Ok(r));
    let no_pasid = PageGroupResponse {
        group: GroupId {
            rid: OTHER.0,
            pasid: None,
            prg_index: 0x1ff,
        },
        code: prq::RESPONSE_SUCCESS,
    };
    let d = Descriptor::page_group_response(no_pasid);
    assert_eq!(d.low & (1 << 4), 0, "PASID present clear");
    assert_eq!(PageGroupResponse::decode(d.low, d.high), Ok(no_pasid));
}

/// Rule: a drain wait is the usual status-writing wait plus fence (bit 6)
/// and page-request drain (bit 7), never with IF.
#[test]
fn drain_wait_descriptor() {
    let d = Descriptor::drain_wait(0x4000_1004, 7);
    let w = Descriptor::wait(0x4000_1004, 7);
    assert_eq!(d.low, w.low | 1 << 6 | 1 << 7);
    assert_eq!(d.high, w.high);
    assert_eq!(d.low & 0xf, queue::TYPE_WAIT);
    assert_ne!(d.low & queue::WAIT_STATUS_WRITE, 0);
    assert_eq!(d.low & queue::WAIT_INTERRUPT, 0);
    assert_eq!(d.low >> 32, 7);
}

/// Rule: merging reads adds the counts; a cleared overflow is never
/// forgotten (partial groups must go), otherwise the later state wins.
#[test]
fn batches_merge() {
    let mut b = PrqBatch {
        requests: 2,
        garbage: 1,
        overflow: Some(Overflow::Pending),
    };
    b.merge(PrqBatch {
        requests: 1,
        garbage: 0,
        overflow: Some(Overflow::Cleared),
    });
    assert_eq!(
        b,
        PrqBatch {
            requests: 3,
            garbage: 1,
            overflow: Some(Overflow::Cleared)
        }
    );
    b.merge(PrqBatch::default());
    assert_eq!(b.overflow, Some(Overflow::Cleared));
    let mut p = PrqBatch {
        overflow: Some(Overflow::Pending),
        ..PrqBatch::default()
    };
    p.merge(PrqBatch::default());
    assert_eq!(p.overflow, None);
}

/// Rule: without ECAP.PRS (QEMU's default) the queue cannot be enabled,
/// its event cannot be programmed, and nothing is allocated or written.
#[test]
fn page_requests_refused_without_prs() {
    let (model, mut unit) = qemu();
    assert!(!unit.page_requests_supported());
    assert!(!unit.page_drain_supported());
    let frames = model.frames_in_use();
    model.clear_events();
    let refused = Err(Error::Unsupported(Unsupported::PageRequests));
    assert_eq!(unit.enable_page_requests(), refused);
    assert_eq!(
        unit.enable_page_request_interrupt(0xfee0_0000, 0x41),
        refused
    );
    assert_eq!(model.frames_in_use(), frames);
    assert_eq!(model.events(), []);
    assert_eq!(unit.page_request_queue(), None);
}

/// Rule: reading or answering before the queue is enabled is refused, and
/// a drain without ECAP.PDS is refused before any register is touched.
#[test]
fn queue_use_before_enable_and_drain_without_pds_refused() {
    let (model, mut unit) = qemu();
    model.clear_events();
    let mut seen = Vec::new();
    assert_eq!(
        unit.read_page_requests(&mut |r| seen.push(r)),
        Err(Error::Unsupported(Unsupported::PageRequestQueueOff))
    );
    let response = PageGroupResponse {
        group: read_request().group(),
        code: prq::RESPONSE_SUCCESS,
    };
    assert_eq!(
        unit.page_group_response(response),
        Err(Error::Unsupported(Unsupported::PageRequestQueueOff))
    );
    assert_eq!(
        unit.drain_page_requests(1, &mut |r| seen.push(r)),
        Err(Error::Unsupported(Unsupported::PageRequestDrain))
    );
    assert!(seen.is_empty());
    assert_eq!(model.events(), []);
}
