//! The binary's subcommands that need more than a few lines of `main.rs`
//! (which parses the command line and dispatches): the top of the flow,
//! calling into the library like any other client of it.

pub mod audit;
pub mod embed;
pub mod failures;
pub mod mapping;
pub mod messages;
pub mod release;
pub mod tokens;
pub mod users;

use anyhow::bail;
use ferry::store::Role;

/// `--role`'s value, or why not.
fn role(s: &str) -> anyhow::Result<Role> {
    match Role::parse(s) {
        Some(r) => Ok(r),
        None => bail!("--role {s}: use viewer, operator or admin"),
    }
}

/// A token's or user's name: what the audit log and the console show.
fn account_name(what: &str, name: &str) -> anyhow::Result<()> {
    ferry::access::account_name(what, name).map_err(anyhow::Error::msg)
}
