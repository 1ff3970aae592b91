//! The store's data: what goes in (`NewMessage`, `AttemptRecord`) and what
//! comes out (`Claimed`, `MessageSummary`, `MessageDetail`), shared by every
//! backend. The delivery states themselves are the crate's vocabulary
//! (`crate::model::State`, re-exported here).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use crate::model::{ErrorClass, MessageId, RouteName, State, SystemName};

/// A verified inbound message, ready to be committed.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub route: RouteName,
    /// Destination system of the route's delivery.
    pub system: SystemName,
    pub received_ms: i64,
    pub event_id: Option<String>,
    /// Request headers as a JSON object (credentials redacted).
    pub headers: String,
    pub body: Bytes,
    /// Downstream `Idempotency-Key`, stable across retries and replays.
    pub delivery_key: String,
    pub dedupe: Option<DedupeKey>,
    pub idempotency: Option<IdempotencyRecord>,
    /// The entity it is about, when its route orders by one: delivered
    /// after every earlier message of its route with the same key.
    pub ordering_key: Option<String>,
    /// The route's `entity_key` of the body: whose later delivery
    /// supersedes this one if it ends dead.
    pub entity_key: Option<String>,
    /// The bulk sync job it came in with, if any.
    pub job_id: Option<String>,
}

/// A bulk sync job as its upload starts.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub route: String,
    /// The API client that uploaded it.
    pub client: Option<String>,
    pub created_ms: i64,
}

/// One NDJSON line that could not become a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// 1-based.
    pub line: u64,
    pub error: String,
}

/// What an upload ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUpload {
    pub lines: u64,
    pub rejected: u64,
    /// The first errors (a bounded list).
    pub errors: Vec<LineError>,
    /// When the whole file was read; `None` when the upload broke off (the
    /// job is not done until it is resumed).
    pub finished_ms: Option<i64>,
}

/// A job and its messages' progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobView {
    pub id: String,
    pub route: String,
    /// The API client that uploaded it: only that client may read it.
    #[serde(skip)]
    pub client: Option<String>,
    pub created_ms: i64,
    /// When the whole upload was read; `None` while it streams in, or when
    /// it broke off and has not been resumed.
    pub finished_ms: Option<i64>,
    pub lines: u64,
    pub rejected: u64,
    pub errors: Vec<LineError>,
    /// Its messages by state.
    pub messages: RouteStats,
}

impl JobView {
    /// Uploaded, and no message is still owed an attempt.
    pub fn done(&self) -> bool {
        self.finished_ms.is_some() && self.messages.pending() == 0
    }
}

#[derive(Debug, Clone)]
pub struct DedupeKey {
    pub key: String,
    pub expires_ms: i64,
}

/// The ERP API's `Idempotency-Key`, scoped to one client credential, with the
/// response to replay for it.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub client: String,
    pub key: String,
    /// Hash of route and body: same key with another fingerprint is a misuse.
    pub fingerprint: Vec<u8>,
    pub expires_ms: i64,
    pub response: StoredResponse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Committed: a new message with its delivery.
    New,
    /// The dedupe key was seen within its window; nothing stored.
    Duplicate { original: String },
    /// The idempotency key was used before with the same request.
    Replay(StoredResponse),
    /// The idempotency key was used before with a different request.
    KeyReused,
}

/// A leased delivery, with what the worker needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub message_id: MessageId,
    pub route: RouteName,
    pub system: SystemName,
    pub delivery_key: String,
    pub body: Bytes,
    /// Budget-counted attempts so far.
    pub attempts: u32,
    pub rate_limited_streak: u32,
    pub auth_streak: u32,
    /// Start of the max-age window (reception, or the last manual retry).
    pub budget_start_ms: i64,
    /// When ferry first received the message.
    pub received_ms: i64,
    /// The lease's expiry; `record` only applies while it still holds.
    pub lease_until: i64,
}

/// What went out on the wire (secrets redacted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RequestLog {
    pub method: String,
    pub url: String,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    pub body_excerpt: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ResponseLog {
    pub status: u16,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    pub body_excerpt: String,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    Retry {
        at_ms: i64,
        counts_against_budget: bool,
        rate_limited: bool,
        auth: bool,
    },
    Dead,
    /// The mapping gave nothing to send: finished, like delivered.
    Skipped,
}

/// How a verdict lands in a delivery row, the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landing {
    pub state: &'static str,
    /// The next due time; `None` keeps the column as it is.
    pub next_ms: Option<i64>,
    /// Attempts to add to the budget count (0 or 1).
    pub budget: i32,
    pub rate_limited: bool,
    pub auth: bool,
}

impl Next {
    pub fn landing(self) -> Landing {
        let done = |state| Landing {
            state,
            next_ms: None,
            budget: 1,
            rate_limited: false,
            auth: false,
        };
        match self {
            Next::Delivered => done("delivered"),
            Next::Dead => done("dead"),
            Next::Skipped => done("skipped"),
            Next::Retry {
                at_ms,
                counts_against_budget,
                rate_limited,
                auth,
            } => Landing {
                state: "retrying",
                next_ms: Some(at_ms),
                budget: i32::from(counts_against_budget),
                rate_limited,
                auth,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub lease_until: i64,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub request: RequestLog,
    pub response: Option<ResponseLog>,
    pub class: Option<ErrorClass>,
    pub explanation: String,
    pub hint: String,
    pub next: Next,
    /// The failure group ([`super::group_key`]) when `next` is dead; the
    /// store keeps it only then.
    pub failure_group: Option<String>,
}

/// Which messages an operator means.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageFilter {
    pub state: Option<State>,
    pub route: Option<String>,
    pub class: Option<ErrorClass>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Cursor: only messages received before this message id.
    pub before: Option<String>,
    /// Only the deliveries of this failure group (`store::group_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Text anywhere in the message id, the downstream idempotency key,
    /// the ordering or entity key, or the last attempt's explanation
    /// (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Exactly this ordering key (the route's `ordering_key` value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Selection {
    One(String),
    Filter(MessageFilter),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct MessageSummary {
    pub id: MessageId,
    pub route: RouteName,
    pub system: SystemName,
    pub state: State,
    pub received_ms: i64,
    pub event_id: Option<String>,
    pub attempts: u32,
    pub next_attempt_ms: Option<i64>,
    pub last_class: Option<ErrorClass>,
    pub last_explanation: Option<String>,
    pub last_hint: Option<String>,
    /// Its route's ordering key, if the route has one.
    pub ordering_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub summary: MessageSummary,
    pub delivery_key: String,
    /// The request headers as received (credentials redacted).
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    pub body: String,
    /// The operator's edited payload the delivery sends instead, if any.
    pub edited_body: Option<String>,
    /// Edits so far.
    pub edits: u32,
    pub discard_reason: Option<String>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub n: u32,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub request: RequestLog,
    pub response: Option<ResponseLog>,
    pub class: Option<ErrorClass>,
    pub explanation: String,
    pub hint: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Discarded {
    Done,
    NotFound,
    /// Delivered or already discarded: nothing to stop.
    NotDiscardable,
}

/// What an admin API token may do: a viewer reads, an operator also acts
/// on messages (retry, edit, discard), an admin also manages access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Who may use the admin API or the console: an API token (kept by its
/// SHA-256) or a user (kept with an Argon2id hash), with a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Token,
    User,
}

impl AccountKind {
    /// Its table, the column of its secret, and the audit's word.
    pub(crate) fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            AccountKind::Token => ("api_tokens", "token_sha256", "token"),
            AccountKind::User => ("users", "password_phc", "user"),
        }
    }
}

/// An account as the store keeps it (never its secret in the clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
    pub created_by: String,
}

/// An operator's edit of a message's payload, to replay: the original stays
/// as received; the delivery sends `body` from now on, under a new
/// downstream idempotency key (its effect differs from the original's).
#[derive(Debug, Clone)]
pub struct Edit {
    pub id: String,
    pub body: Vec<u8>,
    pub actor: String,
    /// What the audit log says of it: the diff from the last payload, and the note.
    pub detail: String,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edited {
    /// Requeued with the edited payload under this idempotency key.
    Done {
        delivery_key: String,
    },
    NotFound,
    /// Queued or in flight: let it finish, or discard it first.
    Busy(State),
}

impl Edit {
    /// The idempotency key of the `n`th edited replay of a delivery whose
    /// key is `key`: the original's with `.edit<n>`, stable across the
    /// replay's own retries.
    pub fn key(key: &str, n: i64) -> String {
        let base = key.split(".edit").next().unwrap_or(key);
        format!("{base}.edit{n}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub route: RouteName,
    pub system: SystemName,
    /// Deliveries queued, retrying or in flight.
    pub depth: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RouteStats {
    pub route: String,
    pub queued: u64,
    pub delivering: u64,
    pub retrying: u64,
    pub delivered: u64,
    pub dead: u64,
    pub discarded: u64,
    pub skipped: u64,
    /// Dead ones whose entity had a later message delivered.
    pub superseded: u64,
}

impl RouteStats {
    pub fn add(&mut self, state: State, n: u64) {
        *match state {
            State::Queued => &mut self.queued,
            State::Delivering => &mut self.delivering,
            State::Retrying => &mut self.retrying,
            State::Delivered => &mut self.delivered,
            State::Dead => &mut self.dead,
            State::Discarded => &mut self.discarded,
            State::Skipped => &mut self.skipped,
            State::Superseded => &mut self.superseded,
        } += n;
    }

    pub fn pending(&self) -> u64 {
        self.queued + self.delivering + self.retrying
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    /// Where the actor acted from: `console`, `api`, `cli`, `client` (an
    /// ERP client key; see [`Channel`](super::Channel)), or empty.
    pub channel: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// An operator's action as the audit log records it, in the transaction
/// that carries it out (both backends write this row).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Audit<'a> {
    pub at_ms: i64,
    pub actor: &'a str,
    /// `retry` or `discard`.
    pub action: &'a str,
    /// The message id, or the filter it was applied by.
    pub target: &'a str,
    pub detail: &'a str,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub dedupe_keys: u64,
    pub idempotency_keys: u64,
    /// Console sessions past their absolute end.
    pub sessions: u64,
}

impl Pruned {
    pub fn add(&mut self, o: Pruned) {
        self.dedupe_keys += o.dedupe_keys;
        self.idempotency_keys += o.idempotency_keys;
        self.sessions += o.sessions;
    }
}

/// What one retention round deleted: finished messages with their delivery
/// rows and attempts, and bulk jobs none of whose messages is left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub messages: u64,
    pub attempts: u64,
    pub jobs: u64,
}

impl Purged {
    pub fn add(&mut self, o: Purged) {
        self.messages += o.messages;
        self.attempts += o.attempts;
        self.jobs += o.jobs;
    }
}

/// Where retention draws its lines: a message delivered or discarded before
/// `delivered_before_ms`, or dead before `dead_before_ms` (by when it got
/// there), is deleted. Never one still owed an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub delivered_before_ms: i64,
    pub dead_before_ms: i64,
}

impl Cutoffs {
    /// The lines the janitor draws at `now_ms` for the configured
    /// `[retention]`.
    pub fn of(retention: &crate::config::Retention, now_ms: i64) -> Cutoffs {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Cutoffs {
            delivered_before_ms: now_ms.saturating_sub(ms(retention.delivered)),
            dead_before_ms: now_ms.saturating_sub(ms(retention.dead)),
        }
    }
}
