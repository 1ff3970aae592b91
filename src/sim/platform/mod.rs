//! Simulated platforms that throttle the way the real ones do: a Shopify-like
//! REST API with a leaky bucket ([`shopify`]), a HubSpot-like batch API with a
//! rolling window and per-item errors ([`hubspot`]), a Salesforce-like API
//! with a daily quota ([`salesforce`]), and a generic sink with a token bucket
//! and IETF `RateLimit` headers ([`limited`]). They sit beside the plain
//! [`Receiver`](super::receiver::Receiver): ferry's integration tests, `ferry
//! demo` and `ferry bench` point a system's `base_url` at one of them.
//!
//! Every limit decision reads the [`Clock`] given at start, never the
//! machine's own timer, so a test moves time by hand with [`Clock::manual`].
//! The limit arithmetic lives in plain structs (`LeakyBucket`,
//! `RollingWindow`, `DailyQuota`, `Gcra`) tested on injected times; the HTTP
//! handlers only lock them, ask, and record what they answered.

/// Gives a sim its running server's accessors (`url`, `counters`, `seen`,
/// `forget_requests`, `stop`) through `Deref` to its `running` field.
macro_rules! running_accessors {
    ($sim:ty) => {
        impl std::ops::Deref for $sim {
            type Target = super::Running;
            fn deref(&self) -> &super::Running {
                &self.running
            }
        }
    };
}

pub mod hubspot;
pub mod limited;
pub mod salesforce;
pub mod shopify;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// Why a simulated platform did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on 127.0.0.1")]
    Listen(#[from] std::io::Error),
    #[error("invalid simulation settings: {0}")]
    Settings(&'static str),
}

/// One request as a simulated platform saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// When it arrived, in the sim's clock milliseconds.
    pub at_ms: i64,
    pub method: String,
    pub path: String,
    /// What the sim answered.
    pub status: u16,
    /// The request body as text (lossy UTF-8).
    pub body: String,
    /// Items in a batch request (HubSpot `inputs`); `None` elsewhere.
    pub items: Option<usize>,
    pub idempotency_key: Option<String>,
}

/// Running totals of a simulated platform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request answered.
    pub requests: u64,
    /// Answers with a 2xx status (a HubSpot 207 included).
    pub ok: u64,
    /// Refusals for the rate limit or quota: 429, or Salesforce's 403.
    pub throttled: u64,
}

/// What a sim keeps about its traffic; shared by its handlers and its handle.
#[derive(Debug, Default)]
struct Log {
    seen: Vec<Seen>,
    counters: Counters,
    /// Off for long benchmarks: counters only, no request list.
    forget: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Recorder(Mutex<Log>);

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().expect("sim recorder poisoned")
    }

    /// Counts and (unless forgetting) keeps one answered request.
    pub(crate) fn record(&self, seen: Seen, throttled: bool) {
        let mut log = self.lock();
        log.counters.requests += 1;
        if (200..300).contains(&seen.status) {
            log.counters.ok += 1;
        }
        if throttled {
            log.counters.throttled += 1;
        }
        if !log.forget {
            log.seen.push(seen);
        }
    }
}

/// The part every sim handle shares: its address, its log and its stop
/// signal. Each sim's own type wraps one and adds its accessors.
#[derive(Debug, Clone)]
pub struct Running {
    pub addr: SocketAddr,
    recorder: Arc<Recorder>,
    stop: CancellationToken,
}

impl Running {
    /// Serves `router` on 127.0.0.1, port 0, until [`Running::stop`].
    async fn start(router: Router, recorder: Arc<Recorder>) -> Result<Running, StartError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(signal.cancelled_owned())
                .await;
        });
        Ok(Running {
            addr,
            recorder,
            stop,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counters(&self) -> Counters {
        self.recorder.lock().counters
    }

    /// Every request answered so far, in order of answer.
    pub fn seen(&self) -> Vec<Seen> {
        self.recorder.lock().seen.clone()
    }

    /// Stops keeping the request list (counters go on): long benchmarks.
    pub fn forget_requests(&self) {
        let mut log = self.recorder.lock();
        log.forget = true;
        log.seen.clear();
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// One call to a simulated platform, as its handlers take it: an extractor
/// (the body read whole, as axum's `Bytes` does, up to its 2 MiB default),
/// so a handler takes its state, its path and this.
pub(crate) struct Call {
    pub method: axum::http::Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Call {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Call, Response> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let headers = req.headers().clone();
        let body = <bytes::Bytes as axum::extract::FromRequest<S>>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Call {
            method,
            path,
            headers,
            body,
        })
    }
}

impl Call {
    /// The call's facts for [`Seen`], before the answer is known.
    pub(crate) fn seen(&self, clock: &Clock) -> Seen {
        seen(clock, &self.method, &self.path, &self.headers, &self.body)
    }
}

/// A request's facts for [`Seen`], before the answer is known.
pub(crate) fn seen(
    clock: &Clock,
    method: &axum::http::Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Seen {
    Seen {
        at_ms: clock.now_ms(),
        method: method.to_string(),
        path: path.to_owned(),
        status: 0,
        body: String::from_utf8_lossy(body).into_owned(),
        items: None,
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// A JSON answer with extra headers.
pub(crate) fn answer(status: u16, headers: &[(&str, String)], body: String) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::from_str(v)) {
            h.insert(k, v);
        }
    }
    resp
}

const DAY_MS: i64 = 86_400_000;

/// A quota of requests per UTC day, reset at the next midnight of the clock
/// (Salesforce's daily API requests; HubSpot's daily budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyQuota {
    pub quota: u64,
    used: u64,
    /// Days since the epoch of the last counted request.
    day: i64,
}

impl DailyQuota {
    pub fn new(quota: u64) -> DailyQuota {
        DailyQuota {
            quota,
            used: 0,
            day: i64::MIN,
        }
    }

    fn roll(&mut self, now_ms: i64) {
        let day = now_ms.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.used = 0;
        }
    }

    /// Counts one request if the day's quota has room: `Ok(used)` after it,
    /// or `Err(used)` (the quota, unchanged) when spent.
    pub fn take(&mut self, now_ms: i64) -> Result<u64, u64> {
        self.roll(now_ms);
        if self.used >= self.quota {
            return Err(self.used);
        }
        self.used += 1;
        Ok(self.used)
    }

    /// Requests counted today, as of `now_ms`.
    pub fn used(&mut self, now_ms: i64) -> u64 {
        self.roll(now_ms);
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const MIDNIGHT: i64 = 1_767_225_600_000;

    #[test]
    fn a_daily_quota_refuses_once_spent_and_resets_at_utc_midnight() {
        let mut q = DailyQuota::new(3);
        let late = MIDNIGHT - 5_000;
        assert_eq!(q.take(late), Ok(1));
        assert_eq!(q.take(late), Ok(2));
        assert_eq!(q.take(late + 1), Ok(3));
        assert_eq!(q.take(late + 2), Err(3));
        assert_eq!(q.take(MIDNIGHT - 1), Err(3), "still the same day");
        assert_eq!(q.used(MIDNIGHT), 0, "a new day");
        assert_eq!(q.take(MIDNIGHT), Ok(1));
    }
}
