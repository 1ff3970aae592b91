//! Admin: failures grouped by cause (`store::failures`), read by the console
//! and `ferry failures`: `GET /failures` (filters `route`, `system`,
//! `class`, `status`) and `GET /failures/{group}`; an operator sets a
//! group's status (`POST /failures/{group}/status`, audited) and retries or
//! discards the whole group (`/retry`, `/discard`; `dry_run` previews the count).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use utoipa::{IntoParams, ToSchema};

use super::{schema, store_problem};
use crate::model::ErrorClass;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{
    Channel, FailureGroup, GroupFilter, GroupStatus, MessageFilter, Selection, StatusMark,
};

fn parse_status(s: &str) -> Result<GroupStatus, Problem> {
    GroupStatus::parse(s).ok_or_else(|| {
        Problem::bad_request(
            "bad-status",
            format!("status `{s}`: use open, acknowledged or resolved"),
        )
    })
}

/// The group, or 404.
async fn existing(app: &AppState, key: &str) -> Result<crate::store::FailureGroup, Problem> {
    app.store
        .failure_group(key)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| Problem::not_found(format!("no failure group {key}")))
}

/// Query-string form of a [`GroupFilter`].
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupQuery {
    pub route: Option<String>,
    pub system: Option<String>,
    /// Error class (rejected, timeout, ...).
    pub class: Option<String>,
    /// open (default), acknowledged, resolved, or all.
    pub status: Option<String>,
}

impl GroupQuery {
    pub fn resolve(&self) -> Result<GroupFilter, Problem> {
        let class = self
            .class
            .as_deref()
            .map(|c| {
                ErrorClass::parse(c).ok_or_else(|| {
                    Problem::bad_request("bad-filter", format!("unknown error class `{c}`"))
                })
            })
            .transpose()?;
        let status = match self.status.as_deref() {
            None => Some(GroupStatus::Open),
            Some("all") => None,
            Some(s) => Some(parse_status(s)?),
        };
        Ok(GroupFilter {
            route: self.route.clone(),
            system: self.system.clone(),
            class,
            status,
        })
    }
}

/// The failure groups of dead messages, latest first.
#[utoipa::path(get, path = "/failures",
    operation_id = "list_failure_groups", tag = "failures", params(GroupQuery),
    responses(
        (status = 200, description = "The groups", body = schema::GroupList),
        (status = 400, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<GroupQuery>,
) -> Result<Json<Value>, Problem> {
    let filter = q.resolve()?;
    let groups = app
        .store
        .failure_groups(&filter)
        .await
        .map_err(store_problem)?;
    Ok(Json(json!({ "groups": groups })))
}

/// One failure group.
#[utoipa::path(get, path = "/failures/{group}",
    operation_id = "show_failure_group", tag = "failures", params(("group" = String, Path, description = "The failure group's key")),
    responses(
        (status = 200, description = "The group", body = FailureGroup),
        (status = 404, description = "No dead message is in the group", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, Problem> {
    match app.store.failure_group(&key).await.map_err(store_problem)? {
        Some(g) => Ok(Json(json!(g))),
        None => Err(Problem::not_found(format!("no failure group {key}"))),
    }
}

/// A group's new status.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusBody {
    /// open, acknowledged or resolved.
    status: String,
    #[serde(default)]
    note: String,
    /// Who, for the audit log (default `admin-token`).
    actor: Option<String>,
}

/// Sets a group's status with a note, audited.
#[utoipa::path(post, path = "/failures/{group}/status",
    operation_id = "set_failure_group_status", tag = "failures", params(("group" = String, Path, description = "The failure group's key")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "The group with its new status", body = FailureGroup),
        (status = 400, description = "An unknown status", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No dead message is in the group", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_status(
    State(app): State<AppState>,
    axum::Extension(caller): axum::Extension<super::Caller>,
    Path(key): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<Json<Value>, Problem> {
    let status = parse_status(&body.status)?;
    existing(&app, &key).await?;
    let actor = body
        .actor
        .filter(|a| !a.trim().is_empty())
        .map_or_else(|| caller.actor(), |a| Channel::Api.actor(a.trim()));
    let mark = StatusMark {
        status,
        note: body.note.trim().to_owned(),
        actor,
        at_ms: app.clock.now_ms(),
    };
    app.store
        .set_group_status(&key, mark)
        .await
        .map_err(store_problem)?;
    Ok(Json(json!(existing(&app, &key).await?)))
}

/// A retry or discard of a whole group.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct GroupAction {
    /// Only count what would be retried or discarded.
    #[serde(default)]
    dry_run: bool,
    /// Why the messages are discarded (required to discard).
    reason: Option<String>,
}

/// The group's dead deliveries as a message filter.
fn dead_of(key: &str) -> MessageFilter {
    MessageFilter {
        state: Some(crate::store::State::Dead),
        group: Some(key.to_owned()),
        ..Default::default()
    }
}

/// Requeues the group's dead messages (the body is optional).
#[utoipa::path(post, path = "/failures/{group}/retry",
    operation_id = "retry_failure_group", tag = "failures", params(("group" = String, Path, description = "The failure group's key")),
    request_body(content = Option<GroupAction>),
    responses(
        (status = 200, description = "Requeued, or the dry run's count", body = schema::RetryOutcome),
        (status = 404, description = "No dead message is in the group", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry(
    State(app): State<AppState>,
    axum::Extension(caller): axum::Extension<super::Caller>,
    Path(key): Path<String>,
    body: Option<Json<GroupAction>>,
) -> Result<Json<Value>, Problem> {
    let body = body.map(|b| b.0).unwrap_or_default();
    existing(&app, &key).await?;
    let now = app.clock.now_ms();
    let n = app
        .store
        .retry(
            Selection::Filter(dead_of(&key)),
            &caller.actor(),
            now,
            body.dry_run,
        )
        .await
        .map_err(store_problem)?;
    Ok(super::bulk_answer(&app, "requeued", n, body.dry_run))
}

/// Discards the group's dead messages, with a reason.
#[utoipa::path(post, path = "/failures/{group}/discard",
    operation_id = "discard_failure_group", tag = "failures", params(("group" = String, Path, description = "The failure group's key")),
    request_body = GroupAction,
    responses(
        (status = 200, description = "Discarded, or the dry run's count", body = schema::DiscardOutcome),
        (status = 400, description = "No reason", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No dead message is in the group", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn discard(
    State(app): State<AppState>,
    axum::Extension(caller): axum::Extension<super::Caller>,
    Path(key): Path<String>,
    Json(body): Json<GroupAction>,
) -> Result<Json<Value>, Problem> {
    let reason = body.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(Problem::bad_request(
            "reason-required",
            "say why the messages are discarded (`reason`)",
        ));
    }
    existing(&app, &key).await?;
    let now = app.clock.now_ms();
    let n = app
        .store
        .discard_matching(dead_of(&key), reason, &caller.actor(), now, body.dry_run)
        .await
        .map_err(store_problem)?;
    Ok(super::bulk_answer(&app, "discarded", n, body.dry_run))
}
