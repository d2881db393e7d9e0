//! The restart policy, step by step.

use super::*;
use faultline_ipc::kconfig::TaskFault;

const MS: u64 = 1_000_000;

fn status(state: TaskState, restarts: u32, policy: RestartPolicy) -> TaskStatus {
    TaskStatus {
        name: "crasher".try_into().unwrap(),
        state,
        generation: restarts + 1,
        restarts,
        fault: (state == TaskState::Faulted).then_some(TaskFault {
            vector: 14,
            error_code: 6,
            address: 0,
            rip: 0x401234,
        }),
        policy,
    }
}

const RESTART: RestartPolicy = RestartPolicy::Restart {
    backoff_ms: 20,
    max_restarts: 3,
};

#[test]
fn running_and_clean_exits_need_nothing() {
    let mut s = Supervisor::new();
    let running = status(TaskState::Running, 0, RESTART);
    assert_eq!(s.observe(1, &running, 0), Decision::Nothing);
    let clean = status(TaskState::Exited { code: 0 }, 0, RESTART);
    assert_eq!(s.observe(1, &clean, 0), Decision::Nothing);
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn hold_policy_holds_once() {
    let mut s = Supervisor::new();
    let faulted = status(TaskState::Faulted, 0, RestartPolicy::Hold);
    assert_eq!(
        s.observe(2, &faulted, 0),
        Decision::Hold(HoldReason::Policy)
    );
    assert_eq!(s.observe(2, &faulted, 5 * MS), Decision::Nothing);
    assert_eq!(s.name(2), "crasher");
}

#[test]
fn back_off_doubles_for_consecutive_restarts_then_holds_at_the_limit() {
    let mut s = Supervisor::new();
    let mut now = 100 * MS;
    for (restarts, delay_ms) in [(0, 20), (1, 40), (2, 80)] {
        let faulted = status(TaskState::Faulted, restarts, RESTART);
        let d = s.observe(1, &faulted, now);
        assert_eq!(
            d,
            Decision::Restart {
                at_ns: now + delay_ms * MS,
                delay_ms,
                restart: restarts + 1,
                max: 3,
                generation: restarts + 2,
            }
        );
        // Scanning again before it is due changes nothing.
        assert_eq!(s.observe(1, &faulted, now + MS), Decision::Nothing);
        assert_eq!(s.take_due(now + delay_ms * MS - 1), None);
        assert_eq!(s.next_deadline(), Some(now + delay_ms * MS));
        now += delay_ms * MS;
        assert_eq!(s.take_due(now), Some(1));
        assert_eq!(s.take_due(now), None);
        // It runs again, and faults soon after.
        assert_eq!(
            s.observe(1, &status(TaskState::Running, restarts + 1, RESTART), now),
            Decision::Nothing
        );
        now += 5 * MS;
    }
    let faulted = status(TaskState::Faulted, 3, RESTART);
    assert_eq!(
        s.observe(1, &faulted, now),
        Decision::Hold(HoldReason::Limit { max: 3 })
    );
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn a_long_run_resets_the_back_off() {
    let mut s = Supervisor::new();
    let policy = RestartPolicy::Restart {
        backoff_ms: 10,
        max_restarts: 100,
    };
    let d = s.observe(3, &status(TaskState::Faulted, 0, policy), 0);
    assert!(matches!(d, Decision::Restart { delay_ms: 10, .. }));
    assert_eq!(s.take_due(10 * MS), Some(3));
    let d = s.observe(3, &status(TaskState::Faulted, 1, policy), 20 * MS);
    assert!(matches!(d, Decision::Restart { delay_ms: 20, .. }));
    assert_eq!(s.take_due(40 * MS), Some(3));
    let later = 40 * MS + RESET_NS + 1;
    let d = s.observe(3, &status(TaskState::Faulted, 2, policy), later);
    assert!(matches!(d, Decision::Restart { delay_ms: 10, .. }));
}

#[test]
fn a_failing_exit_is_treated_like_a_fault_and_refusals_hold() {
    let mut s = Supervisor::new();
    let panicked = status(TaskState::Exited { code: 101 }, 0, RESTART);
    assert!(matches!(
        s.observe(4, &panicked, 0),
        Decision::Restart { .. }
    ));
    assert_eq!(s.take_due(20 * MS), Some(4));
    assert_eq!(s.restart_refused(4), Decision::Hold(HoldReason::Refused));
    assert_eq!(s.observe(4, &panicked, 30 * MS), Decision::Nothing);
}

#[test]
fn stops_are_described_for_the_log() {
    let faulted = status(TaskState::Faulted, 0, RESTART);
    assert_eq!(
        std::format!("{}", Stop(&faulted)),
        "faulted: page fault (vector 14) at 0x0, rip 0x401234"
    );
    let exited = status(TaskState::Exited { code: 101 }, 0, RESTART);
    assert_eq!(std::format!("{}", Stop(&exited)), "exited with code 101");
}

#[test]
fn statuses_decode_strictly() {
    let st = status(TaskState::Faulted, 2, RESTART);
    let mut buf = [0u8; 128];
    let n = postcard::to_slice(&st, &mut buf).unwrap().len();
    assert_eq!(decode_status(&buf[..n]), Ok(st));
    assert_eq!(
        decode_status(&buf[..n + 1]),
        Err(WireError::TrailingBytes { extra: 1 })
    );
    assert_eq!(decode_status(&buf[..n - 1]), Err(WireError::Truncated));
}
