//! `ferry failures` and `ferry groups`: the failure groups (`store::failures`)
//! from the command line, against the store the config names; the same
//! store methods as the admin API's `/failures` (list, show, status, retry
//! and discard a whole group with a dry-run count), audited the same way.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, Subcommand};

use ferry::model::ErrorClass;
use ferry::store::{
    FailureGroup, GroupFilter, GroupStatus, MessageFilter, Selection, State, StatusMark, Store,
};

#[derive(Subcommand)]
pub enum FailuresCommand {
    /// The failure groups, latest first.
    List {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        system: Option<String>,
        /// Error class (rejected, timeout, ...)
        #[arg(long)]
        class: Option<String>,
        /// open (default), acknowledged, resolved or all
        #[arg(long, default_value = "open")]
        status: String,
        #[arg(long)]
        json: bool,
    },
    /// One group, as JSON.
    Show {
        #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
        config: PathBuf,
        group: String,
    },
}

#[derive(Args)]
pub struct GroupArgs {
    #[arg(long, short, env = "FERRY_CONFIG", default_value = "ferry.toml")]
    config: PathBuf,
    group: String,
    #[arg(long, default_value = "")]
    note: String,
    /// Name recorded in the audit log.
    #[arg(long, env = "USER", default_value = "cli")]
    actor: String,
    /// Only count what would be retried or discarded.
    #[arg(long)]
    dry_run: bool,
    /// Why the group's messages are discarded (`discard`).
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// Mark a group acknowledged (someone is on it).
    Ack(GroupArgs),
    /// Mark a group resolved; a later failure re-opens it.
    Resolve(GroupArgs),
    /// Mark a group open again.
    Reopen(GroupArgs),
    /// Requeue the group's dead messages.
    Retry(GroupArgs),
    /// Discard the group's dead messages (`--reason`).
    Discard(GroupArgs),
}

impl FailuresCommand {
    pub fn config(&self) -> &Path {
        match self {
            FailuresCommand::List { config, .. } | FailuresCommand::Show { config, .. } => config,
        }
    }
}

impl GroupsCommand {
    fn args(&self) -> &GroupArgs {
        match self {
            GroupsCommand::Ack(a)
            | GroupsCommand::Resolve(a)
            | GroupsCommand::Reopen(a)
            | GroupsCommand::Retry(a)
            | GroupsCommand::Discard(a) => a,
        }
    }

    pub fn config(&self) -> &Path {
        &self.args().config
    }
}

pub async fn failures(cmd: FailuresCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        FailuresCommand::List {
            route,
            system,
            class,
            status,
            json,
            ..
        } => {
            let class = match class.as_deref() {
                None => None,
                Some(c) => match ErrorClass::parse(c) {
                    Some(c) => Some(c),
                    None => bail!("unknown error class `{c}`"),
                },
            };
            let status = match status.as_str() {
                "all" => None,
                s => match GroupStatus::parse(s) {
                    Some(s) => Some(s),
                    None => bail!("status `{s}`: use open, acknowledged, resolved or all"),
                },
            };
            let filter = GroupFilter {
                route,
                system,
                class,
                status,
            };
            let groups = store.failure_groups(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&groups)?);
            } else {
                for g in &groups {
                    println!("{}", line(g));
                }
            }
            Ok(())
        }
        FailuresCommand::Show { group, .. } => match store.failure_group(&group).await? {
            Some(g) => {
                println!("{}", serde_json::to_string_pretty(&g)?);
                Ok(())
            }
            None => bail!("no failure group {group}"),
        },
    }
}

/// A group on one line: key, count, status, class, route → system, reason.
fn line(g: &FailureGroup) -> String {
    format!(
        "{}  {:>6}  {:<12}  {:<12}  {} -> {}  {}",
        g.key,
        g.count,
        g.status.as_str(),
        g.class.map_or("-", |c| c.as_str()),
        g.route,
        g.system,
        g.reason
    )
}

pub async fn groups(cmd: GroupsCommand, store: &Store, now_ms: i64) -> anyhow::Result<()> {
    let a = cmd.args();
    let Some(group) = store.failure_group(&a.group).await? else {
        bail!("no failure group {}", a.group);
    };
    let dead = MessageFilter {
        state: Some(State::Dead),
        group: Some(group.key.clone()),
        ..Default::default()
    };
    let status = match &cmd {
        GroupsCommand::Ack(_) => GroupStatus::Acknowledged,
        GroupsCommand::Resolve(_) => GroupStatus::Resolved,
        GroupsCommand::Reopen(_) => GroupStatus::Open,
        GroupsCommand::Retry(_) => {
            let n = store
                .retry(
                    Selection::Filter(dead),
                    &ferry::store::Channel::Cli.actor(&a.actor),
                    now_ms,
                    a.dry_run,
                )
                .await?;
            match a.dry_run {
                true => println!("{n} message(s) would be retried"),
                false => println!("{n} message(s) requeued"),
            }
            return Ok(());
        }
        GroupsCommand::Discard(_) => {
            let reason = a.reason.as_deref().map(str::trim).unwrap_or_default();
            if reason.is_empty() {
                bail!("give a --reason");
            }
            let n = store
                .discard_matching(
                    dead,
                    reason,
                    &ferry::store::Channel::Cli.actor(&a.actor),
                    now_ms,
                    a.dry_run,
                )
                .await?;
            match a.dry_run {
                true => println!("{n} message(s) would be discarded"),
                false => println!("{n} message(s) discarded"),
            }
            return Ok(());
        }
    };
    let mark = StatusMark {
        status,
        note: a.note.trim().to_owned(),
        actor: ferry::store::Channel::Cli.actor(&a.actor),
        at_ms: now_ms,
    };
    store.set_group_status(&group.key, mark).await?;
    println!("group {} is {}", group.key, status.as_str());
    Ok(())
}
