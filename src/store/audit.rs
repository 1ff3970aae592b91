//! Where an operator acted from, as the audit log records it: the console,
//! the admin API, the CLI, or an ERP client through its failure feed
//! (`GET /api/v1/failures`, named by the client key's credential). The store's acting methods take an actor as
//! one string, `channel:name` ([`Channel::actor`]); the audit writers of
//! both backends split it ([`Channel::split`]) into the `actor` and
//! `channel` columns, so every method keeps its signature and no caller
//! can forget the channel's column. An actor without a known channel (a
//! store method called directly) is recorded as it is, with no channel.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Console,
    Api,
    Cli,
    /// An ERP client key (`source = { kind = "api" }`), named by the
    /// credential it matched: its retries from the failure feed.
    Client,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Console,
        Channel::Api,
        Channel::Cli,
        Channel::Client,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Console => "console",
            Channel::Api => "api",
            Channel::Cli => "cli",
            Channel::Client => "client",
        }
    }

    /// The actor string for `name` acting from this channel.
    pub fn actor(self, name: &str) -> String {
        format!("{}:{name}", self.as_str())
    }

    /// The channel ("" when none) and the name an actor string carries.
    pub fn split(actor: &str) -> (&'static str, &str) {
        for c in Channel::ALL {
            if let Some(name) = actor
                .strip_prefix(c.as_str())
                .and_then(|r| r.strip_prefix(':'))
            {
                return (c.as_str(), name);
            }
        }
        ("", actor)
    }
}

#[cfg(test)]
mod tests {
    use super::Channel;

    #[test]
    fn an_actor_carries_its_channel() {
        assert_eq!(
            Channel::split(&Channel::Console.actor("ana")),
            ("console", "ana")
        );
        assert_eq!(
            Channel::split(&Channel::Api.actor("ops:bot")),
            ("api", "ops:bot")
        );
        assert_eq!(Channel::split("cli:root"), ("cli", "root"));
        assert_eq!(
            Channel::split(&Channel::Client.actor("erp_client")),
            ("client", "erp_client")
        );
        assert_eq!(Channel::split("ana"), ("", "ana"));
        assert_eq!(Channel::split("consoleana"), ("", "consoleana"));
    }
}
