//! The `ferry` command line: serve (with hot reload of its config file),
//! demo, check-config, mapping (test and diff jq mappings), the operator's
//! message commands (list, show, retry, discard, release-key — the same store
//! methods the admin API uses), and bench.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use ferry::admin::FilterQuery;
use ferry::app::App;
use ferry::clock::Clock;
use ferry::config::{Config, ConfigError};
use ferry::store::{Discarded, Selection, Store};

mod cli;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Integration middleware between an ERP and the platforms it talks to"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ferry: HTTP ingest, delivery workers, admin API.
    Serve {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
    },
    /// Run ferry with a built-in demo config and two simulated systems.
    Demo {
        /// Port for ferry's listener (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Create or upgrade the store's schema (serve does this too, at start).
    Migrate {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
    },
    /// Check the store: SQLite's integrity check (exit 1 on any problem), or
    /// PostgreSQL's connection and schema version.
    CheckStore {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        /// SQLite's faster quick_check instead of the full integrity_check.
        #[arg(long)]
        quick: bool,
    },
    /// Validate a config file and report every problem with its location.
    CheckConfig {
        file: Option<PathBuf>,
        /// Print the embedded, fully commented reference config.
        #[arg(long)]
        print_default: bool,
    },
    /// Dead messages grouped by cause: list, show.
    Failures {
        #[command(subcommand)]
        command: cli::failures::FailuresCommand,
    },
    /// Act on a failure group: ack, resolve, reopen, retry, discard.
    Groups {
        #[command(subcommand)]
        command: cli::failures::GroupsCommand,
    },
    /// Try jq mappings on samples: print outputs, check golden files, diff versions.
    Mapping {
        #[command(subcommand)]
        command: cli::mapping::MappingCommand,
    },
    /// The console's users, with roles (viewer, operator, admin).
    Users {
        #[command(subcommand)]
        command: cli::users::UsersCommand,
    },
    /// Bearer tokens of the admin API, with roles (viewer, operator, admin).
    Tokens {
        #[command(subcommand)]
        command: cli::tokens::TokensCommand,
    },
    /// List or show messages.
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
    /// Requeue a message (or every message matching a filter) with a fresh retry budget.
    Retry(RetryArgs),
    /// Stop a message (or every message matching a filter) for good, with a reason.
    Discard(DiscardArgs),
    /// Measure ingest and delivery throughput against a bare server.
    Bench(ferry::bench::BenchArgs),
    /// Upload an NDJSON file as a bulk sync job and follow it to the end.
    Sync(ferry::sync::SyncArgs),
    /// Manage the encrypted credential store (needs the master key).
    Credentials {
        #[command(subcommand)]
        command: ferry::vault::cli::CredentialsCommand,
    },
    /// The credential store's master key.
    Keys {
        #[command(subcommand)]
        command: ferry::vault::cli::KeysCommand,
    },
}

#[derive(Subcommand)]
enum MessagesCommand {
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
    ReleaseKey(cli::release::ReleaseKeyArgs),
}

#[derive(clap::Args)]
struct EditArgs {
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
struct RetryArgs {
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
struct DiscardArgs {
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
struct FilterArgs {
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

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("ferry: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => serve(&config).await,
        Command::Migrate { config } => {
            let store = open_store(&config).await?;
            store.ping().await?;
            println!(
                "ferry: the {} store's schema is up to date",
                store.backend()
            );
            Ok(())
        }
        Command::CheckStore { config, quick } => check_store(&config, quick).await,
        Command::Demo { port, seconds } => ferry::sim::demo::run(port, seconds).await,
        Command::CheckConfig {
            file,
            print_default,
        } => check_config(file, print_default),
        Command::Messages {
            command:
                MessagesCommand::List {
                    config,
                    filter,
                    json,
                },
        } => list(&config, &filter, json).await,
        Command::Messages {
            command: MessagesCommand::Show { config, id },
        } => {
            let store = open_store(&config).await?;
            match store.message(&id).await? {
                Some(m) => {
                    println!("{}", serde_json::to_string_pretty(&m)?);
                    Ok(())
                }
                None => bail!("no message {id}"),
            }
        }
        Command::Failures { command } => {
            let store = open_store(command.config()).await?;
            cli::failures::failures(command, &store).await
        }
        Command::Groups { command } => {
            let store = open_store(command.config()).await?;
            cli::failures::groups(command, &store, Clock::System.now_ms()).await
        }
        Command::Mapping { command } => {
            match tokio::task::block_in_place(|| cli::mapping::run(command))? {
                0 => Ok(()),
                code => std::process::exit(code),
            }
        }
        Command::Messages {
            command: MessagesCommand::Edit(args),
        } => edit(args).await,
        Command::Messages {
            command: MessagesCommand::ReleaseKey(args),
        } => {
            let store = open_store(&args.config).await?;
            cli::release::run(args, &store, Clock::System.now_ms()).await
        }
        Command::Messages {
            command:
                MessagesCommand::Export {
                    config,
                    filter,
                    format,
                },
        } => export(&config, &filter, &format).await,
        Command::Users { command } => cli::users::run(command, async |c| open_store(c).await).await,
        Command::Tokens { command } => {
            cli::tokens::run(command, async |c| open_store(c).await).await
        }
        Command::Retry(args) => retry(args).await,
        Command::Discard(args) => discard(args).await,
        Command::Bench(args) => ferry::bench::run(args).await,
        Command::Credentials { command } => credentials(command).await,
        Command::Keys { command } => {
            ferry::vault::cli::keys(command);
            Ok(())
        }
        Command::Sync(args) => match ferry::sync::run(args).await? {
            0 => Ok(()),
            code => std::process::exit(code),
        },
    }
}

async fn serve(file: &Path) -> anyhow::Result<()> {
    // Before anything slow: SIGHUP's default action would end the process.
    #[cfg(unix)]
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot handle SIGHUP")?;
    let config = load(file)?;
    ferry::telemetry::init_logs(config.server.log_format);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let mut app = App::build(config).await?;
    let reload = app.reload_from(file)?;
    #[cfg(unix)]
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration.");
            if reload.send(ferry::reload::Trigger::Asked).await.is_err() {
                break;
            }
        }
    });
    let store = app.state().store.backend();
    tracing::info!(%addr, store, "ferry is listening.");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    app.run(listener, shutdown).await?;
    tracing::info!("ferry stopped.");
    Ok(())
}

async fn check_store(config: &Path, quick: bool) -> anyhow::Result<()> {
    let config = load(config)?;
    let report = Store::check(&config.server, quick).await?;
    if report.problems.is_empty() {
        println!("{}: ok", report.checked);
        return Ok(());
    }
    for p in &report.problems {
        println!("{p}");
    }
    bail!("{} problem(s) in {}", report.problems.len(), report.checked)
}

fn check_config(file: Option<PathBuf>, print_default: bool) -> anyhow::Result<()> {
    if print_default {
        print!("{}", ferry::config::DEFAULT_TOML);
        return Ok(());
    }
    let file = file.unwrap_or_else(|| PathBuf::from("ferry.toml"));
    let config = load(&file)?;
    println!(
        "{}: ok ({} credentials, {} systems, {} routes)",
        file.display(),
        config.credentials.len(),
        config.systems.len(),
        config.routes.len()
    );
    Ok(())
}

async fn list(config: &Path, filter: &FilterArgs, json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
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
    let store = open_store(config).await?;
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

async fn retry(args: RetryArgs) -> anyhow::Result<()> {
    let store = open_store(&args.config).await?;
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

async fn discard(args: DiscardArgs) -> anyhow::Result<()> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        bail!("give a --reason");
    }
    let store = open_store(&args.config).await?;
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

fn load(path: &Path) -> anyhow::Result<Config> {
    match Config::load(path) {
        Ok(c) => Ok(c),
        Err(ConfigError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            bail!("{} problem(s) in {}", problems.len(), path.display())
        }
        Err(e) => Err(e.into()),
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
    let config = load(&args.config)?;
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

async fn open_store(config: &Path) -> anyhow::Result<Store> {
    let config = load(config)?;
    Ok(Store::open(&config.server).await?)
}

async fn credentials(command: ferry::vault::cli::CredentialsCommand) -> anyhow::Result<()> {
    let key = ferry::vault::MasterKey::from_env(&ferry::config::process_env)?;
    let store = open_store(command.config()).await?;
    let now = Clock::System.now_ms();
    ferry::vault::cli::credentials(command, &store, &key, now, tokio::io::stdin()).await
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("Shutting down: finishing in-flight work.");
    shutdown.cancel();
}
