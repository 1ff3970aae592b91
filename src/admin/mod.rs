//! Admin: the operators' JSON API under `/admin/api/v1`, reading and acting on
//! messages through the same store methods the CLI uses (list, show, retry or
//! discard one, retry or discard by filter with a dry-run count, release a
//! route's blocked ordering key, route counts, each system's circuit breaker
//! and queue, the audit log, the credentials' metadata). Bearer-token
//! protected; every action is audited in the store. Every route is
//! registered with its OpenAPI operation (`utoipa_axum::routes!`), and the
//! document is served, unauthenticated, at `/admin/api/openapi.json`
//! (`openapi`, the answers' shapes in `schema`).

mod credentials;
pub mod failures;

mod access;
mod config;
pub mod edit;
pub mod export;
mod messages;
pub mod openapi;
mod ordering;
mod schema;

pub use ordering::DEFAULT_REASON as DEFAULT_RELEASE_REASON;

use axum::Json;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::units::parse_duration;
use crate::model::ErrorClass;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{MessageFilter, Role, State as MsgState, StoreError};

/// Who the audit log names for actions taken with the admin token.
/// The audit log's name for whoever presents `server.admin_token`.
const TOKEN_ACTOR: &str = "admin-token";

/// Where the admin API's routes are mounted.
pub const PREFIX: &str = "/admin/api/v1";

/// Who an admin request comes from: the token's name (or
/// [`TOKEN_ACTOR`]) and what it may do. Set by [`require_token`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// The caller as the audit log records an action (from the admin API).
    pub fn actor(&self) -> String {
        crate::store::Channel::Api.actor(&self.name)
    }
}

/// The admin API's routes, each with its OpenAPI operation: `routes!`
/// takes a handler only with its `#[utoipa::path]`, so the document lists
/// exactly what is routed (`tests/it/openapi/` checks that nothing is
/// routed around it).
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(messages::list))
        .routes(routes!(messages::retry_many))
        .routes(routes!(messages::discard_many))
        .routes(routes!(messages::show))
        .routes(routes!(messages::retry_one))
        .routes(routes!(messages::discard))
        .routes(routes!(edit::edit_one))
        .routes(routes!(export::export))
        .routes(routes!(failures::list))
        .routes(routes!(failures::show))
        .routes(routes!(failures::set_status))
        .routes(routes!(failures::retry))
        .routes(routes!(failures::discard))
        .routes(routes!(routes))
        .routes(routes!(activity))
        .routes(routes!(access::users, access::add_user))
        .routes(routes!(access::remove_user))
        .routes(routes!(access::tokens, access::add_token))
        .routes(routes!(access::remove_token))
        .routes(routes!(config::shadow))
        .routes(routes!(ordering::release))
        .routes(routes!(config::config))
        .routes(routes!(systems))
        .routes(routes!(audit))
        .routes(routes!(credentials::credentials))
}

pub fn router(state: AppState) -> Router<AppState> {
    let guarded = api()
        .layer(middleware::from_fn_with_state(state, require_token))
        .layer(middleware::from_fn(crate::problem::rejections_as_problems));
    let (router, doc) = OpenApiRouter::new().nest(PREFIX, guarded).split_for_parts();
    let body = bytes::Bytes::from(openapi::render(doc));
    router.route(
        openapi::PATH,
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
    )
}

/// The admin API's OpenAPI document as served (see [`openapi::render`]).
pub fn openapi_json() -> String {
    let (_, doc) = OpenApiRouter::<AppState>::new()
        .nest(PREFIX, api())
        .split_for_parts();
    openapi::render(doc)
}

async fn require_token(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, Problem> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::redact::bearer)
        .map(str::to_owned);
    let caller = caller(&app, presented.as_deref()).await?;
    // A viewer reads; acting on messages takes an operator.
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reads && caller.role < Role::Operator {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden-role",
            "Forbidden",
            format!(
                "token {} is a {}: acting on messages takes an operator or admin token",
                caller.name,
                caller.role.as_str()
            ),
        ));
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Who `presented` is: an API token from the store (`ferry tokens add`), or
/// `server.admin_token` (an admin). Fails closed: nothing sent, an unknown
/// token, or (defensively) an empty admin token configured.
async fn caller(app: &AppState, presented: Option<&str>) -> Result<Caller, Problem> {
    let unauthorized = || {
        Problem::unauthorized(
            "bad-admin-token",
            "send `Authorization: Bearer <admin token or API token>`",
        )
    };
    let Some(presented) = presented else {
        return match app.config().server.admin_token {
            None => Err(admin_disabled()),
            Some(_) => Err(unauthorized()),
        };
    };
    let sha = crate::access::sha256_hex(presented);
    if let Some(t) = app.store.token(&sha).await.map_err(store_problem)? {
        return Ok(Caller {
            name: t.name,
            role: t.role,
        });
    }
    let config = app.config();
    let Some(expected) = &config.server.admin_token else {
        return Err(admin_disabled());
    };
    let expected = expected.expose_secret().as_bytes();
    if !expected.is_empty() & crate::redact::secret_eq(expected, presented.as_bytes()) {
        return Ok(Caller {
            name: TOKEN_ACTOR.to_owned(),
            role: Role::Admin,
        });
    }
    Err(unauthorized())
}

fn admin_disabled() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "admin-disabled",
        "Forbidden",
        "the admin API is disabled: set server.admin_token in the configuration (or add an API token with `ferry tokens add`)",
    )
}

fn store_problem(e: StoreError) -> Problem {
    tracing::error!(error = %crate::model::Chain(&e), "An admin request failed in the store.");
    Problem::internal(format!("the store failed: {}", crate::model::Chain(&e)))
}

/// A bulk action's answer: with `dry_run`, how many it would take
/// (`matched`); otherwise how many it took, under `verb`, and the workers
/// woken (requeued messages are due; discarded ones may have held their
/// ordering keys).
fn bulk_answer(app: &AppState, verb: &str, n: u64, dry_run: bool) -> Json<Value> {
    if dry_run {
        return Json(json!({ "matched": n, "dry_run": true }));
    }
    app.wake.notify();
    Json(json!({ verb: n }))
}

/// Query-string form of a filter: `since`/`until` take epoch milliseconds or a
/// duration ago (`15m`, `24h`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// queued, delivering, retrying, delivered, dead, discarded, skipped or
    /// superseded.
    pub state: Option<String>,
    pub route: Option<String>,
    /// The last attempt's error class (network, timeout, rate_limited, ...).
    pub class: Option<String>,
    /// Received at or after: epoch milliseconds, or a duration ago (`15m`).
    pub since: Option<String>,
    /// Received before: epoch milliseconds, or a duration ago.
    pub until: Option<String>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Only messages received before this message id (the next page).
    pub before: Option<String>,
    /// A failure group's key (`GET /failures`).
    pub group: Option<String>,
    /// The destination system.
    pub system: Option<String>,
    /// Text in ids, keys and reasons.
    pub q: Option<String>,
    /// Exactly this ordering key.
    pub ordering_key: Option<String>,
}

impl FilterQuery {
    pub fn resolve(&self, now_ms: i64) -> Result<MessageFilter, Problem> {
        let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, Problem> {
            let Some(v) = v else { return Ok(None) };
            if let Ok(ms) = v.parse::<i64>() {
                return Ok(Some(ms));
            }
            parse_duration(v)
                .map(|d| Some(now_ms - d.as_millis() as i64))
                .map_err(|e| {
                    Problem::bad_request(
                        "bad-filter",
                        format!("{name}: {e}; give epoch milliseconds or a duration ago"),
                    )
                })
        };
        Ok(MessageFilter {
            state: self
                .state
                .as_deref()
                .map(|s| {
                    MsgState::parse(s).ok_or_else(|| {
                        Problem::bad_request("bad-filter", format!("state `{s}`: use queued, delivering, retrying, delivered, dead, discarded, skipped or superseded"))
                    })
                })
                .transpose()?,
            route: self.route.clone(),
            class: self
                .class
                .as_deref()
                .map(|c| ErrorClass::parse(c).ok_or_else(|| Problem::bad_request("bad-filter", format!("unknown error class `{c}`"))))
                .transpose()?,
            since_ms: time("since", &self.since)?,
            until_ms: time("until", &self.until)?,
            limit: self.limit,
            before: self.before.clone(),
            group: self.group.clone(),
            system: self.system.clone(),
            text: self.q.clone(),
            ordering_key: self.ordering_key.clone(),
        })
    }
}

/// Why a delivery that is owed an attempt has not had it yet, in words: the
/// platform's hold on its system ("held by shop's Retry-After until ..."),
/// or the time its next attempt is due. `None` when nothing waits.
pub(crate) fn waiting(
    app: &AppState,
    m: &crate::store::MessageSummary,
    now_ms: i64,
) -> Option<String> {
    if !matches!(m.state, MsgState::Queued | MsgState::Retrying) {
        return None;
    }
    if let Some(hold) = app.holds.current(&m.system, now_ms) {
        return Some(hold.explain(&m.system));
    }
    let next = m.next_attempt_ms.filter(|t| *t > now_ms)?;
    let why = match &m.last_explanation {
        Some(e) if m.attempts > 0 => format!(" after: {e}"),
        _ => format!(
            " ({}'s request budget or an earlier hold deferred it)",
            m.system
        ),
    };
    Some(format!(
        "next attempt at {}{why}",
        crate::deliver::hold::utc_time(next)
    ))
}

/// The console dashboard's numbers: each route's counts by state over the
/// last hour and day, its queue and oldest waiting message, and the last
/// day's deliveries and failures by half hour.
#[utoipa::path(get, path = "/activity",
    operation_id = "activity", tag = "routes",
    responses((status = 200, description = "Activity per route and over the last day", body = crate::store::Activity)))]
async fn activity(State(app): State<AppState>) -> Result<Json<crate::store::Activity>, Problem> {
    let now = app.clock.now_ms();
    Ok(Json(app.store.activity(now).await.map_err(store_problem)?))
}

/// Message counts per route and state.
#[utoipa::path(get, path = "/routes",
    operation_id = "list_routes", tag = "routes",
    responses((status = 200, description = "Counts per route", body = schema::RouteList)))]
async fn routes(State(app): State<AppState>) -> Result<Json<Value>, Problem> {
    let stats = app.store.stats().await.map_err(store_problem)?;
    Ok(Json(json!({ "routes": stats })))
}

/// Each system's circuit breaker and queue: what an operator checks first
/// when a platform misbehaves.
#[utoipa::path(get, path = "/systems",
    operation_id = "list_systems", tag = "systems",
    responses((status = 200, description = "Every configured system", body = schema::SystemList)))]
async fn systems(State(app): State<AppState>) -> Result<Json<Value>, Problem> {
    let depths = app.store.queue_depth().await.map_err(store_problem)?;
    let now = app.clock.now_ms();
    let config = app.config();
    let systems: Vec<Value> = config
        .systems
        .values()
        .map(|s| {
            let queued: u64 = depths
                .iter()
                .filter(|d| d.system == s.name)
                .map(|d| d.depth)
                .sum();
            json!({
                "name": s.name,
                "queued": queued,
                "circuit": app.breakers.status(&s.name, now),
                "quota": app.quotas.status(&s.name, now),
                "concurrency_limit": app.concurrency.limit(s),
                "hold": app.holds.current(&s.name, now).map(|h| json!({
                    "until_ms": h.until_ms,
                    "until": crate::deliver::hold::utc_time(h.until_ms),
                    "source": h.source,
                    "capped": h.capped,
                    "explanation": h.explain(&s.name),
                })),
            })
        })
        .collect();
    Ok(Json(json!({ "systems": systems })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Entries to return (default 100, at most 1000).
    limit: Option<u32>,
}

/// The audit log, newest first: who did what to which target, and why.
#[utoipa::path(get, path = "/audit",
    operation_id = "list_audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "The newest entries", body = schema::AuditList)))]
async fn audit(
    State(app): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, Problem> {
    let entries = app
        .store
        .audit_log(q.limit.unwrap_or(100).min(1000))
        .await
        .map_err(store_problem)?;
    Ok(Json(json!({ "audit": entries })))
}
