//! The embedded SQLite backend (the default): WAL with `synchronous=FULL`, one
//! writer thread that group-commits (`writer.rs`), a few read connections for
//! the admin side (`read.rs`), and passive WAL checkpoints run by the janitor
//! off the writer's path (the writer only starts the WAL over, between two
//! batches).

mod accounts;
mod alerts;
mod console;
mod credentials;
mod edit;
mod embed;
mod failures;
mod housekeeping;
mod jobs;
mod operate;
mod read;
mod write;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use writer::Writer;

/// Schema versions in order; the database's `user_version` says how many ran.
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
];

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    /// Held by `ferry serve` for the store's lifetime: one server per file.
    _lock: Option<std::fs::File>,
    path: std::path::PathBuf,
    /// Idle read connections; a `std` mutex because it is held only to push or
    /// pop, never across an await.
    readers: Mutex<Vec<Connection>>,
    /// Request budgets' theoretical arrival times (`deliver::pace`).
    budgets: Mutex<std::collections::HashMap<String, i64>>,
    /// Half-open breakers' probe slots: until when each is taken.
    probes: Mutex<std::collections::HashMap<String, i64>>,
}

/// WAL length (in 4 KiB frames, so 32 MiB) past which a checkpoint restarts it.
const WAL_RESTART_FRAMES: i64 = 8192;

fn open_conn(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(writer::BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens the store for a server: takes the data directory's lock (one
    /// `ferry serve` per SQLite file) and, since no other server can hold a
    /// lease, hands back at once the deliveries a killed predecessor had in
    /// flight instead of waiting for their leases to expire.
    pub fn open_exclusive(data_dir: &Path, now_ms: i64) -> Result<SqliteStore, StoreError> {
        let lock = lock_dir(data_dir)?;
        let mut store = SqliteStore::open(data_dir)?;
        let released = open_conn(&store.inner.path)?.execute(
            "UPDATE deliveries SET state = 'retrying', next_attempt_ms = ?1 WHERE state = 'delivering'",
            [now_ms],
        )?;
        if released > 0 {
            tracing::warn!(
                released,
                "Requeued deliveries that were in flight when the previous run stopped."
            );
        }
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner._lock = Some(lock);
        }
        Ok(store)
    }

    /// Opens the store without the server lock (CLI, tests).
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join("ferry.sqlite3");
        super::health::preflight(data_dir, &path)?;
        let conn = open_conn(&path)?;
        migrate(&conn)?;
        // Checkpoints are the janitor's job, so a commit never pays for one.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        conn.set_prepared_statement_cache_capacity(64);
        let writer = Writer::start(conn).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer,
                _lock: None,
                path,
                readers: Mutex::new(Vec::new()),
                budgets: Mutex::new(std::collections::HashMap::new()),
                probes: Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    /// Runs `f` on a read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().expect("reader pool poisoned").pop();
            let conn = match conn {
                Some(c) => c,
                None => open_conn(&inner.path)?,
            };
            let result = f(&conn);
            let mut pool = inner.readers.lock().expect("reader pool poisoned");
            if pool.len() < 4 {
                pool.push(conn);
            }
            result
        })
        .await?
    }

    /// Through the writer thread: a dead or stuck writer fails readiness,
    /// though reads would still answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.inner
            .writer
            .write(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    /// Stops the writer thread as if it had died: every later write (and
    /// `ping`) fails with [`StoreError::WriterGone`]. For tests of health.
    pub fn stop_writer(&self) {
        self.inner.writer.stop();
    }

    /// Copies the WAL back into the database (a passive checkpoint, on a
    /// read connection: it never blocks the writer). Under steady load the
    /// WAL never empties on its own, so it would grow without bound and every
    /// commit would append to fresh (zero-filled) file blocks: once it passes
    /// [`WAL_RESTART_FRAMES`], the writer thread is asked to start it over
    /// between two batches (`writer::restart_wal`).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let log: i64 = self
            .read(|c| Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?))
            .await?;
        if log > WAL_RESTART_FRAMES {
            self.inner.writer.want_wal_restart();
        }
        Ok(())
    }
}

fn lock_dir(data_dir: &Path) -> Result<std::fs::File, StoreError> {
    let io = |source| StoreError::DataDir {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("ferry.lock"))
        .map_err(io)?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => StoreError::Locked(data_dir.display().to_string()),
        std::fs::TryLockError::Error(e) => io(e),
    })?;
    Ok(file)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this ferry ({latest}); upgrade ferry"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {sql} PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMessage;

    fn message(i: usize) -> NewMessage {
        NewMessage {
            id: format!("m{i:06}").into(),
            route: "orders".into(),
            system: "erp".into(),
            received_ms: 1,
            event_id: None,
            headers: "{}".into(),
            body: bytes::Bytes::from(vec![b'x'; 8 * 1024]),
            delivery_key: format!("k{i}"),
            dedupe: None,
            idempotency: None,
            ordering_key: None,
            entity_key: None,
            job_id: None,
        }
    }

    /// Frames in the WAL now (what a passive checkpoint reports).
    async fn wal_frames(store: &SqliteStore) -> i64 {
        store
            .read(|c| Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?))
            .await
            .unwrap()
    }

    /// Past its bound the WAL is started over by the writer between two
    /// batches (after the janitor's checkpoint asked for it), so commits go
    /// back to the start of the file instead of growing it; below the bound
    /// nothing is asked.
    #[tokio::test]
    async fn the_writer_starts_a_long_wal_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let accepts = (0..5_000).map(|i| store.accept(message(i)));
        futures_util::future::try_join_all(accepts).await.unwrap();
        let long = wal_frames(&store).await;
        assert!(
            long > WAL_RESTART_FRAMES,
            "{long} frames: the test must pass the bound"
        );
        store.checkpoint().await.unwrap();
        // The batch after the request runs the restart; the one after that
        // writes from the start of the WAL.
        store.accept(message(5_000)).await.unwrap();
        store.accept(message(5_001)).await.unwrap();
        let short = wal_frames(&store).await;
        assert!(short < 100, "the WAL started over: {short} frames");
        store.checkpoint().await.unwrap();
        assert!(
            !store.inner.writer.restart_wanted(),
            "below the bound nothing is asked"
        );
    }
}
