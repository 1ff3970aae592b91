//! `ferry messages release-key`: releases an ordering key that a dead
//! delivery blocks, against the store the config names: the same
//! `Store::release_key` as the admin API's
//! `POST /routes/{route}/ordering-keys/{key}/release` (the dead deliveries
//! of the key discarded with a reason, audited as `release-key`), with a
//! dry-run count.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use ferry::store::Store;

#[derive(Args)]
pub struct ReleaseKeyArgs {
    #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
    pub config: PathBuf,
    /// The route whose key is blocked.
    #[arg(long)]
    route: String,
    /// The ordering key's value (as `ferry messages list` shows it).
    #[arg(long)]
    key: String,
    /// Why the dead deliveries are discarded, for the audit log.
    #[arg(long)]
    reason: Option<String>,
    /// Only count what would be released.
    #[arg(long)]
    dry_run: bool,
    /// Name recorded in the audit log.
    #[arg(long, env = "USER", default_value = "cli")]
    actor: String,
}

pub async fn run(args: ReleaseKeyArgs, store: &Store, now_ms: i64) -> anyhow::Result<()> {
    let reason = match args.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => r,
        _ => ferry::admin::DEFAULT_RELEASE_REASON,
    };
    let n = store
        .release_key(
            &args.route,
            &args.key,
            reason,
            &ferry::store::Channel::Cli.actor(&args.actor),
            now_ms,
            args.dry_run,
        )
        .await?;
    let what = format!("{}/{}", args.route, args.key);
    if args.dry_run {
        println!("{n} dead message(s) would be discarded to release {what}");
    } else if n == 0 {
        bail!(
            "nothing to release: no dead message of route {} has the ordering key {}",
            args.route,
            args.key
        );
    } else {
        println!("{n} dead message(s) discarded: {what} is released");
    }
    Ok(())
}
