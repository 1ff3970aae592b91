//! The `ferry` command line: serve (with hot reload of its config file),
//! demo, check-config, mapping (test and diff jq mappings), the operator's
//! message commands (list, show, retry, discard, release-key — the same store
//! methods the admin API uses), and bench.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use ferry::app::App;
use ferry::clock::Clock;
use ferry::config::{Config, ConfigError};
use ferry::store::Store;

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
    /// The audit log: who did what, when, on which messages, from where.
    Audit(cli::audit::AuditArgs),
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
    /// Read-only embed tokens: one route's failures framed in another system's page.
    Embed {
        #[command(subcommand)]
        command: cli::embed::EmbedCommand,
    },
    /// Bearer tokens of the admin API, with roles (viewer, operator, admin).
    Tokens {
        #[command(subcommand)]
        command: cli::tokens::TokensCommand,
    },
    /// List or show messages.
    Messages {
        #[command(subcommand)]
        command: cli::messages::MessagesCommand,
    },
    /// Requeue a message (or every message matching a filter) with a fresh retry budget.
    Retry(cli::messages::RetryArgs),
    /// Stop a message (or every message matching a filter) for good, with a reason.
    Discard(cli::messages::DiscardArgs),
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
        Command::Audit(args) => {
            let store = open_store(&args.config).await?;
            cli::audit::run(args, &store).await
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
        Command::Messages { command } => cli::messages::run(command).await,
        Command::Users { command } => cli::users::run(command, async |c| open_store(c).await).await,
        Command::Tokens { command } => {
            cli::tokens::run(command, async |c| open_store(c).await).await
        }
        Command::Embed { command } => {
            let config = load(command.config())?;
            let store = Store::open(&config.server).await?;
            cli::embed::run(command, &config, &store).await
        }
        Command::Retry(args) => cli::messages::retry(args).await,
        Command::Discard(args) => cli::messages::discard(args).await,
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
