//! Resolving the HTTP edge's limits in `[server]`: how long a client may
//! take over its headers and between body chunks, how many connections are
//! served at once, and how many bytes of unverified webhook bodies may be
//! buffered. Part of `resolve`; the accept loop (`crate::server`) and ingest
//! enforce them.

use std::time::Duration;

use super::raw::RawServer;
use super::resolve::Ctx;
use super::units::parse_size;

/// The limits of the HTTP edge (`server.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// A connection that has not sent a whole request head this long after
    /// it was opened (or after its last answer) is closed.
    pub header_read_timeout: Duration,
    /// A request body that sends nothing for this long is answered 408.
    pub body_idle_timeout: Duration,
    /// Connections served at once; `None`: derived from the open-file limit
    /// when the server starts (`crate::server::max_connections`).
    pub max_connections: Option<usize>,
    /// Bytes of webhook bodies buffered before their signature is checked,
    /// across all requests; past it a webhook is answered 503.
    pub max_unverified_bytes: usize,
}

impl Default for Edge {
    fn default() -> Self {
        Edge {
            header_read_timeout: Duration::from_secs(5),
            body_idle_timeout: Duration::from_secs(10),
            max_connections: None,
            max_unverified_bytes: 64 << 20,
        }
    }
}

pub(super) fn edge(cx: &mut Ctx<'_>, s: &RawServer) -> Edge {
    let d = Edge::default();
    let positive = |cx: &mut Ctx<'_>, key: &str, value: Option<&String>, default| {
        let loc = format!("server.{key}");
        let v = cx.duration(&loc, value, default);
        if v.is_zero() {
            cx.problem(loc, "must be longer than 0");
            return default;
        }
        v
    };
    let header_read_timeout = positive(
        cx,
        "header_read_timeout",
        s.header_read_timeout.as_ref(),
        d.header_read_timeout,
    );
    let body_idle_timeout = positive(
        cx,
        "body_idle_timeout",
        s.body_idle_timeout.as_ref(),
        d.body_idle_timeout,
    );
    if s.max_connections == Some(0) {
        cx.problem("server.max_connections", "must be at least 1");
    }
    let max_unverified_bytes = match s.max_unverified_bytes.as_deref().map(parse_size) {
        None => d.max_unverified_bytes,
        Some(Ok(n)) if n > 0 && n <= u32::MAX as usize => n,
        Some(Ok(_)) => {
            cx.problem(
                "server.max_unverified_bytes",
                "must be more than 0 and less than 4GiB",
            );
            d.max_unverified_bytes
        }
        Some(Err(e)) => {
            cx.problem("server.max_unverified_bytes", e);
            d.max_unverified_bytes
        }
    };
    Edge {
        header_read_timeout,
        body_idle_timeout,
        max_connections: s.max_connections.filter(|n| *n > 0),
        max_unverified_bytes,
    }
}
