//! `ferry embed add|list|remove`: read-only embed tokens, each showing one
//! route's failures at `/console/embed/failures?token=...` to a page of
//! another system (`console.embed_origins` says which may frame it). A
//! token is 256 random bits, printed once; the store keeps only its
//! SHA-256, and lists and the audit log name it by the start of that hash.

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;

use ferry::clock::Clock;
use ferry::config::Config;
use ferry::store::{Channel, EmbedToken, Store, embed_id};

#[derive(Subcommand)]
pub enum EmbedCommand {
    /// Make a token that shows ROUTE's failures (printed once: store it now).
    Add {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        route: String,
        /// Name recorded in the audit log.
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
    /// The tokens' ids, routes and creation (never the tokens).
    List {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
    },
    /// Revoke a token at once, by the id `list` shows (or the token).
    Remove {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        id: String,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
}

impl EmbedCommand {
    pub fn config(&self) -> &PathBuf {
        match self {
            EmbedCommand::Add { config, .. }
            | EmbedCommand::List { config }
            | EmbedCommand::Remove { config, .. } => config,
        }
    }
}

pub async fn run(command: EmbedCommand, config: &Config, store: &Store) -> anyhow::Result<()> {
    match command {
        EmbedCommand::Add { route, actor, .. } => {
            if config.route(&route).is_none() {
                bail!("there is no route named {route} in the config");
            }
            let token = ferry::access::embed_token();
            let t = EmbedToken {
                token_sha256: ferry::access::sha256_hex(&token),
                route: route.clone(),
                created_ms: Clock::System.now_ms(),
                created_by: Channel::Cli.actor(&actor),
            };
            if !store.add_embed_token(t.clone()).await? {
                bail!("a token with this hash exists already: run the command again");
            }
            println!("{token}");
            eprintln!(
                "embed token {} for route {route} created: it is shown only this once\n\
                 frame it as <iframe src=\"https://<ferry>/console/embed/failures?token={token}\"></iframe>\n\
                 from a page whose origin is in console.embed_origins",
                t.id()
            );
        }
        EmbedCommand::List { .. } => {
            println!(
                "{:<12}  {:<24}  {:<20}  CREATED BY",
                "ID", "ROUTE", "CREATED"
            );
            for t in store.embed_tokens().await? {
                println!(
                    "{:<12}  {:<24}  {:<20}  {}",
                    t.id(),
                    t.route,
                    ferry::deliver::hold::utc_time(t.created_ms),
                    t.created_by
                );
            }
        }
        EmbedCommand::Remove { id, actor, .. } => {
            let sha = which(store, &id).await?;
            let actor = Channel::Cli.actor(&actor);
            if !store
                .remove_embed_token(&sha, &actor, Clock::System.now_ms())
                .await?
            {
                bail!("no embed token {id}");
            }
            println!("embed token {} removed", embed_id(&sha));
        }
    }
    Ok(())
}

/// The SHA-256 of the token `id` names: the start of a stored hash (at
/// least 8 hex digits, naming one token only), or the token itself.
async fn which(store: &Store, id: &str) -> anyhow::Result<String> {
    let tokens = store.embed_tokens().await?;
    let id_hex = id.len() >= 8 && id.chars().all(|c| c.is_ascii_hexdigit());
    if id_hex {
        let lower = id.to_ascii_lowercase();
        let found: Vec<&EmbedToken> = tokens
            .iter()
            .filter(|t| t.token_sha256.starts_with(&lower))
            .collect();
        match found.as_slice() {
            [one] => return Ok(one.token_sha256.clone()),
            [] => {}
            _ => bail!("{id} names {} embed tokens: give more of it", found.len()),
        }
    }
    let sha = ferry::access::sha256_hex(id);
    if tokens.iter().any(|t| t.token_sha256 == sha) {
        return Ok(sha);
    }
    bail!("no embed token {id} (see `ferry embed list`)")
}
