//! What the console asks of the store beyond the admin API's reads: signed-in
//! sessions (kept by the SHA-256 of their cookie, with an idle and an
//! absolute expiry, ended when the user's password changes or the user is
//! removed) and the dashboard's activity (each route's counts by state over
//! the last hour and day, its queue and oldest waiting message, and the
//! last day in half-hour buckets), read by two indexed queries and folded
//! here, the same on both backends.

use serde::Serialize;

use super::{Role, RouteStats, State, Store, StoreError};

/// A session as `console::login` starts it.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 (hex) of the cookie's value; the value itself is never kept.
    pub token_sha256: String,
    pub user: String,
    /// The session's CSRF token, sent back by every state-changing request.
    pub csrf: String,
    pub now_ms: i64,
    /// The absolute end, whatever the activity.
    pub expires_ms: i64,
    /// The peer address it signed in from (audited).
    pub address: String,
}

/// The user behind a live session, with the role the user has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

/// A session's last use is written at most this often (a page view within
/// it only reads).
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// The dashboard's bucket width and count: the last day by half hours.
pub const BUCKET_MS: i64 = 30 * 60_000;
pub const BUCKETS: i64 = 48;

/// One route's activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RouteActivity {
    pub route: String,
    pub system: String,
    /// Deliveries by the state they reached within the last hour.
    pub last_hour: RouteStats,
    /// Deliveries by the state they reached within the last day.
    pub last_day: RouteStats,
    /// Queued, retrying or in flight now.
    pub waiting: u64,
    /// When the oldest of those was received.
    pub oldest_waiting_ms: Option<i64>,
}

/// Deliveries and failures in one half hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    pub start_ms: i64,
    pub delivered: u64,
    pub failed: u64,
}

/// The dashboard's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub routes: Vec<RouteActivity>,
    /// The last day, oldest first, [`BUCKETS`] of [`BUCKET_MS`].
    pub series: Vec<Bucket>,
}

/// A row of the recent-activity query: (route, system, state, bucket, count),
/// the bucket counted from [`Activity::since`].
pub type RecentRow = (String, String, String, i64, u64);
/// A row of the waiting query: (route, system, count, oldest received_ms).
pub type WaitingRow = (String, String, u64, Option<i64>);

type Routes = std::collections::BTreeMap<(String, String), RouteActivity>;

fn entry(routes: &mut Routes, route: String, system: String) -> &mut RouteActivity {
    routes
        .entry((route.clone(), system.clone()))
        .or_insert_with(|| RouteActivity {
            route,
            system,
            ..Default::default()
        })
}

impl Activity {
    /// Where the day's first bucket starts (the buckets end at `now_ms`).
    pub fn since(now_ms: i64) -> i64 {
        now_ms - BUCKETS * BUCKET_MS
    }

    /// Folds both queries' rows into routes (by name) and the series.
    pub fn build(now_ms: i64, recent: Vec<RecentRow>, waiting: Vec<WaitingRow>) -> Activity {
        let since = Activity::since(now_ms);
        let mut series: Vec<Bucket> = (0..BUCKETS)
            .map(|i| Bucket {
                start_ms: since + i * BUCKET_MS,
                ..Default::default()
            })
            .collect();
        let mut routes: Routes = Default::default();
        for (route, system, state, bucket, n) in recent {
            let Some(state) = State::parse(&state) else {
                continue;
            };
            let bucket = bucket.clamp(0, BUCKETS - 1);
            let r = entry(&mut routes, route, system);
            r.last_day.route.clone_from(&r.route);
            r.last_day.add(state, n);
            // The last two half hours are the last hour.
            if bucket >= BUCKETS - 2 {
                r.last_hour.route.clone_from(&r.route);
                r.last_hour.add(state, n);
            }
            let b = &mut series[bucket as usize];
            match state {
                State::Delivered => b.delivered += n,
                State::Dead => b.failed += n,
                _ => {}
            }
        }
        for (route, system, n, oldest) in waiting {
            let r = entry(&mut routes, route, system);
            r.waiting += n;
            r.oldest_waiting_ms = match (r.oldest_waiting_ms, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Activity {
            routes: routes.into_values().collect(),
            series,
        }
    }
}

impl Store {
    /// Keeps a new session (and audits the sign-in).
    pub async fn start_session(&self, s: NewSession) -> Result<(), StoreError> {
        on_backend!(self, b => b.start_session(s).await)
    }

    /// The user of a session that is neither past its absolute end nor idle
    /// for `idle_ms`; its last use is brought forward (at most every
    /// [`TOUCH_EVERY_MS`]).
    pub async fn session(
        &self,
        token_sha256: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Option<SessionUser>, StoreError> {
        on_backend!(self, b => b.session(token_sha256, now_ms, idle_ms).await)
    }

    /// Ends a session (sign-out); nothing when there is none.
    pub async fn end_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        on_backend!(self, b => b.end_session(token_sha256).await)
    }

    /// What waits now (queued, retrying, in flight), by route and system,
    /// with the oldest's arrival: the cheap half of [`Store::activity`].
    pub async fn waiting(&self) -> Result<Vec<WaitingRow>, StoreError> {
        on_backend!(self, b => b.waiting().await)
    }

    /// The dashboard's activity as of `now_ms`.
    pub async fn activity(&self, now_ms: i64) -> Result<Activity, StoreError> {
        let (recent, waiting) = on_backend!(self, b => b.activity(now_ms).await)?;
        Ok(Activity::build(now_ms, recent, waiting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fold_into_routes_hour_day_and_buckets() {
        let now = 100 * BUCKET_MS;
        let r = |route: &str, state: &str, bucket: i64, n: u64| {
            (
                route.to_owned(),
                "erp".to_owned(),
                state.to_owned(),
                bucket,
                n,
            )
        };
        let a = Activity::build(
            now,
            vec![
                r("a", "delivered", 0, 5),
                r("a", "delivered", 47, 2),
                r("a", "dead", 46, 1),
                r("b", "retrying", 47, 3),
                r("b", "bogus", 47, 9),
            ],
            vec![
                ("a".into(), "erp".into(), 4, Some(now - 10)),
                ("c".into(), "erp".into(), 1, Some(now - 99)),
            ],
        );
        assert_eq!(a.series.len(), BUCKETS as usize);
        assert_eq!(a.series[0].start_ms, now - BUCKETS * BUCKET_MS);
        assert_eq!((a.series[0].delivered, a.series[46].failed), (5, 1));
        assert_eq!(a.series[47].delivered, 2);
        let names: Vec<_> = a.routes.iter().map(|r| r.route.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let ra = &a.routes[0];
        assert_eq!((ra.last_day.delivered, ra.last_hour.delivered), (7, 2));
        assert_eq!((ra.last_hour.dead, ra.waiting), (1, 4));
        assert_eq!(ra.oldest_waiting_ms, Some(now - 10));
        assert_eq!(a.routes[1].last_hour.retrying, 3);
        assert_eq!(a.routes[2].oldest_waiting_ms, Some(now - 99));
    }
}
