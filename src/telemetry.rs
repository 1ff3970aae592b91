//! Telemetry: structured logs (pretty or JSON, `RUST_LOG` filter) and the
//! Prometheus metrics every stage feeds — ingest counts received, duplicates and
//! rejects; deliver counts delivered, retried and dead; the janitor sets queue
//! depth; the jq pool counts the threads it gave up on (process-wide, like
//! the pool). One registry per app (no global), so tests running several apps in
//! one process see their own numbers. Served at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::LogFormat;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    received: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    replays: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    delivered: Family<Labels, Counter>,
    skipped: Family<Labels, Counter>,
    shadow_compared: Family<Labels, Counter>,
    shadow_differences: Family<Labels, Counter>,
    config_reloads: Family<Labels, Counter>,
    retried: Family<Labels, Counter>,
    dead: Family<Labels, Counter>,
    queue_depth: Family<Labels, Gauge>,
    circuit: Family<Labels, Gauge>,
    circuit_changes: Family<Labels, Counter>,
    concurrency_limit: Family<Labels, Gauge>,
    housekeeping: Family<Labels, Counter>,
    /// HTTP connections being served, and the cap (`server.max_connections`).
    pub http_connections: Gauge,
    pub http_connections_max: Gauge,
    /// Failed `accept` calls (out of file descriptors, mostly).
    pub accept_errors: Counter,
    /// Bytes of unverified webhook bodies buffered now.
    pub unverified_bytes: Gauge,
    hold_until: Family<Labels, Gauge>,
    alerts: AlertMetrics,
}

/// The alerts' counts, and when each route last received a message.
#[derive(Default)]
struct AlertMetrics {
    sent: Family<Labels, Counter>,
    suppressed: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    /// Seconds since the epoch, with milliseconds.
    last_received: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

fn route(r: &str) -> Labels {
    vec![("route", r.to_owned())]
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry");
        let m = Metrics {
            received: Family::default(),
            duplicates: Family::default(),
            replays: Family::default(),
            rejected: Family::default(),
            delivered: Family::default(),
            skipped: Family::default(),
            shadow_compared: Family::default(),
            shadow_differences: Family::default(),
            config_reloads: Family::default(),
            retried: Family::default(),
            dead: Family::default(),
            queue_depth: Family::default(),
            circuit: Family::default(),
            circuit_changes: Family::default(),
            concurrency_limit: Family::default(),
            housekeeping: Family::default(),
            http_connections: Gauge::default(),
            http_connections_max: Gauge::default(),
            accept_errors: Counter::default(),
            unverified_bytes: Gauge::default(),
            hold_until: Family::default(),
            alerts: AlertMetrics::default(),
            registry: Registry::default(),
        };
        m.register_ingest(&mut registry);
        m.register_delivery(&mut registry);
        m.register_upkeep(&mut registry);
        m.register_alerts(&mut registry);
        Metrics { registry, ..m }
    }

    fn register_alerts(&self, r: &mut Registry) {
        let a = &self.alerts;
        r.register(
            "alerts_sent",
            "Alerts written for delivery, by channel and event",
            a.sent.clone(),
        );
        r.register(
            "alerts_suppressed",
            "Changes of a firing condition held back by a channel's repeat_every",
            a.suppressed.clone(),
        );
        r.register(
            "alerts_failed",
            "Alerts a channel never took (dead messages of its route)",
            a.failed.clone(),
        );
        r.register(
            "route_last_received_timestamp_seconds",
            "When each route last accepted a message (Unix seconds), for silence alerts elsewhere",
            a.last_received.clone(),
        );
    }

    pub fn alert_sent(&self, channel: &str, event: &str) {
        self.alerts
            .sent
            .get_or_create(&vec![
                ("channel", channel.to_owned()),
                ("event", event.to_owned()),
            ])
            .inc();
    }
    pub fn alert_suppressed(&self, channel: &str, n: u64) {
        self.alerts
            .suppressed
            .get_or_create(&vec![("channel", channel.to_owned())])
            .inc_by(n);
    }
    /// When `route` last accepted a message (ms), as this instance saw it.
    pub fn last_received_ms(&self, route: &str) -> Option<i64> {
        let labels = self::route(route);
        let v = self.alerts.last_received.get(&labels)?.get();
        Some((v * 1000.0).round() as i64)
    }

    /// What ingest accepted, absorbed and refused.
    fn register_ingest(&self, r: &mut Registry) {
        r.register(
            "received",
            "Messages accepted and committed",
            self.received.clone(),
        );
        r.register(
            "duplicates",
            "Webhooks absorbed as duplicates of an earlier event",
            self.duplicates.clone(),
        );
        r.register(
            "idempotent_replays",
            "ERP API requests answered from a stored response",
            self.replays.clone(),
        );
        r.register(
            "rejected",
            "Inbound requests refused (bad signature, too large, malformed)",
            self.rejected.clone(),
        );
    }

    /// How delivery goes: verdicts, queues, breakers, limits and holds.
    fn register_delivery(&self, r: &mut Registry) {
        r.register(
            "delivered",
            "Messages delivered to their destination",
            self.delivered.clone(),
        );
        r.register(
            "skipped",
            "Messages their route's mapping gave nothing to send for",
            self.skipped.clone(),
        );
        r.register(
            "shadow_compared",
            "Deliveries whose next API version's mapping ran beside the live one (shadow mode)",
            self.shadow_compared.clone(),
        );
        r.register(
            "shadow_differences",
            "Shadow runs whose output differed from the live mapping's",
            self.shadow_differences.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads, by result (applied, refused, unchanged)",
            self.config_reloads.clone(),
        );
        r.register(
            "retried",
            "Delivery attempts that failed and were scheduled again",
            self.retried.clone(),
        );
        r.register(
            "dead",
            "Messages that ended dead (permanent error or retry budget spent)",
            self.dead.clone(),
        );
        r.register(
            "queue_depth",
            "Messages waiting for delivery (queued, retrying or in flight)",
            self.queue_depth.clone(),
        );
        r.register(
            "circuit_state",
            "Each system's circuit breaker: 1 on the current state (closed, open, half_open)",
            self.circuit.clone(),
        );
        r.register(
            "circuit_changes",
            "Circuit breaker state changes, by the state entered",
            self.circuit_changes.clone(),
        );
        r.register(
            "concurrency_limit",
            "Each system's in-flight request limit (moves with rate_limit.adaptive)",
            self.concurrency_limit.clone(),
        );
        r.register(
            "hold_until_seconds",
            "Until when (Unix seconds) a platform's Retry-After or rate-limit headers hold each system; 0 or past: no hold",
            self.hold_until.clone(),
        );
    }

    /// The HTTP edge, the janitor and the jq pool.
    fn register_upkeep(&self, r: &mut Registry) {
        r.register(
            "jq_stuck",
            "jq threads given up on: a program spun past its deadline inside one step (the pool started another)",
            crate::transform::pool::global().stuck(),
        );
        r.register(
            "housekeeping_deleted",
            "Rows the janitor deleted: expired dedupe and idempotency keys, messages, attempts and jobs past retention",
            self.housekeeping.clone(),
        );
        r.register(
            "http_connections",
            "HTTP connections being served",
            self.http_connections.clone(),
        );
        r.register(
            "http_connections_max",
            "HTTP connections served at most at once (server.max_connections)",
            self.http_connections_max.clone(),
        );
        r.register(
            "accept_errors",
            "Failed accepts of HTTP connections (out of file descriptors, mostly)",
            self.accept_errors.clone(),
        );
        r.register(
            "unverified_bytes",
            "Bytes of webhook bodies buffered before their signature was checked",
            self.unverified_bytes.clone(),
        );
    }

    pub fn received(&self, r: &str, now_ms: i64) {
        let labels = route(r);
        self.received.get_or_create(&labels).inc();
        self.alerts
            .last_received
            .get_or_create(&labels)
            .set(now_ms as f64 / 1000.0);
    }
    pub fn duplicate(&self, r: &str) {
        self.duplicates.get_or_create(&route(r)).inc();
    }
    pub fn replay(&self, r: &str) {
        self.replays.get_or_create(&route(r)).inc();
    }
    pub fn rejected(&self, r: &str, reason: &'static str) {
        self.rejected
            .get_or_create(&vec![
                ("route", r.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }
    pub fn delivered(&self, r: &str) {
        self.delivered.get_or_create(&route(r)).inc();
    }
    pub fn skipped(&self, r: &str) {
        self.skipped.get_or_create(&route(r)).inc();
    }
    /// A shadow comparison on route `r`; `differed` when the outputs did.
    pub fn shadow(&self, r: &str, differed: bool) {
        self.shadow_compared.get_or_create(&route(r)).inc();
        if differed {
            self.shadow_differences.get_or_create(&route(r)).inc();
        }
    }
    pub fn config_reload(&self, result: &str) {
        self.config_reloads
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }
    pub fn retried(&self, r: &str, class: &str) {
        self.retried
            .get_or_create(&vec![("route", r.to_owned()), ("class", class.to_owned())])
            .inc();
    }
    pub fn dead(&self, r: &str, class: &str) {
        if let Some(channel) = r.strip_prefix(crate::config::alerts::PREFIX) {
            self.alerts
                .failed
                .get_or_create(&vec![("channel", channel.to_owned())])
                .inc();
        }
        self.dead
            .get_or_create(&vec![("route", r.to_owned()), ("class", class.to_owned())])
            .inc();
    }
    /// The janitor deleted `n` rows of `kind` (dedupe_key, idempotency_key,
    /// message, attempt, job).
    pub fn housekeeping_deleted(&self, kind: &'static str, n: u64) {
        self.housekeeping
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc_by(n);
    }

    pub fn set_queue_depth(&self, r: &str, depth: u64) {
        self.queue_depth.get_or_create(&route(r)).set(depth as i64);
    }

    /// A system's breaker starts closed (so the gauge exists before any change).
    pub fn circuit_init(&self, system: &str) {
        self.set_circuit(system, "closed");
    }

    /// A system's breaker entered `state`.
    pub fn circuit(&self, system: &str, state: &'static str) {
        self.set_circuit(system, state);
        self.circuit_changes
            .get_or_create(&vec![
                ("system", system.to_owned()),
                ("state", state.to_owned()),
            ])
            .inc();
    }

    fn set_circuit(&self, system: &str, state: &str) {
        for s in ["closed", "open", "half_open"] {
            self.circuit
                .get_or_create(&vec![
                    ("system", system.to_owned()),
                    ("state", s.to_owned()),
                ])
                .set(i64::from(s == state));
        }
    }

    /// The Prometheus text exposition.
    /// A system's in-flight limit: `max_concurrency`, or where its adaptive
    /// controller has it now.
    pub fn concurrency_limit(&self, system: &str, limit: usize) {
        self.concurrency_limit
            .get_or_create(&vec![("system", system.to_owned())])
            .set(limit as i64);
    }

    /// A platform's hold on `system` until `until_ms` (already capped).
    pub fn hold_until(&self, system: &str, until_ms: i64) {
        self.hold_until
            .get_or_create(&vec![("system", system.to_owned())])
            .set(until_ms.div_euclid(1000));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Installs the global log subscriber (call once, from `main`).
pub fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
