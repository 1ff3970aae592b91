//! `ferry users add|list|passwd|remove`: the console's people, each with a
//! role (`viewer`, `operator`, `admin`) and a password read from stdin
//! (never an argument, so it stays out of shell history and `ps`), kept as
//! an Argon2id hash. There is no default user or password.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use ferry::access::password;
use ferry::clock::Clock;
use ferry::store::{Account, AccountKind, Store};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from stdin.
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
    /// Names, roles and creation (never the passwords).
    List {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
    },
    /// Set a user's password (read from stdin).
    Passwd {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        name: String,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
    Remove {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        name: String,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
}

/// The password on stdin's first line, hashed.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let pw = line.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        bail!("give the password on stdin (e.g. from a password manager)");
    }
    Ok(password::hash(pw)?)
}

pub async fn run(
    command: UsersCommand,
    open: impl AsyncFnOnce(&PathBuf) -> anyhow::Result<Store>,
) -> anyhow::Result<()> {
    let now = Clock::System.now_ms();
    match command {
        UsersCommand::Add {
            config,
            name,
            role,
            actor,
        } => {
            let role = super::role(&role)?;
            super::account_name("user", &name)?;
            let phc = password_from_stdin()?;
            let store = open(&config).await?;
            let user = Account {
                name: name.clone(),
                role,
                created_ms: now,
                created_by: ferry::store::Channel::Cli.actor(&actor),
            };
            if !store.add_account(AccountKind::User, user, &phc).await? {
                bail!("a user named {name} exists already");
            }
            println!("user {name} ({}) added", role.as_str());
        }
        UsersCommand::List { config } => {
            let store = open(&config).await?;
            println!(
                "{:<24}  {:<8}  {:<20}  CREATED BY",
                "NAME", "ROLE", "CREATED"
            );
            for u in store.accounts(AccountKind::User).await? {
                let at = ferry::deliver::hold::utc_time(u.created_ms);
                println!(
                    "{:<24}  {:<8}  {:<20}  {}",
                    u.name,
                    u.role.as_str(),
                    at,
                    u.created_by
                );
            }
        }
        UsersCommand::Passwd {
            config,
            name,
            actor,
        } => {
            let phc = password_from_stdin()?;
            let store = open(&config).await?;
            if !store
                .set_password(&name, &phc, &ferry::store::Channel::Cli.actor(&actor), now)
                .await?
            {
                bail!("no user named {name}");
            }
            println!("password of {name} changed");
        }
        UsersCommand::Remove {
            config,
            name,
            actor,
        } => {
            let store = open(&config).await?;
            if !store
                .remove_account(
                    AccountKind::User,
                    &name,
                    &ferry::store::Channel::Cli.actor(&actor),
                    now,
                )
                .await?
            {
                bail!("no user named {name}");
            }
            println!("user {name} removed");
        }
    }
    Ok(())
}
