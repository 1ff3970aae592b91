//! The application: `App::build(config)` wires the store, the connector and the
//! workers; `run(listener, shutdown)` serves HTTP (ingest, admin, health,
//! metrics) and runs the delivery workers and the janitor until `shutdown` is
//! cancelled. `main`, `ferry demo`, `ferry bench` and every test start ferry
//! the same way.

use std::sync::Arc;
use std::time::Duration;

use crate::model::Wake;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use std::path::Path;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::Config;
use crate::connect::ConnectError;
use crate::deliver::Deliverer;
use crate::ingest::{Ingest, IngestState};
use crate::problem::Problem;
use crate::reload::{Reloads, Trigger};
pub use crate::state::{AppState, Shared};
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;
pub use reloader::Reloader;

mod reloader;
use crate::vault::Vault;

/// How often the janitor refreshes gauges and prunes keys.
const JANITOR_EVERY: Duration = Duration::from_secs(2);
/// Every this many rounds (30 s), a queue past its cap is counted in full
/// for the gauge.
const FULL_COUNT_EVERY: u64 = 15;
/// How often the WAL is copied back: often enough that the backfill keeps up
/// with the writer and the WAL can restart from its beginning.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the HTTP server failed")]
    Serve(#[from] std::io::Error),
    #[error("cannot watch the configuration's folder")]
    Watch(#[from] notify::Error),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

pub struct App {
    state: AppState,
    ingest: IngestState,
    deliverer: Arc<Deliverer>,
    /// What asks for a reload, once `reload_from` named the config file.
    triggers: Option<mpsc::Receiver<Trigger>>,
    /// Watches the config's folder while the app runs.
    watcher: Option<notify::RecommendedWatcher>,
}

impl App {
    /// Opens the configured store on the system clock: PostgreSQL when
    /// `database_url` is set (shared with other instances), else SQLite in
    /// `data_dir` (exclusively: one server per file).
    pub async fn build(config: Config) -> Result<App, AppError> {
        let store = match &config.server.database_url {
            Some(url) => Store::open_postgres(url.expose_secret()).await?,
            None => Store::open_sqlite_exclusive(&config.server.data_dir, Clock::System.now_ms())?,
        };
        let key = crate::vault::MasterKey::from_env(&crate::config::process_env);
        let vault = Vault::open(&config, store.clone(), Clock::System, key).await?;
        App::with_vault(config, store, Clock::System, Arc::new(vault))
    }

    /// The app over a store, with no credential from the encrypted store.
    pub fn with_parts(config: Config, store: Store, clock: Clock) -> Result<App, AppError> {
        App::with_vault(config, store, clock, Arc::new(Vault::none()))
    }

    /// The app with the credential store's view `vault` (`Vault::open`).
    pub fn with_vault(
        config: Config,
        store: Store,
        clock: Clock,
        vault: Arc<Vault>,
    ) -> Result<App, AppError> {
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let wake = Wake::default();
        let deliverer = Arc::new(Deliverer::new(
            store.clone(),
            config.clone(),
            clock.clone(),
            metrics.clone(),
            wake.clone(),
            vault.clone(),
        )?);
        store.wake_on_remote_work(wake.clone());
        let state = Arc::new(Shared {
            config: tokio::sync::watch::Sender::new(config),
            reloads: Default::default(),
            shadows: deliverer.shadows(),
            store,
            clock,
            metrics,
            wake,
            breakers: deliverer.breakers(),
            quotas: deliverer.quotas(),
            concurrency: deliverer.concurrency(),
            holds: deliverer.holds(),
            vault,
            sign_ins: Default::default(),
            rounds: Default::default(),
        });
        let ingest = Arc::new(Ingest::new(state.clone()));
        Ok(App {
            state,
            ingest,
            deliverer,
            triggers: None,
            watcher: None,
        })
    }

    /// Reloads the configuration from `file` when a file in its folder
    /// changes, when the content poll sees new content, and on each
    /// [`Trigger`] sent to the returned sender (SIGHUP). Starts with `run`.
    pub fn reload_from(&mut self, file: &Path) -> Result<mpsc::Sender<Trigger>, AppError> {
        let reloads = Reloads::new(file, &self.state.config(), self.state.clock.now_ms());
        let _ = self.state.reloads.set(Arc::new(reloads));
        let (tx, rx) = mpsc::channel(1);
        let data_dir = self.state.config().server.data_dir.clone();
        self.watcher = Some(crate::reload::watch(file, &data_dir, tx.clone())?);
        self.triggers = Some(rx);
        Ok(tx)
    }

    /// What applies a reload (tests call it directly).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            state: self.state.clone(),
            deliverer: self.deliverer.clone(),
        }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Ingest's handlers' state: the shared parts and the edge's guards.
    pub fn ingest(&self) -> &IngestState {
        &self.ingest
    }

    /// The workers, for tests that drive delivery step by step.
    pub fn deliverer(&self) -> Arc<Deliverer> {
        self.deliverer.clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .merge(crate::ingest::router(self.ingest.clone()))
            .merge(crate::admin::router(self.state.clone()))
            .merge(crate::console::router())
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.state.clone())
    }

    /// Serves HTTP, runs the workers and the janitor; returns after `shutdown`
    /// once in-flight requests and attempts have finished.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), AppError> {
        let mut app = self;
        let workers = tokio::spawn(app.deliverer.clone().run(shutdown.clone()));
        // Alerts are looked for where deliveries run (a test that steps
        // the workers by hand calls the watcher by hand too).
        let watcher = crate::alert::watch::Watcher::new(app.state.clock.now_ms());
        let alerts = tokio::spawn(watcher.run(app.state.clone(), shutdown.clone()));
        let reloads = app
            .triggers
            .take()
            .map(|triggers| tokio::spawn(app.reloader().run(triggers, shutdown.clone())));
        app.serve(listener, shutdown).await?;
        let _ = workers.await;
        let _ = alerts.await;
        if let Some(r) = reloads {
            let _ = r.await;
        }
        drop(app.watcher.take());
        Ok(())
    }

    /// Serves HTTP and runs the janitor, without delivery workers.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), AppError> {
        let janitor = tokio::spawn(janitor(self.ingest.clone(), shutdown.clone()));
        let vault = tokio::spawn(self.state.vault.clone().run(shutdown.clone()));
        let limits = crate::server::Limits::from_config(&self.state.config());
        tracing::info!(
            max_connections = limits.max_connections,
            "Serving HTTP (server.max_connections; the rest wait in the listen backlog)."
        );
        crate::server::serve(
            listener,
            self.router(),
            limits,
            self.state.metrics.clone(),
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        let _ = janitor.await;
        let _ = vault.await;
        Ok(())
    }
}

async fn readyz(State(app): State<AppState>) -> Result<&'static str, Problem> {
    app.store.ping().await.map(|_| "ready").map_err(|e| {
        let why = crate::model::Chain(&e);
        Problem::unavailable(format!("the store does not answer: {why}"), 5)
    })
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// Periodic upkeep: queue-depth gauges, expired keys, WAL checkpoints.
async fn janitor(app: IngestState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_upkeep = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = app.store.maintain().await {
            tracing::warn!(error = %crate::model::Chain(&e), "Store maintenance (checkpoint) failed.");
        }
        if last_upkeep.elapsed() < JANITOR_EVERY {
            continue;
        }
        last_upkeep = std::time::Instant::now();
        upkeep(&app).await;
    }
}

/// The janitor's slower round: queue-depth gauges and back-pressure (every
/// configured route, 0 once drained), expired dedupe and idempotency keys,
/// and finished messages past `[retention]`. Each count is bounded and each
/// deletion goes in chunks, so ingest keeps flowing meanwhile.
pub async fn upkeep(app: &Ingest) {
    let round = app
        .rounds
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let config = app.config();
    let mut saturated = false;
    for (name, system) in &config.systems {
        let cap = system.max_queue.saturating_add(1);
        match app.store.queue_depth_capped(name, cap).await {
            Ok(depths) => {
                let total: u64 = depths.iter().map(|d| d.depth).sum();
                app.backlog.set(name, total);
                if total >= cap {
                    // Past the cap the gauge keeps its last full count.
                    saturated = true;
                    continue;
                }
                for (route, r) in &config.routes {
                    if &r.destination.system == name {
                        let depth = depths.iter().find(|d| &d.route == route);
                        app.metrics
                            .set_queue_depth(route, depth.map_or(0, |d| d.depth));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %crate::model::Chain(&e), system = %name, "Reading queue depth failed.")
            }
        }
    }
    if saturated && round.is_multiple_of(FULL_COUNT_EVERY) {
        full_count(app, &config).await;
    }
    let now = app.clock.now_ms();
    match app.store.prune(now).await {
        Ok(p) => {
            app.metrics
                .housekeeping_deleted("dedupe_key", p.dedupe_keys);
            app.metrics
                .housekeeping_deleted("idempotency_key", p.idempotency_keys);
            app.metrics.housekeeping_deleted("session", p.sessions);
            tracing::debug!(
                dedupe_keys = p.dedupe_keys,
                idempotency_keys = p.idempotency_keys,
                sessions = p.sessions,
                "Pruned expired keys."
            );
        }
        Err(e) => tracing::warn!(error = %crate::model::Chain(&e), "Pruning expired keys failed."),
    }
    match app
        .store
        .purge(crate::store::Cutoffs::of(&config.retention, now))
        .await
    {
        Ok(p) => {
            app.metrics.housekeeping_deleted("message", p.messages);
            app.metrics.housekeeping_deleted("attempt", p.attempts);
            app.metrics.housekeeping_deleted("job", p.jobs);
            tracing::debug!(
                messages = p.messages,
                attempts = p.attempts,
                jobs = p.jobs,
                "Deleted finished messages past their retention."
            );
        }
        Err(e) => {
            tracing::warn!(error = %crate::model::Chain(&e), "Deleting messages past retention failed.")
        }
    }
}

/// Counts every queue in full, for the gauges of systems past their cap.
async fn full_count(app: &Shared, config: &Config) {
    match app.store.queue_depth().await {
        Ok(depths) => {
            for name in config.routes.keys() {
                let depth = depths
                    .iter()
                    .filter(|d| &d.route == name)
                    .map(|d| d.depth)
                    .sum();
                app.metrics.set_queue_depth(name, depth);
            }
        }
        Err(e) => tracing::warn!(error = %crate::model::Chain(&e), "Reading queue depth failed."),
    }
}
