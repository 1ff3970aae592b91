//! The shapes of the admin API's answers, for its OpenAPI document
//! (`admin::openapi`): the handlers build their JSON with `json!` as they
//! always have, and these types say what that JSON is, field for field
//! (the store's own types, such as `MessageSummary`, derive their schemas
//! where they are defined). `tests/it/openapi/` checks live answers
//! against them, so a changed answer without a changed schema fails.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

use crate::limits::breaker::Status as CircuitStatus;
use crate::limits::quota::Status as QuotaStatus;
use crate::store::{AuditEntry, FailureGroup, MessageDetail, MessageSummary, RouteStats};

/// A message in a list, with why it waits, if it does.
#[derive(Serialize, ToSchema)]
pub struct ListedMessage {
    #[serde(flatten)]
    summary: MessageSummary,
    /// Why a delivery owed an attempt has not had it yet ("held by shop's
    /// Retry-After until ...", "next attempt at ..."); `null` when nothing
    /// waits.
    waiting: Option<String>,
}

/// `GET /messages`: newest first, one page.
#[derive(Serialize, ToSchema)]
pub struct MessageList {
    messages: Vec<ListedMessage>,
}

/// `GET /messages/{id}`: the message with its attempt timeline.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    #[serde(flatten)]
    detail: MessageDetail,
    /// As in [`ListedMessage`].
    waiting: Option<String>,
}

/// Deliveries requeued now, with a fresh retry budget.
#[derive(Serialize, ToSchema)]
pub struct Requeued {
    requeued: u64,
}

/// A dry run's count of what the action would select.
#[derive(Serialize, ToSchema)]
pub struct Matched {
    matched: u64,
    /// Always `true`.
    dry_run: bool,
}

/// A retry by filter or group: requeued, or a dry run's count.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RetryOutcome {
    Requeued(Requeued),
    Matched(Matched),
}

/// Deliveries discarded by filter or group.
#[derive(Serialize, ToSchema)]
pub struct DiscardedMany {
    discarded: u64,
}

/// A discard by filter or group: discarded, or a dry run's count.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum DiscardOutcome {
    Discarded(DiscardedMany),
    Matched(Matched),
}

/// One message discarded.
#[derive(Serialize, ToSchema)]
pub struct DiscardedOne {
    /// The message's id.
    discarded: String,
}

/// An edited message, requeued.
#[derive(Serialize, ToSchema)]
pub struct Edited {
    /// The message's id.
    edited: String,
    /// The replay's downstream idempotency key (new: its effect differs).
    delivery_key: String,
}

/// A released ordering key.
#[derive(Serialize, ToSchema)]
pub struct Released {
    /// Dead deliveries discarded (with `dry_run`: that would be).
    released: u64,
    /// Present (`true`) on a dry run only.
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
}

/// `GET /failures`: the groups, latest first.
#[derive(Serialize, ToSchema)]
pub struct GroupList {
    groups: Vec<FailureGroup>,
}

/// `GET /routes`: message counts per route and state.
#[derive(Serialize, ToSchema)]
pub struct RouteList {
    routes: Vec<RouteStats>,
}

/// A platform's hold on a system: nothing is sent before `until_ms`.
#[derive(Serialize, ToSchema)]
pub struct HoldView {
    until_ms: i64,
    /// `until_ms` as UTC time.
    until: String,
    /// What asked for it: `Retry-After`, a platform's rate-limit headers.
    source: String,
    /// Whether the platform asked for longer and the hold was cut.
    capped: bool,
    /// The hold in words.
    explanation: String,
}

/// One system: its queue, circuit breaker, quota, places and hold.
#[derive(Serialize, ToSchema)]
pub struct SystemView {
    name: String,
    /// Deliveries still owed an attempt.
    queued: u64,
    circuit: Option<CircuitStatus>,
    quota: Option<QuotaStatus>,
    /// Requests that may be in flight at once now.
    concurrency_limit: u64,
    hold: Option<HoldView>,
}

/// `GET /systems`.
#[derive(Serialize, ToSchema)]
pub struct SystemList {
    systems: Vec<SystemView>,
}

/// `GET /audit`: newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    audit: Vec<AuditEntry>,
}

/// A stored credential's version still accepted.
#[derive(Serialize, ToSchema)]
pub struct CredentialVersionView {
    version: i64,
    created_ms: i64,
    expires_ms: Option<i64>,
    /// When a superseded version stops being accepted; `null` for the newest.
    accepted_until_ms: Option<i64>,
    last_used_ms: Option<i64>,
}

/// Where a credential comes from.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    Env,
    File,
    Store,
}

/// A configured credential's metadata, never its value: `env`, `file` or
/// `store` (with `versions`) as its `source` says.
#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    name: String,
    source: CredentialSource,
    /// The environment variable (`source: env`).
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    /// The file (`source: file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    /// The encrypted store's name (`source: store`).
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    /// The versions still accepted, newest first (`source: store`).
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<CredentialVersionView>>,
}

/// `GET /credentials`.
#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    credentials: Vec<CredentialView>,
}

/// A route's jq mapping.
#[derive(Serialize, ToSchema)]
pub struct MappingView {
    file: String,
    /// `body` or `request`.
    emits: String,
}

/// A route's transform: `"passthrough"`, or its mapping.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TransformView {
    /// `passthrough`
    Passthrough(String),
    Mapping(MappingView),
}

/// A route as configured.
#[derive(Serialize, ToSchema)]
pub struct ConfigRoute {
    name: String,
    system: String,
    api_version: Option<String>,
    next_api_version: Option<String>,
    transform: TransformView,
    /// The next API version's mapping run in shadow, if any.
    shadow: Option<String>,
}

/// The last reload: when, its result and why.
#[derive(Serialize, ToSchema)]
pub struct LastReloadView {
    at_ms: i64,
    at: String,
    /// `applied`, `refused` or `unchanged`.
    result: String,
    /// Why it was refused (the problems, one per line).
    reason: Option<String>,
    /// Settings that changed but take effect only after a restart.
    restart_needed: Vec<String>,
}

/// `GET /config`: the running configuration and its reloads.
#[derive(Serialize, ToSchema)]
pub struct ConfigView {
    file: Option<String>,
    /// SHA-256 of the config file and the mapping files it names.
    hash: Option<String>,
    loaded_at: Option<String>,
    last_reload: Option<LastReloadView>,
    /// Settings changed since start that wait for a restart.
    restart_needed: Vec<String>,
    /// Whether the config file is watched and reloaded.
    hot_reload: bool,
    routes: Vec<ConfigRoute>,
    systems: Vec<String>,
}

/// A message whose shadow output differed from the live one.
#[derive(Serialize, ToSchema)]
pub struct ShadowExample {
    message_id: String,
    at: String,
    /// Path-level differences (`$.price: "12.50" → 12.5 (string → number)`).
    changes: Vec<String>,
}

/// `GET /routes/{route}/shadow`: the next API version's mapping run beside
/// the live one, compared.
#[derive(Serialize, ToSchema)]
pub struct ShadowView {
    route: String,
    enabled: bool,
    api_version: Option<String>,
    next_api_version: Option<String>,
    live_mapping: Option<String>,
    next_mapping: Option<String>,
    compared: u64,
    differing: u64,
    not_compared: u64,
    since: Option<String>,
    examples: Vec<ShadowExample>,
}
