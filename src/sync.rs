//! `ferry sync`: the ERP side of a bulk sync, from the command line. It
//! streams an NDJSON file to `POST /api/v1/routes/{route}/bulk` (never held
//! whole in memory) with a progress bar, then follows the job it created
//! until every message is delivered or dead. The upload's `Idempotency-Key`
//! is derived from the file, so running the same command again after an
//! interruption resumes the job instead of doubling it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::io::ReaderStream;

#[derive(clap::Args, Debug, Clone)]
pub struct SyncArgs {
    /// The API route the items go through (its transform, batching and limits).
    #[arg(long)]
    pub route: String,
    /// NDJSON: one JSON message per line.
    pub file: PathBuf,
    /// Where ferry listens.
    #[arg(long, env = "FERRY_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The route's client key (sent as `Authorization: Bearer`).
    #[arg(long, env = "FERRY_API_KEY", hide_env_values = true)]
    pub key: String,
    /// The upload's Idempotency-Key (default: derived from the file's name,
    /// size and modification time).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Upload only; do not follow the job to its end.
    #[arg(long)]
    pub no_follow: bool,
    /// How often the job is looked at while following it.
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
}

/// Uploads and follows; the exit code is 0 when every line was delivered,
/// 1 when a line was refused or a message ended dead.
pub async fn run(args: SyncArgs) -> anyhow::Result<i32> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let meta = file.metadata().await?;
    let key = match &args.idempotency_key {
        Some(k) => k.clone(),
        None => derived_key(&args.file, &meta),
    };
    let bar = ProgressBar::new(meta.len()).with_style(
        ProgressStyle::with_template("upload   {bar:40} {bytes}/{total_bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let counted = bar.clone();
    let stream = futures_util::StreamExt::inspect(ReaderStream::new(file), move |chunk| {
        if let Ok(c) = chunk {
            counted.inc(c.len() as u64);
        }
    });
    let http = reqwest::Client::new();
    let base = args.url.trim_end_matches('/');
    let resp = http
        .post(format!("{base}/api/v1/routes/{}/bulk", args.route))
        .bearer_auth(&args.key)
        .header("idempotency-key", &key)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .with_context(|| format!("cannot reach ferry at {base}"))?;
    bar.finish();
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = answer["detail"].as_str().unwrap_or("no detail");
        bail!("ferry refused the upload ({status}): {detail}");
    }
    println!(
        "job {}: {} lines, {} accepted, {} already there, {} refused",
        answer["job"].as_str().unwrap_or("?"),
        answer["lines"],
        answer["accepted"],
        answer["duplicates"],
        answer["rejected"]
    );
    for e in answer["errors"].as_array().into_iter().flatten().take(10) {
        println!(
            "  line {}: {}",
            e["line"],
            e["error"].as_str().unwrap_or("")
        );
    }
    let rejected = answer["rejected"].as_u64().unwrap_or(0);
    if args.no_follow {
        return Ok(i32::from(rejected > 0));
    }
    let status_url = format!("{base}{}", answer["status"].as_str().unwrap_or_default());
    let view = follow(&http, &status_url, &args).await?;
    let m = &view["messages"];
    let (delivered, dead) = (
        m["delivered"].as_u64().unwrap_or(0),
        m["dead"].as_u64().unwrap_or(0),
    );
    println!("done: {delivered} delivered, {dead} dead, {rejected} lines refused");
    if dead > 0 {
        println!(
            "see why: ferry messages list --state dead --route {}",
            args.route
        );
    }
    Ok(i32::from(dead > 0 || rejected > 0))
}

/// Polls the job until it is done, showing its messages' progress.
async fn follow(http: &reqwest::Client, url: &str, args: &SyncArgs) -> anyhow::Result<Value> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("deliver  {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let view: Value = http
            .get(url)
            .bearer_auth(&args.key)
            .send()
            .await
            .with_context(|| format!("cannot reach ferry at {url}"))?
            .error_for_status()?
            .json()
            .await?;
        let m = &view["messages"];
        let n = |k: &str| m[k].as_u64().unwrap_or(0);
        let total: u64 = [
            "queued",
            "delivering",
            "retrying",
            "delivered",
            "dead",
            "discarded",
        ]
        .iter()
        .map(|k| n(k))
        .sum();
        bar.set_length(total);
        bar.set_position(n("delivered") + n("dead") + n("discarded"));
        bar.set_message(format!("(retrying {}, dead {})", n("retrying"), n("dead")));
        if view["done"] == true {
            bar.finish();
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    }
}

fn derived_key(path: &std::path::Path, meta: &std::fs::Metadata) -> String {
    let mut h = Sha256::new();
    h.update(path.to_string_lossy().as_bytes());
    h.update(meta.len().to_le_bytes());
    if let Ok(t) = meta.modified()
        && let Ok(d) = t.duration_since(std::time::UNIX_EPOCH)
    {
        h.update(d.as_nanos().to_le_bytes());
    }
    format!("sync-{}", hex::encode(&h.finalize()[..12]))
}
