//! The console's actions, each taken by an operator (a viewer is refused
//! with 403) through htmx with the session's CSRF token, and audited in
//! the store under the user's name like the admin API's: retry and discard
//! one message, edit its payload and replay it, retry or discard what a
//! filter or a failure group selects (a preview says how many first), and
//! set a group's status. A finished action sends the browser back to the
//! page it came from with what happened (`HX-Redirect`); a refusal is a
//! problem document the console's script shows.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::format::{count, url_part};
use super::messages::cleaned;
use super::session::ConsoleUser;
use super::{PageError, html};
use crate::admin::FilterQuery;
use crate::admin::edit::{EditError, edit};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{
    Discarded, GroupStatus, MessageFilter, Role, Selection, State as MsgState, StatusMark,
};

/// Sends htmx (and with it the browser) to `to`.
fn redirect(to: String) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert("hx-redirect", v);
    }
    r
}

fn conflict(slug: &str, detail: String) -> PageError {
    Problem::new(StatusCode::CONFLICT, slug, "Conflict", detail).into()
}

fn reason_of(reason: &Option<String>) -> Result<String, PageError> {
    match reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => Ok(r.to_owned()),
        _ => Err(Problem::bad_request(
            "reason-required",
            "say why the messages are discarded (the reason field)",
        )
        .into()),
    }
}

pub async fn retry_one(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let now = app.clock.now_ms();
    let n = app
        .store
        .retry(Selection::One(id.clone()), &user.actor(), now, false)
        .await?;
    if n == 0 {
        return Err(match app.store.message(&id).await? {
            None => Problem::not_found(format!("no message {id}")).into(),
            Some(m) => conflict(
                "not-retryable",
                format!(
                    "message {id} is {} and cannot be retried now",
                    m.summary.state.as_str()
                ),
            ),
        });
    }
    app.wake.notify();
    Ok(redirect(format!(
        "/console/messages/{}?done=retried-one",
        url_part(&id)
    )))
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    reason: Option<String>,
}

pub async fn discard_one(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let reason = reason_of(&f.reason)?;
    let now = app.clock.now_ms();
    match app.store.discard(&id, &user.actor(), &reason, now).await? {
        Discarded::Done => {
            app.wake.notify();
            Ok(redirect(format!(
                "/console/messages/{}?done=discarded-one",
                url_part(&id)
            )))
        }
        Discarded::NotFound => Err(Problem::not_found(format!("no message {id}")).into()),
        Discarded::NotDiscardable => Err(conflict(
            "not-discardable",
            format!("message {id} is already finished"),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    body: String,
    #[serde(default)]
    note: String,
}

pub async fn edit_one(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Form(f): Form<EditForm>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let config = app.config();
    let now = app.clock.now_ms();
    match edit(
        &app.store,
        &config,
        &id,
        f.body.as_bytes(),
        &user.actor(),
        &f.note,
        now,
    )
    .await
    {
        Ok(_) => {
            app.wake.notify();
            Ok(redirect(format!(
                "/console/messages/{}?done=edited",
                url_part(&id)
            )))
        }
        Err(EditError::NotFound(id)) => Err(Problem::not_found(format!("no message {id}")).into()),
        Err(e @ EditError::Busy { .. }) => Err(conflict("busy", e.to_string())),
        Err(e @ EditError::Invalid(_)) => {
            Err(Problem::bad_request("bad-payload", e.to_string()).into())
        }
        Err(EditError::Store(e)) => Err(e.into()),
    }
}

/// A filter action's form: the list's filter, a reason for a discard, and
/// `dry_run` for the preview.
#[derive(Debug, Deserialize)]
pub struct BulkForm {
    #[serde(flatten)]
    filter: FilterQuery,
    reason: Option<String>,
    dry_run: Option<String>,
}

impl BulkForm {
    fn dry_run(&self) -> bool {
        matches!(self.dry_run.as_deref(), Some("true" | "1" | "on"))
    }
}

/// A preview's answer: how many match, and the button that acts on them
/// (the same filter, without `dry_run`).
#[derive(Template)]
#[template(path = "console/bulk_preview.html")]
struct Preview {
    action: &'static str,
    verb: &'static str,
    n: u64,
    n_text: String,
    f: FilterQuery,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/bulk_done.html")]
struct BulkDone {
    text: String,
}

fn filter_of(app: &AppState, f: &FilterQuery) -> Result<MessageFilter, PageError> {
    let q = FilterQuery {
        limit: None,
        before: None,
        ..cleaned(f.clone())
    };
    let filter = q.resolve(app.clock.now_ms())?;
    if !matches!(
        filter.state,
        Some(MsgState::Dead | MsgState::Retrying | MsgState::Queued)
    ) {
        return Err(Problem::bad_request(
            "state-required",
            "choose the state to act on: dead, retrying or queued",
        )
        .into());
    }
    Ok(filter)
}

pub async fn retry_matching(
    State(app): State<AppState>,
    user: ConsoleUser,
    Form(f): Form<BulkForm>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let filter = filter_of(&app, &f.filter)?;
    let now = app.clock.now_ms();
    let dry = f.dry_run();
    let n = app
        .store
        .retry(Selection::Filter(filter), &user.actor(), now, dry)
        .await?;
    if dry {
        return html(&Preview {
            action: "/console/messages/retry",
            verb: "Retry",
            n,
            n_text: count(n),
            f: f.filter,
            reason: String::new(),
        });
    }
    app.wake.notify();
    html(&BulkDone {
        text: format!("{} messages queued again.", count(n)),
    })
}

pub async fn discard_matching(
    State(app): State<AppState>,
    user: ConsoleUser,
    Form(f): Form<BulkForm>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let reason = reason_of(&f.reason)?;
    let filter = filter_of(&app, &f.filter)?;
    let now = app.clock.now_ms();
    let dry = f.dry_run();
    let n = app
        .store
        .discard_matching(filter, &reason, &user.actor(), now, dry)
        .await?;
    if dry {
        return html(&Preview {
            action: "/console/messages/discard",
            verb: "Discard",
            n,
            n_text: count(n),
            f: f.filter,
            reason,
        });
    }
    app.wake.notify();
    html(&BulkDone {
        text: format!("{} messages discarded.", count(n)),
    })
}

/// The group's dead deliveries, or 404 when there is no such group.
async fn group_filter(app: &AppState, key: &str) -> Result<MessageFilter, PageError> {
    if app.store.failure_group(key).await?.is_none() {
        return Err(Problem::not_found(format!("no failure group {key}")).into());
    }
    Ok(MessageFilter {
        state: Some(MsgState::Dead),
        group: Some(key.to_owned()),
        ..Default::default()
    })
}

pub async fn group_retry(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let filter = group_filter(&app, &key).await?;
    let now = app.clock.now_ms();
    let n = app
        .store
        .retry(Selection::Filter(filter), &user.actor(), now, false)
        .await?;
    app.wake.notify();
    Ok(redirect(format!(
        "/console/failures/{}?done=retried&n={n}",
        url_part(&key)
    )))
}

pub async fn group_discard(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(key): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let reason = reason_of(&f.reason)?;
    let filter = group_filter(&app, &key).await?;
    let now = app.clock.now_ms();
    let n = app
        .store
        .discard_matching(filter, &reason, &user.actor(), now, false)
        .await?;
    app.wake.notify();
    Ok(redirect(format!(
        "/console/failures/{}?done=discarded&n={n}",
        url_part(&key)
    )))
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    status: String,
    #[serde(default)]
    note: String,
}

pub async fn group_status(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(key): Path<String>,
    Form(f): Form<StatusForm>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    let status = GroupStatus::parse(&f.status).ok_or_else(|| {
        Problem::bad_request(
            "bad-status",
            format!("status `{}`: use open, acknowledged or resolved", f.status),
        )
    })?;
    group_filter(&app, &key).await?;
    let mark = StatusMark {
        status,
        note: f.note.trim().to_owned(),
        actor: user.actor(),
        at_ms: app.clock.now_ms(),
    };
    app.store.set_group_status(&key, mark).await?;
    Ok(redirect(format!(
        "/console/failures/{}?done=status",
        url_part(&key)
    )))
}

#[derive(Debug, Deserialize)]
pub struct ReleaseForm {
    key: String,
    /// The message page the form was on, to come back to.
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Releases an ordering key a dead message blocks: its dead deliveries are
/// discarded (with the reason, or the admin API's default) so the later
/// ones of the key go.
pub async fn release_key(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(route): Path<String>,
    Form(f): Form<ReleaseForm>,
) -> Result<Response, PageError> {
    user.require(Role::Operator)?;
    if !app.config().routes.contains_key(route.as_str()) {
        return Err(Problem::not_found(format!("no route {route}")).into());
    }
    let reason = match f.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => r,
        _ => crate::admin::DEFAULT_RELEASE_REASON,
    };
    let now = app.clock.now_ms();
    let n = app
        .store
        .release_key(&route, &f.key, reason, &user.actor(), now, false)
        .await?;
    app.wake.notify();
    let to = match &f.message {
        Some(id) => format!("/console/messages/{}?done=released&n={n}", url_part(id)),
        None => format!(
            "/console/messages?route={}&ordering_key={}",
            url_part(&route),
            url_part(&f.key)
        ),
    };
    Ok(redirect(to))
}
