//! `ferry bench --console`: how fast the operators' console answers at
//! size. Starts ferry (the real `App`, real HTTP on 127.0.0.1:0, workers
//! off, so every figure is a read) on a fresh store (SQLite in a temporary
//! directory, or a scratch schema of `--database-url`), fills it with
//! `--messages` shaped like a real week ([`seed`]), signs in as a console
//! user through `POST /console/login`, then fetches each page [`WARMUP`]
//! times and `--runs` times more, timing each from the request to the last
//! byte of the answer: the dashboard, the failure groups, the largest
//! group's page, the message list (first page, dead ones, a text search
//! for the tail of one message's id, the page behind the first page's
//! "Older" link) and one dead message with five attempts; and, for
//! comparison, the admin API's JSON failure groups. The table gives each
//! page's median, p95 and max against DESIGN.md's 100 ms target; no
//! verdict fails the run (the machines are noisy), but any answer other
//! than 200 does.
//!
//! On PostgreSQL the seeded tables are vacuumed and analysed before the
//! measurements, as autovacuum would have done in a week of that traffic
//! (the bench must not time autovacuum at work); SQLite is measured as
//! ferry leaves it (no statistics: ferry never runs ANALYZE).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::BenchArgs;
use super::phase::clean_up;
use super::seed::{self, MAX_ATTEMPTS, ROUTES};
use crate::app::App;
use crate::clock::Clock;
use crate::model::ErrorClass;
use crate::sim::demo::parse_config;
use crate::store::{Account, AccountKind, GroupFilter, Role, RouteStats, Store};

/// Fetches of each page before the timed ones.
const WARMUP: usize = 2;
/// DESIGN.md's and the issue's target for a console page.
const TARGET_MS: f64 = 100.0;
/// The bench user's name and password.
const USER: &str = "bench";
const PASSWORD: &str = "bench-console-password";
/// The admin token of the bench's config (the JSON API's comparison row).
const ADMIN_TOKEN: &str = "bench-admin-token";

/// One page's figures.
struct Page {
    name: &'static str,
    path: String,
    /// The status of every fetch, if all were the same; else the first
    /// that differed from 200.
    status: u16,
    bytes: usize,
    /// The timed fetches, sorted.
    ms: Vec<f64>,
}

impl Page {
    /// Nearest-rank percentile.
    fn pct(&self, p: f64) -> f64 {
        let n = self.ms.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        self.ms[rank - 1]
    }

    fn median(&self) -> f64 {
        self.pct(0.5)
    }

    fn verdict(&self) -> &'static str {
        match (self.median() < TARGET_MS, self.pct(0.95) < TARGET_MS) {
            (true, true) => "ok",
            (true, false) => "ok, p95 over",
            _ => "SLOW",
        }
    }
}

/// The bench's config: the five routes of [`ROUTES`] over three systems
/// that are never called (the workers are off), retention long enough that
/// the janitor deletes nothing while the bench runs.
fn config_text(listen: std::net::SocketAddr, database_url: Option<&str>) -> String {
    let mut t = format!(
        r#"
[server]
listen = "{listen}"
data_dir = "data"
admin_token = {{ env = "BENCH_ADMIN_TOKEN" }}
{}

[retention]
delivered = "30d"
dead = "30d"

[credentials]
shopify_webhook = {{ env = "BENCH_SECRET" }}
stripe_webhook = {{ env = "BENCH_SECRET" }}
erp_client = {{ env = "BENCH_SECRET" }}
erp_token = {{ env = "BENCH_SECRET" }}
shopify_token = {{ env = "BENCH_SECRET" }}
hubspot_token = {{ env = "BENCH_SECRET" }}
"#,
        database_url.map_or(String::new(), |u| format!("database_url = \"{u}\""))
    );
    for system in ["erp", "shopify", "hubspot"] {
        t.push_str(&format!(
            r#"
[systems.{system}]
base_url = "https://{system}.example.com"
auth = {{ kind = "bearer", credential = "{system}_token" }}
timeout = "10s"
retry = {{ max_attempts = {MAX_ATTEMPTS}, initial_delay = "1s", max_delay = "5m", max_age = "24h" }}
"#
        ));
    }
    for r in &ROUTES {
        let source = match r.webhook {
            Some(scheme) => format!(
                r#"{{ kind = "webhook", scheme = "{scheme}", credentials = ["{scheme}_webhook"] }}"#
            ),
            None => r#"{ kind = "api", credentials = ["erp_client"] }"#.to_owned(),
        };
        t.push_str(&format!(
            r#"
[routes.{}]
source = {source}
destination = {{ system = "{}", method = "{}", path = "{}" }}
"#,
            r.name, r.system, r.method, r.path
        ));
    }
    t
}

pub(super) async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.messages < 100 || args.runs == 0 {
        bail!("--messages must be at least 100 and --runs at least 1");
    }
    let (dir, schema) = super::fresh_store(args, "ferry-bench-console-").await?;
    let backend = match schema {
        Some(_) => "PostgreSQL",
        None => "SQLite",
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let text = config_text(
        listener.local_addr()?,
        schema.as_ref().map(|(u, _)| u.as_str()),
    );
    let lookup = |name: &str| match name {
        "BENCH_ADMIN_TOKEN" => Some(ADMIN_TOKEN.to_owned()),
        "BENCH_SECRET" => Some("whsec_ZmVycnktYmVuY2gtd2ViaG9vay1rZXktMDE=".to_owned()),
        _ => None,
    };
    let config = parse_config(&text, "bench", dir.path(), &lookup)?;
    let app = App::build(config).await?;
    let store = app.state().store.clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move { app.serve(listener, stop).await });

    let measured = async {
        eprintln!("seeding {} messages on {backend}...", args.messages);
        let now = Clock::System.now_ms();
        let seeded = seed::seed(&store, args.messages, now).await?;
        let settle = settle(&store, schema.as_ref().map(|(u, _)| u.as_str())).await?;
        eprintln!(
            "seeded in {:.1} s (then {:.1} s to settle); measuring...",
            seeded.took.as_secs_f64(),
            settle.as_secs_f64()
        );
        let stats = store.stats().await?;
        let pages = measure(&store, &base, &seeded.probe_id, args.runs).await?;
        anyhow::Ok((seeded, settle, stats, pages))
    }
    .await;
    shutdown.cancel();
    server
        .await
        .context("ferry panicked")?
        .context("ferry failed")?;
    drop(store);
    let kept = clean_up(args, dir, schema).await?;
    let (seeded, settle, stats, pages) = measured?;
    let report = Report {
        backend,
        messages: args.messages,
        runs: args.runs,
        seed: seeded.took,
        settle,
        stats,
        pages,
        kept,
    };
    match args.json {
        true => println!("{}", report.json()),
        false => report.print(),
    }
    if let Some(p) = report.pages.iter().find(|p| p.status != 200) {
        bail!("{} ({}) answered {}", p.name, p.path, p.status);
    }
    Ok(())
}

/// What production would have done to the freshly written store: SQLite's
/// WAL checkpointed (the janitor's job), PostgreSQL's tables vacuumed and
/// analysed (autovacuum's).
async fn settle(store: &Store, schema_url: Option<&str>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    store.maintain().await?;
    if let Some(url) = schema_url {
        let target = crate::store::postgres::parse_url(url).map_err(anyhow::Error::msg)?;
        let (client, connection) = target.config.connect(target.tls).await?;
        let conn = tokio::spawn(connection);
        client
            .batch_execute(
                "VACUUM ANALYZE deliveries, messages, attempts, dedupe, idempotency, audit, failure_group_status",
            )
            .await
            .context("VACUUM ANALYZE of the bench's schema")?;
        drop(client);
        let _ = conn.await;
    }
    Ok(started.elapsed())
}

/// Signs in and times every page.
async fn measure(
    store: &Store,
    base: &str,
    probe_id: &str,
    runs: usize,
) -> anyhow::Result<Vec<Page>> {
    let phc = crate::access::password::hash(PASSWORD)
        .map_err(|e| anyhow::anyhow!("cannot hash the bench user's password: {e}"))?;
    let account = Account {
        name: USER.into(),
        role: Role::Operator,
        created_ms: Clock::System.now_ms(),
        created_by: "bench".into(),
    };
    store.add_account(AccountKind::User, account, &phc).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = login(&client, base).await?;

    // The largest group, and a dead message with every attempt made.
    let groups = store.failure_groups(&GroupFilter::default()).await?;
    let largest = groups
        .iter()
        .max_by_key(|g| g.count)
        .context("the seeded store has no failure group")?;
    let message = groups
        .iter()
        .find(|g| g.class == Some(ErrorClass::Timeout))
        .unwrap_or(largest)
        .samples
        .first()
        .context("a failure group without samples")?
        .clone();
    let fragment = &probe_id[probe_id.len().saturating_sub(12)..];

    let get = |path: String, bearer: bool| {
        let mut req = client.get(format!("{base}{path}"));
        req = match bearer {
            true => req.bearer_auth(ADMIN_TOKEN),
            false => req.header(reqwest::header::COOKIE, &cookie),
        };
        req
    };
    let first = get("/console/messages".into(), false)
        .send()
        .await?
        .text()
        .await?;
    let older = older_link(&first).context("the first message page has no \"Older\" link")?;
    let plan: Vec<(&'static str, String, bool)> = vec![
        ("dashboard", "/console".into(), false),
        ("failure groups", "/console/failures".into(), false),
        (
            "failure group (largest)",
            format!("/console/failures/{}", largest.key),
            false,
        ),
        ("messages, first page", "/console/messages".into(), false),
        (
            "messages, dead",
            "/console/messages?state=dead".into(),
            false,
        ),
        (
            "messages, text search",
            format!("/console/messages?q={fragment}"),
            false,
        ),
        ("messages, older page", older, false),
        (
            "message (5 attempts)",
            format!("/console/messages/{message}"),
            false,
        ),
        (
            "JSON /admin/api/v1/failures",
            "/admin/api/v1/failures".into(),
            true,
        ),
    ];
    let mut pages = Vec::new();
    for (name, path, bearer) in plan {
        let mut page = Page {
            name,
            path: path.clone(),
            status: 200,
            bytes: 0,
            ms: Vec::with_capacity(runs),
        };
        for run in 0..WARMUP + runs {
            let started = Instant::now();
            let r = get(path.clone(), bearer).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if status != StatusCode::OK && page.status == 200 {
                page.status = status.as_u16();
            }
            if run >= WARMUP {
                page.ms.push(ms);
                page.bytes = body.len();
            }
        }
        page.ms.sort_by(f64::total_cmp);
        pages.push(page);
    }
    Ok(pages)
}

/// Signs in as the console does (a same-origin form POST) and returns the
/// session cookie (`name=value`).
async fn login(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let r = client
        .post(format!("{base}/console/login"))
        .header(reqwest::header::ORIGIN, base)
        .form(&[
            ("username", USER),
            ("password", PASSWORD),
            ("next", "/console"),
        ])
        .send()
        .await?;
    if r.status() != StatusCode::SEE_OTHER {
        bail!("signing in answered {}", r.status());
    }
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(crate::console::session::COOKIE))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("signing in set no session cookie")
}

/// The href of the list's `id="older"` link, unescaped.
fn older_link(page: &str) -> Option<String> {
    let at = page.find(r#"id="older""#)?;
    let before = &page[..at];
    let start = before.rfind(r#"href=""#)? + 6;
    let end = start + before[start..].find('"')?;
    Some(before[start..end].replace("&amp;", "&"))
}

struct Report {
    backend: &'static str,
    messages: u64,
    runs: usize,
    seed: Duration,
    settle: Duration,
    stats: Vec<RouteStats>,
    pages: Vec<Page>,
    kept: Option<String>,
}

impl Report {
    fn totals(&self) -> RouteStats {
        let mut t = RouteStats::default();
        for s in &self.stats {
            for (state, n) in [
                (crate::model::State::Queued, s.queued),
                (crate::model::State::Delivering, s.delivering),
                (crate::model::State::Retrying, s.retrying),
                (crate::model::State::Delivered, s.delivered),
                (crate::model::State::Dead, s.dead),
                (crate::model::State::Discarded, s.discarded),
                (crate::model::State::Skipped, s.skipped),
                (crate::model::State::Superseded, s.superseded),
            ] {
                t.add(state, n);
            }
        }
        t
    }

    fn print(&self) {
        let t = self.totals();
        println!(
            "ferry bench --console: {} with {} messages over {} routes, {} timed runs per page after {WARMUP} warm-ups",
            self.backend,
            self.messages,
            self.stats.len(),
            self.runs
        );
        println!(
            "  seeded in {:.1} s through the store's methods, then {:.1} s to settle ({})",
            self.seed.as_secs_f64(),
            self.settle.as_secs_f64(),
            match self.backend {
                "SQLite" => "WAL checkpoint",
                _ => "VACUUM ANALYZE",
            }
        );
        println!(
            "  store: {} delivered, {} dead, {} discarded, {} retrying, {} queued",
            t.delivered, t.dead, t.discarded, t.retrying, t.queued
        );
        println!();
        println!(
            "  {:<28} {:>6} {:>10} {:>8} {:>8} {:>8}  {:<13} path",
            "page", "status", "median ms", "p95 ms", "max ms", "bytes", "< 100 ms"
        );
        for p in &self.pages {
            println!(
                "  {:<28} {:>6} {:>10.1} {:>8.1} {:>8.1} {:>8}  {:<13} {}",
                p.name,
                p.status,
                p.median(),
                p.pct(0.95),
                p.pct(1.0),
                p.bytes,
                p.verdict(),
                p.path
            );
        }
        if let Some(kept) = &self.kept {
            println!();
            println!("  kept {kept}");
        }
    }

    fn json(&self) -> serde_json::Value {
        let t = self.totals();
        let r = |x: f64| (x * 100.0).round() / 100.0;
        serde_json::json!({
            "console": {
                "store": self.backend,
                "messages": self.messages,
                "runs": self.runs,
                "seed_s": r(self.seed.as_secs_f64()),
                "settle_s": r(self.settle.as_secs_f64()),
                "states": t,
                "pages": self.pages.iter().map(|p| serde_json::json!({
                    "page": p.name,
                    "path": p.path,
                    "status": p.status,
                    "median_ms": r(p.median()),
                    "p95_ms": r(p.pct(0.95)),
                    "max_ms": r(p.pct(1.0)),
                    "bytes": p.bytes,
                    "verdict": p.verdict(),
                })).collect::<Vec<_>>(),
                "kept": self.kept,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_link_is_found_and_unescaped() {
        let page =
            r#"<a href="/console/messages?state=dead&amp;before=0190-ab" id="older">Older</a>"#;
        assert_eq!(
            older_link(page).as_deref(),
            Some("/console/messages?state=dead&before=0190-ab")
        );
        assert_eq!(older_link("<p>no link</p>"), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Page {
            name: "x",
            path: String::new(),
            status: 200,
            bytes: 0,
            ms: (1..=20).map(f64::from).collect(),
        };
        assert_eq!((p.median(), p.pct(0.95), p.pct(1.0)), (10.0, 19.0, 20.0));
    }
}
