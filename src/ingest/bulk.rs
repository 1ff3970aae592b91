//! `POST /api/v1/routes/{route}/bulk`: large syncs from the ERP as NDJSON,
//! one message per line, streamed (a line at a time is held, never the
//! upload) and accepted through the same store path as single messages, in
//! windows so the group commit folds them. The upload is a job: `GET
//! /api/v1/routes/{route}/bulk/{job}` counts its messages by state. Each line
//! is deduplicated by job and line number, so an upload cut off (or refused
//! for a full queue) is resumed by sending the file again with the same
//! `Idempotency-Key`: lines already stored are absorbed, not doubled.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::IngestState;
use super::api::{authenticate, idempotency_key};
use super::ndjson::{Item, Splitter};
use super::{delivery_key, ordering_key, require_json, unknown_route};
use crate::config::{Route, Source};
use crate::problem::Problem;
use crate::store::{
    Accepted, DedupeKey, JobUpload, JobView, LineError, MessageId, NewJob, NewMessage, StoreError,
};

/// Accepts in flight at once during an upload (one or two group commits).
const WINDOW: usize = 512;
/// Line errors kept with a job; the rest are only counted.
const MAX_ERRORS: usize = 100;
/// How long a job's line keys are remembered (resuming an upload within it
/// never doubles a line).
const LINE_KEY_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

/// What a running upload has counted.
#[derive(Default)]
struct Tally {
    /// Lines read, blank ones included: a line's number in the file.
    physical: u64,
    /// Lines that were not blank (messages and refused lines).
    lines: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    errors: Vec<LineError>,
}

impl Tally {
    fn reject(&mut self, line: u64, error: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(LineError { line, error });
        }
    }
}

pub async fn upload(
    State(app): State<IngestState>,
    Path(route_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let config = app.config();
    let Some(route) = config.route(&route_name) else {
        return Err(unknown_route(&route_name));
    };
    let Source::Api { credentials, .. } = &route.source else {
        return Err(Problem::not_found(format!(
            "route `{route_name}` takes webhooks at /in/{route_name}, not bulk uploads"
        )));
    };
    let client = authenticate(&app, &config, credentials, &headers)?;
    let system = &route.destination.system;
    app.backlog.admit(&config, system)?;
    let now_ms = app.clock.now_ms();
    let job_id = match headers.get("idempotency-key") {
        Some(_) => {
            let key = idempotency_key(&headers)?;
            let mut h = Sha256::new();
            for part in [client, route_name.as_str(), key.as_str()] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            format!("job_{}", hex::encode(&h.finalize()[..12]))
        }
        None => format!("job_{}", uuid::Uuid::now_v7().simple()),
    };
    let resumed = !app
        .store
        .start_job(NewJob {
            id: job_id.clone(),
            route: route_name.clone(),
            client: Some(client.to_owned()),
            created_ms: now_ms,
        })
        .await
        .map_err(store_problem)?;
    let mut tally = Tally::default();
    let streamed = stream_lines(&app, route, &job_id, body, &mut tally).await;
    let end = JobUpload {
        lines: tally.lines,
        rejected: tally.rejected,
        errors: tally.errors.clone(),
        finished_ms: streamed.is_ok().then(|| app.clock.now_ms()),
    };
    app.store
        .end_job(&job_id, end)
        .await
        .map_err(store_problem)?;
    app.wake.notify();
    streamed?;
    let location = format!("/api/v1/routes/{route_name}/bulk/{job_id}");
    let mut r = (
        StatusCode::ACCEPTED,
        Json(json!({
            "job": job_id,
            "route": route_name,
            "resumed": resumed,
            "lines": tally.lines,
            "accepted": tally.accepted,
            "duplicates": tally.duplicates,
            "rejected": tally.rejected,
            "errors": tally.errors,
            "status": location,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// The upload a line belongs to.
#[derive(Clone, Copy)]
struct Job<'a> {
    app: &'a IngestState,
    route: &'a Route,
    id: &'a str,
}

/// Reads the body line by line and accepts each line as a message. A full
/// queue ends the upload at the line where it filled: what was stored stays
/// (counted in the answer), the rest is not read.
async fn stream_lines(
    app: &IngestState,
    route: &Route,
    job_id: &str,
    body: Body,
    tally: &mut Tally,
) -> Result<(), Problem> {
    let job = Job {
        app,
        route,
        id: job_id,
    };
    let mut data = body.into_data_stream();
    let mut lines = Splitter::new(route.max_body);
    let mut pending = FuturesUnordered::new();
    loop {
        let chunk = match data.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                // What was sent before it broke off is stored and counted.
                settle(app, route, &mut pending, tally, 0).await?;
                return Err(broke_off(&e, tally));
            }
            None => break,
        };
        lines.push(&chunk);
        while let Some(item) = lines.next() {
            let line = match item {
                Item::Line(line) => line,
                Item::TooLong => {
                    tally.physical += 1;
                    tally.lines += 1;
                    tally.reject(tally.physical, too_long(route));
                    continue;
                }
            };
            if let Some(msg) = admit_line(job, line, tally, &mut pending).await? {
                pending.push(app.store.accept(msg));
            }
        }
        if pending.len() >= WINDOW {
            settle(app, route, &mut pending, tally, WINDOW / 2).await?;
            app.wake.notify();
        }
    }
    if let Some(line) = lines.finish() {
        let line = line.to_vec();
        if let Some(msg) = admit_line(job, &line, tally, &mut pending).await? {
            pending.push(app.store.accept(msg));
        }
    }
    settle(app, route, &mut pending, tally, 0).await
}

/// The body could not be read to its end (the client went away or stalled).
fn broke_off(e: &axum::Error, tally: &Tally) -> Problem {
    let resume = "send it again with the same Idempotency-Key to resume";
    if let Some(idle) = crate::server::idle_timeout(e) {
        let mut p = idle.problem();
        p.detail = format!("{} after line {}; {resume}", p.detail, tally.lines);
        return p;
    }
    Problem::bad_request(
        "body-unreadable",
        format!(
            "the upload broke off after line {}: {e}; {resume}",
            tally.lines
        ),
    )
}

/// The queue filled during the upload: what was taken, and how to go on.
fn queue_full(mut p: Problem, system: &str, tally: &Tally) -> Problem {
    p.detail = format!(
        "the queue toward {system} is full (max_queue): lines 1 to {} of this upload were taken \
         ({} stored, {} already known, {} refused), the rest was not read; send the upload \
         again later with the same Idempotency-Key to resume after them",
        tally.physical, tally.accepted, tally.duplicates, tally.rejected
    );
    p
}

/// Awaits accepts until at most `keep` are in flight.
/// One more line, as a message, if the queue takes it. Past the queue's
/// limit the line is not taken: what is in flight is counted first, so the
/// answer says exactly what was stored.
async fn admit_line<F>(
    job: Job<'_>,
    line: &[u8],
    tally: &mut Tally,
    pending: &mut FuturesUnordered<F>,
) -> Result<Option<NewMessage>, Problem>
where
    F: Future<Output = Result<Accepted, StoreError>>,
{
    let (app, route) = (job.app, job.route);
    let config = app.config();
    let system = route.destination.system.as_str();
    if app
        .backlog
        .admit_more(&config, system, pending.len())
        .is_err()
    {
        settle(app, route, pending, tally, 0).await?;
        app.backlog
            .admit(&config, system)
            .map_err(|p| queue_full(p, system, tally))?;
    }
    Ok(line_message(app, route, job.id, line, tally).await)
}

async fn settle<F>(
    app: &IngestState,
    route: &Route,
    pending: &mut FuturesUnordered<F>,
    tally: &mut Tally,
    keep: usize,
) -> Result<(), Problem>
where
    F: Future<Output = Result<Accepted, StoreError>>,
{
    while pending.len() > keep {
        match pending.next().await {
            Some(Ok(Accepted::New)) => {
                tally.accepted += 1;
                app.metrics.received(&route.name, app.clock.now_ms());
                app.backlog.accepted(&route.destination.system);
            }
            Some(Ok(_)) => tally.duplicates += 1,
            Some(Err(e)) => return Err(store_problem(e)),
            None => break,
        }
    }
    Ok(())
}

fn too_long(route: &Route) -> String {
    format!("longer than this route's limit of {} bytes", route.max_body)
}

/// One NDJSON line as a message, or `None` (blank, or rejected and counted).
/// Its dedupe key is the job, the line's number and a hash of its content:
/// the same file sent again is absorbed line for line, and a line that
/// changed since is a new message, never silently dropped.
async fn line_message(
    app: &IngestState,
    route: &Route,
    job_id: &str,
    line: &[u8],
    tally: &mut Tally,
) -> Option<NewMessage> {
    tally.physical += 1;
    let n = tally.physical;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    tally.lines += 1;
    if line.len() > route.max_body {
        tally.reject(n, too_long(route));
        return None;
    }
    let checked = match require_json(line, route.max_depth) {
        Ok(()) => ordering_key(route, line, app.clock.now_ms()).await,
        Err(p) => Err(p),
    };
    let ordering_key = match checked {
        Ok(k) => k,
        Err(p) => {
            tally.reject(n, p.detail);
            return None;
        }
    };
    let now_ms = app.clock.now_ms();
    let line_key = format!("{job_id}:{n}:{}", hex::encode(&Sha256::digest(line)[..6]));
    Some(NewMessage {
        id: MessageId::generate(),
        route: route.name.clone(),
        system: route.destination.system.clone(),
        received_ms: now_ms,
        event_id: Some(line_key.clone()),
        headers: "{}".into(),
        body: Bytes::copy_from_slice(line),
        delivery_key: delivery_key(&route.name, &line_key, &route.destination.system),
        dedupe: Some(DedupeKey {
            key: line_key,
            expires_ms: now_ms + LINE_KEY_WINDOW_MS,
        }),
        idempotency: None,
        ordering_key,
        entity_key: super::entity_key(route, line, now_ms).await,
        job_id: Some(job_id.to_owned()),
    })
}

/// `GET /api/v1/routes/{route}/bulk/{job}`: the job's counts by state.
pub async fn status(
    State(app): State<IngestState>,
    Path((route_name, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, Problem> {
    let config = app.config();
    let Some(route) = config.route(&route_name) else {
        return Err(unknown_route(&route_name));
    };
    let Source::Api { credentials, .. } = &route.source else {
        return Err(unknown_route(&route_name));
    };
    let client = authenticate(&app, &config, credentials, &headers)?;
    // A job is visible only to the client credential that created it.
    let job: JobView = match app.store.job(&job_id).await.map_err(store_problem)? {
        Some(j) if j.route == route_name && j.client.as_deref() == Some(client) => j,
        _ => {
            return Err(Problem::not_found(format!(
                "route `{route_name}` has no bulk job `{job_id}`"
            )));
        }
    };
    let done = job.done();
    let mut v = serde_json::to_value(&job).map_err(|e| Problem::internal(e.to_string()))?;
    v["done"] = json!(done);
    Ok(Json(v))
}

fn store_problem(e: StoreError) -> Problem {
    tracing::error!(error = %crate::model::Chain(&e), "A bulk upload failed in the store.");
    Problem::unavailable(
        "the store could not take the upload right now; send it again with the same Idempotency-Key to resume",
        5,
    )
}
