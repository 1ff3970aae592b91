//! The SQLite store's single writer: one thread owns the write connection and
//! commits whatever operations are queued in one transaction (group commit), so
//! an fsync is shared by every accept that arrived while the previous one ran.
//! Replies go out only after COMMIT. An operation that fails (an SQL error:
//! disk full, I/O) rolls back the whole batch and every caller in it gets the
//! error, so nothing half-written is ever committed or acked; a savepoint per
//! operation would cost every write for a case that is rare and retryable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 1024;

/// Sends the caller its result once the batch's fate is known.
type Finish = Box<dyn FnOnce(Result<(), &str>) + Send>;
/// Runs against the connection inside the open transaction; says whether it failed.
type Op = Box<dyn FnOnce(&Connection) -> (Finish, bool) + Send>;

/// How long a write waits for a lock another connection holds (a CLI
/// command's write, a migration).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Writer {
    ops: mpsc::UnboundedSender<Op>,
    /// Set by [`Writer::stop`]: the thread exits after its current batch.
    stopped: Arc<AtomicBool>,
    /// Set by the janitor when the WAL has grown long: the thread starts it
    /// over after its current batch ([`restart_wal`]).
    restart_wal: Arc<AtomicBool>,
}

impl Writer {
    pub fn start(conn: Connection) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::unbounded_channel();
        let stopped = Arc::new(AtomicBool::new(false));
        let restart_wal = Arc::new(AtomicBool::new(false));
        let flags = (stopped.clone(), restart_wal.clone());
        std::thread::Builder::new()
            .name("ferry-sqlite-writer".into())
            .spawn(move || run(conn, rx, &flags.0, &flags.1))?;
        Ok(Writer {
            ops: tx,
            stopped,
            restart_wal,
        })
    }

    /// Asks the thread to start the WAL over between two batches.
    pub fn want_wal_restart(&self) {
        self.restart_wal.store(true, Ordering::Relaxed);
    }

    /// Whether a WAL restart is asked for and not yet done.
    #[cfg(test)]
    pub fn restart_wanted(&self) -> bool {
        self.restart_wal.load(Ordering::Relaxed)
    }

    /// Ends the writer thread (tests of a dead writer): operations queued
    /// after it fail with `WriterGone`.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the thread so it sees the flag; this no-op is refused with the rest.
        let _ = self.ops.send(Box::new(|_| (Box::new(|_| {}), false)));
    }

    /// Runs `f` in the next group-committed transaction; resolves after COMMIT.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |conn| {
            let result = f(conn);
            let failed = result.is_err();
            let finish: Finish = Box::new(move |commit| {
                let _ = tx.send(match (result, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(StoreError::Commit(e.to_owned())),
                });
            });
            (finish, failed)
        });
        self.ops.send(op).map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

fn run(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Op>,
    stopped: &AtomicBool,
    restart: &AtomicBool,
) {
    let mut batch: Vec<Op> = Vec::with_capacity(MAX_BATCH);
    let mut finishers: Vec<Finish> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        if stopped.load(Ordering::SeqCst) {
            // Dropping `rx` (and `first`) fails every queued and later caller.
            return;
        }
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let begun = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = begun {
            let msg = e.to_string();
            for op in batch.drain(..) {
                // The op never ran; tell its caller why.
                let finish = op_failed(op, &conn);
                finish(Err(&msg));
            }
            continue;
        }
        let mut failed = false;
        for op in batch.drain(..) {
            let (finish, op_failed) = op(&conn);
            failed |= op_failed;
            finishers.push(finish);
        }
        let outcome: Result<(), String> = if failed {
            Err("another operation in the same batch failed; the batch was rolled back".into())
        } else {
            conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        };
        if let Err(e) = &outcome {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "A group commit failed; its callers get an error and nothing was acked.");
        }
        for finish in finishers.drain(..) {
            finish(outcome.as_ref().map(|_| ()).map_err(|e| e.as_str()));
        }
        if restart.load(Ordering::Relaxed) && restart_wal(&conn) {
            restart.store(false, Ordering::Relaxed);
        }
    }
}

/// Starts the WAL over, so the next commits rewrite file blocks already in
/// the page cache instead of growing the file. It runs here, between two
/// batches, because a RESTART checkpoint needs the write lock: from another
/// connection it would wait for this thread's lock while this thread waited
/// for its (a busy handler sleeps in steps of up to 100 ms, and ingest waited
/// seconds). The janitor's passive checkpoints have already copied nearly
/// every frame, so what is left here is a few frames and an fsync; and it
/// never waits: while a reader still uses the WAL it gives up at once, and
/// the next batch tries again.
fn restart_wal(conn: &Connection) -> bool {
    let _ = conn.busy_timeout(Duration::ZERO);
    let busy = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    matches!(busy, Ok(0))
}

/// Runs an op whose transaction could not begin, only to get its finisher:
/// without a transaction its writes would autocommit, so it runs in a
/// savepoint that is rolled back.
fn op_failed(op: Op, conn: &Connection) -> Finish {
    let _ = conn.execute_batch("SAVEPOINT dropped");
    let (finish, _) = op(conn);
    let _ = conn.execute_batch("ROLLBACK TO dropped; RELEASE dropped");
    finish
}
