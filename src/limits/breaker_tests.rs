//! Unit tests of the circuit breaker state machine, on injected times.

use super::*;

const P: Policy = Policy {
    failure_ratio: 0.5,
    window_ms: 10_000,
    min_requests: 4,
    open_ms: 5_000,
};

fn fail(b: &mut Breaker, at: i64, n: u32) -> Option<Transition> {
    (0..n).filter_map(|_| b.observe(at, Health::Down)).last()
}

#[test]
fn too_few_requests_never_open_it() {
    let mut b = Breaker::new(P, 0);
    assert_eq!(fail(&mut b, 0, 3), None);
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.admit(1).0, Admission::Free);
}

#[test]
fn the_failure_ratio_over_the_window_opens_it() {
    let mut b = Breaker::new(P, 0);
    for _ in 0..4 {
        assert_eq!(b.observe(0, Health::Up), None);
    }
    assert_eq!(fail(&mut b, 100, 3), None, "3 of 7 failed: below half");
    assert_eq!(
        b.observe(200, Health::Down),
        Some(Transition::Opened { until_ms: 5_200 })
    );
    assert_eq!(b.admit(5_199).0, Admission::WaitUntil(5_200));
}

#[test]
fn old_requests_leave_the_window() {
    let mut b = Breaker::new(P, 0);
    for _ in 0..10 {
        b.observe(0, Health::Up);
    }
    // Ten seconds on, the successes are forgotten: four failures are all there is.
    assert_eq!(fail(&mut b, 10_000, 3), None);
    assert!(matches!(
        b.observe(10_000, Health::Down),
        Some(Transition::Opened { .. })
    ));
}

#[test]
fn rate_limits_do_not_count() {
    let mut b = Breaker::new(P, 0);
    for _ in 0..50 {
        assert_eq!(b.observe(0, Health::Busy), None);
    }
    assert_eq!(b.status(0).window_requests, 0);
}

#[test]
fn one_probe_per_interval_while_it_keeps_failing() {
    let mut b = Breaker::new(P, 0);
    let Some(Transition::Opened { until_ms }) = fail(&mut b, 0, 4) else {
        panic!("opens");
    };
    assert_eq!(until_ms, 5_000);
    assert_eq!(b.admit(4_999).0, Admission::WaitUntil(5_000));
    assert_eq!(
        b.admit(5_000),
        (Admission::Probe, Some(Transition::HalfOpened))
    );
    // The probe is out: nobody else goes until it answers or an interval passes.
    assert_eq!(b.admit(5_001).0, Admission::WaitUntil(10_000));
    assert_eq!(
        b.observe(5_300, Health::Down),
        Some(Transition::Opened { until_ms: 10_300 })
    );
    assert_eq!(b.admit(10_299).0, Admission::WaitUntil(10_300));
    assert_eq!(b.admit(10_300).0, Admission::Probe);
    assert_eq!(b.observe(10_400, Health::Up), Some(Transition::Closed));
    assert_eq!(b.admit(10_401).0, Admission::Free);
    assert_eq!(b.status(10_401).window_requests, 0, "a fresh window");
}

#[test]
fn a_hung_probe_is_replaced_after_an_interval() {
    let mut b = Breaker::new(P, 0);
    fail(&mut b, 0, 4);
    assert_eq!(b.admit(5_000).0, Admission::Probe);
    assert_eq!(b.admit(9_999).0, Admission::WaitUntil(10_000));
    assert_eq!(b.admit(10_000).0, Admission::Probe);
}

#[test]
fn a_probe_with_nothing_to_send_is_handed_back() {
    let mut b = Breaker::new(P, 0);
    fail(&mut b, 0, 4);
    assert_eq!(b.admit(5_000).0, Admission::Probe);
    b.no_probe();
    assert_eq!(b.admit(5_001).0, Admission::Probe);
}

#[test]
fn late_answers_while_open_change_nothing() {
    let mut b = Breaker::new(P, 0);
    fail(&mut b, 0, 4);
    assert_eq!(b.observe(100, Health::Up), None);
    assert_eq!(b.state(), CircuitState::Open);
    let s = b.status(100);
    assert_eq!(s.probe_at_ms, Some(5_000));
}

#[test]
fn statuses_count_as_the_platform_health() {
    assert_eq!(Health::of_status(200), Health::Up);
    assert_eq!(Health::of_status(422), Health::Up);
    assert_eq!(Health::of_status(429), Health::Busy);
    assert_eq!(Health::of_status(503), Health::Down);
}
