//! Admin: the messages themselves (`/messages...`): list by filter, show
//! one with its attempts, retry or discard one, and retry or discard every
//! message a filter selects with a dry-run count, each action audited under
//! the caller's name through the same store methods the CLI uses.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Caller, FilterQuery, schema, store_problem, waiting};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{Discarded, Selection};

/// The messages a filter selects, newest first, one page (`limit`, default
/// 50; `before` continues after a message id).
#[utoipa::path(get, path = "/messages",
    operation_id = "list_messages", tag = "messages", params(FilterQuery),
    responses(
        (status = 200, description = "One page of messages", body = schema::MessageList),
        (status = 400, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list(
    State(app): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, Problem> {
    let now = app.clock.now_ms();
    let filter = q.resolve(now)?;
    let messages = app.store.list(&filter).await.map_err(store_problem)?;
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            let waiting = waiting(&app, &m, now);
            let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
            v["waiting"] = json!(waiting);
            v
        })
        .collect();
    Ok(Json(json!({ "messages": messages })))
}

/// One message with its payload and its attempt timeline.
#[utoipa::path(get, path = "/messages/{id}",
    operation_id = "show_message", tag = "messages",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = schema::MessageView),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    match app.store.message(&id).await.map_err(store_problem)? {
        Some(m) => {
            let waiting = waiting(&app, &m.summary, app.clock.now_ms());
            let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
            v["waiting"] = json!(waiting);
            Ok(Json(v))
        }
        None => Err(Problem::not_found(format!("no message {id}"))),
    }
}

/// Requeues one message now with a fresh retry budget and the same
/// downstream idempotency key (a delivered one is replayed).
#[utoipa::path(post, path = "/messages/{id}/retry",
    operation_id = "retry_message", tag = "messages",
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Requeued", body = schema::Requeued),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not retryable now (queued or in flight)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn retry_one(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let n = app
        .store
        .retry(
            Selection::One(id.clone()),
            &caller.actor(),
            app.clock.now_ms(),
            false,
        )
        .await
        .map_err(store_problem)?;
    if n == 0 {
        return Err(match app.store.message(&id).await.map_err(store_problem)? {
            None => Problem::not_found(format!("no message {id}")),
            Some(m) => Problem::new(
                StatusCode::CONFLICT,
                "not-retryable",
                "Conflict",
                format!(
                    "message {id} is {} and cannot be retried now",
                    m.summary.state.as_str()
                ),
            ),
        });
    }
    app.wake.notify();
    Ok(Json(json!({ "requeued": n })))
}

/// A retry by filter: the filter's fields, and `dry_run`.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct RetryMany {
    #[serde(flatten)]
    filter: FilterQuery,
    #[serde(default)]
    dry_run: bool,
}

/// Requeues every message the filter selects (`dead` unless `state` says
/// otherwise), in chunks, each audited; `dry_run` only counts them.
#[utoipa::path(post, path = "/messages/retry",
    operation_id = "retry_messages", tag = "messages", request_body = RetryMany,
    responses(
        (status = 200, description = "Requeued, or the dry run's count", body = schema::RetryOutcome),
        (status = 400, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn retry_many(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<RetryMany>,
) -> Result<Json<Value>, Problem> {
    let now = app.clock.now_ms();
    let filter = body.filter.resolve(now)?;
    let n = app
        .store
        .retry(
            Selection::Filter(filter),
            &caller.actor(),
            now,
            body.dry_run,
        )
        .await
        .map_err(store_problem)?;
    Ok(super::bulk_answer(&app, "requeued", n, body.dry_run))
}

/// Why messages are discarded, for the audit log.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct DiscardBody {
    /// Required, not blank.
    reason: String,
}

impl DiscardBody {
    fn reason(&self) -> Result<&str, Problem> {
        match self.reason.trim() {
            "" => Err(Problem::bad_request(
                "reason-required",
                "say why the messages are discarded (`reason`)",
            )),
            r => Ok(r),
        }
    }
}

/// A discard by filter: the filter's fields, `reason`, and `dry_run`.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct DiscardMany {
    #[serde(flatten)]
    filter: FilterQuery,
    #[serde(flatten)]
    reason: DiscardBody,
    #[serde(default)]
    dry_run: bool,
}

/// Discards what a filter selects (`dead` unless `state` is `retrying` or
/// `queued`), in chunks, each audited.
#[utoipa::path(post, path = "/messages/discard",
    operation_id = "discard_messages", tag = "messages", request_body = DiscardMany,
    responses(
        (status = 200, description = "Discarded, or the dry run's count", body = schema::DiscardOutcome),
        (status = 400, description = "A bad filter, or no reason", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn discard_many(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<DiscardMany>,
) -> Result<Json<Value>, Problem> {
    let now = app.clock.now_ms();
    let reason = body.reason.reason()?;
    let filter = body.filter.resolve(now)?;
    let n = app
        .store
        .discard_matching(filter, reason, &caller.actor(), now, body.dry_run)
        .await
        .map_err(store_problem)?;
    Ok(super::bulk_answer(&app, "discarded", n, body.dry_run))
}

/// Stops one message for good, with the operator's reason.
#[utoipa::path(post, path = "/messages/{id}/discard",
    operation_id = "discard_message", tag = "messages",
    params(("id" = String, Path, description = "The message's id")),
    request_body = DiscardBody,
    responses(
        (status = 200, description = "Discarded", body = schema::DiscardedOne),
        (status = 400, description = "No reason", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already delivered or discarded", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn discard(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<DiscardBody>,
) -> Result<Json<Value>, Problem> {
    let reason = body.reason()?;
    match app
        .store
        .discard(&id, &caller.actor(), reason, app.clock.now_ms())
        .await
        .map_err(store_problem)?
    {
        Discarded::Done => {
            // A discarded message may have held its ordering key: the next one is due.
            app.wake.notify();
            Ok(Json(json!({ "discarded": id })))
        }
        Discarded::NotFound => Err(Problem::not_found(format!("no message {id}"))),
        Discarded::NotDiscardable => Err(Problem::new(
            StatusCode::CONFLICT,
            "not-discardable",
            "Conflict",
            format!("message {id} is already delivered or discarded"),
        )),
    }
}
