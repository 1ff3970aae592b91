//! ferry: self-hosted integration middleware between an ERP and the commerce
//! and CRM platforms it talks to.
//!
//! # Layout
//!
//! The modules follow a message through ferry (see `docs/ARCHITECTURE.md`),
//! on two bottom layers that every stage imports and that import none of
//! them:
//!
//! * [`model`]: the vocabulary: delivery states, error classes, the `Wake`
//!   signal.
//! * [`limits`]: the pure limit policies: GCRA budgets (`pace`), the retry
//!   policy and `Retry-After`, the circuit breaker's state machine, the
//!   platforms' rate-limit dialects.
//!
//! The stages:
//!
//! * [`config`]: `ferry.toml` + env → a validated [`config::Config`].
//! * [`app`]: `App::build(config)` → `run(listener, shutdown)`: HTTP, workers,
//!   janitor, and the hot reload of the config file (`reload` says what
//!   starts one and keeps the last one's result).
//! * [`server`]: the accept loop under every HTTP edge: header and body-idle
//!   timeouts, the connection cap, graceful shutdown.
//! * [`ingest`]: HTTP ingest — signature schemes (`verify`), dedupe, `Idempotency-Key`;
//!   the ERP's failure feed (`GET /api/v1/failures`, retry) with its client key.
//! * [`store`]: the durable queue on SQLite or PostgreSQL: accept, claim,
//!   reserve, record, defer, retry, discard, list, prune.
//! * [`deliver`]: one worker loop per system (a worker step, `tick`, plus
//!   waiting) claiming its due deliveries; the system's breaker gates a
//!   failing system, `batch` groups deliveries for bulk endpoints, the budget
//!   spaces requests (and the dialects read platforms' limits), `retry`
//!   classifies and schedules.
//! * [`transform`]: body translation between claim and send; jq programs on
//!   their own guarded thread pool (`jq`, `pool`); JSON depth on raw bytes.
//! * [`vault`]: the encrypted credential store as an instance sees it: every
//!   version opened with the master key, re-read when the store changes;
//!   `ferry credentials ...`.
//! * [`connect`]: the outbound HTTP client and system authentication;
//!   SMTP submission for email alert channels (`connect::smtp`).
//! * [`admin`]: the operators' JSON API (the CLI uses the same store methods).
//! * [`alert`]: the alert watcher: conditions (failure groups, circuits,
//!   holds, queues, silence, ...) become alerts, ferry's own messages to
//!   the `[alerts.*]` channels.
//! * [`console`]: the operators' HTML pages at `/console` over the same
//!   store methods, signed in with [`access`]'s users and sessions; one
//!   route's failure list read-only for another system's iframe, with an
//!   embed token.
//! * [`access`]: users, roles, passwords and the sign-in throttle.
//! * [`telemetry`]: logs and Prometheus metrics.
//! * [`sync`]: `ferry sync`, the command-line client of bulk sync jobs.
//! * [`clock`], [`problem`]: injected time; RFC 9457 error bodies.
//! * [`redact`]: which headers carry credentials; digest comparison of secrets.
//! * [`sim`]: simulated platforms (a shop sending webhooks, a flaky ERP,
//!   Shopify-, HubSpot- and Salesforce-like APIs with their limits, an SMTP
//!   server) for
//!   `ferry demo`, `ferry bench` and the tests.

pub mod access;
pub mod admin;
pub mod alert;
pub mod app;
pub mod bench;
pub mod clock;
pub mod config;
pub mod connect;
pub mod console;
pub mod deliver;
pub mod ingest;
pub mod limits;
pub mod model;
pub mod problem;
pub mod redact;
pub mod reload;
pub mod server;
pub mod sim;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod transform;
pub mod vault;
