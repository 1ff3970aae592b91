//! The store: the durable heart of the flow. `ingest` hands it a verified message
//! (`accept`: message, dedupe key, idempotency record and delivery row committed
//! in one fsynced transaction before any 2xx); `deliver` workers `claim` due
//! deliveries and `record` each attempt's verdict; `admin`, the console and the
//! CLI read (`list`, `message`, `stats`) and act (`retry`, `discard`,
//! `release_key`) through the same methods; the janitor `prune`s expired
//! keys and `purge`s finished messages past their retention. Every
//! housekeeping and bulk write runs in chunks of [`CHUNK`] rows, each its own
//! short transaction, so accepts interleave between chunks instead of waiting
//! behind one long write.
//!
//! The store is an enum over its backends, each a folder of plain SQL: SQLite
//! (embedded, the default) and PostgreSQL (scale-out: many instances, one
//! database). Every method keeps one meaning across backends, defended by the
//! contract test in `tests/it/store_contract/`.

/// Calls the same method on whichever backend this store is.
macro_rules! on_backend {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

mod alerts;
mod audit;
mod console;
mod credentials;
mod embed;
mod failures;
pub mod health;
mod ids;
mod model;
pub mod postgres;
mod release;
mod rules;
pub mod sqlite;

pub use alerts::*;
pub use audit::*;
pub use console::*;
pub use credentials::*;
pub use embed::*;
pub use failures::*;
pub use model::*;
pub use rules::*;

use std::path::Path;

/// Rows per housekeeping or bulk-operation transaction.
pub const CHUNK: usize = 500;
/// Chunks per janitor round and kind (prune, purge): at most 20k rows a
/// round; what is left waits for the next round, 2 s later.
const ROUND_CHUNKS: usize = 40;

/// Errors at the store boundary. They keep their source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot prepare the data directory {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("another `ferry serve` is already using {0}")]
    Locked(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The reason a group commit failed, shared by every caller in the
    /// batch: one error value cannot be handed to each, so its text is.
    #[error("the transaction could not be committed: {0}")]
    Commit(String),
    #[error("a background store task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Unusable(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("a stored JSON value")]
    Json(#[from] serde_json::Error),
    #[error("PostgreSQL")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no PostgreSQL connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("no PostgreSQL connection pool")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("no PostgreSQL connection: {0}")]
    Timeout(&'static str),
    #[error("database_url: {0}")]
    Config(String),
}

/// How long `/readyz` waits for the store's answer.
pub const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// One durable store; cheap to clone (handles are shared).
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens (creating and migrating if needed) the SQLite store in `data_dir`.
    pub fn open_sqlite(data_dir: &Path) -> Result<Store, StoreError> {
        Ok(Store::Sqlite(sqlite::SqliteStore::open(data_dir)?))
    }

    /// Opens the SQLite store for `ferry serve`: exclusive, and in-flight
    /// deliveries of a stopped predecessor are due again at once.
    pub fn open_sqlite_exclusive(data_dir: &Path, now_ms: i64) -> Result<Store, StoreError> {
        Ok(Store::Sqlite(sqlite::SqliteStore::open_exclusive(
            data_dir, now_ms,
        )?))
    }

    /// The store a config names, for a command that runs beside a server (the
    /// CLI): PostgreSQL, or SQLite without the server's lock. Runs migrations.
    pub async fn open(server: &crate::config::Server) -> Result<Store, StoreError> {
        use secrecy::ExposeSecret;
        match &server.database_url {
            Some(url) => Store::open_postgres(url.expose_secret()).await,
            None => Store::open_sqlite(&server.data_dir),
        }
    }

    /// Which backend this is, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Connects to PostgreSQL and runs its migrations (`database_url`).
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Ok(Store::Postgres(postgres::PgStore::open(url).await?))
    }

    /// Has `wake` signalled whenever work becomes due on another instance
    /// (PostgreSQL `LISTEN`); a single SQLite server wakes its own workers.
    pub fn wake_on_remote_work(&self, wake: crate::model::Wake) {
        if let Store::Postgres(s) = self {
            s.listen(wake);
        }
    }

    /// Commits a new message with its dedupe key, idempotency record and
    /// delivery row in one transaction (group-committed, fsynced); returns only
    /// once durable.
    pub async fn accept(&self, msg: NewMessage) -> Result<Accepted, StoreError> {
        on_backend!(self, s => s.accept(msg).await)
    }

    /// Leases up to `limit` due deliveries toward `system` until
    /// `now_ms + lease_ms`, oldest due first.
    pub async fn claim(
        &self,
        system: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        on_backend!(self, s => s.claim(system, now_ms, lease_ms, limit).await)
    }

    /// Hands a leased delivery back unattempted, due at `due_ms` (its send
    /// time did not fit the request budget). False when the lease was lost.
    pub async fn defer(
        &self,
        delivery_id: i64,
        lease_until: i64,
        due_ms: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.defer(delivery_id, lease_until, due_ms).await)
    }

    /// Reserves send times for up to `want` requests against the budget
    /// `key` (see `deliver::pace`), atomically across every instance.
    pub async fn reserve(
        &self,
        key: &str,
        now_ms: i64,
        rate: crate::limits::pace::Rate,
        want: u32,
        horizon_ms: i64,
    ) -> Result<crate::limits::pace::Grant, StoreError> {
        on_backend!(self, s => s.reserve(key, now_ms.saturating_mul(1000), rate, want, horizon_ms.saturating_mul(1000)).await)
    }

    /// Records one attempt and moves the delivery on (delivered, retrying, dead).
    /// Returns false when the lease had already been lost (the record is dropped).
    pub async fn record(&self, rec: AttemptRecord) -> Result<bool, StoreError> {
        let mut rec = rec;
        if rec.next != Next::Dead {
            // Only a dead delivery belongs to a failure group.
            rec.failure_group = None;
        }
        on_backend!(self, s => s.record(rec).await)
    }

    /// A platform said "nothing before `until_ms`": the budget `key` grants
    /// no send time earlier, on any instance.
    pub async fn hold(
        &self,
        key: &str,
        until_ms: i64,
        rate: crate::limits::pace::Rate,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.hold(key, until_ms.saturating_mul(1000), rate).await)
    }

    /// Bounds what waits toward `system` (budget `budget`) to `cap_ms`:
    /// deliveries due later are due then, and a stored hold ends then.
    /// Returns how many deliveries were pulled in.
    pub async fn bound_waits(
        &self,
        system: &str,
        budget: &str,
        cap_ms: i64,
        rate: crate::limits::pace::Rate,
    ) -> Result<u64, StoreError> {
        let cap_tat_us = crate::limits::pace::held(None, cap_ms.saturating_mul(1000), rate);
        on_backend!(self, s => s.bound_waits(system, budget, cap_ms, cap_tat_us).await)
    }

    /// Takes the probe slot of a half-open circuit breaker for `interval_ms`:
    /// `None` when this caller may send the one probe, or until when another
    /// instance's probe holds it.
    pub async fn probe(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        on_backend!(self, s => s.probe(key, now_ms, interval_ms).await)
    }

    /// The earliest `next_attempt_ms` of any pending delivery toward `system`.
    pub async fn next_due(&self, system: &str) -> Result<Option<i64>, StoreError> {
        on_backend!(self, s => s.next_due(system).await)
    }

    pub async fn list(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>, StoreError> {
        on_backend!(self, s => s.list(filter).await)
    }

    /// The failure groups of dead deliveries, latest first.
    pub async fn failure_groups(&self, f: &GroupFilter) -> Result<Vec<FailureGroup>, StoreError> {
        let mut groups = on_backend!(self, s => s.failure_groups(f, None).await)?;
        groups.retain(|g| f.status.is_none_or(|s| g.status == s));
        Ok(groups)
    }

    /// Sets a failure group's status (open, acknowledged, resolved) with the
    /// operator's note, audited as `group_status`.
    pub async fn set_group_status(&self, key: &str, mark: StatusMark) -> Result<(), StoreError> {
        on_backend!(self, s => s.set_group_status(key, mark).await)
    }

    /// One failure group; `None` when no dead delivery is in it.
    pub async fn failure_group(&self, key: &str) -> Result<Option<FailureGroup>, StoreError> {
        let all = GroupFilter::default();
        let found = on_backend!(self, s => s.failure_groups(&all, Some(key)).await)?;
        Ok(found.into_iter().next())
    }

    pub async fn message(&self, id: &str) -> Result<Option<MessageDetail>, StoreError> {
        on_backend!(self, s => s.message(id).await)
    }

    /// Requeues the matching deliveries now, with a fresh retry budget and the
    /// same downstream idempotency key; with `dry_run` only counts them.
    pub async fn retry(
        &self,
        sel: Selection,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        match sel {
            Selection::One(id) => {
                on_backend!(self, s => s.retry_one(id, actor, now_ms, dry_run).await)
            }
            Selection::Filter(f) => {
                self.bulk(f, BulkAction::Retry, actor, now_ms, dry_run)
                    .await
            }
        }
    }

    /// Discards every delivery the filter selects (`dead` unless it names
    /// `retrying` or `queued`), in chunks, with the operator's reason; with
    /// `dry_run` only counts them.
    pub async fn discard_matching(
        &self,
        filter: MessageFilter,
        reason: &str,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let action = BulkAction::Discard {
            reason: reason.to_owned(),
        };
        self.bulk(filter, action, actor, now_ms, dry_run).await
    }

    /// A bulk action on what the filter selects, once the rules have
    /// settled the state (`BulkAction::target_state`); nothing when the
    /// action cannot apply to it.
    async fn bulk(
        &self,
        mut filter: MessageFilter,
        action: BulkAction,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let Some(state) = action.target_state(&filter) else {
            return Ok(0);
        };
        filter.state = Some(state);
        on_backend!(self, s => s.bulk(filter, action, actor, now_ms, dry_run).await)
    }

    /// Replaces the payload a delivery sends with an operator's edit and
    /// requeues it with a fresh retry budget and a new downstream
    /// idempotency key; audited with `edit.detail`.
    pub async fn edit(&self, edit: Edit) -> Result<Edited, StoreError> {
        on_backend!(self, s => s.edit(edit).await)
    }

    /// Stores a new account with its secret (a token's SHA-256 in hex, a
    /// user's PHC string); false when the name is taken. Audited.
    pub async fn add_account(
        &self,
        kind: AccountKind,
        a: Account,
        secret: &str,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.add_account(kind, a, secret).await)
    }

    /// The token whose SHA-256 (hex) this is.
    pub async fn token(&self, sha256: &str) -> Result<Option<Account>, StoreError> {
        on_backend!(self, s => s.token(sha256).await)
    }

    /// A user and its password hash, by name.
    pub async fn user(&self, name: &str) -> Result<Option<(Account, String)>, StoreError> {
        on_backend!(self, s => s.user(name).await)
    }

    pub async fn accounts(&self, kind: AccountKind) -> Result<Vec<Account>, StoreError> {
        on_backend!(self, s => s.accounts(kind).await)
    }

    /// Replaces a user's password hash; false when there is no such user.
    /// Audited.
    pub async fn set_password(
        &self,
        name: &str,
        phc: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.set_password(name, phc, actor, now_ms).await)
    }

    /// Removes an account; false when there was none. Audited.
    pub async fn remove_account(
        &self,
        kind: AccountKind,
        name: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.remove_account(kind, name, actor, now_ms).await)
    }

    /// Stops a message for good, with the operator's reason.
    pub async fn discard(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Discarded, StoreError> {
        on_backend!(self, s => s.discard(id, actor, reason, now_ms).await)
    }

    /// Records a bulk sync job as its upload starts; false when a job with
    /// this id exists already (an upload resumed with the same key).
    pub async fn start_job(&self, job: NewJob) -> Result<bool, StoreError> {
        on_backend!(self, s => s.start_job(job).await)
    }

    /// Records how a job's upload ended.
    pub async fn end_job(&self, id: &str, upload: JobUpload) -> Result<(), StoreError> {
        on_backend!(self, s => s.end_job(id, upload).await)
    }

    /// A job with its messages' counts by state.
    pub async fn job(&self, id: &str) -> Result<Option<JobView>, StoreError> {
        on_backend!(self, s => s.job(id).await)
    }

    /// Message counts per route and state.
    pub async fn stats(&self) -> Result<Vec<RouteStats>, StoreError> {
        on_backend!(self, s => s.stats().await)
    }

    /// Deliveries still owed an attempt, per route and system (pairs with
    /// none left out). Reads only pending rows, however long the history.
    pub async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError> {
        on_backend!(self, s => s.queue_depth().await)
    }

    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        on_backend!(self, s => s.audit_log(limit).await)
    }

    /// The newest `limit` audit entries about one target (a message id, a
    /// failure group, an account), newest first.
    pub async fn audit_of(&self, target: &str, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        on_backend!(self, s => s.audit_of(target, limit).await)
    }

    /// Deletes dedupe and idempotency keys whose window has passed, in
    /// chunks (one short write each, yielding between them) until none is
    /// left or the round's budget is spent.
    pub async fn prune(&self, now_ms: i64) -> Result<Pruned, StoreError> {
        let mut total = Pruned::default();
        for _ in 0..ROUND_CHUNKS {
            let p = on_backend!(self, s => s.prune_chunk(now_ms, CHUNK).await)?;
            total.add(p);
            if [p.dedupe_keys, p.idempotency_keys, p.sessions]
                .iter()
                .all(|&n| n < CHUNK as u64)
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    /// Deletes finished messages past their retention (see [`Cutoffs`]), with
    /// their deliveries and attempts, and bulk jobs with no message left, in
    /// chunks like [`Store::prune`]. A dead message whose ordering key holds
    /// back a later one still owed an attempt is kept: deleting it would
    /// release the key behind the operator's back.
    pub async fn purge(&self, cut: Cutoffs) -> Result<Purged, StoreError> {
        let mut total = Purged::default();
        for _ in 0..ROUND_CHUNKS {
            let p = on_backend!(self, s => s.purge_chunk(cut, CHUNK).await)?;
            total.add(p);
            if p.messages < CHUNK as u64 && p.jobs < CHUNK as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    /// Deliveries toward `system` still owed an attempt, per route, counting
    /// no further than `cap` in all (through the due index): enough to tell
    /// whether the queue is past `max_queue`, at a cost bounded by `cap`.
    pub async fn queue_depth_capped(
        &self,
        system: &str,
        cap: u64,
    ) -> Result<Vec<QueueDepth>, StoreError> {
        on_backend!(self, s => s.queue_depth_capped(system, cap).await)
    }

    /// Stores `n` live dedupe keys (`preload-0`, `preload-1`, ...) on
    /// `route`, expiring at `expires_ms`, in chunks: `ferry bench
    /// --preload-keys` measures ingest beside a large dedupe table.
    pub async fn preload_dedupe(
        &self,
        route: &str,
        n: u64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        const PRELOAD_CHUNK: u64 = 10_000;
        let mut from = 0;
        while from < n {
            let to = (from + PRELOAD_CHUNK).min(n);
            on_backend!(self, s => s.preload_dedupe(route, from, to, expires_ms).await)?;
            from = to;
        }
        Ok(())
    }

    /// Readiness: on SQLite the writer thread runs a trivial operation, on
    /// PostgreSQL the pool runs `SELECT 1`; either answers within
    /// [`PING_TIMEOUT`] or the store counts as down.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = async { on_backend!(self, s => s.ping().await) };
        tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .map_err(|_| StoreError::Unusable(format!("no answer within {PING_TIMEOUT:?}")))?
    }

    /// What `ferry check-store` reports: SQLite's integrity check (`quick`:
    /// its quick check), or PostgreSQL's connection and schema version.
    pub async fn check(
        server: &crate::config::Server,
        quick: bool,
    ) -> Result<health::Report, StoreError> {
        use secrecy::ExposeSecret;
        match &server.database_url {
            Some(url) => {
                health::check_postgres(url.expose_secret(), postgres::SCHEMA_VERSION).await
            }
            None => {
                let dir = server.data_dir.clone();
                tokio::task::spawn_blocking(move || health::check_sqlite(&dir, quick)).await?
            }
        }
    }

    /// Background upkeep that must stay off the write path (SQLite's WAL
    /// checkpoints; PostgreSQL does its own).
    pub async fn maintain(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.checkpoint().await,
            Store::Postgres(_) => Ok(()),
        }
    }
}
