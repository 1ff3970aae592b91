//! Hot reload of `ferry.toml`: what starts one and what the last one did.
//! The config's folder is watched recursively (editors save by rename, and
//! Kubernetes swaps a `..data` symlink in the folder, so a watch on the file
//! itself would be lost), SIGHUP asks for one, and a slow poll of the
//! files' content hash catches what the watch misses (a bind mount, a
//! dropped event). `app` applies a reload; this module keeps the trigger
//! and the [`Status`] the admin API shows (`GET /admin/api/v1/config`): the
//! running config's hash, the last reload's time and result, and which
//! changed settings need a restart (`listen`, `data_dir`, `database_url`
//! and the edge's limits, read once at start).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::Config;

/// How long after a file event a reload waits for the save to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the files' content hash is compared, for what the watch misses.
pub const POLL: Duration = Duration::from_secs(5);

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A file in the config's folder changed (or the poll saw new content).
    Files,
    /// SIGHUP or the admin API: reload even when nothing seems changed.
    Asked,
}

/// The last reload's result.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    pub at_ms: i64,
    /// `applied`, `refused` or `unchanged`.
    pub result: &'static str,
    /// Why it was refused (the problems, one per line).
    pub reason: Option<String>,
    /// Settings that changed but take effect only after a restart.
    pub restart_needed: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub file: PathBuf,
    /// SHA-256 of the config file and the mapping files it names.
    pub hash: String,
    pub loaded_ms: i64,
    pub last_reload: Option<LastReload>,
    /// Settings changed since start that wait for a restart.
    pub restart_needed: Vec<&'static str>,
}

/// The running config's reload state.
pub struct Reloads {
    file: PathBuf,
    status: Mutex<Status>,
    /// The files' hash at the last attempt, applied or not: the poll and
    /// file events try again only when it changes.
    seen: Mutex<String>,
}

impl Reloads {
    pub fn new(file: &Path, config: &Config, now_ms: i64) -> Reloads {
        let hash = fingerprint(file, config);
        Reloads {
            file: file.to_owned(),
            seen: Mutex::new(hash.clone()),
            status: Mutex::new(Status {
                file: file.to_owned(),
                hash,
                loaded_ms: now_ms,
                last_reload: None,
                restart_needed: Vec::new(),
            }),
        }
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Whether the files (as the running `config` names them) changed
    /// since the last attempt; marks them seen.
    pub fn changed(&self, config: &Config) -> bool {
        let now = fingerprint(&self.file, config);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *seen != now;
        *seen = now;
        changed
    }

    /// Records a reload's result; `applied` carries the new config's hash.
    pub fn record(&self, last: LastReload, applied: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hash) = applied {
            s.hash = hash;
            s.loaded_ms = last.at_ms;
            for k in &last.restart_needed {
                if !s.restart_needed.contains(k) {
                    s.restart_needed.push(k);
                }
            }
        }
        s.last_reload = Some(last);
    }

    pub fn running_hash(&self) -> String {
        let s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.hash.clone()
    }
}

/// SHA-256 over the config file and every mapping file its routes use, in
/// a fixed order; unreadable files count as empty.
pub fn fingerprint(file: &Path, config: &Config) -> String {
    let mut files: Vec<&Path> = config
        .routes
        .values()
        .flat_map(|r| r.transform.mapping().into_iter().chain(r.shadow.as_ref()))
        .map(|m| m.file.as_path())
        .collect();
    files.sort();
    files.dedup();
    let mut h = Sha256::new();
    for f in std::iter::once(file).chain(files) {
        h.update(f.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(std::fs::read(f).unwrap_or_default());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The settings read once at start that differ between `old` and `new`.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.server, &new.server);
    let secret = |s: &Option<secrecy::SecretString>| {
        s.as_ref()
            .map(|v| secrecy::ExposeSecret::expose_secret(v).to_owned())
    };
    let mut out = Vec::new();
    for (key, differs) in [
        ("listen", a.listen != b.listen),
        ("data_dir", a.data_dir != b.data_dir),
        (
            "database_url",
            secret(&a.database_url) != secret(&b.database_url),
        ),
        ("log_format", a.log_format != b.log_format),
        (
            "max_connections",
            a.edge.max_connections != b.edge.max_connections,
        ),
        (
            "header_read_timeout",
            a.edge.header_read_timeout != b.edge.header_read_timeout,
        ),
        (
            "body_idle_timeout",
            a.edge.body_idle_timeout != b.edge.body_idle_timeout,
        ),
        (
            "max_unverified_bytes",
            a.edge.max_unverified_bytes != b.edge.max_unverified_bytes,
        ),
    ] {
        if differs {
            out.push(key);
        }
    }
    out
}

/// Watches the config file's folder (recursively); every event sends a
/// [`Trigger::Files`], except those inside `data_dir` (the SQLite store
/// writes there all the time when it lives beside the config). The watcher
/// stops when the returned value drops.
pub fn watch(
    file: &Path,
    data_dir: &Path,
    triggers: mpsc::Sender<Trigger>,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::Watcher;
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // Absolute, so event paths compare with the store's.
    let folder = std::fs::canonicalize(&folder).unwrap_or(folder);
    let store = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(e) = event else { return };
        let in_store = !e.paths.is_empty() && e.paths.iter().all(|p| p.starts_with(&store));
        if !e.kind.is_access() && !in_store {
            // A full channel already holds a trigger: nothing is lost.
            let _ = triggers.try_send(Trigger::Files);
        }
    })?;
    watcher.watch(&folder, notify::RecursiveMode::Recursive)?;
    Ok(watcher)
}
