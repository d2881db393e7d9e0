//! Host tests of the judge: each rule, and what the handler is told.

use faultline_ipc::protocol::faults::{FaultToken, FaultsError, FaultsResponse};

use crate::cases::{CASES, Item};
use crate::judge::{Judge, Rule};

const MS: u64 = 1_000_000;

fn items(name: &str) -> &'static [Item] {
    CASES.iter().find(|c| c.name == name).unwrap().items
}

fn token(r: &FaultsResponse) -> FaultToken {
    match r {
        FaultsResponse::Fault(f) => f.token,
        FaultsResponse::PageGroup(g) => g.token,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fault_answered_once_in_time_breaks_nothing() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("dma_fault"), 0);
    assert!(!j.settled());
    let t = token(&j.deliver().unwrap());
    assert_eq!(j.deliver(), None, "one fault, delivered once");
    assert_eq!(j.answer(t, false, 5 * MS), FaultsResponse::Answered);
    assert!(j.settled());
    j.expire(1_000 * MS);
    assert_eq!(j.violations().0, []);
}

#[test]
fn a_second_answer_is_refused_and_named_once() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("page_group_single"), 0);
    let t = token(&j.deliver().unwrap());
    j.answer(t, false, 0);
    for _ in 0..3 {
        assert_eq!(
            j.answer(t, false, 0),
            FaultsResponse::Refused(FaultsError::AlreadyAnswered)
        );
    }
    let (v, more) = j.violations();
    assert_eq!((v.len(), more), (1, 0));
    assert_eq!((v[0].token, v[0].rule), (t, Rule::AnsweredTwice));
    assert!(matches!(v[0].item, Some(Item::Group { .. })));
}

#[test]
fn tokens_never_delivered_are_refused_and_named() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("page_groups_interleaved"), 0);
    let t = token(&j.deliver().unwrap());
    // The next one is issued but not delivered yet; one far away never was.
    let queued = FaultToken(t.0 + 1);
    assert_eq!(
        j.answer(queued, false, 0),
        FaultsResponse::Refused(FaultsError::UnknownToken)
    );
    assert_eq!(
        j.answer(FaultToken(t.0 + 1000), false, 0),
        FaultsResponse::Refused(FaultsError::UnknownToken)
    );
    let rules: Vec<Rule> = j.violations().0.iter().map(|v| v.rule).collect();
    assert_eq!(rules, [Rule::NeverDelivered, Rule::NeverDelivered]);
    assert_eq!(j.answer(t, false, 0), FaultsResponse::Answered);
}

#[test]
fn a_fault_past_its_deadline_is_named_once_and_a_late_answer_is_stale() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("dma_fault"), 10 * MS);
    let t = token(&j.deliver().unwrap());
    assert_eq!(j.next_deadline(), Some(110 * MS));
    j.expire(109 * MS);
    assert!(!j.settled());
    j.expire(110 * MS);
    j.expire(500 * MS);
    assert!(j.settled());
    assert_eq!(
        j.answer(t, false, 600 * MS),
        FaultsResponse::Refused(FaultsError::Stale)
    );
    let rules: Vec<Rule> = j.violations().0.iter().map(|v| v.rule).collect();
    assert_eq!(rules, [Rule::NoAnswerInTime]);
    assert_eq!(j.next_deadline(), None);
}

#[test]
fn a_fault_never_pulled_also_misses_its_deadline() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("dma_fault"), 0);
    j.expire(100 * MS);
    assert!(j.settled());
    assert_eq!(j.deliver(), None, "an expired fault is not delivered late");
    assert_eq!(j.violations().0[0].rule, Rule::NoAnswerInTime);
}

#[test]
fn map_is_honoured_only_for_a_reserved_dma_page() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("dma_fault_backed"), 0);
    let t = token(&j.deliver().unwrap());
    assert_eq!(j.answer(t, true, 0), FaultsResponse::Answered);
    j.start(items("dma_fault"), 0);
    let t = token(&j.deliver().unwrap());
    assert_eq!(
        j.answer(t, true, 0),
        FaultsResponse::Refused(FaultsError::NotBacked)
    );
    assert!(!j.settled(), "a refused map is not an answer");
    assert_eq!(j.answer(t, false, 0), FaultsResponse::Answered);
    j.start(items("page_group_single"), 0);
    let t = token(&j.deliver().unwrap());
    assert_eq!(
        j.answer(t, true, 0),
        FaultsResponse::Refused(FaultsError::NotBacked)
    );
    assert_eq!(j.violations().0, []);
}

#[test]
fn tokens_grow_across_cases_and_an_old_token_is_stale() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("dma_fault"), 0);
    let first = token(&j.deliver().unwrap());
    j.answer(first, false, 0);
    j.start(items("dma_fault"), 0);
    let second = token(&j.deliver().unwrap());
    assert!(second.0 > first.0);
    assert_eq!(
        j.answer(first, false, 0),
        FaultsResponse::Refused(FaultsError::Stale)
    );
    assert_eq!(j.violations().0[0].rule, Rule::NeverDelivered);
}

#[test]
fn deliveries_carry_what_the_case_names() {
    let mut j = Judge::new(0x18, 100);
    j.start(items("page_group_16"), 0);
    match j.deliver().unwrap() {
        FaultsResponse::PageGroup(g) => {
            assert_eq!(
                (g.bdf, g.pasid, g.prg_index, g.pages.len()),
                (0x18, Some(1), 2, 16)
            );
            assert_eq!(g.pages[15].address, 0x7000_0000 + (15 << 12));
        }
        other => panic!("{other:?}"),
    }
    j.start(items("malformed_input"), 0);
    let mut kinds = Vec::new();
    while let Some(d) = j.deliver() {
        kinds.push(d);
    }
    assert_eq!(kinds.len(), 3);
    assert!(matches!(&kinds[2], FaultsResponse::PageGroup(g) if g.pages.is_empty()));
}

#[test]
fn malformed_requests_are_violations() {
    let mut j = Judge::new(0x18, 100);
    j.start(&[], 0);
    j.malformed();
    assert_eq!(j.violations().0[0].rule, Rule::Malformed);
}

#[test]
fn every_case_fits_the_judge_and_names_are_unique() {
    let mut names = std::collections::BTreeSet::new();
    for c in CASES {
        assert!(c.items.len() <= crate::judge::MAX_ISSUED, "{}", c.name);
        assert!(names.insert(c.name), "{} twice", c.name);
    }
}
