//! `ferry audit`: the audit log from the command line, newest first: who
//! did what to which messages, when, and from where (console, api, cli,
//! client), as the console's audit page shows it; `--target` for one
//! message's (or group's, user's, key's) entries, `--json` for one JSON
//! object a line.

use std::path::PathBuf;

use clap::Args;
use ferry::store::Store;

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
    pub config: PathBuf,
    /// Only the entries about this target (a message id, a group key, ...).
    #[arg(long)]
    target: Option<String>,
    /// How many entries, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// One JSON object a line instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: AuditArgs, store: &Store) -> anyhow::Result<()> {
    let limit = args.limit.clamp(1, 10_000);
    let entries = match &args.target {
        Some(t) => store.audit_of(t, limit).await?,
        None => store.audit_log(limit).await?,
    };
    for e in &entries {
        if args.json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            let channel = if e.channel.is_empty() {
                "-"
            } else {
                &e.channel
            };
            println!(
                "{}  {:<16} {:<8} {:<14} {}  {}",
                ferry::deliver::hold::utc_time(e.at_ms),
                e.actor,
                channel,
                e.action,
                e.target,
                e.detail.replace('\n', " ")
            );
        }
    }
    if entries.is_empty() && !args.json {
        eprintln!("no audit entries");
    }
    Ok(())
}
