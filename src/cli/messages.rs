//! `ferry messages ...`, `ferry retry` and `ferry discard`: the message
//! list, one message, export, edit and replay, release a key, retry and
//! discard (one message or a filter), against the store the config names,
//! audited as from the CLI. The console's and the admin API's actions have
//! these twins here.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use ferry::admin::FilterQuery;
use ferry::clock::Clock;
use ferry::store::{Discarded, Selection, Store};

#[derive(Subcommand)]
pub enum MessagesCommand {
    List {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        json: bool,
    },
    Show {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        id: String,
    },
    /// Every message the filter selects, as CSV or NDJSON on stdout.
    Export {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        /// csv or ndjson
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Replace a message's payload and replay it (the original is kept; the
    /// edit is audited; the replay gets a new downstream idempotency key).
    Edit(EditArgs),
    /// Release an ordering key a dead message blocks: discard the key's dead
    /// messages (audited as release-key) so its later messages go.
    ReleaseKey(super::release::ReleaseKeyArgs),
    /// The same as `ferry retry`.
    Retry(RetryArgs),
    /// The same as `ferry discard`.
    Discard(DiscardArgs),
}

#[derive(clap::Args)]
pub struct EditArgs {
    #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
    config: PathBuf,
    id: String,
    /// The new payload (JSON); `-` reads it from stdin.
    #[arg(long)]
    file: PathBuf,
    /// Why, for the audit log.
    #[arg(long, default_value = "")]
    note: String,
    /// Name recorded in the audit log.
    #[arg(long, env = "USER", default_value = "cli")]
    actor: String,
}

#[derive(clap::Args)]
pub struct RetryArgs {
    #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
    config: PathBuf,
    /// One message id; or use the filter flags.
    id: Option<String>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Only count what would be retried.
    #[arg(long)]
    dry_run: bool,
    /// Name recorded in the audit log.
    #[arg(long, env = "USER", default_value = "cli")]
    actor: String,
}

#[derive(clap::Args)]
pub struct DiscardArgs {
    #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
    config: PathBuf,
    /// One message id; or use the filter flags (state dead unless given:
    /// dead, retrying or queued).
    id: Option<String>,
    #[command(flatten)]
    filter: FilterArgs,
    #[arg(long)]
    reason: String,
    /// Only count what would be discarded.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, env = "USER", default_value = "cli")]
    actor: String,
}

#[derive(clap::Args, Default)]
pub struct FilterArgs {
    /// queued, delivering, retrying, delivered, dead, discarded, skipped or superseded
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    route: Option<String>,
    /// Error class of the last attempt (network, timeout, rate_limited, ...)
    #[arg(long)]
    class: Option<String>,
    /// Epoch milliseconds or a duration ago (15m, 24h)
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    #[arg(long)]
    limit: Option<u32>,
    #[arg(long)]
    system: Option<String>,
    /// Text in ids, keys and reasons (case-insensitive)
    #[arg(long)]
    text: Option<String>,
    /// Exactly this ordering key
    #[arg(long)]
    ordering_key: Option<String>,
}

impl FilterArgs {
    /// The filter at `now_ms` (durations ago resolved), or why it is bad.
    fn resolve(&self, now_ms: i64) -> anyhow::Result<ferry::store::MessageFilter> {
        self.query()
            .resolve(now_ms)
            .map_err(|p| anyhow::anyhow!(p.detail))
    }

    fn query(&self) -> FilterQuery {
        FilterQuery {
            state: self.state.clone(),
            route: self.route.clone(),
            class: self.class.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            limit: self.limit,
            before: None,
            group: None,
            system: self.system.clone(),
            q: self.text.clone(),
            ordering_key: self.ordering_key.clone(),
        }
    }
}

/// Runs one `ferry messages` command.
pub async fn run(command: MessagesCommand) -> anyhow::Result<()> {
    match command {
        MessagesCommand::List {
            config,
            filter,
            json,
        } => list(&config, &filter, json).await,
        MessagesCommand::Show { config, id } => {
            let store = crate::open_store(&config).await?;
            match store.message(&id).await? {
                Some(m) => {
                    println!("{}", serde_json::to_string_pretty(&m)?);
                    Ok(())
                }
                None => bail!("no message {id}"),
            }
        }
        MessagesCommand::Export {
            config,
            filter,
            format,
        } => export(&config, &filter, &format).await,
        MessagesCommand::Edit(args) => edit(args).await,
        MessagesCommand::ReleaseKey(args) => {
            let store = crate::open_store(&args.config).await?;
            super::release::run(args, &store, Clock::System.now_ms()).await
        }
        MessagesCommand::Retry(args) => retry(args).await,
        MessagesCommand::Discard(args) => discard(args).await,
    }
}

async fn list(config: &Path, filter: &FilterArgs, json: bool) -> anyhow::Result<()> {
    let store = crate::open_store(config).await?;
    let filter = filter.resolve(Clock::System.now_ms())?;
    let messages = store.list(&filter).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&messages)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<16}  {:<10}  {:>3}  LAST ERROR",
        "ID", "ROUTE", "STATE", "TRY"
    );
    for m in messages {
        println!(
            "{:<36}  {:<16}  {:<10}  {:>3}  {}",
            m.id,
            m.route,
            m.state.as_str(),
            m.attempts,
            m.last_explanation.unwrap_or_default()
        );
    }
    Ok(())
}

async fn export(config: &Path, filter: &FilterArgs, format: &str) -> anyhow::Result<()> {
    use ferry::admin::export::{Format, page};
    use std::io::Write;
    let Some(format) = Format::parse(format) else {
        bail!("--format {format}: use csv or ndjson");
    };
    let store = crate::open_store(config).await?;
    let filter = filter.resolve(Clock::System.now_ms())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if let Some(h) = format.header() {
        out.write_all(h.as_bytes())?;
    }
    let mut before = None;
    loop {
        let messages = page(&store, &filter, before).await?;
        let Some(last) = messages.last() else { break };
        before = Some(last.id.to_string());
        for m in &messages {
            out.write_all(format.line(m).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

pub async fn retry(args: RetryArgs) -> anyhow::Result<()> {
    let store = crate::open_store(&args.config).await?;
    let now = Clock::System.now_ms();
    let sel = match args.id {
        Some(id) => Selection::One(id),
        None => Selection::Filter(args.filter.resolve(now)?),
    };
    let n = store
        .retry(
            sel,
            &ferry::store::Channel::Cli.actor(&args.actor),
            now,
            args.dry_run,
        )
        .await?;
    if args.dry_run {
        println!("{n} message(s) would be retried");
    } else if n == 0 {
        bail!("nothing to retry: no matching message is dead, retrying, discarded or delivered");
    } else {
        println!("{n} message(s) requeued");
    }
    Ok(())
}

pub async fn discard(args: DiscardArgs) -> anyhow::Result<()> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        bail!("give a --reason");
    }
    let store = crate::open_store(&args.config).await?;
    let now = Clock::System.now_ms();
    let actor = &ferry::store::Channel::Cli.actor(&args.actor);
    let Some(id) = args.id else {
        let filter = args.filter.resolve(now)?;
        let n = store
            .discard_matching(filter, reason, actor, now, args.dry_run)
            .await?;
        if args.dry_run {
            println!("{n} message(s) would be discarded");
        } else if n == 0 {
            bail!("nothing to discard: no matching message is dead, retrying or queued");
        } else {
            println!("{n} message(s) discarded");
        }
        return Ok(());
    };
    if args.dry_run {
        bail!("--dry-run counts a filter's matches; give filter flags instead of an id");
    }
    match store.discard(&id, actor, reason, now).await? {
        Discarded::Done => {
            println!("discarded {id}");
            Ok(())
        }
        Discarded::NotFound => bail!("no message {id}"),
        Discarded::NotDiscardable => bail!("message {id} is already delivered or discarded"),
    }
}

async fn edit(args: EditArgs) -> anyhow::Result<()> {
    let body = if args.file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
        b
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let config = crate::load(&args.config)?;
    let store = Store::open(&config.server).await?;
    let now = Clock::System.now_ms();
    let key = ferry::admin::edit::edit(
        &store,
        &config,
        &args.id,
        &body,
        &ferry::store::Channel::Cli.actor(&args.actor),
        &args.note,
        now,
    )
    .await?;
    println!("edited {}: replaying with idempotency key {key}", args.id);
    Ok(())
}
