//! The failure groups' pages: the list of groups (open by default; filters
//! by status, route, system and class) with count, first and last seen,
//! the plain-language explanation and fix, and samples; and one group's
//! page with its dead messages and the actions on the whole group, whose
//! buttons say how many messages they touch ("Retry 2,314 messages").

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::format::{ago, count, counted, time};
use super::messages::{Row, rows};
use super::session::ConsoleUser;
use super::{Chrome, PageError, html};
use crate::admin::failures::GroupQuery;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{FailureGroup, GroupStatus, MessageFilter, State as MsgState};

/// A group as its row and page show it.
pub struct Group {
    pub key: String,
    pub class: String,
    pub system: String,
    pub route: String,
    pub reason: String,
    pub count: u64,
    pub count_text: String,
    pub first_seen: String,
    pub last_seen: String,
    pub last_seen_ago: String,
    pub explanation: String,
    pub hint: String,
    pub status: &'static str,
    /// Who set the status, when and why: `acknowledged by ana 3 min ago: ...`.
    pub mark: Option<String>,
    pub samples: Vec<String>,
}

impl Group {
    pub(super) fn of(g: FailureGroup, now_ms: i64) -> Group {
        Group {
            class: g.class.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            count_text: count(g.count),
            first_seen: time(g.first_seen_ms),
            last_seen: time(g.last_seen_ms),
            last_seen_ago: ago(g.last_seen_ms, now_ms),
            status: g.status.as_str(),
            mark: g.mark.map(|m| {
                let note = if m.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", m.note)
                };
                format!(
                    "{} by {} {}{note}",
                    m.status.as_str(),
                    m.actor,
                    ago(m.at_ms, now_ms)
                )
            }),
            key: g.key,
            system: g.system,
            route: g.route,
            reason: g.reason,
            count: g.count,
            explanation: g.explanation,
            hint: g.hint,
            samples: g.samples,
        }
    }
}

/// The list's query as the filter form sends it (empty fields are unset).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    route: Option<String>,
    system: Option<String>,
    class: Option<String>,
}

#[derive(Template)]
#[template(path = "console/failures.html")]
struct ListPage {
    chrome: Chrome,
    groups: Vec<Group>,
    /// Causes and samples link to their pages (not in the embed).
    linked: bool,
    status: String,
    route: String,
    system: String,
    class: String,
    statuses: Vec<&'static str>,
    routes: Vec<String>,
    systems: Vec<String>,
    classes: Vec<&'static str>,
    total: String,
}

pub async fn list(
    State(app): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let query = GroupQuery {
        route: set(&q.route),
        system: set(&q.system),
        class: set(&q.class),
        status: set(&q.status),
    };
    let filter = query.resolve()?;
    let now = app.clock.now_ms();
    let groups: Vec<Group> = app
        .store
        .failure_groups(&filter)
        .await?
        .into_iter()
        .map(|g| Group::of(g, now))
        .collect();
    let config = app.config();
    let mut statuses: Vec<&'static str> = GroupStatus::ALL.iter().map(|s| s.as_str()).collect();
    statuses.push("all");
    html(&ListPage {
        chrome: Chrome::new(&user, "failures"),
        total: total(&groups),
        groups,
        linked: true,
        status: query.status.unwrap_or_else(|| "open".to_owned()),
        route: query.route.unwrap_or_default(),
        system: query.system.unwrap_or_default(),
        class: query.class.unwrap_or_default(),
        statuses,
        routes: config.routes.keys().map(|r| r.to_string()).collect(),
        systems: config.systems.keys().map(|s| s.to_string()).collect(),
        classes: crate::model::ErrorClass::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
    })
}

/// `3 groups, 2,314 dead messages`.
pub(super) fn total(groups: &[Group]) -> String {
    format!(
        "{}, {}",
        counted(groups.len() as u64, "group", "groups"),
        counted(
            groups.iter().map(|g| g.count).sum(),
            "dead message",
            "dead messages"
        )
    )
}

#[derive(Template)]
#[template(path = "console/failure.html")]
struct GroupPage {
    chrome: Chrome,
    group: Group,
    messages: Vec<Row>,
    statuses: Vec<&'static str>,
    notice: Option<String>,
}

/// What an action done on the group page left to say (`?done=retried&n=3`).
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    done: Option<String>,
    n: Option<u64>,
}

impl Done {
    pub fn notice(&self) -> Option<String> {
        let n = count(self.n.unwrap_or(0));
        Some(match self.done.as_deref()? {
            "retried" => format!("{n} messages queued again."),
            "discarded" => format!("{n} messages discarded."),
            "status" => "Status saved.".to_owned(),
            "edited" => "The edited payload is queued for delivery.".to_owned(),
            "retried-one" => "The message is queued again.".to_owned(),
            "discarded-one" => "The message is discarded.".to_owned(),
            "released" => {
                format!("{n} messages released: the ordering key no longer waits on them.")
            }
            _ => return None,
        })
    }
}

pub async fn show(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(key): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let now = app.clock.now_ms();
    let Some(g) = app.store.failure_group(&key).await? else {
        return Err(Problem::not_found(format!("no failure group {key}")).into());
    };
    let filter = MessageFilter {
        state: Some(MsgState::Dead),
        group: Some(key),
        limit: Some(50),
        ..Default::default()
    };
    let messages = rows(&app, app.store.list(&filter).await?, now);
    html(&GroupPage {
        chrome: Chrome::new(&user, "failures"),
        group: Group::of(g, now),
        messages,
        statuses: GroupStatus::ALL.iter().map(|s| s.as_str()).collect(),
        notice: done.notice(),
    })
}
