//! `ferry bench`: measures ferry against a bare HTTP server in one process and
//! one run, since on these machines only ratios taken together mean anything
//! (DESIGN.md, "Performance targets"). Phase 1 hammers a bare axum server that
//! answers 202; phase 2 hammers ferry (fresh SQLite store in a temp dir, one
//! Standard Webhooks route) with the same [`load`] generator while its workers
//! are off: that is durable ingest alone, the figure DESIGN.md compares with
//! the bare server. Phase 3 does the same on another fresh store with the
//! workers delivering to a local sink, then waits for the sink to receive
//! every accepted message: ingest and delivery together on the same two
//! cores. Phase 4 repeats phase 3 with a jq body mapping on the route
//! ([`MAPPING`], run on jq's pool for every delivery), so the mapping's
//! cost reads as a ratio of two figures from the same run. It reports requests/s of each phase, the ingest ratio, ack latency,
//! end-to-end deliveries/s, the backlog left and the process's peak RSS.
//! With `--rate-limit R` it runs only a delivery phase against a sink that
//! enforces R requests a second ([`limited`]). With `--console` it measures
//! the operators' console instead, over real HTTP on a store seeded with a
//! week of messages ([`console`], [`seed`]).

mod console;
mod limited;
mod load;
mod phase;
mod seed;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::sim::demo::init_quiet_logs;
use load::{BodyTemplate, Load, Target};
use phase::ferry_phase;

/// The webhook secret of the bench route (`whsec_` + base64 of 24 bytes).
const SECRET: &str = "whsec_ZmVycnktYmVuY2gtd2ViaG9vay1rZXktMDE=";

/// The body mapping of phase 4: a typical reshaping (rename, nest, a
/// computed field, `$now`) that leaves the bulk of the body as it came.
pub const MAPPING: &str = r#"{
  event: {kind: .type, id: .id},
  payload: {pad: .pad, pad_length: (.pad | length)},
  mapped_at: $now
}"#;

/// ferry's config for phase 2: one webhook route into one local sink, dedupe
/// by `webhook-id` (the default), everything else at its default unless
/// `{sink_extra}` adds lines to the sink system (the rate-limited mode).
const BENCH_TOML: &str = r#"
[server]
listen = "{listen}"
data_dir = "data"

[credentials]
bench_webhook = { env = "BENCH_WEBHOOK_SECRET" }

[systems.sink]
base_url = "{sink_url}"
# The ingest phase queues all it takes (workers off): above the default limit.
max_queue = 1000000000
{sink_extra}

[routes.bench]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["bench_webhook"], max_body = "{max_body}" }
destination = { system = "sink", method = "POST", path = "/events" }
{transform}
"#;

/// [`BENCH_TOML`] filled in, with room for bodies of `body_bytes`.
fn bench_config(
    listen: std::net::SocketAddr,
    sink_url: &str,
    body_bytes: usize,
    sink_extra: &str,
) -> String {
    let max_body_kib = (body_bytes / 1024 + 1).max(1024);
    BENCH_TOML
        .replace("{listen}", &listen.to_string())
        .replace("{sink_url}", sink_url)
        .replace("{sink_extra}", sink_extra)
        .replace("{transform}", "")
        .replace("{max_body}", &format!("{max_body_kib}KiB"))
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Length of each timed phase, in seconds. The default, 30, spans fifteen
    /// janitor rounds and several WAL checkpoints, so their stalls show in
    /// the p99.9 and max columns; shorter phases hide them.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Size of each request body in bytes (at least 59).
    #[arg(long, default_value_t = 1024)]
    pub body_bytes: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep ferry's temporary data directory or PostgreSQL schema (printed).
    #[arg(long)]
    pub keep: bool,
    /// Run ferry on PostgreSQL (a scratch schema in this database, dropped
    /// afterwards) instead of SQLite.
    #[arg(long, env = "FERRY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// ferry instances sharing the store, the load spread over them
    /// round-robin (more than one needs --database-url).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Instead of the three phases, deliver R × --seconds messages to a
    /// sink admitting R requests a second (429 over it), ferry told the
    /// same budget; reports the rate achieved and the 429s.
    #[arg(long, value_name = "R")]
    pub rate_limit: Option<u32>,
    /// Before ferry's phases, store N live dedupe keys (expiring in a day)
    /// on the bench route, to measure ingest with a large dedupe table.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preload_keys: u64,
    /// Instead of the load phases, time the console's pages (and the JSON
    /// failure groups) over HTTP on a store seeded with --messages shaped
    /// like a week of traffic; reports median, p95 and max per page.
    #[arg(long)]
    pub console: bool,
    /// Messages to seed for --console.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub messages: u64,
    /// Timed fetches of each page for --console (after two warm-ups).
    #[arg(long, value_name = "R", default_value_t = 20)]
    pub runs: usize,
}

/// Phase 2's figures beyond the load generator's.
struct Delivery {
    /// What --keep kept: a data directory or a PostgreSQL schema.
    kept: Option<String>,
    /// Messages in state `delivered` after the drain.
    delivered: u64,
    /// Requests the sink answered (more than `delivered` means a redelivery).
    sink_received: u64,
    /// From the first send to the last delivery seen.
    span: Duration,
    /// Accepted but not yet at the sink when the load stopped.
    queued_at_ingest_end: u64,
    /// Still queued or retrying once ferry stopped after the drain.
    backlog: u64,
}

impl Delivery {
    fn per_s(&self) -> f64 {
        self.delivered as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.seconds == 0 || args.instances == 0 {
        bail!("--connections, --seconds and --instances must be at least 1");
    }
    if args.instances > 1 && args.database_url.is_none() {
        bail!("--instances above 1 needs --database-url: one SQLite file serves one instance");
    }
    init_quiet_logs();
    if args.console {
        return console::run(&args).await;
    }
    if let Some(r) = args.rate_limit {
        return limited::run(&args, r).await;
    }
    let phase = Duration::from_secs(args.seconds);
    eprintln!(
        "phase 1/4: bare axum server, {} connections, {} s...",
        args.connections, args.seconds
    );
    let bare = bare_phase(&args, phase).await?;
    eprintln!(
        "phase 2/4: ferry durable ingest (workers off), {} connections, {} s...",
        args.connections, args.seconds
    );
    let (ingest, _) = ferry_phase(&args, phase, None).await?;
    eprintln!(
        "phase 3/4: ferry ingest + delivery, {} connections, {} s...",
        args.connections, args.seconds
    );
    let (combined, delivery) = ferry_phase(&args, phase, Some(false)).await?;
    eprintln!(
        "phase 4/4: ferry ingest + delivery with a jq body mapping, {} connections, {} s...",
        args.connections, args.seconds
    );
    let (mapped, mapped_delivery) = ferry_phase(&args, phase, Some(true)).await?;
    let report = Report {
        delivery: delivery.expect("phase 3 delivers"),
        mapped_delivery: mapped_delivery.expect("phase 4 delivers"),
        mapped,
        peak_rss_mb: peak_rss_mb(),
        body_bytes: BodyTemplate::new(args.body_bytes).len(),
        bare,
        ingest,
        combined,
    };
    if args.json {
        println!("{}", report.json(&args));
    } else {
        print_table(&args, &report);
    }
    Ok(())
}

/// Everything one run measured.
struct Report {
    bare: Load,
    ingest: Load,
    combined: Load,
    delivery: Delivery,
    /// Phase 4: the same as phase 3 with a jq body mapping.
    mapped: Load,
    mapped_delivery: Delivery,
    peak_rss_mb: f64,
    body_bytes: usize,
}

impl Report {
    /// Durable ingest alone as a share of the bare server.
    fn ratio(&self) -> f64 {
        self.ingest.rps() / self.bare.rps().max(1e-9)
    }

    fn json(&self, args: &BenchArgs) -> serde_json::Value {
        let (bare, ingest, combined, d) =
            (&self.bare, &self.ingest, &self.combined, &self.delivery);
        serde_json::json!({
            "bare_rps": round(bare.rps(), 0),
            "ingest_rps": round(ingest.rps(), 0),
            "ratio": round(self.ratio(), 3),
            "ack_p50_ms": round(ingest.latency_ms(0.50), 3),
            "ack_p99_ms": round(ingest.latency_ms(0.99), 3),
            "ack_p999_ms": round(ingest.latency_ms(0.999), 3),
            "ack_max_ms": round(ingest.latency_ms(1.0), 3),
            "combined_ingest_rps": round(combined.rps(), 0),
            "combined_ack_p99_ms": round(combined.latency_ms(0.99), 3),
            "combined_ack_p999_ms": round(combined.latency_ms(0.999), 3),
            "combined_ack_max_ms": round(combined.latency_ms(1.0), 3),
            "delivered_per_s": round(d.per_s(), 0),
            "mapped_ingest_rps": round(self.mapped.rps(), 0),
            "mapped_delivered_per_s": round(self.mapped_delivery.per_s(), 0),
            "mapped_vs_passthrough": round(self.mapped_delivery.per_s() / d.per_s().max(1e-9), 3),
            "mapped_backlog": self.mapped_delivery.backlog,
            "backlog": d.backlog,
            "errors": ingest.non_2xx + ingest.transport_errors + combined.non_2xx + combined.transport_errors
                + self.mapped.non_2xx + self.mapped.transport_errors,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "store": if args.database_url.is_some() { "postgres" } else { "sqlite" },
            "instances": args.instances,
            "connections": args.connections,
            "seconds": args.seconds,
            "body_bytes": self.body_bytes,
            "bare_p50_ms": round(bare.latency_ms(0.50), 3),
            "bare_p99_ms": round(bare.latency_ms(0.99), 3),
            "bare_max_ms": round(bare.latency_ms(1.0), 3),
            "bare_errors": bare.non_2xx + bare.transport_errors,
            "accepted": ingest.ok,
            "combined_accepted": combined.ok,
            "delivered": d.delivered,
            "sink_received": d.sink_received,
            "queued_at_ingest_end": d.queued_at_ingest_end,
        })
    }
}

/// A bench run's fresh store: a temporary data directory, and with
/// `--database-url` a scratch PostgreSQL schema in it (its URL and name).
async fn fresh_store(
    args: &BenchArgs,
    prefix: &str,
) -> anyhow::Result<(tempfile::TempDir, Option<(String, String)>)> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let schema = match &args.database_url {
        Some(url) => Some(
            crate::store::postgres::scratch_schema(url, "ferry_bench")
                .await
                .context("cannot make a scratch schema for the bench")?,
        ),
        None => None,
    };
    Ok((dir, schema))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn target(addrs: Vec<std::net::SocketAddr>, path: &'static str, body_bytes: usize) -> Arc<Target> {
    Arc::new(Target {
        addrs,
        path,
        secret: SECRET.to_owned(),
        body: BodyTemplate::new(body_bytes),
    })
}

/// Phase 1: a bare axum server that reads the body and answers 202.
async fn bare_phase(args: &BenchArgs, phase: Duration) -> anyhow::Result<Load> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/in/x",
        post(|body: Bytes| async move {
            drop(body);
            StatusCode::ACCEPTED
        }),
    );
    let stop = CancellationToken::new();
    let signal = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(signal.cancelled_owned())
            .await
    });
    let (_, load) = load::run(
        target(vec![addr], "/in/x", args.body_bytes),
        args.connections,
        phase,
    )
    .await;
    stop.cancel();
    server
        .await
        .context("the bare server panicked")?
        .context("the bare server failed")?;
    Ok(load)
}

/// The process's peak resident set (`VmHWM`), in MB; 0 where unavailable.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn print_table(args: &BenchArgs, r: &Report) {
    let (bare, ingest, combined, d) = (&r.bare, &r.ingest, &r.combined, &r.delivery);
    let (body_bytes, ratio, peak_rss_mb) = (r.body_bytes, r.ratio(), r.peak_rss_mb);
    println!(
        "ferry bench: {} on {}, {} connections, {} s per phase, {body_bytes}-byte bodies",
        match args.instances {
            1 => "one instance".to_owned(),
            n => format!("{n} instances"),
        },
        if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.connections,
        args.seconds
    );
    println!(
        "(one process: the load generator signs every request the Standard Webhooks way in every phase; ferry answers 202 only after COMMIT)"
    );
    println!();
    println!(
        "  {:<30} {:>10} {:>10} {:>8} {:>7} {:>8} {:>8} {:>9} {:>8}",
        "phase", "requests/s", "2xx", "non-2xx", "broken", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for (name, l) in [
        ("bare axum server (202)", bare),
        ("ferry ingest, workers off", ingest),
        ("ferry ingest + delivery", combined),
        ("ingest + delivery, jq mapping", &r.mapped),
    ] {
        println!(
            "  {:<30} {:>10.0} {:>10} {:>8} {:>7} {:>8.2} {:>8.2} {:>9.2} {:>8.2}",
            name,
            l.rps(),
            l.ok,
            l.non_2xx,
            l.transport_errors,
            l.latency_ms(0.50),
            l.latency_ms(0.99),
            l.latency_ms(0.999),
            l.latency_ms(1.0)
        );
    }
    println!();
    println!(
        "  ratio ingest / bare    {ratio:.3}   (durable ingest alone; target >= 0.5, floor 0.3)"
    );
    println!(
        "  delivered end to end   {:.0} msg/s   ({} of {} accepted in {:.1} s from the first send; sink received {})",
        d.per_s(),
        d.delivered,
        combined.ok,
        d.span.as_secs_f64(),
        d.sink_received
    );
    let m = &r.mapped_delivery;
    println!(
        "  delivered, jq mapping  {:.0} msg/s   ({:.3} of passthrough; {} of {} accepted in {:.1} s)",
        m.per_s(),
        m.per_s() / d.per_s().max(1e-9),
        m.delivered,
        r.mapped.ok,
        m.span.as_secs_f64()
    );
    println!(
        "  backlog                {}   (not yet at the sink when the load stopped: {})",
        if d.backlog == 0 {
            "none".to_owned()
        } else {
            format!(
                "{} messages still pending when the bench stopped",
                d.backlog
            )
        },
        d.queued_at_ingest_end
    );
    println!(
        "  peak RSS               {peak_rss_mb:.1} MB   (whole process: servers, load generator, sink)"
    );
    if let Some(kept) = &d.kept {
        println!("  kept                   {kept}");
    }
}
