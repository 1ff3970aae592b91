//! The PostgreSQL backend, for scale-out: any number of `ferry serve` instances
//! share one database. Accepts are group-committed by a batcher per instance
//! (`batch.rs`: one pipelined transaction per batch, 2xx only after COMMIT);
//! uniqueness of dedupe and idempotency keys is the primary keys' job, so two
//! instances that receive the same webhook at the same moment still make one
//! message. Workers claim with `FOR UPDATE SKIP LOCKED` and a lease
//! (`write.rs`); every commit that makes work due sends `NOTIFY ferry_work`,
//! and each instance `LISTEN`s so its idle workers wake at once (`listen`).

mod accept;
mod accounts;
mod alerts;
mod batch;
mod console;
mod credentials;
mod edit;
mod embed;
mod failures;
pub use credentials::AdvisoryLock;
mod housekeeping;
mod jobs;
mod operate;
mod read;
pub mod tls;
mod write;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::StoreError;

/// Schema versions in order; `ferry_schema` records the last one applied.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("v2.sql"),
    include_str!("v3.sql"),
    include_str!("v4.sql"),
    include_str!("v5.sql"),
    include_str!("v6.sql"),
    include_str!("v7.sql"),
    include_str!("v8.sql"),
    include_str!("v9.sql"),
    include_str!("v10.sql"),
    include_str!("v11.sql"),
    include_str!("v12.sql"),
    include_str!("v13.sql"),
    include_str!("v14.sql"),
    include_str!("v15.sql"),
];
/// The channel every instance listens on for new or re-queued work.
/// The schema version this ferry migrates PostgreSQL to.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;
const WORK_CHANNEL: &str = "ferry_work";
/// Connections per instance: committers, workers' claims and records, admin reads.
const POOL_SIZE: usize = 16;

#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    target: tls::Target,
    /// The group-commit queue (accepts and attempt records).
    batch: mpsc::UnboundedSender<batch::Pending>,
    /// Stops the batcher and the listener when the last handle goes.
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Checks a `postgres://` URL without connecting and builds its TLS
/// connector.
pub fn parse_url(url: &str) -> Result<tls::Target, String> {
    tls::target(url)
}

impl PgStore {
    /// Connects, runs the migrations (serialised across instances by an
    /// advisory lock) and starts this instance's accept batcher.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let target = parse_url(url).map_err(StoreError::Config)?;
        let manager = Manager::from_config(
            target.config.clone(),
            target.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()?;
        migrate(&pool).await?;
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(batch::run(pool.clone(), rx, stop.clone()));
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                target,
                batch: tx,
                stop,
            }),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.inner.pool.get().await?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Whether this instance's connections to the database are encrypted,
    /// as the server sees them (for `check-store` and the TLS tests).
    pub async fn encrypted(&self) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        match row {
            Some(r) => Ok(r.try_get::<_, bool>(0)?),
            None => Ok(false),
        }
    }

    /// Wakes `wake` whenever any instance commits due work, until the store is
    /// dropped. A lost connection is re-made after a second; meanwhile the
    /// workers' own idle poll keeps them going.
    pub fn listen(&self, wake: crate::model::Wake) {
        let target = self.inner.target.clone();
        let stop = self.inner.stop.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Err(e) = listen_once(&target, &wake, &stop).await {
                    tracing::warn!(error = %crate::model::Chain(&e), "Lost the PostgreSQL notification connection; reconnecting in a second.");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => {}
                }
            }
        });
    }
}

async fn listen_once(
    target: &tls::Target,
    wake: &crate::model::Wake,
    stop: &CancellationToken,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = target.config.connect(target.tls.clone()).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let sql = format!("LISTEN {WORK_CHANNEL}");
    let listen = client.batch_execute(&sql);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done?;
                listening = true;
                // Work may have been committed while we were not listening.
                wake.notify();
            }
            m = messages.next() => match m {
                Some(Ok(AsyncMessage::Notification(_))) => wake.notify(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtext('ferry-migrate'));
         CREATE TABLE IF NOT EXISTS ferry_schema (version INTEGER NOT NULL);",
    )
    .await?;
    let version: Option<i32> = match tx
        .query_opt("SELECT max(version) FROM ferry_schema", &[])
        .await?
    {
        Some(r) => r.try_get(0)?,
        None => None,
    };
    let version = version.unwrap_or(0);
    let latest = MIGRATIONS.len() as i32;
    if version > latest {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this ferry ({latest}); upgrade ferry"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO ferry_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A fresh, empty schema in the database `url` names, for a test or a bench
/// run that must not see anyone else's rows; returns the URL that selects it
/// (as `search_path`) and its name, for [`drop_scratch_schema`].
pub async fn scratch_schema(url: &str, prefix: &str) -> Result<(String, String), StoreError> {
    let target = parse_url(url).map_err(StoreError::Config)?;
    let name = format!(
        "{prefix}_{}",
        uuid::Uuid::now_v7()
            .simple()
            .to_string()
            .get(20..)
            .unwrap_or("0")
    );
    let (client, connection) = target.config.connect(target.tls).await?;
    let conn = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
        .await?;
    drop(client);
    let _ = conn.await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok((format!("{url}{sep}options=-csearch_path%3D{name}"), name))
}

/// Drops a schema made by [`scratch_schema`], with everything in it.
pub async fn drop_scratch_schema(url: &str, name: &str) -> Result<(), StoreError> {
    let target = parse_url(url).map_err(StoreError::Config)?;
    let (client, connection) = target.config.connect(target.tls).await?;
    let conn = tokio::spawn(connection);
    // Instances still running on the schema (a janitor, a worker) can
    // deadlock with the DROP; PostgreSQL aborts one side, so try again.
    let drop_sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
    let mut tries = 0;
    loop {
        match client.batch_execute(&drop_sql).await {
            Ok(()) => break,
            Err(e)
                if tries < 5
                    && e.code()
                        == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}
