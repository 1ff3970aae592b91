//! Every integration test in one binary (one link of the crate instead of
//! one per file): each module starts the real app (or the real `ferry`
//! binary) against a temp store and a scriptable downstream; `common` is the
//! shared harness. `tests/proxy_env.rs` stays its own binary because it sets
//! proxy variables in the process environment, which every other test's HTTP
//! client would read.

mod common;

mod access_api;
mod adaptive;
mod admin;
mod alerts;
mod bench;
mod browser;
mod bulk;
mod cli;
mod client_libraries;
mod console;
mod crash;
mod credentials;
mod delivery;
mod edit;
mod export;
mod failures;
mod feed;
mod health;
mod holds;
mod hostile;
mod idempotency;
mod ingest;
mod isolation;
mod layers;
mod limits;
mod mapping_cli;
mod mappings;
mod oauth;
mod openapi;
mod ordering;
mod platforms;
mod reload;
mod salesforce;
mod scale_out;
mod scale_out_crash;
mod smtp;
mod store_contract;
mod tokens;
mod verify_props;
