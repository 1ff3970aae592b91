//! The ERP's failure feed: the ERP sees and retries its own failed syncs
//! without opening ferry, with the client key it sends messages with.
//! `GET /api/v1/failures[?route=R][&status=S]` answers the failure groups
//! (`store::failures`) of the routes the key may see, newest first, each
//! with its latest dead messages; `POST /api/v1/failures/{id}/retry`
//! requeues one dead message (`{id}` a message id) or every dead message of
//! a group (`{id}` a group key), audited as the client (channel `client`,
//! the credential's name as the actor). The routes a key may see are the
//! `kind = "api"` routes whose `credentials` hold the credential it
//! matched; any other route, message or group is answered 404, as if it did
//! not exist. Every refusal is `application/problem+json`.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::IngestState;
use super::api::{matching, presented_key};
use crate::config::{Config, Source};
use crate::model::{Chain, ErrorClass};
use crate::problem::Problem;
use crate::store::{
    Channel, FailureGroup, GroupFilter, GroupStatus, MessageFilter, MessageSummary, Selection,
    State as MsgState, StoreError,
};

/// Dead messages listed with each group, newest first; the group's `count`
/// says how many it has in all.
pub const DEAD_SAMPLE: u32 = 20;

/// An authenticated ERP client: the credential its key matched, and the
/// API routes that take that credential.
struct Client {
    name: String,
    routes: BTreeSet<String>,
}

impl Client {
    /// The client a request's key names, or 401. The key is compared with
    /// every credential any API route takes.
    fn of(app: &IngestState, config: &Config, headers: &HeaderMap) -> Result<Client, Problem> {
        let presented = presented_key(headers)?;
        let names: BTreeSet<&String> = config
            .routes
            .values()
            .filter_map(|r| match &r.source {
                Source::Api { credentials, .. } => Some(credentials),
                _ => None,
            })
            .flatten()
            .collect();
        let names: Vec<String> = names.into_iter().cloned().collect();
        let name = matching(app, config, &names, presented)
            .ok_or_else(|| {
                Problem::unauthorized(
                    "bad-credentials",
                    "the client key is not valid for any route",
                )
            })?
            .to_owned();
        let routes = config
            .routes
            .values()
            .filter(|r| {
                matches!(&r.source, Source::Api { credentials, .. } if credentials.contains(&name))
            })
            .map(|r| r.name.to_string())
            .collect();
        Ok(Client { name, routes })
    }

    fn sees(&self, route: &str) -> bool {
        self.routes.contains(route)
    }
}

/// `?route=` (one of the client's routes; default all of them) and
/// `?status=` (open, acknowledged, resolved; default all).
#[derive(Debug, Default, Deserialize)]
pub struct FeedQuery {
    route: Option<String>,
    status: Option<String>,
}

/// A failure group as the feed shows it.
#[derive(Debug, Serialize)]
struct FeedGroup {
    key: String,
    class: Option<ErrorClass>,
    system: String,
    route: String,
    /// The latest message's explanation with its variable parts as `#`.
    reason: String,
    explanation: String,
    hint: String,
    /// Dead messages in the group.
    count: u64,
    first_seen_ms: i64,
    last_seen_ms: i64,
    status: GroupStatus,
    /// The latest [`DEAD_SAMPLE`] of them, newest first.
    messages: Vec<DeadMessage>,
}

/// One dead message of a group.
#[derive(Debug, Serialize)]
struct DeadMessage {
    id: String,
    /// The `Idempotency-Key` it was sent with (a bulk job's line key).
    event_id: Option<String>,
    received_ms: i64,
    attempts: u32,
    explanation: Option<String>,
    hint: Option<String>,
}

impl FeedGroup {
    fn of(g: FailureGroup, dead: Vec<MessageSummary>) -> FeedGroup {
        FeedGroup {
            key: g.key,
            class: g.class,
            system: g.system,
            route: g.route,
            reason: g.reason,
            explanation: g.explanation,
            hint: g.hint,
            count: g.count,
            first_seen_ms: g.first_seen_ms,
            last_seen_ms: g.last_seen_ms,
            status: g.status,
            messages: dead
                .into_iter()
                .map(|m| DeadMessage {
                    id: m.id.into_string(),
                    event_id: m.event_id,
                    received_ms: m.received_ms,
                    attempts: m.attempts,
                    explanation: m.last_explanation,
                    hint: m.last_hint,
                })
                .collect(),
        }
    }
}

/// A store failure: logged, and the client told to try again.
fn unavailable(e: StoreError) -> Problem {
    tracing::error!(error = %Chain(&e), "The ERP's failure feed could not read or act on the store.");
    Problem::unavailable("the failures could not be read right now; retry later", 1)
}

/// The dead deliveries of a group on its route.
fn dead_of(g: &FailureGroup, limit: Option<u32>) -> MessageFilter {
    MessageFilter {
        state: Some(MsgState::Dead),
        group: Some(g.key.clone()),
        route: Some(g.route.clone()),
        limit,
        ..Default::default()
    }
}

fn status_filter(status: Option<&str>) -> Result<Option<GroupStatus>, Problem> {
    match status.filter(|s| !s.is_empty()) {
        None | Some("all") => Ok(None),
        Some(s) => GroupStatus::parse(s).map(Some).ok_or_else(|| {
            Problem::bad_request(
                "bad-status",
                format!("status `{s}`: use open, acknowledged, resolved or all"),
            )
        }),
    }
}

/// `GET /api/v1/failures`: the client's failure groups, newest first,
/// each with its latest dead messages.
pub async fn list(
    State(app): State<IngestState>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Value>, Problem> {
    let config = app.config();
    let client = Client::of(&app, &config, &headers)?;
    let status = status_filter(q.status.as_deref())?;
    let routes: Vec<String> = match q.route.filter(|r| !r.is_empty()) {
        Some(r) if client.sees(&r) => vec![r],
        // Another client's route reads as one that does not exist.
        Some(r) => return Err(super::unknown_route(&r)),
        None => client.routes.iter().cloned().collect(),
    };
    let mut groups = Vec::new();
    for route in routes {
        let filter = GroupFilter {
            route: Some(route),
            status,
            ..Default::default()
        };
        groups.extend(
            app.store
                .failure_groups(&filter)
                .await
                .map_err(unavailable)?,
        );
    }
    groups.sort_by(|a, b| {
        b.last_seen_ms
            .cmp(&a.last_seen_ms)
            .then_with(|| a.key.cmp(&b.key))
    });
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let dead = app
            .store
            .list(&dead_of(&g, Some(DEAD_SAMPLE)))
            .await
            .map_err(unavailable)?;
        out.push(FeedGroup::of(g, dead));
    }
    Ok(Json(json!({
        "client": client.name,
        "routes": client.routes,
        "groups": out,
    })))
}

/// `POST /api/v1/failures/{id}/retry`: `{id}` is a dead message's id
/// (looked up first) or a failure group's key (every dead message of the
/// group); either must be on one of the client's routes, else 404.
/// Answers `{"requeued": n}`.
pub async fn retry(
    State(app): State<IngestState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let config = app.config();
    let client = Client::of(&app, &config, &headers)?;
    let actor = Channel::Client.actor(&client.name);
    let now = app.clock.now_ms();
    let unknown = || {
        Problem::not_found(format!(
            "no dead message or failure group `{id}` on your routes"
        ))
    };
    let selection = match app.store.message(&id).await.map_err(unavailable)? {
        Some(m) if !client.sees(&m.summary.route) => return Err(unknown()),
        Some(m) if m.summary.state != MsgState::Dead => {
            return Err(not_dead(&id, m.summary.state));
        }
        Some(_) => Selection::One(id.clone()),
        None => match app.store.failure_group(&id).await.map_err(unavailable)? {
            Some(g) if client.sees(&g.route) => Selection::Filter(dead_of(&g, None)),
            _ => return Err(unknown()),
        },
    };
    let one = matches!(selection, Selection::One(_));
    let n = app
        .store
        .retry(selection, &actor, now, false)
        .await
        .map_err(unavailable)?;
    if one && n == 0 {
        // Retried or discarded by someone else since it was read.
        let state = app
            .store
            .message(&id)
            .await
            .map_err(unavailable)?
            .map_or(MsgState::Dead, |m| m.summary.state);
        return Err(not_dead(&id, state));
    }
    if n > 0 {
        app.wake.notify();
    }
    Ok(Json(json!({ "requeued": n })))
}

fn not_dead(id: &str, state: MsgState) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "not-dead",
        "Conflict",
        format!(
            "message {id} is {}: only a dead message is retried from the failure feed",
            state.as_str()
        ),
    )
}
