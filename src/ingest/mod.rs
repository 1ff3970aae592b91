//! Ingest: the HTTP front door. `POST /in/{route}` takes platform webhooks
//! (`webhook.rs`: verify the signature on the raw bytes, find the event id);
//! `POST /api/v1/routes/{route}/messages` takes the ERP's calls (`api.rs`:
//! client key, `Idempotency-Key`), and `POST .../bulk` NDJSON syncs (`bulk.rs`,
//! a job of one message per line). All hand a [`NewMessage`] to
//! `store.accept` and answer 2xx only once it is committed; bad input gets a
//! problem+json answer and stores nothing. Ingest never waits on a destination.
//! With the same client key the ERP reads and retries its own failed syncs
//! (`feed.rs`: `GET /api/v1/failures`, `POST /api/v1/failures/{id}/retry`).

pub mod admission;
mod api;
pub mod budget;
mod bulk;
mod feed;
pub use crate::transform::json_check;
mod ndjson;

pub use api::InFlight;
pub mod verify;
mod webhook;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::problem::Problem;
use crate::state::{AppState, Shared};

/// What ingest's handlers hold: the shared parts and the edge's own guards,
/// which only ingest and the janitor (queue depths) touch.
pub struct Ingest {
    shared: AppState,
    /// `Idempotency-Key`s whose first request is still being handled.
    pub in_flight: InFlight,
    /// Each system's queue depth as ingest sees it (back-pressure).
    pub backlog: admission::Backlog,
    /// Bytes of webhook bodies being read before their signature is checked.
    pub unverified: budget::Unverified,
}

pub type IngestState = std::sync::Arc<Ingest>;

impl Ingest {
    pub fn new(shared: AppState) -> Ingest {
        let config = shared.config();
        Ingest {
            in_flight: InFlight::default(),
            backlog: admission::Backlog::new(&config),
            unverified: budget::Unverified::new(
                config.server.edge.max_unverified_bytes,
                shared.metrics.unverified_bytes.clone(),
            ),
            shared,
        }
    }
}

/// An ingest handler reads the shared parts as its own (`app.store`).
impl std::ops::Deref for Ingest {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

pub fn router(state: IngestState) -> Router<AppState> {
    let feed = Router::new()
        .route("/api/v1/failures", get(feed::list))
        .route("/api/v1/failures/{id}/retry", post(feed::retry))
        .layer(axum::middleware::from_fn(
            crate::problem::rejections_as_problems,
        ));
    Router::new()
        .route("/in/{route}", post(webhook::receive))
        .route("/api/v1/routes/{route}/messages", post(api::receive))
        .route("/api/v1/routes/{route}/bulk", post(bulk::upload))
        .route("/api/v1/routes/{route}/bulk/{job}", get(bulk::status))
        .merge(feed)
        .with_state(state)
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Payload too large",
        format!("the body is larger than this route's limit of {limit} bytes"),
    )
}

/// The body's size as the request declares it (`Content-Length`); more than
/// `limit` is 413, so an honest sender is refused before it uploads.
fn declared_size(headers: &HeaderMap, limit: usize) -> Result<Option<usize>, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > limit => Err(too_large(limit)),
        d => Ok(d),
    }
}

/// Reads the body up to `limit` bytes; larger is 413, a body that stalls
/// is 408 (`server.body_idle_timeout`).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Problem> {
    declared_size(headers, limit)?;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(match crate::server::idle_timeout(e.as_ref()) {
            Some(idle) => idle.problem(),
            None => Problem::bad_request(
                "body-unreadable",
                format!("the request body could not be read: {e}"),
            ),
        }),
    }
}

/// The body must be one JSON value, valid UTF-8, nested at most `max_depth`
/// deep; checked without building it.
fn require_json(body: &[u8], max_depth: usize) -> Result<(), Problem> {
    json_check::check(body, max_depth).map_err(|e| Problem::bad_request(e.slug(), e.to_string()))
}

/// The entity a message is about for auto-resolve, by the route's
/// `entity_key`. A body without one, or a run over jq's limits, just has
/// none: the key only lets a later delivery supersede this message, so it
/// never refuses one.
async fn entity_key(route: &crate::config::Route, body: &[u8], now_ms: i64) -> Option<String> {
    let jq = route.destination.entity_key.as_ref()?;
    jq.key(body, now_ms).await.ok()
}

/// The entity a message is about, by the route's `ordering_key`: without
/// it the message's place in its key's order is unknown, so it is refused
/// (422) rather than delivered out of order. The program runs on jq's pool
/// (never on this thread); one that overruns its limits on this body is 422
/// too, and a pool with no free thread is 503.
async fn ordering_key(
    route: &crate::config::Route,
    body: &[u8],
    now_ms: i64,
) -> Result<Option<String>, Problem> {
    use crate::transform::jq::JqError;
    let Some(jq) = &route.destination.ordering_key else {
        return Ok(None);
    };
    jq.key(body, now_ms).await.map(Some).map_err(|e| match e {
        JqError::Busy(why) => Problem::unavailable(why, 1),
        JqError::Overrun { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "jq-limit",
            "Unprocessable Content",
            format!(
                "route `{}` orders messages by `{}`, which could not read this body within its limits: {e}",
                route.name,
                jq.code()
            ),
        ),
        e => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ordering-key",
            "Unprocessable Content",
            format!(
                "route `{}` orders messages by `{}`, and this body has no such key: {e}",
                route.name,
                jq.code()
            ),
        ),
    })
}

/// Headers worth keeping with the message for operators, as a JSON object;
/// credential-bearing ones ([`crate::redact::is_secret_header`], and `own`,
/// the route scheme's configured header) are redacted.
fn headers_json(headers: &HeaderMap, own: Option<&str>) -> String {
    let mut map = serde_json::Map::with_capacity(headers.len());
    for (k, v) in headers {
        let value = crate::redact::header_value(k.as_str(), v.as_bytes(), own);
        map.insert(k.as_str().to_owned(), serde_json::Value::String(value));
    }
    serde_json::Value::Object(map).to_string()
}

/// The header a webhook scheme reads its secret or signature from when the
/// route names it (`api-key`, generic `hmac`): redacted whatever its name.
fn scheme_header(scheme: &verify::Scheme) -> Option<&str> {
    match scheme {
        verify::Scheme::ApiKey { header } => Some(header),
        verify::Scheme::Hmac(spec) => Some(&spec.header),
        _ => None,
    }
}

/// The answer when the store cannot take a message: generic, since the
/// sender may be unauthenticated; the cause is logged by the caller.
fn store_unavailable() -> Problem {
    Problem::unavailable("the message could not be stored right now; retry later", 1)
}

/// The downstream `Idempotency-Key`: derived from the source event (or the
/// message when there is no event id) and the destination, so every retry and
/// every replay of one business event carries the same key.
pub fn delivery_key(route: &str, event: &str, system: &str) -> String {
    let mut h = Sha256::new();
    for part in [route, event, system] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    format!("ferry-{}", hex::encode(&digest[..16]))
}

fn unknown_route(route: &str) -> Problem {
    Problem::not_found(format!("there is no route named `{route}`"))
}
