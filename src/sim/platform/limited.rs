//! A generic rate-limited sink for `ferry bench`: any request, any path,
//! admitted at R requests a second with a small burst (a GCRA: the token
//! bucket kept as one "theoretical arrival time"), refused with 429 and an
//! integer `Retry-After` when over. Every answer carries the IETF headers
//! ferry's `ietf` dialect reads: `RateLimit-Policy: "default";q=R;w=1` and
//! `RateLimit: "default";r=<remaining>;t=<seconds>`.
//!
//! What `r` and `t` mean here: the policy is R requests a one-second window,
//! so `r` is R less the requests the bucket still holds (each admitted
//! request takes one emission interval to drain), and `t` the whole seconds
//! until it has drained completely. A client sending steadily at R thus sees
//! `r > 0` (as long as the burst is below R); `r=0` comes with a 429, where
//! `t` equals `Retry-After`.
//! ferry's `ietf` parser only acts on `r=0` and wants integers, so both are.

use std::sync::{Arc, Mutex};

use axum::Router;

use axum::response::Response;
use axum::routing::any;

use super::{Call, Recorder, Running, StartError, answer, seen};
use crate::clock::Clock;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitedConfig {
    /// Requests admitted per second (R).
    pub per_second: f64,
    /// Requests admitted at once after an idle spell (at least 1).
    pub burst: u32,
}

/// The GCRA on microseconds: a request at `now` conforms when the
/// theoretical arrival time (TAT) is at most `tolerance` ahead of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gcra {
    /// Microseconds per request: 1 s / R.
    interval_us: i64,
    /// How far ahead of now the TAT may run: `(burst - 1)` intervals.
    tolerance_us: i64,
    /// The policy's quota per second, as the headers state it.
    quota: u64,
    tat_us: i64,
}

/// The answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted; `remaining` and `reset_s` for the `RateLimit` header.
    Admit { remaining: u64, reset_s: u64 },
    /// Refused; no request conforms for `retry_after_s` (rounded up).
    Refuse { retry_after_s: u64 },
}

impl Gcra {
    pub fn new(config: LimitedConfig) -> Gcra {
        let interval_us = (1e6 / config.per_second).round().max(1.0) as i64;
        Gcra {
            interval_us,
            tolerance_us: interval_us * (i64::from(config.burst.max(1)) - 1),
            quota: config.per_second.ceil().max(1.0) as u64,
            tat_us: i64::MIN,
        }
    }

    /// Decides one request at `now_us`; only an admitted one moves the TAT.
    pub fn check(&mut self, now_us: i64) -> Verdict {
        let tat = self.tat_us.max(now_us);
        if tat - now_us > self.tolerance_us {
            let wait_us = tat - self.tolerance_us - now_us;
            return Verdict::Refuse {
                retry_after_s: ceil_div(wait_us, 1_000_000),
            };
        }
        self.tat_us = tat + self.interval_us;
        let held = ceil_div(self.tat_us - now_us, self.interval_us);
        Verdict::Admit {
            remaining: self.quota.saturating_sub(held),
            reset_s: ceil_div(self.tat_us - now_us, 1_000_000),
        }
    }
}

fn ceil_div(a: i64, b: i64) -> u64 {
    (a.max(0) as u64).div_ceil(b.max(1) as u64)
}

struct Shared {
    clock: Clock,
    quota: u64,
    /// A `std` mutex: held only for the arithmetic.
    gcra: Mutex<Gcra>,
    recorder: Arc<Recorder>,
}

/// A running rate-limited sink.
#[derive(Clone)]
pub struct LimitedSink {
    running: Running,
}

running_accessors!(LimitedSink);

impl LimitedSink {
    /// Starts on 127.0.0.1, port 0; `clock` is the bucket's time
    /// (`Clock::System` in the bench, a manual one in tests).
    pub async fn start(clock: Clock, config: LimitedConfig) -> Result<LimitedSink, StartError> {
        if !(config.per_second > 0.0 && config.per_second.is_finite()) {
            return Err(StartError::Settings("a sink's rate must be positive"));
        }
        let recorder = Arc::new(Recorder::default());
        let gcra = Gcra::new(config);
        let shared = Arc::new(Shared {
            clock,
            quota: gcra.quota,
            gcra: Mutex::new(gcra),
            recorder: recorder.clone(),
        });
        let router = Router::new().fallback(any(handle)).with_state(shared);
        Ok(LimitedSink {
            running: Running::start(router, recorder).await?,
        })
    }
}

async fn handle(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    call: Call,
) -> Response {
    // The body is not kept: this sink stands for a platform under load.
    let mut record = seen(&s.clock, &call.method, &call.path, &call.headers, &[]);
    drop(call);
    let verdict = s
        .gcra
        .lock()
        .expect("sink bucket poisoned")
        .check(record.at_ms.saturating_mul(1000));
    let policy = ("ratelimit-policy", format!("\"default\";q={};w=1", s.quota));
    let (status, out, text) = match verdict {
        Verdict::Admit { remaining, reset_s } => {
            let limit = format!("\"default\";r={remaining};t={reset_s}");
            (200, vec![policy, ("ratelimit", limit)], "{\"ok\":true}")
        }
        Verdict::Refuse { retry_after_s } => {
            let limit = format!("\"default\";r=0;t={retry_after_s}");
            let retry = ("retry-after", retry_after_s.to_string());
            (
                429,
                vec![policy, ("ratelimit", limit), retry],
                "{\"error\":\"rate limited\"}",
            )
        }
    };
    record.status = status;
    s.recorder.record(record, status == 429);
    answer(status, &out, text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const T0: i64 = 1_767_225_600_000;

    fn gcra(per_second: f64, burst: u32) -> Gcra {
        Gcra::new(LimitedConfig { per_second, burst })
    }

    #[test]
    fn a_burst_goes_then_requests_wait_an_interval() {
        let mut g = gcra(10.0, 3);
        let now = 5 * S;
        assert_eq!(
            g.check(now),
            Verdict::Admit {
                remaining: 9,
                reset_s: 1
            }
        );
        assert_eq!(
            g.check(now),
            Verdict::Admit {
                remaining: 8,
                reset_s: 1
            }
        );
        assert_eq!(
            g.check(now),
            Verdict::Admit {
                remaining: 7,
                reset_s: 1
            }
        );
        assert_eq!(g.check(now), Verdict::Refuse { retry_after_s: 1 });
        assert_eq!(g.check(now + 99_999), Verdict::Refuse { retry_after_s: 1 });
        assert!(matches!(g.check(now + 100_000), Verdict::Admit { .. }));
        assert!(matches!(g.check(now + 100_000), Verdict::Refuse { .. }));
    }

    #[test]
    fn steady_traffic_at_the_rate_is_always_admitted_with_room_left() {
        let mut g = gcra(500.0, 50);
        for i in 0..5_000 {
            match g.check(i * 2_000) {
                Verdict::Admit { remaining, .. } => assert!(remaining > 0, "request {i}"),
                v => panic!("request {i}: {v:?}"),
            }
        }
    }

    #[test]
    fn over_any_span_admissions_never_beat_rate_plus_burst() {
        let mut g = gcra(50.0, 5);
        let mut admitted = Vec::new();
        let mut seed = 11u64;
        let mut now = 0;
        while now < 10 * S {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            now += (seed >> 33) as i64 % 8_000;
            if let Verdict::Admit { .. } = g.check(now) {
                admitted.push(now);
            }
        }
        for (i, t) in admitted.iter().enumerate() {
            let in_a_second = admitted[i..].iter().take_while(|u| **u < t + S).count();
            assert!(
                in_a_second <= 50 + 5,
                "{in_a_second} in the second from {t}"
            );
        }
        assert!(
            admitted.len() >= 495,
            "the budget is used: {}",
            admitted.len()
        );
    }

    #[test]
    fn a_long_wait_rounds_retry_after_up_and_idle_time_banks_only_the_burst() {
        let mut g = gcra(0.5, 1);
        assert!(matches!(
            g.check(0),
            Verdict::Admit {
                remaining: 0,
                reset_s: 2
            }
        ));
        assert_eq!(g.check(1), Verdict::Refuse { retry_after_s: 2 });
        assert_eq!(g.check(1_000_001), Verdict::Refuse { retry_after_s: 1 });
        let mut g = gcra(10.0, 2);
        g.check(0);
        let later = 3600 * S;
        assert!(matches!(g.check(later), Verdict::Admit { .. }));
        assert!(matches!(g.check(later), Verdict::Admit { .. }));
        assert!(matches!(g.check(later), Verdict::Refuse { .. }));
    }

    #[tokio::test]
    async fn a_burst_over_the_rate_gets_429_with_ietf_headers() {
        let clock = Clock::manual(T0);
        let config = LimitedConfig {
            per_second: 5.0,
            burst: 2,
        };
        let sink = LimitedSink::start(clock.clone(), config).await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/events", sink.url());
        let first = http.post(&url).body("x").send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["ratelimit-policy"], "\"default\";q=5;w=1");
        assert_eq!(first.headers()["ratelimit"], "\"default\";r=4;t=1");
        http.post(&url).send().await.unwrap();
        let r = http.post(&url).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.headers()["ratelimit"], "\"default\";r=0;t=1");
        clock.advance(200);
        let r = http.post(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let c = sink.counters();
        assert_eq!((c.requests, c.ok, c.throttled), (4, 3, 1));
        assert_eq!(sink.seen()[3].at_ms, T0 + 200);
        sink.stop();
    }
}
