//! The admin API's view of the configuration: the running config's hash,
//! the last reload's time and result and the settings that wait for a
//! restart (`GET /config`), and a route's shadow comparisons against its
//! system's `next_api_version` (`GET /routes/{route}/shadow`).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::deliver::hold::utc_time;
use crate::problem::Problem;
use crate::state::AppState;
use crate::transform::Transform;

/// The running configuration: its hash, the last reload and what waits for
/// a restart, and each route's mapping.
#[utoipa::path(get, path = "/config",
    operation_id = "show_config", tag = "config",
    responses((status = 200, description = "The running configuration", body = super::schema::ConfigView)))]
pub(super) async fn config(State(app): State<AppState>) -> Json<Value> {
    let config = app.config();
    let routes: Vec<Value> = config
        .routes
        .values()
        .map(|r| {
            let system = config.systems.get(&r.destination.system);
            json!({
                "name": r.name,
                "system": r.destination.system,
                "api_version": system.and_then(|s| s.api_version.clone()),
                "next_api_version": system.and_then(|s| s.next_api_version.clone()),
                "transform": describe(&r.transform),
                "shadow": r.shadow.as_ref().map(|m| m.file.display().to_string()),
            })
        })
        .collect();
    let status = app.reloads.get().map(|r| r.status());
    Json(json!({
        "file": status.as_ref().map(|s| s.file.display().to_string()),
        "hash": status.as_ref().map(|s| s.hash.clone()),
        "loaded_at": status.as_ref().map(|s| utc_time(s.loaded_ms)),
        "last_reload": status.as_ref().and_then(|s| s.last_reload.as_ref()).map(|l| json!({
            "at_ms": l.at_ms,
            "at": utc_time(l.at_ms),
            "result": l.result,
            "reason": l.reason,
            "restart_needed": l.restart_needed,
        })),
        "restart_needed": status.as_ref().map(|s| s.restart_needed.clone()).unwrap_or_default(),
        "hot_reload": status.is_some(),
        "routes": routes,
        "systems": config.systems.keys().collect::<Vec<_>>(),
    }))
}

fn describe(t: &Transform) -> Value {
    match t {
        Transform::Passthrough => json!("passthrough"),
        Transform::Mapping(m) => json!({
            "file": m.file.display().to_string(),
            "emits": match m.emits {
                crate::transform::Emits::Body => "body",
                crate::transform::Emits::Request => "request",
            },
        }),
    }
}

/// A route's shadow comparisons against its system's `next_api_version`.
#[utoipa::path(get, path = "/routes/{route}/shadow",
    operation_id = "show_route_shadow", tag = "routes",
    params(("route" = String, Path, description = "The route's name")),
    responses(
        (status = 200, description = "The comparisons so far", body = super::schema::ShadowView),
        (status = 404, description = "No such route", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn shadow(
    State(app): State<AppState>,
    Path(route): Path<String>,
) -> Result<Json<Value>, Problem> {
    let config = app.config();
    let Some(r) = config.routes.get(route.as_str()) else {
        return Err(Problem::not_found(format!("no route {route}")));
    };
    let system = config.systems.get(&r.destination.system);
    let stats = app.shadows.view(&route);
    let live = r.transform.mapping().map(|m| m.file.display().to_string());
    let next = r.shadow.as_ref().map(|m| m.file.display().to_string());
    let stats = stats.filter(|s| Some(s.mapping.display().to_string()) == next);
    Ok(Json(json!({
        "route": route,
        "enabled": r.shadow.is_some(),
        "api_version": system.and_then(|s| s.api_version.clone()),
        "next_api_version": system.and_then(|s| s.next_api_version.clone()),
        "live_mapping": live,
        "next_mapping": next,
        "compared": stats.as_ref().map_or(0, |s| s.compared),
        "differing": stats.as_ref().map_or(0, |s| s.differing),
        "not_compared": stats.as_ref().map_or(0, |s| s.not_compared),
        "since": stats.as_ref().map(|s| utc_time(s.since_ms)),
        "examples": stats.as_ref().map(|s| s.examples.iter().map(|e| json!({
            "message_id": e.message_id,
            "at": utc_time(e.at_ms),
            "changes": e.changes,
        })).collect::<Vec<_>>()).unwrap_or_default(),
    })))
}
