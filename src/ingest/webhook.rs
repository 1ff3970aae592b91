//! `POST /in/{route}`: a platform's webhook. Verified on the raw bytes before
//! anything else, deduplicated by the scheme's event id (or a configured
//! header) inside the route's window; a duplicate answers 200 and stores nothing.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::verify::{self, Inbound, Scheme, Verified, VerifyError};
use super::{Ingest, IngestState};
use super::{
    declared_size, delivery_key, headers_json, ordering_key, read_body, require_json, unknown_route,
};
use bytes::Bytes;

use crate::config::{Config, Dedupe, Route, Source};
use crate::problem::Problem;
use crate::store::{Accepted, DedupeKey, MessageId, NewMessage};

pub async fn receive(
    State(app): State<IngestState>,
    Path(route_name): Path<String>,
    request: Request,
) -> Result<Response, Problem> {
    let config = app.config();
    let now_ms = app.clock.now_ms();
    let snapshot = app.vault.snapshot();
    let hook = Hook::of(&config, &snapshot, &route_name, now_ms)?;
    let reject = |(reason, p): Rejected| {
        app.metrics.rejected(&route_name, reason);
        p
    };
    let (parts, body) = request.into_parts();
    let (body, verified) = hook
        .read(&app, &parts, body, now_ms)
        .await
        .map_err(reject)?;
    let route = hook.route;
    require_json(&body, route.max_depth).map_err(|p| reject(("json", p)))?;
    let ordering_key = ordering_key(route, &body, now_ms)
        .await
        .map_err(|p| reject(("ordering_key", p)))?;
    app.backlog
        .admit(&config, &route.destination.system)
        .map_err(|p| reject(("queue_full", p)))?;
    let entity = super::entity_key(route, &body, now_ms).await;
    let mut msg = hook.message(&parts.headers, body, verified, ordering_key, now_ms);
    msg.entity_key = entity;
    let id = msg.id.clone();
    match app.store.accept(msg).await {
        Ok(Accepted::New) => {
            app.metrics.received(&route_name, app.clock.now_ms());
            app.backlog.accepted(&route.destination.system);
            app.wake.notify();
            Ok(ack(StatusCode::ACCEPTED, &id, "accepted"))
        }
        Ok(Accepted::Duplicate { original }) => {
            app.metrics.duplicate(&route_name);
            Ok(ack(StatusCode::OK, &original, "duplicate"))
        }
        Ok(other) => Err(Problem::internal(format!(
            "unexpected store answer {other:?}"
        ))),
        Err(e) => {
            tracing::error!(route = %route_name, error = %crate::model::Chain(&e), "Accepting a webhook failed; the sender was told to retry.");
            Err(super::store_unavailable())
        }
    }
}

/// A refusal with the reason `ferry_rejected_total` counts it under.
type Rejected = (&'static str, Problem);

/// A webhook route's settings, as `receive` uses them.
struct Hook<'a> {
    route: &'a Route,
    scheme: &'a Scheme,
    dedupe: &'a Dedupe,
    dedupe_window: Duration,
    tolerance_s: i64,
    /// Every live secret of the route's credentials (a rotation overlap).
    secrets: Vec<&'a [u8]>,
    /// Beside each secret, the store version it is (its use is noted).
    versions: Vec<Option<&'a crate::vault::Live>>,
}

impl<'a> Hook<'a> {
    fn of(
        config: &'a Config,
        snapshot: &'a crate::vault::Snapshot,
        route_name: &str,
        now_ms: i64,
    ) -> Result<Hook<'a>, Problem> {
        let Some(route) = config.route(route_name) else {
            return Err(unknown_route(route_name));
        };
        let Source::Webhook {
            scheme,
            credentials,
            dedupe,
            dedupe_window,
            tolerance,
        } = &route.source
        else {
            return Err(Problem::not_found(format!(
                "route `{route_name}` takes ERP API calls at /api/v1/routes/{route_name}/messages, not webhooks"
            )));
        };
        let (secrets, versions) = credentials
            .iter()
            .flat_map(|c| crate::vault::accepted(config, snapshot, c, now_ms))
            .map(|a| (a.value, a.version))
            .unzip();
        Ok(Hook {
            route,
            scheme,
            dedupe,
            dedupe_window: *dedupe_window,
            tolerance_s: tolerance.as_secs() as i64,
            secrets,
            versions,
        })
    }

    /// Before a byte of the body is read: the scheme's headers (and time
    /// window), then room in the budget of unverified bytes; then the body
    /// and its signature.
    async fn read(
        &self,
        app: &Ingest,
        parts: &Parts,
        body: Body,
        now_ms: i64,
    ) -> Result<(Bytes, Verified), Rejected> {
        let (headers, max_body) = (&parts.headers, self.route.max_body);
        let now_s = now_ms.div_euclid(1000);
        let bad_signature =
            |e: VerifyError| ("signature", signature_problem(self.scheme.name(), &e));
        verify::precheck(self.scheme, headers, now_s, self.tolerance_s).map_err(bad_signature)?;
        let size = declared_size(headers, max_body).map_err(|p| ("body", p))?;
        let _reservation = app
            .unverified
            .reserve(size.unwrap_or(max_body))
            .map_err(|p| ("unverified_bytes", p))?;
        let body = read_body(headers, body, max_body)
            .await
            .map_err(|p| ("body", p))?;
        // HubSpot signs the URL it called; behind a proxy that is the public host.
        let full_uri = if matches!(self.scheme, Scheme::HubspotV3) {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("https://{host}{}", parts.uri)
        } else {
            String::new()
        };
        let inbound = Inbound {
            method: parts.method.as_str(),
            uri: &full_uri,
            headers,
            body: &body,
        };
        let verified = verify::verify(
            self.scheme,
            &self.secrets,
            &inbound,
            now_s,
            self.tolerance_s,
        )
        .map_err(bad_signature)?;
        if let Some(Some(v)) = self.versions.get(verified.secret_index) {
            v.used(now_ms);
        }
        Ok((body, verified))
    }

    /// The message to store, with its dedupe key (the scheme's event id, a
    /// header, or the body's hash).
    fn message(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        verified: Verified,
        ordering_key: Option<String>,
        now_ms: i64,
    ) -> NewMessage {
        let route = self.route;
        let dedupe_key = match self.dedupe {
            Dedupe::SchemeEventId => verified.event_id.clone(),
            Dedupe::Header(h) => headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            Dedupe::BodyHash => Some(body_hash(&route.name, &body)),
            Dedupe::Off => None,
        };
        let system = &route.destination.system;
        let id = MessageId::generate();
        let event = dedupe_key.as_deref().unwrap_or(&id);
        NewMessage {
            delivery_key: delivery_key(&route.name, event, system),
            route: route.name.clone(),
            system: system.clone(),
            received_ms: now_ms,
            event_id: verified.event_id,
            headers: headers_json(headers, super::scheme_header(self.scheme)),
            body,
            dedupe: dedupe_key.map(|key| DedupeKey {
                key,
                expires_ms: now_ms + self.dedupe_window.as_millis() as i64,
            }),
            idempotency: None,
            ordering_key,
            entity_key: None,
            job_id: None,
            id,
        }
    }
}

/// The dedupe key of `dedupe = "body-hash"`: the same body to the same
/// route within the window is one event, however often it is replayed.
fn body_hash(route: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(body);
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn ack(status: StatusCode, id: &str, what: &str) -> Response {
    let body = format!(r#"{{"id":"{id}","status":"{what}"}}"#);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn signature_problem(scheme: &str, e: &VerifyError) -> Problem {
    let slug = match e {
        VerifyError::Stale { .. } | VerifyError::Future { .. } => "stale-timestamp",
        VerifyError::MissingHeader(_) => "missing-signature",
        _ => "bad-signature",
    };
    Problem::unauthorized(slug, format!("{scheme} verification failed: {e}"))
}
