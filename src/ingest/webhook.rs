//! `POST /in/{route}`: a platform's webhook. Verified on the raw bytes before
//! anything else, deduplicated by the scheme's event id (or a configured
//! header) inside the route's window; a duplicate answers 200 and stores nothing.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::IngestState;
use super::verify::{self, Inbound, Scheme, VerifyError};
use super::{
    declared_size, delivery_key, headers_json, ordering_key, read_body, require_json, unknown_route,
};
use crate::config::{Dedupe, Source};
use crate::problem::Problem;
use crate::store::{Accepted, DedupeKey, MessageId, NewMessage};

pub async fn receive(
    State(app): State<IngestState>,
    Path(route_name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let config = app.config();
    let Some(route) = config.route(&route_name) else {
        return Err(unknown_route(&route_name));
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
    let reject = |reason: &'static str, p: Problem| {
        app.metrics.rejected(&route_name, reason);
        p
    };
    // Before a byte of the body is read: the scheme's headers (and time
    // window), then room in the budget of unverified bytes.
    let now_ms = app.clock.now_ms();
    let tolerance_s = tolerance.as_secs() as i64;
    verify::precheck(scheme, &headers, now_ms.div_euclid(1000), tolerance_s)
        .map_err(|e| reject("signature", signature_problem(scheme.name(), &e)))?;
    let size = declared_size(&headers, route.max_body).map_err(|p| reject("body", p))?;
    let reservation = app
        .unverified
        .reserve(size.unwrap_or(route.max_body))
        .map_err(|p| reject("unverified_bytes", p))?;
    let body = read_body(&headers, body, route.max_body)
        .await
        .map_err(|p| reject("body", p))?;
    let secrets: Vec<&[u8]> = credentials
        .iter()
        .filter_map(|c| config.secret(c))
        .map(|s| s.expose_secret().as_bytes())
        .collect();
    // HubSpot signs the URL it called; behind a proxy that is the public host.
    let full_uri = if matches!(scheme, Scheme::HubspotV3) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("https://{host}{uri}")
    } else {
        String::new()
    };
    let inbound = Inbound {
        method: method.as_str(),
        uri: &full_uri,
        headers: &headers,
        body: &body,
    };
    let verified = verify::verify(
        scheme,
        &secrets,
        &inbound,
        now_ms.div_euclid(1000),
        tolerance_s,
    )
    .map_err(|e| reject("signature", signature_problem(scheme.name(), &e)))?;
    drop(reservation);
    require_json(&body, route.max_depth).map_err(|p| reject("json", p))?;
    let ordering_key = ordering_key(route, &body, now_ms)
        .await
        .map_err(|p| reject("ordering_key", p))?;

    let dedupe_key = match dedupe {
        Dedupe::SchemeEventId => verified.event_id.clone(),
        Dedupe::Header(h) => headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        Dedupe::BodyHash => Some(body_hash(&route_name, &body)),
        Dedupe::Off => None,
    };
    let system = &route.destination.system;
    app.backlog
        .admit(&config, system)
        .map_err(|p| reject("queue_full", p))?;
    let id = MessageId::generate();
    let event = dedupe_key.as_deref().unwrap_or(&id);
    let msg = NewMessage {
        delivery_key: delivery_key(&route_name, event, system),
        route: route.name.clone(),
        system: system.clone(),
        received_ms: now_ms,
        event_id: verified.event_id,
        headers: headers_json(&headers, super::scheme_header(scheme)),
        body,
        dedupe: dedupe_key.map(|key| DedupeKey {
            key,
            expires_ms: now_ms + dedupe_window.as_millis() as i64,
        }),
        idempotency: None,
        ordering_key,
        job_id: None,
        id,
    };
    let id = msg.id.clone();
    match app.store.accept(msg).await {
        Ok(Accepted::New) => {
            app.metrics.received(&route_name);
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
