//! `ferry tokens add|list|remove`: the admin JSON API's bearer tokens, each
//! with a role (`viewer` reads, `operator` also acts on messages, `admin`
//! also manages access). A token is 256 random bits, printed once; the
//! store keeps only its SHA-256. `server.admin_token` stays an admin token.

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;

use ferry::clock::Clock;
use ferry::store::{Account, AccountKind, Store};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a token (printed once: store it now).
    Add {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        name: String,
        /// viewer, operator or admin
        #[arg(long)]
        role: String,
        /// Name recorded in the audit log.
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
    /// The tokens' names, roles and creation (never the tokens).
    List {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
    },
    /// Revoke a token at once.
    Remove {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        name: String,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
}

pub async fn run(
    command: TokensCommand,
    open: impl AsyncFnOnce(&PathBuf) -> anyhow::Result<Store>,
) -> anyhow::Result<()> {
    match command {
        TokensCommand::Add {
            config,
            name,
            role,
            actor,
        } => {
            let role = super::role(&role)?;
            super::account_name("token", &name)?;
            let store = open(&config).await?;
            let token = ferry::access::api_token();
            let sha = ferry::access::sha256_hex(&token);
            let t = Account {
                name: name.clone(),
                role,
                created_ms: Clock::System.now_ms(),
                created_by: ferry::store::Channel::Cli.actor(&actor),
            };
            if !store.add_account(AccountKind::Token, t, &sha).await? {
                bail!("a token named {name} exists already: remove it first");
            }
            println!("{token}");
            eprintln!(
                "token {name} ({}) created: it is shown only this once",
                role.as_str()
            );
        }
        TokensCommand::List { config } => {
            let store = open(&config).await?;
            println!(
                "{:<24}  {:<8}  {:<20}  CREATED BY",
                "NAME", "ROLE", "CREATED"
            );
            for t in store.accounts(AccountKind::Token).await? {
                println!(
                    "{:<24}  {:<8}  {:<20}  {}",
                    t.name,
                    t.role.as_str(),
                    ferry::deliver::hold::utc_time(t.created_ms),
                    t.created_by
                );
            }
        }
        TokensCommand::Remove {
            config,
            name,
            actor,
        } => {
            let store = open(&config).await?;
            if !store
                .remove_account(
                    AccountKind::Token,
                    &name,
                    &ferry::store::Channel::Cli.actor(&actor),
                    Clock::System.now_ms(),
                )
                .await?
            {
                bail!("no token named {name}");
            }
            println!("token {name} removed");
        }
    }
    Ok(())
}
