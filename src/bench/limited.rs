//! `ferry bench --rate-limit R`: how close ferry's pacing comes to a
//! destination's published budget without going over it. The sink is the
//! generic rate-limited sim ([`LimitedSink`]) admitting R requests a second
//! with a burst of `max(1, R/10)`, answering 429 with `Retry-After` when over
//! and IETF `RateLimit` headers always; ferry's sink system is given the same
//! budget (`rate_limit = { per_second = R, burst = .., dialect = "ietf" }`).
//! The load generator sends R × `--seconds` signed webhooks through ferry's
//! ingest as fast as ferry accepts them (far faster than R), the workers
//! deliver meanwhile, and the phase waits until the sink has admitted every
//! accepted message. The figures are read from the sink's own log: the
//! achieved rate is the admitted deliveries after the first over the time
//! from the first to the last (count over span), and beside it the median
//! of the whole seconds' counts; plus the 429s the sink sent.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{BenchArgs, SECRET, load, peak_rss_mb, round, target};
use crate::app::App;
use crate::clock::Clock;
use crate::sim::demo::parse_config;
use crate::sim::platform::limited::{LimitedConfig, LimitedSink};

/// How often the wait looks at the sink's count.
const POLL: Duration = Duration::from_millis(20);

/// What the rate-limited phase measured.
pub(super) struct Report {
    r: u32,
    burst: u32,
    /// Webhooks ferry accepted (2xx at ingest).
    accepted: u64,
    /// Requests the sink admitted (2xx).
    admitted: u64,
    responses_429: u64,
    /// Admitted deliveries after the first, over the first-to-last span.
    achieved_per_s: f64,
    /// The median count of the whole seconds from the first delivery.
    median_per_s: Option<f64>,
    span: Duration,
    /// How long ingest of all the messages took.
    ingest: Duration,
    peak_rss_mb: f64,
}

impl Report {
    fn share(&self) -> f64 {
        self.achieved_per_s / f64::from(self.r)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "rate_limited": {
                "r": self.r,
                "burst": self.burst,
                "achieved_per_s": round(self.achieved_per_s, 1),
                "share_of_r": round(self.share(), 3),
                "median_per_s": self.median_per_s.map(|m| round(m, 1)),
                "responses_429": self.responses_429,
                "accepted": self.accepted,
                "admitted": self.admitted,
                "span_s": round(self.span.as_secs_f64(), 3),
                "ingest_s": round(self.ingest.as_secs_f64(), 3),
            },
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        })
    }

    fn print(&self) {
        println!(
            "ferry bench --rate-limit {}: a sink admitting {} requests/s (burst {}), ferry told the same budget (dialect ietf)",
            self.r, self.r, self.burst
        );
        println!();
        println!(
            "  accepted               {} messages in {:.2} s through ingest",
            self.accepted,
            self.ingest.as_secs_f64()
        );
        println!(
            "  delivered              {} admitted by the sink in {:.2} s from the first to the last",
            self.admitted,
            self.span.as_secs_f64()
        );
        println!(
            "  achieved               {:.1} msg/s = {:.3} of R   (count over span)",
            self.achieved_per_s,
            self.share()
        );
        match self.median_per_s {
            Some(m) => println!("  median whole second    {m:.0} msg/s"),
            None => println!("  median whole second    n/a (under two seconds of delivery)"),
        }
        println!(
            "  429s from the sink     {}   (each a request ferry sent over the budget)",
            self.responses_429
        );
        println!("  peak RSS               {:.1} MB", self.peak_rss_mb);
    }
}

pub(super) async fn run(args: &BenchArgs, r: u32) -> anyhow::Result<()> {
    if r == 0 {
        bail!("--rate-limit must be at least 1 request a second");
    }
    if args.database_url.is_some() || args.instances > 1 {
        bail!("--rate-limit runs one instance on SQLite; drop --database-url and --instances");
    }
    let burst = (r / 10).max(1);
    let messages = u64::from(r) * args.seconds;
    eprintln!(
        "rate-limited delivery: {messages} messages to a sink admitting {r}/s (burst {burst})..."
    );
    let report = measure(args, r, burst, messages).await?;
    if args.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    Ok(())
}

async fn measure(args: &BenchArgs, r: u32, burst: u32, messages: u64) -> anyhow::Result<Report> {
    let dir = tempfile::Builder::new()
        .prefix("ferry-bench-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let sink = LimitedSink::start(
        Clock::System,
        LimitedConfig {
            per_second: f64::from(r),
            burst,
        },
    )
    .await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // ferry is told the sink's budget, as an operator would configure it.
    let limits =
        format!(r#"rate_limit = {{ per_second = {r}, burst = {burst}, dialect = "ietf" }}"#);
    let text = super::bench_config(addr, &sink.url(), args.body_bytes, &limits);
    let lookup = |name: &str| (name == "BENCH_WEBHOOK_SECRET").then(|| SECRET.to_owned());
    let config = parse_config(&text, "bench", dir.path(), &lookup)?;
    let app = App::build(config).await?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(listener, shutdown.clone()));

    let (started, load) = load::run_count(
        target(vec![addr], "/in/bench", args.body_bytes),
        args.connections,
        messages,
    )
    .await;
    let ingest = started.elapsed();
    if load.ok < messages {
        eprintln!(
            "ferry accepted {} of {messages} ({} refused, {} broken connections)",
            load.ok, load.non_2xx, load.transport_errors
        );
    }
    // At R a second the delivery takes `seconds`; allow three times that.
    let give_up = Instant::now() + Duration::from_secs(args.seconds * 3 + 30);
    while sink.counters().ok < load.ok && Instant::now() < give_up {
        tokio::time::sleep(POLL).await;
    }
    shutdown.cancel();
    server
        .await
        .context("ferry panicked")?
        .context("ferry failed")?;
    sink.stop();
    dir.close()
        .context("cannot remove the bench's data directory")?;

    let mut admitted_ms: Vec<i64> = sink
        .seen()
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .map(|s| s.at_ms)
        .collect();
    admitted_ms.sort_unstable();
    let counters = sink.counters();
    let (achieved_per_s, span) = count_over_span(&admitted_ms);
    Ok(Report {
        r,
        burst,
        accepted: load.ok,
        admitted: counters.ok,
        responses_429: counters.throttled,
        achieved_per_s,
        median_per_s: median_whole_second(&admitted_ms),
        span,
        ingest,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Deliveries after the first over the time from the first to the last
/// (sorted times in ms): the mean rate, the opening burst included.
fn count_over_span(sorted_ms: &[i64]) -> (f64, Duration) {
    match (sorted_ms.first(), sorted_ms.last()) {
        (Some(first), Some(last)) if last > first => {
            let span_ms = last - first;
            let n = (sorted_ms.len() - 1) as f64;
            (
                n * 1000.0 / span_ms as f64,
                Duration::from_millis(span_ms as u64),
            )
        }
        _ => (0.0, Duration::ZERO),
    }
}

/// The median of per-second counts over the whole seconds from the first
/// delivery (the last, partial second left out); `None` under two seconds.
fn median_whole_second(sorted_ms: &[i64]) -> Option<f64> {
    let (first, last) = (*sorted_ms.first()?, *sorted_ms.last()?);
    let whole = ((last - first) / 1000) as usize;
    if whole < 2 {
        return None;
    }
    let mut counts = vec![0u64; whole];
    for t in sorted_ms {
        if let Some(c) = counts.get_mut(((t - first) / 1000) as usize) {
            *c += 1;
        }
    }
    counts.sort_unstable();
    let mid = counts.len() / 2;
    Some(match counts.len() % 2 {
        1 => counts[mid] as f64,
        _ => (counts[mid - 1] + counts[mid]) as f64 / 2.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_delivery_times() {
        // 10 a second for 5 s, after a burst of 5 at the start.
        let mut times: Vec<i64> = vec![0; 5];
        times.extend((1..=50).map(|i| i * 100));
        let (rate, span) = count_over_span(&times);
        assert_eq!(span, Duration::from_secs(5));
        assert!((rate - 54.0 / 5.0).abs() < 1e-9);
        assert_eq!(median_whole_second(&times), Some(10.0));
        assert_eq!(median_whole_second(&times[..12]), None);
        assert_eq!(count_over_span(&[7]), (0.0, Duration::ZERO));
    }
}
