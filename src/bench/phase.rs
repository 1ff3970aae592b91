//! Phases 2 and 3 of `ferry bench`: ferry itself, on a fresh store, with
//! its workers off (durable ingest alone) or delivering to a local sink
//! (ingest and delivery together), then the drain and the clean-up.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::load::{self, Load};
use super::{BenchArgs, Delivery, SECRET, bench_config, target};
use crate::app::App;
use crate::sim::demo::parse_config;
use crate::sim::receiver::Receiver;
use crate::store::postgres::drop_scratch_schema;

/// How long the sink may take to receive every accepted message.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// How often the drain looks at the sink's count.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Phases 2 to 4: ferry on a fresh store. With `deliver` (`Some(mapped)`),
/// its workers send to a local sink (through the bench's jq body mapping
/// when `mapped`) and, after the load, the phase waits for the sink to
/// have every accepted message (or [`DRAIN_LIMIT`]); without, the workers
/// are off and the accepted messages stay queued.
pub(super) async fn ferry_phase(
    args: &BenchArgs,
    phase: Duration,
    deliver: Option<bool>,
) -> anyhow::Result<(Load, Option<Delivery>)> {
    let mapped = deliver == Some(true);
    let deliver = deliver.is_some();
    let (dir, schema) = super::fresh_store(args, "ferry-bench-").await?;
    let sink = Receiver::start().await?;
    sink.forget_requests();
    let shutdown = CancellationToken::new();
    let (mut addrs, mut servers, mut store) = (Vec::new(), Vec::new(), None);
    let url = schema.as_ref().map(|(url, _)| url.as_str());
    for (listener, app) in instances(args, dir.path(), url, &sink.url(), mapped).await? {
        addrs.push(listener.local_addr()?);
        store.get_or_insert_with(|| app.state().store.clone());
        let shutdown = shutdown.clone();
        servers.push(tokio::spawn(async move {
            match deliver {
                true => app.run(listener, shutdown).await,
                false => app.serve(listener, shutdown).await,
            }
        }));
    }
    let store = store.context("no ferry instance started")?;
    if args.preload_keys > 0 {
        preload(&store, args.preload_keys).await?;
    }

    let (started, load) = load::run(
        target(addrs, "/in/bench", args.body_bytes),
        args.connections,
        phase,
    )
    .await;
    let (seen, last_delivery, queued_at_ingest_end) = match deliver {
        true => drain(&sink, load.ok).await,
        false => (0, Instant::now(), 0),
    };
    // Stopping lets in-flight attempts finish and be recorded, so an answered
    // delivery is not counted as pending below.
    shutdown.cancel();
    for server in servers {
        server
            .await
            .context("ferry panicked")?
            .context("ferry failed")?;
    }
    sink.stop();
    let stats = match deliver {
        true => store
            .stats()
            .await
            .context("cannot read the queue's state")?,
        false => Vec::new(),
    };
    drop(store);
    let kept = clean_up(args, dir, schema).await?;
    if !deliver {
        return Ok((load, None));
    }
    let delivery = Delivery {
        kept,
        delivered: stats.iter().map(|s| s.delivered).sum(),
        sink_received: seen,
        span: last_delivery.duration_since(started),
        queued_at_ingest_end,
        backlog: stats.iter().map(|s| s.pending()).sum(),
    };
    Ok((load, Some(delivery)))
}

/// `args.instances` ferry instances on one store (the scratch schema at
/// `database_url`, else SQLite in `dir`), each with its listener.
async fn instances(
    args: &BenchArgs,
    dir: &std::path::Path,
    database_url: Option<&str>,
    sink_url: &str,
    mapped: bool,
) -> anyhow::Result<Vec<(TcpListener, App)>> {
    if mapped {
        std::fs::write(dir.join("bench.jq"), super::MAPPING)
            .context("cannot write the bench's mapping file")?;
    }
    let lookup = |name: &str| (name == "BENCH_WEBHOOK_SECRET").then(|| SECRET.to_owned());
    let mut out = Vec::new();
    for _ in 0..args.instances {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut text = bench_config(listener.local_addr()?, sink_url, args.body_bytes, "");
        if mapped {
            text.push_str("transform = \"bench.jq\"\n");
        }
        if let Some(url) = database_url {
            text = text.replace(
                "[credentials]",
                &format!("database_url = \"{url}\"\n\n[credentials]"),
            );
        }
        let config = parse_config(&text, "bench", dir, &lookup)?;
        out.push((listener, App::build(config).await?));
    }
    Ok(out)
}

/// Adds `n` live dedupe keys to the bench route, timed.
async fn preload(store: &crate::store::Store, n: u64) -> anyhow::Result<()> {
    let expires_ms = crate::clock::Clock::System.now_ms() + 86_400_000;
    let started = Instant::now();
    store
        .preload_dedupe("bench", n, expires_ms)
        .await
        .context("cannot preload dedupe keys")?;
    eprintln!(
        "preloaded {n} live dedupe keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until the sink has all `accepted` messages (or [`DRAIN_LIMIT`]):
/// how many it got, when the last came, and how many were still queued
/// when the load ended.
async fn drain(sink: &Receiver, accepted: u64) -> (u64, Instant, u64) {
    let at_end = sink.count();
    let queued_at_ingest_end = accepted.saturating_sub(at_end);
    if queued_at_ingest_end > 0 {
        eprintln!("draining: {queued_at_ingest_end} accepted messages not yet at the sink...");
    }
    let (mut seen, mut last_delivery) = (at_end, Instant::now());
    let give_up = Instant::now() + DRAIN_LIMIT;
    while seen < accepted && Instant::now() < give_up {
        tokio::time::sleep(DRAIN_POLL).await;
        let n = sink.count();
        if n != seen {
            (seen, last_delivery) = (n, Instant::now());
        }
    }
    (seen, last_delivery, queued_at_ingest_end)
}

/// Removes the phase's data directory and scratch schema, or says where
/// they were kept (`--keep`).
pub(super) async fn clean_up(
    args: &BenchArgs,
    dir: tempfile::TempDir,
    schema: Option<(String, String)>,
) -> anyhow::Result<Option<String>> {
    Ok(match (args.keep, schema) {
        (true, Some((_, name))) => Some(format!("PostgreSQL schema {name}")),
        (true, None) => Some(dir.keep().display().to_string()),
        (false, schema) => {
            if let (Some((_, name)), Some(url)) = (schema, &args.database_url) {
                drop_scratch_schema(url, &name)
                    .await
                    .context("cannot drop the bench's schema")?;
            }
            dir.close()
                .context("cannot remove the bench's data directory")?;
            None
        }
    })
}
