//! Honest health: the store refuses what it cannot trust and says so. Before
//! SQLite opens a data directory, [`preflight`] refuses a database file that
//! is empty beside a lock or WAL (the store was lost or truncated: starting
//! an empty one would silently forget every queued message) or whose header
//! is not SQLite's. [`check`] backs `ferry check-store`: SQLite's integrity
//! check, or on PostgreSQL the connection and the schema version. `/readyz`
//! goes through the SQLite writer (`SqliteStore::ping`) or a real query.

use std::path::Path;

use super::StoreError;

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses a database file `ferry serve` must not start on, with the reason.
/// A data directory without a database is fine: the store is created.
pub fn preflight(data_dir: &Path, db: &Path) -> Result<(), StoreError> {
    let Ok(meta) = std::fs::metadata(db) else {
        return Ok(());
    };
    let wal = db.with_extension("sqlite3-wal");
    let beside: Vec<&str> = [
        (data_dir.join("ferry.lock"), "ferry.lock"),
        (wal, "its WAL"),
    ]
    .iter()
    .filter(|(p, _)| p.exists())
    .map(|(_, n)| *n)
    .collect();
    let unusable = |why: String| Err(StoreError::Unusable(format!("{}: {why}", db.display())));
    if meta.len() == 0 {
        if beside.is_empty() {
            return Ok(());
        }
        return unusable(format!(
            "the database file is empty but {} exists: the store was truncated or lost; \
             restore it from a backup, or move the data directory away to start an empty store",
            beside.join(" and ")
        ));
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(db).and_then(|mut f| {
        use std::io::Read;
        f.read(&mut head)
    });
    match read {
        Ok(n) if n == head.len() && &head == SQLITE_HEADER => Ok(()),
        Ok(_) => unusable(
            "the file is not an SQLite database (its header is wrong); \
             restore it from a backup"
                .into(),
        ),
        Err(e) => unusable(format!("cannot read it: {e}")),
    }
}

/// What `ferry check-store` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What was checked, for the "ok" line.
    pub checked: String,
    /// Each problem found, one line each; empty when healthy.
    pub problems: Vec<String>,
}

/// Runs SQLite's `PRAGMA integrity_check` (or the faster `quick_check`) on
/// the store in `data_dir`, read-only and without migrating.
pub fn check_sqlite(data_dir: &Path, quick: bool) -> Result<Report, StoreError> {
    let db = data_dir.join("ferry.sqlite3");
    if !db.exists() {
        return Err(StoreError::Unusable(format!(
            "{}: no database here",
            db.display()
        )));
    }
    if let Err(StoreError::Unusable(why)) = preflight(data_dir, &db) {
        return Ok(Report {
            checked: db.display().to_string(),
            problems: vec![why],
        });
    }
    let conn = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let pragma = if quick {
        "quick_check"
    } else {
        "integrity_check"
    };
    let rows: Result<Vec<String>, rusqlite::Error> = conn
        .prepare(&format!("PRAGMA {pragma}"))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    let problems = match rows {
        Ok(rows) => rows.into_iter().filter(|r| r != "ok").collect(),
        // A page so broken the check cannot run is a problem, not a crash.
        Err(e) => vec![format!("{pragma} could not run: {e}")],
    };
    Ok(Report {
        checked: format!("{} ({pragma})", db.display()),
        problems,
    })
}

/// On PostgreSQL: the connection answers, and the schema version is the one
/// this ferry expects.
pub async fn check_postgres(url: &str, expected: i32) -> Result<Report, StoreError> {
    let target = super::postgres::parse_url(url).map_err(StoreError::Config)?;
    let (client, conn) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        target.config.connect(target.tls.clone()),
    )
    .await
    .map_err(|_| StoreError::Timeout("connecting timed out after 10s"))??;
    tokio::spawn(conn);
    let version: Option<i32> = match client
        .query_opt("SELECT max(version) FROM ferry_schema", &[])
        .await
    {
        Ok(row) => row.map(|r| r.try_get(0)).transpose()?.flatten(),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => None,
        Err(e) => return Err(e.into()),
    };
    let problems = match version {
        Some(v) if v == expected => vec![],
        Some(v) => vec![format!(
            "schema version {v}, this ferry expects {expected}: run `ferry migrate`{}",
            if v > expected {
                " with a newer ferry"
            } else {
                ""
            }
        )],
        None => vec!["no ferry schema in this database: run `ferry migrate`".into()],
    };
    let tls = client
        .query_opt(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?
        .map(|r| r.try_get::<_, bool>(0))
        .transpose()?
        .unwrap_or(false);
    Ok(Report {
        checked: format!(
            "PostgreSQL (schema version {}, {})",
            version.unwrap_or(0),
            if tls { "TLS" } else { "no TLS" }
        ),
        problems,
    })
}
