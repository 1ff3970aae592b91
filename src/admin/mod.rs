//! Admin: the operators' JSON API under `/admin/api/v1`, reading and acting on
//! messages through the same store methods the CLI uses (list, show, retry or
//! discard one, retry or discard by filter with a dry-run count, release a
//! route's blocked ordering key, route counts, each system's circuit breaker
//! and queue, the audit log, the credentials' metadata). Bearer-token protected; every action is audited in the store.

mod credentials;
pub mod failures;

mod config;
pub mod edit;
pub mod export;
pub mod ordering;

pub use ordering::DEFAULT_REASON as DEFAULT_RELEASE_REASON;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::units::parse_duration;
use crate::model::ErrorClass;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{Discarded, MessageFilter, Role, Selection, State as MsgState, StoreError};

/// Who the audit log names for actions taken with the admin token.
/// The audit log's name for whoever presents `server.admin_token`.
const TOKEN_ACTOR: &str = "admin-token";

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

pub fn router(state: AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/messages", get(list))
        .route("/messages/retry", post(retry_many))
        .route("/messages/discard", post(discard_many))
        .route("/messages/{id}", get(show))
        .route("/messages/{id}/retry", post(retry_one))
        .route("/messages/{id}/discard", post(discard))
        .route("/messages/{id}/edit", post(edit::edit_one))
        .route("/messages/export", get(export::export))
        .route("/failures", get(failures::list))
        .route("/failures/{group}", get(failures::show))
        .route("/failures/{group}/status", post(failures::set_status))
        .route("/failures/{group}/retry", post(failures::retry))
        .route("/failures/{group}/discard", post(failures::discard))
        .route("/routes", get(routes))
        .route("/routes/{route}/shadow", get(config::shadow))
        .route(
            "/routes/{route}/ordering-keys/{key}/release",
            post(ordering::release),
        )
        .route("/config", get(config::config))
        .route("/systems", get(systems))
        .route("/audit", get(audit))
        .route("/credentials", get(credentials::credentials));
    Router::new().nest(
        "/admin/api/v1",
        api.layer(middleware::from_fn_with_state(state, require_token)),
    )
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

/// Query-string form of a filter: `since`/`until` take epoch milliseconds or a
/// duration ago (`15m`, `24h`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterQuery {
    pub state: Option<String>,
    pub route: Option<String>,
    pub class: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<u32>,
    pub before: Option<String>,
    /// A failure group's key (`GET /failures`).
    pub group: Option<String>,
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

async fn list(
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

async fn show(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, Problem> {
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

async fn retry_one(
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

#[derive(Debug, Deserialize)]
struct RetryMany {
    #[serde(flatten)]
    filter: FilterQuery,
    #[serde(default)]
    dry_run: bool,
}

async fn retry_many(
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
    if body.dry_run {
        return Ok(Json(json!({ "matched": n, "dry_run": true })));
    }
    app.wake.notify();
    Ok(Json(json!({ "requeued": n })))
}

#[derive(Debug, Deserialize)]
struct DiscardBody {
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

#[derive(Debug, Deserialize)]
struct DiscardMany {
    #[serde(flatten)]
    filter: FilterQuery,
    #[serde(flatten)]
    reason: DiscardBody,
    #[serde(default)]
    dry_run: bool,
}

/// Discards what a filter selects (`dead` unless `state` is `retrying` or
/// `queued`), in chunks, each audited.
async fn discard_many(
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
    if body.dry_run {
        return Ok(Json(json!({ "matched": n, "dry_run": true })));
    }
    // Discarded messages may have held their ordering keys.
    app.wake.notify();
    Ok(Json(json!({ "discarded": n })))
}

async fn discard(
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

async fn routes(State(app): State<AppState>) -> Result<Json<Value>, Problem> {
    let stats = app.store.stats().await.map_err(store_problem)?;
    Ok(Json(json!({ "routes": stats })))
}

/// Each system's circuit breaker and queue: what an operator checks first
/// when a platform misbehaves.
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

#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
}

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
