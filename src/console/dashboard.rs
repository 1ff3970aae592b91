//! The dashboard, the console's first page: the last hour at a glance
//! (delivered, failed, waiting, the delivery rate, open failure groups),
//! a chart of the last day, each route's counts by state over the last
//! hour and day with its queue and oldest waiting message, and each
//! system's counts, circuit, hold, request budget, daily quota and
//! in-flight limit.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::format::{ago, count, counted, rate};
use super::session::ConsoleUser;
use super::{Chrome, PageError, chart, html};
use crate::state::AppState;
use crate::store::{GroupFilter, GroupStatus, RouteActivity};

struct RouteRow {
    route: String,
    system: String,
    hour_delivered: String,
    hour_failed: String,
    hour_retrying: String,
    day_delivered: String,
    day_failed: String,
    waiting: String,
    oldest: String,
    per_minute: String,
}

impl RouteRow {
    fn of(r: &RouteActivity, now_ms: i64) -> RouteRow {
        RouteRow {
            route: r.route.clone(),
            system: r.system.clone(),
            hour_delivered: count(r.last_hour.delivered),
            hour_failed: count(r.last_hour.dead),
            hour_retrying: count(r.last_hour.retrying),
            day_delivered: count(r.last_day.delivered),
            day_failed: count(r.last_day.dead),
            waiting: count(r.waiting),
            oldest: r
                .oldest_waiting_ms
                .map(|t| ago(t, now_ms))
                .unwrap_or_else(|| "—".to_owned()),
            per_minute: format!("{:.1}", r.last_hour.delivered as f64 / 60.0),
        }
    }
}

struct SystemRow {
    name: String,
    delivered: String,
    failed: String,
    waiting: String,
    budget: String,
    circuit: &'static str,
    hold: Option<String>,
    quota: Option<String>,
    limit: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    delivered: String,
    failed: String,
    waiting: String,
    per_minute: String,
    open_groups: usize,
    open_messages: String,
    oldest: String,
    chart: String,
    routes: Vec<RouteRow>,
    systems: Vec<SystemRow>,
}

pub async fn page(State(app): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    let now = app.clock.now_ms();
    // Two reads on two connections: the page waits for the longer only.
    let open = GroupFilter {
        status: Some(GroupStatus::Open),
        ..Default::default()
    };
    let (activity, open) = tokio::join!(app.store.activity(now), app.store.failure_groups(&open));
    let (activity, open) = (activity?, open?);
    let sum = |f: fn(&RouteActivity) -> u64| activity.routes.iter().map(f).sum::<u64>();
    let delivered = sum(|r| r.last_hour.delivered);
    let of_system = |system: &str, f: fn(&RouteActivity) -> u64| {
        activity
            .routes
            .iter()
            .filter(|r| r.system == system)
            .map(f)
            .sum::<u64>()
    };
    let config = app.config();
    let systems = config
        .systems
        .values()
        .map(|s| SystemRow {
            name: s.name.to_string(),
            delivered: count(of_system(&s.name, |r| r.last_hour.delivered)),
            failed: count(of_system(&s.name, |r| r.last_hour.dead)),
            waiting: count(of_system(&s.name, |r| r.waiting)),
            budget: s.rate.map_or_else(|| "no limit".to_owned(), |r| rate(&r)),
            circuit: app
                .breakers
                .status(&s.name, now)
                .map_or("closed", |b| b.state.as_str()),
            hold: app.holds.current(&s.name, now).map(|h| h.explain(&s.name)),
            quota: app.quotas.status(&s.name, now).and_then(|q| {
                let (u, l) = (q.used?, q.limit?);
                Some(format!(
                    "{}% ({} of {})",
                    u * 100 / l.max(1),
                    count(u),
                    count(l)
                ))
            }),
            limit: format!("{} of {}", app.concurrency.limit(s), s.max_concurrency),
        })
        .collect();
    html(&Dashboard {
        chrome: Chrome::new(&user, "dashboard"),
        delivered: count(delivered),
        failed: count(sum(|r| r.last_hour.dead)),
        waiting: count(sum(|r| r.waiting)),
        per_minute: format!("{:.1}", delivered as f64 / 60.0),
        open_groups: open.len(),
        open_messages: counted(
            open.iter().map(|g| g.count).sum(),
            "dead message",
            "dead messages",
        ),
        oldest: activity
            .routes
            .iter()
            .filter_map(|r| r.oldest_waiting_ms)
            .min()
            .map(|t| ago(t, now))
            .unwrap_or_else(|| "nothing waits".to_owned()),
        chart: chart::svg(&activity.series),
        routes: activity
            .routes
            .iter()
            .map(|r| RouteRow::of(r, now))
            .collect(),
        systems,
    })
}
