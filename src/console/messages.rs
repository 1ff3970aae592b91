//! The message pages: the list with its filters (state, route, system,
//! class, failure group, time range, text in ids, keys and reasons), paged
//! by keyset (`before` = the last id shown, never OFFSET), its CSV / NDJSON
//! export, and one message's page: the payload as received and as edited,
//! the attempts as a timeline with the requests as sent and the answers
//! (secrets were redacted before they were stored), what it waits on, the
//! operators' actions on it, and the forms to act.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::failures::Done;
use super::format::{ago, payload, time, url_part};
use super::pages::AuditRow;
use super::session::ConsoleUser;
use super::{Chrome, PageError, html};
use crate::admin::FilterQuery;
use crate::admin::export::{Format, stream};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{MessageSummary, State as MsgState};

/// Messages per list page.
const PAGE: u32 = 50;

/// A message as a list row shows it.
pub struct Row {
    pub id: String,
    pub event_id: Option<String>,
    pub state: &'static str,
    pub route: String,
    pub system: String,
    pub received_ago: String,
    pub attempts: u32,
    pub class: String,
    pub explanation: Option<String>,
    pub waiting: Option<String>,
}

/// The rows of `messages`, with why each waiting one waits.
pub fn rows(app: &AppState, messages: Vec<MessageSummary>, now_ms: i64) -> Vec<Row> {
    messages
        .into_iter()
        .map(|m| Row {
            waiting: crate::admin::waiting(app, &m, now_ms),
            id: m.id.to_string(),
            event_id: m.event_id,
            state: m.state.as_str(),
            route: m.route.to_string(),
            system: m.system.to_string(),
            received_ago: ago(m.received_ms, now_ms),
            attempts: m.attempts,
            class: m
                .last_class
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            explanation: m.last_explanation,
        })
        .collect()
}

/// The list's query as the filter form sends it: empty fields are unset.
pub(super) fn cleaned(q: FilterQuery) -> FilterQuery {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    FilterQuery {
        state: set(q.state),
        route: set(q.route),
        class: set(q.class),
        since: set(q.since),
        until: set(q.until),
        limit: q.limit,
        before: set(q.before),
        group: set(q.group),
        system: set(q.system),
        q: set(q.q),
        ordering_key: set(q.ordering_key),
    }
}

/// The filter as a query string (without `before`), for the pager and
/// the export links.
fn query_string(q: &FilterQuery) -> String {
    let pairs = [
        ("state", &q.state),
        ("route", &q.route),
        ("system", &q.system),
        ("class", &q.class),
        ("group", &q.group),
        ("since", &q.since),
        ("until", &q.until),
        ("q", &q.q),
        ("ordering_key", &q.ordering_key),
    ];
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| format!("{k}={}", url_part(v))))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Template)]
#[template(path = "console/messages.html")]
struct ListPage {
    chrome: Chrome,
    messages: Vec<Row>,
    f: FilterQuery,
    states: Vec<&'static str>,
    routes: Vec<String>,
    systems: Vec<String>,
    classes: Vec<&'static str>,
    /// The filter as a query string, for the links.
    query: String,
    /// The next page's cursor, when the page is full.
    older: Option<String>,
    /// Whether this is a later page (a link back to the first).
    paged: bool,
    /// Whether retry/discard by filter fits the state chosen.
    bulk: bool,
}

pub async fn list(
    State(app): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<FilterQuery>,
) -> Result<Response, PageError> {
    let q = cleaned(q);
    let now = app.clock.now_ms();
    let mut filter = q.resolve(now)?;
    filter.limit = Some(PAGE);
    let found = app.store.list(&filter).await?;
    let older = (found.len() == PAGE as usize)
        .then(|| found.last().map(|m| m.id.to_string()))
        .flatten();
    let config = app.config();
    let bulk = matches!(
        filter.state,
        Some(MsgState::Dead | MsgState::Retrying | MsgState::Queued)
    );
    html(&ListPage {
        chrome: Chrome::new(&user, "messages"),
        messages: rows(&app, found, now),
        query: query_string(&q),
        paged: q.before.is_some(),
        f: q,
        states: MsgState::ALL.iter().map(|s| s.as_str()).collect(),
        routes: config.routes.keys().map(|r| r.to_string()).collect(),
        systems: config.systems.keys().map(|s| s.to_string()).collect(),
        classes: crate::model::ErrorClass::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
        older,
        bulk,
    })
}

#[derive(Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
    #[serde(flatten)]
    filter: FilterQuery,
}

/// `GET /console/messages/export?format=csv|ndjson&<filter>`: the admin
/// API's export, for a signed-in user.
pub async fn export(
    State(app): State<AppState>,
    _user: ConsoleUser,
    Query(q): Query<ExportQuery>,
) -> Result<Response, PageError> {
    let f = q.format.as_deref().unwrap_or("csv");
    let format = Format::parse(f).ok_or_else(|| {
        Problem::bad_request("bad-format", format!("format `{f}`: use csv or ndjson"))
    })?;
    let filter = cleaned(q.filter).resolve(app.clock.now_ms())?;
    Ok(stream(app, filter, format))
}

/// One attempt as the timeline shows it.
struct Attempt {
    n: u32,
    at: String,
    duration_ms: i64,
    outcome: String,
    failed: bool,
    class: String,
    explanation: String,
    hint: String,
    request_line: String,
    request_headers: Vec<(String, String)>,
    request_body: String,
    status: Option<u16>,
    response_headers: Vec<(String, String)>,
    response_body: String,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    chrome: Chrome,
    notice: Option<String>,
    id: String,
    event_id: Option<String>,
    state: &'static str,
    route: String,
    system: String,
    received: String,
    attempts_made: u32,
    next_attempt: Option<String>,
    ordering_key: Option<String>,
    delivery_key: String,
    waiting: Option<String>,
    explanation: Option<String>,
    hint: Option<String>,
    class: String,
    discard_reason: Option<String>,
    headers: String,
    body: String,
    edited_body: Option<String>,
    edits: u32,
    /// What the edit form starts from: the payload the next attempt sends.
    editable: String,
    attempts: Vec<Attempt>,
    audit: Vec<AuditRow>,
    retryable: bool,
    discardable: bool,
    can_edit: bool,
}

pub async fn show(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let Some(m) = app.store.message(&id).await? else {
        return Err(Problem::not_found(format!("no message {id}")).into());
    };
    let now = app.clock.now_ms();
    let audit = app.store.audit_of(&id, 50).await?;
    let s = &m.summary;
    let attempts = m
        .attempts
        .iter()
        .rev()
        .map(|a| Attempt {
            n: a.n,
            at: time(a.started_ms),
            duration_ms: a.duration_ms,
            outcome: a.outcome.clone(),
            failed: a.class.is_some(),
            class: a.class.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            explanation: a.explanation.clone(),
            hint: a.hint.clone(),
            request_line: format!("{} {}", a.request.method, a.request.url),
            request_headers: a.request.headers.clone(),
            request_body: payload(&a.request.body_excerpt),
            status: a.response.as_ref().map(|r| r.status),
            response_headers: a
                .response
                .as_ref()
                .map(|r| r.headers.clone())
                .unwrap_or_default(),
            response_body: a
                .response
                .as_ref()
                .map(|r| payload(&r.body_excerpt))
                .unwrap_or_default(),
        })
        .collect();
    let busy = matches!(s.state, MsgState::Queued | MsgState::Delivering);
    html(&MessagePage {
        chrome: Chrome::new(&user, "messages"),
        notice: done.notice(),
        id: s.id.to_string(),
        event_id: s.event_id.clone(),
        state: s.state.as_str(),
        route: s.route.to_string(),
        system: s.system.to_string(),
        received: format!("{} ({})", time(s.received_ms), ago(s.received_ms, now)),
        attempts_made: s.attempts,
        next_attempt: s
            .next_attempt_ms
            .filter(|_| matches!(s.state, MsgState::Queued | MsgState::Retrying))
            .map(|t| format!("{} ({})", time(t), ago(t, now))),
        ordering_key: s.ordering_key.clone(),
        delivery_key: m.delivery_key.clone(),
        waiting: crate::admin::waiting(&app, s, now),
        explanation: s.last_explanation.clone(),
        hint: s.last_hint.clone(),
        class: s
            .last_class
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        discard_reason: m.discard_reason.clone(),
        headers: payload(&m.headers.to_string()),
        body: payload(&m.body),
        editable: m.edited_body.clone().unwrap_or_else(|| m.body.clone()),
        edited_body: m.edited_body.as_deref().map(payload),
        edits: m.edits,
        attempts,
        audit: audit.into_iter().map(AuditRow::of).collect(),
        retryable: s.state.retryable(),
        discardable: s.state.discardable() && !busy,
        can_edit: !busy,
    })
}
