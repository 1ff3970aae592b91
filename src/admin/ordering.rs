//! `POST /admin/api/v1/routes/{route}/ordering-keys/{key}/release`: an
//! operator releases an ordering key that a dead delivery blocks (contract
//! item 8: a dead message blocks only its own key, visibly), discarding the
//! dead deliveries of (route, key) with a reason through
//! `Store::release_key`, audited as `release-key` on `route/key`, so the
//! later deliveries of that key go. `ferry messages release-key` does the
//! same from the command line.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, store_problem};
use crate::problem::Problem;
use crate::state::AppState;

/// The audit log's reason when the operator gives none.
pub const DEFAULT_REASON: &str = "ordering key released by an operator";

/// A release of an ordering key (the body is optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(super) struct ReleaseBody {
    /// Why the dead deliveries are discarded (default: [`DEFAULT_REASON`]).
    #[serde(default)]
    reason: Option<String>,
    /// Only count what would be released.
    #[serde(default)]
    dry_run: bool,
}

/// Discards the dead messages of the route's ordering key `key`, audited as
/// `release-key` on `route/key`, so the key's later messages go.
#[utoipa::path(post, path = "/routes/{route}/ordering-keys/{key}/release",
    operation_id = "release_ordering_key", tag = "routes",
    params(
        ("route" = String, Path, description = "The route's name"),
        ("key" = String, Path, description = "The ordering key's value"),
    ),
    request_body(content = Option<ReleaseBody>),
    responses(
        (status = 200, description = "Released, or the dry run's count", body = super::schema::Released),
        (status = 404, description = "No such route", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn release(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((route, key)): Path<(String, String)>,
    body: Option<Json<ReleaseBody>>,
) -> Result<Json<Value>, Problem> {
    let body = body.map(|b| b.0).unwrap_or_default();
    if !app.config().routes.contains_key(route.as_str()) {
        return Err(Problem::not_found(format!("no route {route}")));
    }
    let reason = match body.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => r,
        _ => DEFAULT_REASON,
    };
    let n = app
        .store
        .release_key(
            &route,
            &key,
            reason,
            &caller.actor(),
            app.clock.now_ms(),
            body.dry_run,
        )
        .await
        .map_err(store_problem)?;
    if body.dry_run {
        return Ok(Json(json!({ "released": n, "dry_run": true })));
    }
    // The deliveries behind the key are due now.
    app.wake.notify();
    Ok(Json(json!({ "released": n })))
}
