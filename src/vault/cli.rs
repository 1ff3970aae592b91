//! `ferry credentials set | rotate | list | remove` and `ferry keys
//! generate`: the operator's side of the credential store. A value is read
//! from stdin (never from an argument, which `ps` and shell histories
//! show), sealed here under the master key and written as a new version;
//! running instances pick it up on their next poll. Nothing here prints a
//! value.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::MasterKey;
use crate::config::units::parse_duration;
use crate::store::{Store, StoredVersion, Supersede};

/// The longest value `set` and `rotate` read from stdin.
const MAX_VALUE: u64 = 64 * 1024;

#[derive(clap::Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Store a credential, its value read from stdin; an existing one's
    /// versions are all replaced at once (use `rotate` for a grace window).
    Set {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        /// The credential's name (letters, digits, `.`, `_`, `-`), as in `{ store = "NAME" }`.
        name: String,
        /// When the value expires, from now (`90d`): shown by `list`.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Add a new version (value on stdin); the previous ones stay valid for
    /// inbound verification until the grace ends. Outbound uses the new one.
    Rotate {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        /// The credential's name.
        name: String,
        /// How long the previous versions stay accepted (`24h`; `0s`: none).
        #[arg(long)]
        grace: String,
        /// When the new value expires, from now (`90d`): shown by `list`.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Name, versions, created, expires and last used of every credential.
    List {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete every version of a credential.
    Remove {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        /// The credential's name.
        name: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Print a new random master key: 32 bytes in base64 (for
    /// FERRY_MASTER_KEY, or a file named by FERRY_MASTER_KEY_FILE).
    Generate,
}

impl CredentialsCommand {
    pub fn config(&self) -> &Path {
        match self {
            CredentialsCommand::Set { config, .. }
            | CredentialsCommand::Rotate { config, .. }
            | CredentialsCommand::List { config, .. }
            | CredentialsCommand::Remove { config, .. } => config,
        }
    }
}

pub fn keys(cmd: KeysCommand) {
    match cmd {
        KeysCommand::Generate => println!("{}", *MasterKey::generate()),
    }
}

/// Runs a credentials command on `store` with `key`, reading values from `stdin`.
pub async fn credentials(
    cmd: CredentialsCommand,
    store: &Store,
    key: &MasterKey,
    now_ms: i64,
    stdin: impl AsyncRead + Unpin,
) -> anyhow::Result<()> {
    super::unlock(store, key).await?;
    match cmd {
        CredentialsCommand::Set { name, expires, .. } => {
            let expires_ms = after(now_ms, expires.as_deref(), "--expires")?;
            let value = read_value(stdin).await?;
            let v = put(
                store,
                key,
                &name,
                &value,
                now_ms,
                expires_ms,
                Supersede::All,
            )
            .await?;
            println!("credential {name} set (version {v})");
        }
        CredentialsCommand::Rotate {
            name,
            grace,
            expires,
            ..
        } => {
            let until_ms = after(now_ms, Some(&grace), "--grace")?.unwrap_or(now_ms);
            let expires_ms = after(now_ms, expires.as_deref(), "--expires")?;
            let value = read_value(stdin).await?;
            let supersede = Supersede::After { until_ms };
            let v = put(store, key, &name, &value, now_ms, expires_ms, supersede).await?;
            println!(
                "credential {name} rotated to version {v}; earlier versions are accepted until {}",
                date(until_ms)
            );
        }
        CredentialsCommand::List { json, .. } => list(store, now_ms, json).await?,
        CredentialsCommand::Remove { name, .. } => {
            if !store.remove_credential(&name).await? {
                bail!("no credential {name} in the store");
            }
            println!("credential {name} removed");
        }
    }
    Ok(())
}

/// `now + duration`, or `None` without one.
fn after(now_ms: i64, d: Option<&str>, flag: &str) -> anyhow::Result<Option<i64>> {
    let Some(d) = d else { return Ok(None) };
    let d = parse_duration(d).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(Some(now_ms.saturating_add(d.as_millis() as i64)))
}

/// The value on stdin, without its final line break; empty is refused.
async fn read_value(stdin: impl AsyncRead + Unpin) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    stdin
        .take(MAX_VALUE + 1)
        .read_to_end(&mut buf)
        .await
        .context("cannot read the value from stdin")?;
    if buf.len() as u64 > MAX_VALUE {
        bail!("the value on stdin is longer than {MAX_VALUE} bytes");
    }
    let text = std::str::from_utf8(&buf).context("the value on stdin is not UTF-8")?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim().is_empty() {
        bail!("no value on stdin: pipe it in, e.g. `ferry credentials set NAME < secret.txt`");
    }
    Ok(zeroize::Zeroizing::new(text.to_owned()))
}

/// Seals and stores the next version of `name` (see [`super::put`]).
pub async fn put(
    store: &Store,
    key: &MasterKey,
    name: &str,
    value: &str,
    now_ms: i64,
    expires_ms: Option<i64>,
    supersede: Supersede,
) -> anyhow::Result<i64> {
    Ok(super::put(store, key, name, value, now_ms, expires_ms, supersede).await?)
}

#[derive(Serialize)]
struct Listed {
    name: String,
    versions: Vec<ListedVersion>,
}

#[derive(Serialize)]
struct ListedVersion {
    version: i64,
    created_ms: i64,
    expires_ms: Option<i64>,
    /// When it stops being accepted (a superseded version's grace end).
    accepted_until_ms: Option<i64>,
    last_used_ms: Option<i64>,
}

async fn list(store: &Store, now_ms: i64, json: bool) -> anyhow::Result<()> {
    let mut listed: Vec<Listed> = Vec::new();
    let versions: Vec<StoredVersion> = store.credential_versions().await?;
    for v in versions.into_iter().rev() {
        if v.retire_ms.is_some_and(|r| r <= now_ms) {
            continue;
        }
        let entry = ListedVersion {
            version: v.version,
            created_ms: v.created_ms,
            expires_ms: v.expires_ms,
            accepted_until_ms: v.retire_ms,
            last_used_ms: v.last_used_ms,
        };
        match listed.last_mut() {
            Some(l) if l.name == v.name => l.versions.push(entry),
            _ => listed.push(Listed {
                name: v.name,
                versions: vec![entry],
            }),
        }
    }
    listed.reverse();
    if json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    println!(
        "{:<24}  {:<16}  {:<29}  {:<29}  LAST USED",
        "NAME", "VERSIONS", "CREATED", "EXPIRES"
    );
    for l in &listed {
        let newest = &l.versions[0];
        let versions = l
            .versions
            .iter()
            .map(|v| format!("v{}", v.version))
            .collect::<Vec<_>>()
            .join(",");
        let last_used = l.versions.iter().filter_map(|v| v.last_used_ms).max();
        let older = l.versions[1..]
            .iter()
            .filter_map(|v| v.accepted_until_ms)
            .max()
            .map(|u| format!(" (older accepted until {})", date(u)))
            .unwrap_or_default();
        println!(
            "{:<24}  {:<16}  {:<29}  {:<29}  {}{older}",
            l.name,
            versions,
            date(newest.created_ms),
            newest.expires_ms.map_or("-".into(), date),
            last_used.map_or("never".into(), date),
        );
    }
    Ok(())
}

/// An HTTP date (`Wed, 02 Dec 2026 15:34:24 GMT`).
fn date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}
