//! The HTTP listener under every edge (ingest, admin, health, metrics):
//! ferry's own accept loop over hyper's HTTP/1 connections, in place of
//! `axum::serve`, so that slow or idle clients cannot starve the rest.
//! A connection must send its request head within `header_read_timeout`;
//! every request body is wrapped in [`IdleBody`] (`body_idle_timeout`); at
//! most `max_connections` are served at once, and at the cap the loop stops
//! calling `accept` (the kernel's backlog holds the rest) instead of failing.
//! An `accept` error (EMFILE, ENFILE: out of file descriptors) is logged and
//! retried after a short pause, never the end of the loop. Shutdown stops
//! accepting and lets the requests in flight finish.

mod body;

pub use body::{BodyIdle, IdleBody, idle_timeout};

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use crate::config::Config;
use crate::telemetry::Metrics;

/// File descriptors kept back from inbound connections for everything else
/// ferry opens: the store's files or its PostgreSQL pool, the listener,
/// logs, DNS lookups.
const RESERVED_FDS: u64 = 64;
/// The least `max_connections` derived from a small open-file limit.
const MIN_CONNECTIONS: usize = 16;
/// The most derived from a large (or unlimited) open-file limit.
const MAX_DERIVED_CONNECTIONS: u64 = 1 << 16;
/// How long the loop pauses after `accept` failed for want of a resource.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one log line per this long about failing accepts.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// What the accept loop enforces, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        let edge = &config.server.edge;
        Limits {
            header_read_timeout: edge.header_read_timeout,
            body_idle_timeout: edge.body_idle_timeout,
            max_connections: max_connections(config),
        }
    }
}

/// `server.max_connections`, or by default what the process's open-file
/// limit leaves after [`RESERVED_FDS`] and one descriptor per outbound
/// request the systems may have in flight.
pub fn max_connections(config: &Config) -> usize {
    config.server.edge.max_connections.unwrap_or_else(|| {
        let outbound = config.systems.values().map(|s| s.max_concurrency).sum();
        derived_max_connections(open_file_limit(), outbound)
    })
}

/// The soft `RLIMIT_NOFILE`; `None` when unlimited.
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

fn derived_max_connections(soft_limit: Option<u64>, outbound: usize) -> usize {
    let limit = soft_limit.unwrap_or(u64::MAX).min(MAX_DERIVED_CONNECTIONS);
    let left = limit
        .saturating_sub(RESERVED_FDS)
        .saturating_sub(outbound as u64);
    (left as usize).max(MIN_CONNECTIONS)
}

/// Serves `router` on `listener` until `shutdown`, then waits for the
/// connections' requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    metrics
        .http_connections_max
        .set(limits.max_connections as i64);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connections = TaskTracker::new();
    let mut failing = AcceptErrors::default();
    loop {
        // At the cap, wait here: not calling accept leaves new connections
        // in the kernel's backlog until a slot frees.
        let slot = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                metrics.accept_errors.inc();
                failing.seen(&e);
                if !per_connection(&e) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let router = router.clone();
        let idle = limits.body_idle_timeout;
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut router = router.clone();
            let mut req = req.map(|b| Body::new(IdleBody::new(b, idle)));
            // The peer's address, for the console's sign-in throttle and audit.
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            router.call(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let shutdown = shutdown.clone();
        let metrics = metrics.clone();
        connections.spawn(async move {
            metrics.http_connections.inc();
            let mut conn = pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            metrics.http_connections.dec();
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// An error of one connection that went away before it was accepted: the
/// next accept may succeed at once. Anything else (out of descriptors or
/// memory) needs a pause.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Logs failing accepts at most once per [`ACCEPT_LOG_EVERY`], with a count.
#[derive(Default)]
struct AcceptErrors {
    last_log: Option<Instant>,
    since: u64,
}

impl AcceptErrors {
    fn seen(&mut self, e: &io::Error) {
        self.since += 1;
        if self
            .last_log
            .is_some_and(|t| t.elapsed() < ACCEPT_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            error = %e,
            failures = self.since,
            "Accepting a connection failed; the listener goes on after a short pause. Out of file descriptors? Lower server.max_connections or raise the open-file limit (ulimit -n)."
        );
        self.last_log = Some(Instant::now());
        self.since = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_for_the_store_and_outbound_requests() {
        assert_eq!(derived_max_connections(Some(1024), 64), 1024 - 64 - 64);
        assert_eq!(derived_max_connections(Some(256), 16), 256 - 64 - 16);
        assert_eq!(derived_max_connections(Some(64), 16), MIN_CONNECTIONS);
        assert_eq!(derived_max_connections(None, 100), (1 << 16) - 164);
        assert_eq!(derived_max_connections(Some(1 << 20), 0), (1 << 16) - 64);
    }

    #[test]
    fn only_a_vanished_peer_is_retried_without_a_pause() {
        let emfile = io::Error::from_raw_os_error(24);
        let enfile = io::Error::from_raw_os_error(23);
        assert!(!per_connection(&emfile));
        assert!(!per_connection(&enfile));
        assert!(per_connection(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
    }
}
