//! The AIMD controller on injected times and RTTs.

use super::*;

const T: i64 = 1_767_225_600_000;

/// Feeds `windows` windows of answers with the limit filled, each at least
/// `rtt` long (or the controller's own window length), and returns the
/// limit after each.
fn run(a: &mut Aimd, now: &mut i64, windows: usize, rtt: i64, signal: Signal) -> Vec<usize> {
    (0..windows)
        .map(|_| {
            // Two answers inside the window, a third closing it.
            for _ in 0..2 {
                *now += 1;
                a.observe(*now, signal, a.limit());
            }
            let length = a.baseline_ms.map_or(0, |b| b.ceil() as i64);
            let length = length.max(MIN_WINDOW_MS).max(rtt);
            *now = (*now).max(a.window_start_ms + length);
            a.observe(*now, signal, a.limit());
            a.limit()
        })
        .collect()
}

fn ok(rtt_ms: i64) -> Signal {
    Signal::Answered { rtt_ms }
}

#[test]
fn ramps_up_by_one_per_window_under_steady_latency_up_to_the_max() {
    let mut now = T;
    let mut a = Aimd::new(8, now);
    assert_eq!(a.limit(), 1, "starts at one");
    let limits = run(&mut a, &mut now, 12, 40, ok(40));
    assert_eq!(limits, [2, 3, 4, 5, 6, 7, 8, 8, 8, 8, 8, 8]);
    assert_eq!(a.baseline_ms(), Some(40.0));
}

#[test]
fn does_not_grow_a_limit_it_does_not_use() {
    let mut now = T;
    let mut a = Aimd::new(8, now);
    run(&mut a, &mut now, 3, 40, ok(40));
    assert_eq!(a.limit(), 4);
    for _ in 0..20 {
        now += 50;
        a.observe(now, ok(40), 1);
    }
    assert_eq!(
        a.limit(),
        4,
        "one request at a time says nothing about more"
    );
}

#[test]
fn backs_off_on_429_and_timeouts_by_a_tenth_at_least_one() {
    let mut now = T;
    let mut a = Aimd::new(64, now);
    run(&mut a, &mut now, 39, 40, ok(40));
    assert_eq!(a.limit(), 40);
    // Many 429s in one window: one cut.
    for _ in 0..10 {
        a.observe(now + 1, Signal::BackPressure, 40);
    }
    now += 40;
    assert_eq!(a.observe(now, Signal::BackPressure, 40), Some((40, 36)));
    let limits = run(&mut a, &mut now, 3, 40, Signal::BackPressure);
    assert_eq!(limits, [32, 28, 25]);
    // Small limits still come down, one at a time, and never below 1.
    let limits = run(&mut a, &mut now, 40, 40, Signal::BackPressure);
    assert_eq!(&limits[..3], [22, 19, 17]);
    assert!(limits.windows(2).all(|w| w[1] <= w[0]));
    assert_eq!(*limits.last().unwrap(), 1);
    assert_eq!(
        a.observe(now + 1_000, Signal::BackPressure, 1),
        None,
        "1 is the floor"
    );
    // And it climbs back.
    assert_eq!(run(&mut a, &mut now, 2, 40, ok(40)), [2, 3]);
}

#[test]
fn backs_off_when_latency_rises_clearly_above_the_baseline() {
    let mut now = T;
    let mut a = Aimd::new(32, now);
    run(&mut a, &mut now, 9, 40, ok(40));
    assert_eq!(a.limit(), 10);
    // Within the tolerance: still growing.
    assert_eq!(run(&mut a, &mut now, 1, 40, ok(55)), [11]);
    // Clearly slower (the platform queues): cut, window after window, while
    // the latency stays above the baseline's tolerance (the baseline follows:
    // 40 → 105 → 143 ms).
    assert_eq!(run(&mut a, &mut now, 2, 200, ok(200)), [9, 8]);
    // A platform that stays slower for good becomes the new baseline, and
    // the limit grows again.
    let limits = run(&mut a, &mut now, 20, 200, ok(200));
    assert!(limits.last() > limits.first(), "{limits:?}");
    assert!(a.baseline_ms().unwrap() > 150.0);
}

#[test]
fn never_above_the_max_nor_below_one_whatever_comes() {
    let mut now = T;
    let mut a = Aimd::new(3, now);
    let mut seed = 7u64;
    for _ in 0..5_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        now += (seed >> 60) as i64;
        let signal = match seed >> 61 {
            0 => Signal::BackPressure,
            k => ok(((seed >> 40) % 500) as i64 * k as i64),
        };
        a.observe(now, signal, (seed >> 33) as usize % 5);
        assert!((1..=3).contains(&a.limit()), "{}", a.limit());
    }
    assert_eq!(Aimd::new(0, now).limit(), 1, "a zero max acts as one");
}
