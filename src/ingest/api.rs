//! `POST /api/v1/routes/{route}/messages`: the ERP's idempotent API (IETF
//! draft `Idempotency-Key`). The key is scoped to the client's credential; its
//! record (request fingerprint and the response) is committed in the same
//! transaction as the message, so a replay is byte-identical. A request whose
//! key is still being processed by this instance gets 409; across instances the
//! store's unique key decides.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::IngestState;
use super::{delivery_key, headers_json, ordering_key, read_body, require_json, unknown_route};
use crate::config::{Config, Route, Source};
use crate::problem::Problem;
use crate::store::{Accepted, IdempotencyRecord, MessageId, NewMessage, StoredResponse};

/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;

/// Keys whose first request is still being processed here.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<(String, String)>>);

struct InFlightGuard<'a> {
    set: &'a InFlight,
    entry: (String, String),
}

impl InFlight {
    /// Whether a request with this client and key is being processed.
    pub fn holds(&self, client: &str, key: &str) -> bool {
        self.0
            .lock()
            .expect("in-flight set poisoned")
            .contains(&(client.to_owned(), key.to_owned()))
    }

    fn enter(&self, client: &str, key: &str) -> Option<InFlightGuard<'_>> {
        let entry = (client.to_owned(), key.to_owned());
        let fresh = self
            .0
            .lock()
            .expect("in-flight set poisoned")
            .insert(entry.clone());
        // `then`, not `then_some`: a guard built for a request that is not
        // fresh would be dropped at once and release the first one's entry.
        fresh.then(|| InFlightGuard { set: self, entry })
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .expect("in-flight set poisoned")
            .remove(&self.entry);
    }
}

pub async fn receive(
    State(app): State<IngestState>,
    Path(route_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let config = app.config();
    let Some(route) = config.route(&route_name) else {
        return Err(unknown_route(&route_name));
    };
    let Source::Api {
        credentials,
        idempotency_window,
    } = &route.source
    else {
        return Err(Problem::not_found(format!(
            "route `{route_name}` takes webhooks at /in/{route_name}, not ERP API calls"
        )));
    };
    let reject = |reason: &'static str, p: Problem| {
        app.metrics.rejected(&route_name, reason);
        p
    };
    let client =
        authenticate(&app, &config, credentials, &headers).map_err(|p| reject("auth", p))?;
    let key = idempotency_key(&headers).map_err(|p| reject("idempotency_key", p))?;
    // In flight from here (a slow upload included) until the answer is known.
    let Some(_guard) = app.in_flight.enter(client, &key) else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "request-in-progress",
            "Conflict",
            "a request with this Idempotency-Key is still being processed; retry later",
        ));
    };
    let body = read_body(&headers, body, route.max_body)
        .await
        .map_err(|p| reject("body", p))?;
    require_json(&body, route.max_depth).map_err(|p| reject("json", p))?;
    let ordering_key = ordering_key(route, &body, app.clock.now_ms())
        .await
        .map_err(|p| reject("ordering_key", p))?;
    app.backlog
        .admit(&config, &route.destination.system)
        .map_err(|p| reject("queue_full", p))?;
    let call = Call {
        route,
        client,
        key,
        window: *idempotency_window,
    };
    let entity = super::entity_key(route, &body, app.clock.now_ms()).await;
    let (mut msg, response) = call.message(&headers, body, ordering_key, app.clock.now_ms());
    msg.entity_key = entity;
    match app.store.accept(msg).await {
        Ok(Accepted::New) => {
            app.metrics.received(&route_name, app.clock.now_ms());
            app.backlog.accepted(&route.destination.system);
            app.wake.notify();
            Ok(stored(&response, false))
        }
        Ok(Accepted::Replay(previous)) => {
            app.metrics.replay(&route_name);
            Ok(stored(&previous, true))
        }
        Ok(Accepted::KeyReused) => Err(reject(
            "idempotency_key",
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Unprocessable content",
                "this Idempotency-Key was already used with a different request body; use a new key for a new request",
            ),
        )),
        Ok(Accepted::Duplicate { .. }) => Err(Problem::internal(
            "unexpected duplicate answer for an API call",
        )),
        Err(e) => {
            tracing::error!(route = %route_name, error = %crate::model::Chain(&e), "Accepting an API call failed; the client was told to retry.");
            Err(super::store_unavailable())
        }
    }
}

/// An authenticated ERP call with its `Idempotency-Key`.
struct Call<'a> {
    route: &'a Route,
    /// The credential that authenticated it: scopes the key.
    client: &'a str,
    key: String,
    window: std::time::Duration,
}

impl Call<'_> {
    /// The message to store, with the idempotency record of its answer
    /// (the body's fingerprint, so a reused key with another body is told
    /// apart from a replay), and that answer.
    fn message(
        self,
        headers: &HeaderMap,
        body: bytes::Bytes,
        ordering_key: Option<String>,
        now_ms: i64,
    ) -> (NewMessage, StoredResponse) {
        let route = self.route;
        let mut h = Sha256::new();
        h.update(route.name.as_bytes());
        h.update([0]);
        h.update(&body);
        let fingerprint = h.finalize().to_vec();
        let id = MessageId::generate();
        let response = StoredResponse {
            status: StatusCode::ACCEPTED.as_u16(),
            body: format!(
                r#"{{"id":"{id}","route":"{}","status":"accepted"}}"#,
                route.name
            )
            .into_bytes(),
        };
        let system = &route.destination.system;
        let msg = NewMessage {
            delivery_key: delivery_key(
                &route.name,
                &format!("{}\0{}", self.client, self.key),
                system,
            ),
            route: route.name.clone(),
            system: system.clone(),
            received_ms: now_ms,
            event_id: Some(self.key.clone()),
            headers: headers_json(headers, None),
            body,
            dedupe: None,
            idempotency: Some(IdempotencyRecord {
                client: self.client.to_owned(),
                key: self.key,
                fingerprint,
                expires_ms: now_ms + self.window.as_millis() as i64,
                response: response.clone(),
            }),
            ordering_key,
            entity_key: None,
            job_id: None,
            id,
        };
        (msg, response)
    }
}

fn stored(resp: &StoredResponse, replayed: bool) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::ACCEPTED);
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        resp.body.clone(),
    )
        .into_response();
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

/// `Authorization: Bearer <key>` against the route's credentials; the matching
/// credential's name is the client identity that scopes idempotency keys.
pub(super) fn authenticate<'c>(
    app: &crate::state::Shared,
    config: &'c Config,
    credentials: &'c [String],
    headers: &HeaderMap,
) -> Result<&'c str, Problem> {
    let presented = presented_key(headers)?;
    matching(app, config, credentials, presented).ok_or_else(|| {
        Problem::unauthorized(
            "bad-credentials",
            "the client key is not valid for this route",
        )
    })
}

/// The client key a request presents (`Authorization: Bearer <key>`), or 401.
pub(super) fn presented_key(headers: &HeaderMap) -> Result<&str, Problem> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::redact::bearer)
        .ok_or_else(|| {
            Problem::unauthorized(
                "missing-credentials",
                "send `Authorization: Bearer <your client key>`",
            )
        })
}

/// Which of `credentials` has `presented` among its accepted values (the
/// current one, and a rotated one inside its grace window). Every value is
/// compared, so timing does not reveal which matched.
pub(super) fn matching<'c>(
    app: &crate::state::Shared,
    config: &Config,
    credentials: &'c [String],
    presented: &str,
) -> Option<&'c str> {
    let mut found = None;
    let now_ms = app.clock.now_ms();
    let snapshot = app.vault.snapshot();
    for name in credentials {
        for accepted in crate::vault::accepted(config, &snapshot, name, now_ms) {
            if crate::redact::secret_eq(accepted.value, presented.as_bytes()) {
                found = Some(name.as_str());
                if let Some(v) = accepted.version {
                    v.used(now_ms);
                }
            }
        }
    }
    found
}

/// The `Idempotency-Key` header: an RFC 8941 string (`"abc"`) as the IETF draft
/// says, or a bare token as Stripe-style clients send it.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let raw = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            Problem::bad_request(
                "idempotency-key-missing",
                "this route requires an Idempotency-Key header",
            )
        })?
        .to_str()
        .map_err(|_| {
            Problem::bad_request(
                "idempotency-key-invalid",
                "the Idempotency-Key must be printable ASCII",
            )
        })?
        .trim();
    let key = match raw.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|k| !k.contains(['"', '\\']))
            .ok_or_else(|| {
                Problem::bad_request(
                    "idempotency-key-invalid",
                    "the quoted Idempotency-Key is not closed",
                )
            })?,
        None => raw,
    };
    if key.is_empty() {
        return Err(Problem::bad_request(
            "idempotency-key-invalid",
            "the Idempotency-Key is empty",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Problem::bad_request(
            "idempotency-key-invalid",
            format!(
                "the Idempotency-Key is {} characters long; at most {MAX_KEY_LEN} are allowed",
                key.len()
            ),
        ));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("idempotency-key", HeaderValue::from_str(key).unwrap());
        h
    }

    #[test]
    fn keys_quoted_and_bare() {
        assert_eq!(idempotency_key(&with("\"abc-1\"")).unwrap(), "abc-1");
        assert_eq!(idempotency_key(&with("abc-1")).unwrap(), "abc-1");
        assert!(idempotency_key(&with("\"open")).is_err());
        assert!(idempotency_key(&with("\"\"")).is_err());
        assert!(idempotency_key(&HeaderMap::new()).is_err());
        assert!(idempotency_key(&with(&"k".repeat(255))).is_ok());
        assert!(idempotency_key(&with(&"k".repeat(256))).is_err());
    }

    #[test]
    fn in_flight_guard_releases() {
        let set = InFlight::default();
        let g = set.enter("c", "k").unwrap();
        assert!(set.enter("c", "k").is_none());
        assert!(set.enter("other", "k").is_some());
        drop(g);
        assert!(set.enter("c", "k").is_some());
    }

    #[test]
    fn a_refused_second_request_no_longer_releases_the_first_ones_entry() {
        let set = InFlight::default();
        let _first = set.enter("c", "k").unwrap();
        assert!(set.enter("c", "k").is_none(), "second: 409");
        assert!(set.enter("c", "k").is_none(), "third: still 409");
        assert!(set.holds("c", "k"));
    }
}
