//! The vocabulary every stage speaks, at the bottom of the crate: it imports
//! nothing of ferry's. A delivery's [`State`] (the message lifecycle of
//! DESIGN.md), the [`ErrorClass`] of a failed attempt, and [`Wake`], the
//! signal that work is due (an accept, an operator's retry, a closing
//! breaker, another instance's commit on PostgreSQL), [`Chain`], how an
//! error is printed with its causes, and the names as types (`ids`:
//! [`MessageId`], [`RouteName`], [`SystemName`]).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

mod ids;
pub use ids::{MessageId, RouteName, SystemName, credential_name};

/// Why an attempt did not deliver; stored with the message and used in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Network,
    Timeout,
    RateLimited,
    ServerError,
    Rejected,
    Auth,
    NotFound,
    Mapping,
    /// DESIGN's name for a delivery stopped by its system's circuit breaker.
    /// The breaker gates the claim, so a delivery waits behind an open
    /// circuit unattempted and no attempt ends with this class; it stays
    /// in the vocabulary (filters accept it) for the day one does.
    CircuitOpen,
    Config,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 10] = [
        ErrorClass::Network,
        ErrorClass::Timeout,
        ErrorClass::RateLimited,
        ErrorClass::ServerError,
        ErrorClass::Rejected,
        ErrorClass::Auth,
        ErrorClass::NotFound,
        ErrorClass::Mapping,
        ErrorClass::CircuitOpen,
        ErrorClass::Config,
    ];

    /// The stable snake_case name, identical to the serde representation.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Rejected => "rejected",
            ErrorClass::Auth => "auth",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Mapping => "mapping",
            ErrorClass::CircuitOpen => "circuit_open",
            ErrorClass::Config => "config",
        }
    }

    /// Inverse of [`ErrorClass::as_str`] (exact match).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a delivery stands. `queued → delivering → delivered`, with
/// `retrying` between attempts and `dead` / `discarded` as the ends an
/// operator sees; `skipped` when the route's mapping gave nothing to send;
/// `superseded` when a dead delivery's entity (`entity_key`, or the
/// `ordering_key`) had a later message delivered (auto-resolve).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Delivering,
    Retrying,
    Delivered,
    Dead,
    Discarded,
    Skipped,
    Superseded,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Queued,
        State::Delivering,
        State::Retrying,
        State::Delivered,
        State::Dead,
        State::Discarded,
        State::Skipped,
        State::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Delivering => "delivering",
            State::Retrying => "retrying",
            State::Delivered => "delivered",
            State::Dead => "dead",
            State::Discarded => "discarded",
            State::Skipped => "skipped",
            State::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Still owed a delivery attempt (counts toward queue depth).
    pub fn is_pending(self) -> bool {
        matches!(self, State::Queued | State::Delivering | State::Retrying)
    }
}

/// Tells idle worker loops that work may be due. Every loop sees every
/// signal, and a signal sent while a loop is busy is not lost.
#[derive(Clone)]
pub struct Wake(Arc<watch::Sender<u64>>);

impl Default for Wake {
    fn default() -> Self {
        Wake(Arc::new(watch::Sender::new(0)))
    }
}

impl Wake {
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// An error with its causes, for a log line or a problem's detail:
/// `SQLite: disk I/O error`. Errors keep their causes as `source()` and
/// print only their own words, so this is how a cause reaches the reader.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}
