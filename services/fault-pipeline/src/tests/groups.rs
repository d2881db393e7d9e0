//! Page groups: collected whole, routed by device and PASID, delivered
//! once, and answered by exactly one response, whoever answers; the two
//! seed bugs again, for page requests.

use faultline_ipc::protocol::faults::{FaultToken, FaultsError, MAX_GROUP_PAGES, ResponseCode};
use faultline_vtd::prq::PageRequest;

use super::{EDU, Log, MS, OTHER, Reply};
use crate::groups::{Assembler, Collected};
use crate::{AutoReason, NewFault, Pipeline};

fn request(rid: u16, pasid: Option<u32>, prg: u16, page: u64, last: bool) -> PageRequest {
    PageRequest {
        rid,
        pasid,
        exec: false,
        privileged: false,
        read: true,
        write: page % 2 == 1,
        last,
        prg_index: prg,
        address: page << 12,
    }
}

/// A complete group of `n` pages of `rid`'s PASID `pasid`.
fn group(rid: u16, pasid: Option<u32>, prg: u16, n: u64) -> NewFault {
    let mut a = Assembler::new();
    for page in 0..n {
        match a.push(&request(rid, pasid, prg, page, page + 1 == n)) {
            Collected::Complete(f) => return f,
            Collected::Partial => {}
            other => panic!("{other:?}"),
        }
    }
    unreachable!()
}

#[test]
fn requests_are_collected_until_the_last_of_their_group() {
    let mut a = Assembler::new();
    assert_eq!(
        a.push(&request(EDU, Some(1), 5, 1, false)),
        Collected::Partial
    );
    // Interleaved: another PASID and another index are other groups.
    assert_eq!(
        a.push(&request(EDU, Some(2), 5, 9, false)),
        Collected::Partial
    );
    assert_eq!(
        a.push(&request(EDU, Some(1), 6, 8, false)),
        Collected::Partial
    );
    assert_eq!(
        a.push(&request(EDU, Some(1), 5, 2, false)),
        Collected::Partial
    );
    let Collected::Complete(f) = a.push(&request(EDU, Some(1), 5, 3, true)) else {
        panic!("the last request completes the group");
    };
    let g = f.group.unwrap();
    assert_eq!((f.bdf, f.pasid, g.prg_index), (EDU, Some(1), 5));
    let pages: Vec<u64> = g.pages().iter().map(|p| p.address >> 12).collect();
    assert_eq!(pages, [1, 2, 3], "in the order the device sent them");
    assert_eq!(a.partial_groups(), 2);
}

#[test]
fn a_lone_last_request_is_a_group_of_one() {
    let f = group(EDU, None, 7, 1);
    assert_eq!(f.group.unwrap().pages().len(), 1);
    assert_eq!(f.pasid, None);
}

#[test]
fn a_group_longer_than_a_message_is_too_large_and_the_next_one_is_fine() {
    let mut a = Assembler::new();
    let n = MAX_GROUP_PAGES as u64 + 1;
    for page in 0..n - 1 {
        assert_eq!(
            a.push(&request(EDU, None, 1, page, false)),
            Collected::Partial
        );
    }
    let Collected::TooLarge(f) = a.push(&request(EDU, None, 1, n, true)) else {
        panic!("17 requests do not fit a page group message");
    };
    assert_eq!(f.group.unwrap().pages().len(), MAX_GROUP_PAGES);
    assert_eq!(a.partial_groups(), 0);
    let exactly = group(EDU, None, 1, MAX_GROUP_PAGES as u64);
    assert_eq!(exactly.group.unwrap().pages().len(), MAX_GROUP_PAGES);
}

#[test]
fn overflow_discards_partials_and_forget_is_per_device_and_pasid() {
    let mut a = Assembler::new();
    a.push(&request(EDU, Some(1), 1, 1, false));
    a.push(&request(EDU, Some(2), 1, 1, false));
    a.push(&request(OTHER, Some(1), 1, 1, false));
    assert_eq!(a.forget(EDU, Some(1)), 1);
    assert_eq!(a.partial_groups(), 2);
    // PASID 2's partial is kept: its group completes with two pages.
    let Collected::Complete(f) = a.push(&request(EDU, Some(2), 1, 2, true)) else {
        panic!();
    };
    assert_eq!(f.group.unwrap().pages().len(), 2);
    a.push(&request(EDU, Some(2), 1, 3, false));
    assert_eq!(a.forget(EDU, None), 1);
    assert_eq!(a.discard_partial(), 1);
    // After a discard the last request alone is a group of one.
    let Collected::Complete(f) = a.push(&request(OTHER, Some(1), 1, 2, true)) else {
        panic!();
    };
    assert_eq!(f.group.unwrap().pages().len(), 1);
}

#[test]
fn an_abandoned_group_loses_only_its_own_partial_requests() {
    let mut a = Assembler::new();
    a.push(&request(EDU, Some(1), 1, 1, false));
    a.push(&request(EDU, Some(1), 2, 1, false));
    a.abandon(request(EDU, Some(1), 1, 0, true).group());
    assert_eq!(a.partial_groups(), 1);
    let Collected::Complete(f) = a.push(&request(EDU, Some(1), 1, 5, true)) else {
        panic!();
    };
    assert_eq!(
        f.group.unwrap().pages().len(),
        1,
        "the abandoned partial is gone"
    );
    let Collected::Complete(f) = a.push(&request(EDU, Some(1), 2, 5, true)) else {
        panic!();
    };
    assert_eq!(
        f.group.unwrap().pages().len(),
        2,
        "the other group is whole"
    );
}

#[test]
fn partial_groups_beyond_the_table_are_dropped_and_counted() {
    let mut a = Assembler::new();
    assert_eq!(a.dropped(), 0);
    for prg in 0..crate::groups::MAX_PARTIAL_GROUPS as u16 {
        assert_eq!(
            a.push(&request(EDU, None, prg, 1, false)),
            Collected::Partial
        );
    }
    assert_eq!(
        a.push(&request(EDU, None, 500, 1, false)),
        Collected::Dropped
    );
    assert_eq!(a.dropped(), 1);
    // A known group still grows.
    assert_eq!(a.push(&request(EDU, None, 3, 2, false)), Collected::Partial);
}

#[test]
fn a_group_is_delivered_whole_and_answered_by_one_response() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, EDU, 50, &mut log).unwrap();
    p.next(1, 10, &mut log).unwrap();
    p.record(group(EDU, Some(3), 9, 4), 0, &mut log);
    assert_eq!(log.groups.len(), 1);
    assert!(log.delivered.is_empty(), "a page group is not a DMA fault");
    let (to, g) = log.groups[0].clone();
    assert_eq!(
        (to, g.bdf, g.pasid, g.prg_index, g.pages.len()),
        (10, EDU, Some(3), 9, 4)
    );
    assert!(log.responses.is_empty(), "nothing answered yet");
    p.answer(1, g.token, ResponseCode::Success, |_| Ok(()), &mut log)
        .unwrap();
    assert_eq!(log.responses, [(g.token, ResponseCode::Success)]);
    assert_eq!(
        p.answer(1, g.token, ResponseCode::Success, |_| Ok(()), &mut log),
        Err(FaultsError::AlreadyAnswered)
    );
    assert_eq!(log.responses.len(), 1, "a second answer sends nothing");
}

#[test]
fn a_pasid_handler_gets_its_pasids_groups_and_the_device_handler_the_rest() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, EDU, 50, &mut log).unwrap();
    p.register_pasid(2, EDU, 7, 50, &mut log).unwrap();
    assert_eq!(
        p.register_pasid(3, EDU, 7, 50, &mut log),
        Err(FaultsError::AlreadyHandled)
    );
    assert_eq!(
        p.register_pasid(3, EDU, 1 << 20, 50, &mut log),
        Err(FaultsError::BadPasid)
    );
    // Another PASID of the same device is another handler's to take, and
    // the largest PASID is a PASID.
    assert_eq!(
        p.register_pasid(3, EDU, (1 << 20) - 1, 50, &mut log),
        Ok(())
    );
    p.next(1, 10, &mut log).unwrap();
    p.next(2, 20, &mut log).unwrap();
    p.record(group(EDU, Some(7), 1, 1), 0, &mut log);
    p.record(group(EDU, Some(8), 1, 1), 0, &mut log);
    let to: Vec<(Reply, Option<u32>)> = log.groups.iter().map(|(r, g)| (*r, g.pasid)).collect();
    assert_eq!(to, [(20, Some(7)), (10, Some(8))]);
    // A DMA fault with PASID 7 is still the device handler's.
    let dma = NewFault {
        pasid: Some(7),
        ..super::fault(EDU, 0x1000)
    };
    p.next(1, 11, &mut log).unwrap();
    p.record(dma, 0, &mut log);
    assert_eq!(log.delivered[0].0, 11);
}

#[test]
fn a_device_is_handled_once_any_handler_registers_for_it() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    assert!(!p.handled(EDU));
    p.register_pasid(2, EDU, 7, 50, &mut log).unwrap();
    assert!(p.handled(EDU), "a PASID handler makes the device known");
    assert!(!p.handled(OTHER));
    p.register(1, OTHER, 50, &mut log).unwrap();
    assert!(p.handled(OTHER));
    // A device known only from a fault is not handled.
    p.record(super::fault(0x28, 0x1000), 0, &mut log);
    assert!(!p.handled(0x28));
}

#[test]
fn a_restarted_pasid_handler_fails_only_that_pasids_groups() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, EDU, 50, &mut log).unwrap();
    p.register_pasid(1, EDU, 7, 50, &mut log).unwrap();
    p.next(1, 10, &mut log).unwrap();
    p.record(group(EDU, Some(7), 1, 1), 0, &mut log);
    p.next(1, 11, &mut log).unwrap();
    p.record(group(EDU, Some(8), 2, 1), 0, &mut log);
    p.register_pasid(1, EDU, 7, 50, &mut log).unwrap();
    assert_eq!(log.automatic, [(FaultToken(1), EDU, AutoReason::Restarted)]);
    assert_eq!(log.responses, [(FaultToken(1), ResponseCode::Failure)]);
    assert_eq!(p.outstanding().count(), 1);
}

#[test]
fn refused_groups_are_counted_and_answered_once_with_linuxs_codes() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.refuse(group(EDU, None, 1, 1), AutoReason::Malformed, &mut log);
    p.refuse(
        group(EDU, None, 2, 1),
        AutoReason::UnknownRequester,
        &mut log,
    );
    p.refuse(group(EDU, None, 3, 1), AutoReason::GroupTooLarge, &mut log);
    let codes: Vec<ResponseCode> = log.responses.iter().map(|r| r.1).collect();
    assert_eq!(
        codes,
        [
            ResponseCode::Invalid,
            ResponseCode::Invalid,
            ResponseCode::Failure
        ]
    );
    let c = p.counters();
    assert_eq!((c.faults, c.auto, c.invalid, c.failure), (3, 3, 2, 1));
    let tokens: Vec<u64> = log.responses.iter().map(|r| r.0.0).collect();
    assert_eq!(tokens, [1, 2, 3], "each gets its own token");
}

#[test]
fn groups_of_a_device_going_away_are_answered_invalid_and_later_answers_are_stale() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, EDU, 50, &mut log).unwrap();
    p.next(1, 10, &mut log).unwrap();
    p.record(group(EDU, Some(1), 1, 2), 0, &mut log);
    p.record(group(EDU, Some(2), 1, 2), 0, &mut log);
    p.record(super::fault(EDU, 0x5000), 0, &mut log);
    p.groups_gone(EDU, Some(1), &mut log);
    assert_eq!(log.responses, [(FaultToken(1), ResponseCode::Invalid)]);
    p.groups_gone(EDU, None, &mut log);
    assert_eq!(log.responses.len(), 2);
    assert_eq!(
        p.outstanding().count(),
        1,
        "the DMA fault is not a page group"
    );
    assert_eq!(
        p.answer(
            1,
            FaultToken(1),
            ResponseCode::Success,
            |_| Ok(()),
            &mut log
        ),
        Err(FaultsError::Stale)
    );
    assert_eq!(log.responses.len(), 2);
}

#[test]
fn seed_bug_1_a_group_from_a_device_with_no_handler_gets_invalid() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, OTHER, 50, &mut log).unwrap();
    p.record(group(EDU, Some(1), 4, 3), 0, &mut log);
    assert_eq!(log.responses, [(FaultToken(1), ResponseCode::Invalid)]);
    assert_eq!(log.automatic, [(FaultToken(1), EDU, AutoReason::NoHandler)]);
}

#[test]
fn seed_bug_2_a_group_is_reported_once_and_answered_once_even_past_its_deadline() {
    let mut p = Pipeline::<Reply>::new();
    let mut log = Log::default();
    p.register(1, EDU, 5, &mut log).unwrap();
    p.record(group(EDU, None, 4, 2), 0, &mut log);
    for pull in 0..4 {
        p.next(1, pull, &mut log).unwrap();
    }
    assert_eq!(log.groups.len(), 1);
    p.expire(5 * MS, &mut log);
    p.expire(10 * MS, &mut log);
    assert_eq!(
        p.answer(
            1,
            FaultToken(1),
            ResponseCode::Success,
            |_| Ok(()),
            &mut log
        ),
        Err(FaultsError::Stale)
    );
    assert_eq!(log.responses, [(FaultToken(1), ResponseCode::Failure)]);
}
