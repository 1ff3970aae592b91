//! Failures grouped by cause (issue 12): where a dead delivery lands after
//! `deliver` has judged its last attempt. A group is keyed by the error
//! class, the system, the route and the reason with its variable parts
//! normalised away ([`normalise`]); `deliver` computes the key
//! ([`group_key`]) when it records a delivery dead, the store keeps it in
//! `deliveries.failure_group` (indexed), and the admin API and the CLI list
//! the groups with one `GROUP BY` on that column instead of reading reasons.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Arg;
use crate::model::ErrorClass;

/// The reason with what varies between messages of one cause replaced by
/// `#`: every token holding a digit (ids, uuids, numbers, SKUs such as
/// `POT-GLASS-120`, timestamps, URLs with ids), long hex runs, and values in
/// single quotes. An HTTP status (`(422)`, `answered 503`) is kept: it is
/// part of the cause.
pub fn normalise(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::with_capacity(reason.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A quote opens a value only where a word does not go on (`it's`).
        let opens = i == 0 || !chars[i - 1].is_alphanumeric();
        if c == '\''
            && opens
            && let Some(end) = chars[i + 1..].iter().position(|&q| q == '\'')
        {
            out.push_str("'#'");
            i += end + 2;
            continue;
        }
        if !is_token(c) {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_token(chars[i]) {
            i += 1;
        }
        let mut token: String = chars[start..i].iter().collect();
        // A sentence's full stop is not part of the token.
        let stop = token.ends_with('.');
        if stop {
            token.pop();
        }
        if (varies(&token) || names_one(&out, &token)) && !is_status(&chars[..start], &token) {
            out.push('#');
        } else {
            out.push_str(&token);
        }
        if stop {
            out.push('.');
        }
    }
    out
}

fn is_token(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+' | '@' | '#')
}

/// A token that names one message rather than a cause.
fn varies(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_digit())
        || (token.len() >= 8 && token.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Words after which a code names one thing (`unknown sku TEA-MATCHA-XL`,
/// `"email": "Ana@Example.com"`), even without a digit in it.
const ID_WORDS: [&str; 12] = [
    "sku",
    "id",
    "order",
    "customer",
    "product",
    "item",
    "email",
    "ref",
    "reference",
    "account",
    "contact",
    "user",
];

/// A code-like token (an upper-case letter or `-`, `_`, `@`, `.` in it:
/// not a plain word such as `missing`) right after one of [`ID_WORDS`]
/// (`written` is the normalised text so far).
fn names_one(written: &str, token: &str) -> bool {
    let code = token
        .chars()
        .any(|c| c.is_uppercase() || matches!(c, '-' | '_' | '@' | '.'));
    let before = written.trim_end_matches([' ', ':', '=', '"', '\\']);
    let word = before
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    code && before.len() < written.len() && ID_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// An HTTP status the classifier wrote: three digits after `(` or `answered `.
fn is_status(before: &[char], token: &str) -> bool {
    let status = token.len() == 3 && token.parse::<u16>().is_ok_and(|n| (100..600).contains(&n));
    let before: String = before[before.len().saturating_sub(9)..].iter().collect();
    status && (before.ends_with('(') || before.ends_with("answered "))
}

/// The group a dead delivery belongs to: 16 hex digits of SHA-256 over
/// class, system, route and the normalised reason.
pub fn group_key(class: ErrorClass, system: &str, route: &str, reason: &str) -> String {
    let mut h = Sha256::new();
    for part in [class.as_str(), system, route, &normalise(reason)] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Auto-resolve: the dead deliveries of the route that `d` (just delivered)
/// is about, by its `entity_key` or its `ordering_key`, and that were
/// received before it (ties by row id), as `o`. Each backend updates them to
/// `superseded` in the transaction of `d`'s record (SQLite as one indexed
/// branch per key, `sqlite::write::SUPERSEDE`).
pub const SUPERSEDED_BY: &str = "SELECT o.id FROM deliveries d JOIN deliveries o
    ON o.route = d.route AND o.state = 'dead' AND o.id <> d.id
   AND ((d.entity_key IS NOT NULL AND o.entity_key = d.entity_key)
     OR (d.ordering_key IS NOT NULL AND o.ordering_key = d.ordering_key))
   AND (o.received_ms < d.received_ms OR (o.received_ms = d.received_ms AND o.id < d.id))";

/// Where an operator put a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    #[default]
    Open,
    Acknowledged,
    Resolved,
}

impl GroupStatus {
    pub const ALL: [GroupStatus; 3] = [
        GroupStatus::Open,
        GroupStatus::Acknowledged,
        GroupStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Open => "open",
            GroupStatus::Acknowledged => "acknowledged",
            GroupStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<GroupStatus> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// A group's status as set, or none: open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusMark {
    pub status: GroupStatus,
    pub note: String,
    pub actor: String,
    pub at_ms: i64,
}

impl StatusMark {
    /// The audit log's detail: `resolved: the SKU was added`.
    pub fn audit_detail(&self) -> String {
        format!("{}: {}", self.status.as_str(), self.note)
    }
}

/// The status a group reads as: a resolved group with a failure after it
/// was resolved is open again.
pub fn effective(mark: Option<&StatusMark>, last_seen_ms: i64) -> GroupStatus {
    match mark {
        None => GroupStatus::Open,
        Some(m) if m.status == GroupStatus::Resolved && last_seen_ms > m.at_ms => GroupStatus::Open,
        Some(m) => m.status,
    }
}

/// Which groups an operator lists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupFilter {
    pub route: Option<String>,
    pub system: Option<String>,
    pub class: Option<ErrorClass>,
    /// Only groups that read as this status (none: every group).
    pub status: Option<GroupStatus>,
}

/// One failure group, as the console and `ferry failures` show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FailureGroup {
    pub key: String,
    pub class: Option<ErrorClass>,
    pub system: String,
    pub route: String,
    /// The latest message's reason, normalised.
    pub reason: String,
    /// Dead deliveries in the group.
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// The latest message's explanation and hint.
    pub explanation: String,
    pub hint: String,
    /// A few of the latest message ids.
    pub samples: Vec<String>,
    /// What the group reads as ([`effective`]).
    pub status: GroupStatus,
    /// The last status an operator set, if any.
    pub mark: Option<StatusMark>,
}

/// How many sample ids a group carries.
pub const SAMPLES: usize = 5;

/// The groups' counts: one `GROUP BY` over the dead deliveries on the
/// `deliveries_failure_group` index; `{}` takes the filter's conditions.
pub const GROUPS_SQL: &str = "SELECT failure_group, MAX(route), MAX(system), MAX(last_class),
    COUNT(*), MIN(updated_ms), MAX(updated_ms) FROM deliveries
    WHERE state = 'dead' AND failure_group IS NOT NULL AND {} GROUP BY failure_group
    ORDER BY MAX(updated_ms) DESC, failure_group";

/// A group's status as set (`?`: the group).
pub const STATUS_SQL: &str =
    "SELECT status, note, actor, at_ms FROM failure_group_status WHERE key = ?";

/// A group's latest dead deliveries (`?`: the group), newest first. Route,
/// system and class are one value within a group (its key hashes them),
/// so ordering by them first changes nothing but lets the walk go
/// backwards down `deliveries_failure_group` and stop at the fifth: by
/// `updated_ms` alone PostgreSQL sorted a group's every row (10-25 ms a
/// group of 5,000 at 1M messages) and SQLite filtered `deliveries_finished`.
pub const SAMPLES_SQL: &str = "SELECT message_id, last_explanation, last_hint FROM deliveries
    WHERE state = 'dead' AND failure_group = ?
    ORDER BY route DESC, system DESC, last_class DESC, updated_ms DESC, id DESC LIMIT 5";

impl GroupFilter {
    /// The filter as conditions over `deliveries` with one `?` each (like
    /// `MessageFilter::conditions`), to be joined with `AND` after `1 = 1`;
    /// `key` narrows to one group.
    pub fn conditions(&self, key: Option<&str>) -> Vec<(&'static str, Arg)> {
        let text = |s: &str| Arg::Text(s.to_owned());
        let mut c = Vec::new();
        if let Some(k) = key {
            c.push(("failure_group = ?", text(k)));
        }
        if let Some(r) = &self.route {
            c.push(("route = ?", text(r)));
        }
        if let Some(s) = &self.system {
            c.push(("system = ?", text(s)));
        }
        if let Some(class) = self.class {
            c.push(("last_class = ?", text(class.as_str())));
        }
        c
    }
}

/// What a backend read of one group gives, before its samples.
pub struct GroupCounts {
    pub key: String,
    pub route: String,
    pub system: String,
    pub class: Option<String>,
    pub count: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

impl GroupCounts {
    /// The group with its samples (`(message id, explanation, hint)`, newest first).
    pub fn with_samples(
        self,
        samples: Vec<(String, Option<String>, Option<String>)>,
        mark: Option<StatusMark>,
    ) -> FailureGroup {
        let (explanation, hint) = samples
            .first()
            .map(|(_, e, h)| (e.clone().unwrap_or_default(), h.clone().unwrap_or_default()))
            .unwrap_or_default();
        FailureGroup {
            key: self.key,
            class: self.class.as_deref().and_then(ErrorClass::parse),
            system: self.system,
            route: self.route,
            reason: normalise(&explanation),
            count: self.count as u64,
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            explanation,
            hint,
            samples: samples.into_iter().map(|(id, _, _)| id).collect(),
            status: effective(mark.as_ref(), self.last_seen_ms),
            mark,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_group_reopens_on_a_later_failure() {
        let mark = |status| StatusMark {
            status,
            note: "n".into(),
            actor: "ops".into(),
            at_ms: 100,
        };
        assert_eq!(effective(None, 50), GroupStatus::Open);
        let resolved = mark(GroupStatus::Resolved);
        assert_eq!(effective(Some(&resolved), 100), GroupStatus::Resolved);
        assert_eq!(effective(Some(&resolved), 101), GroupStatus::Open);
        let ack = mark(GroupStatus::Acknowledged);
        assert_eq!(effective(Some(&ack), 101), GroupStatus::Acknowledged);
        assert_eq!(GroupStatus::parse("resolved"), Some(GroupStatus::Resolved));
        assert_eq!(GroupStatus::parse("closed"), None);
    }

    #[test]
    fn unknown_skus_are_one_cause() {
        let a = r#"erp rejected the message (422): {"error":"unknown sku POT-GLASS-120","field":"lines[].sku"}"#;
        let b = r#"erp rejected the message (422): {"error":"unknown sku GIFT-BOX-25","field":"lines[].sku"}"#;
        assert_eq!(normalise(a), normalise(b));
        let c = r#"erp rejected the message (422): {"error":"unknown sku TEA-MATCHA-XL","field":"lines[].sku"}"#;
        assert_eq!(
            normalise(a),
            normalise(c),
            "a SKU without a digit varies too"
        );
        assert_eq!(
            normalise(r#"{"email": "Ana@Example.com", "error": "INVALID_EMAIL"}"#),
            r##"{"email": "#", "error": "INVALID_EMAIL"}"##,
            "an error code is a cause, the address after `email` is not"
        );
        assert_eq!(normalise("customer missing"), "customer missing");
        assert_eq!(
            normalise("customer blocked"),
            "customer blocked",
            "plain words after an id word stay"
        );
        assert_eq!(
            normalise(a),
            r#"erp rejected the message (422): {"error":"unknown sku #","field":"lines[].sku"}"#
        );
        let k = |r| group_key(ErrorClass::Rejected, "erp", "orders", r);
        assert_eq!(k(a), k(b));
        assert_eq!(k(a).len(), 16);
    }

    #[test]
    fn the_cause_system_route_and_status_still_split_groups() {
        let r = "erp rejected the message (422): bad";
        assert_ne!(
            group_key(ErrorClass::Rejected, "erp", "orders", r),
            group_key(ErrorClass::Rejected, "erp", "stock", r)
        );
        assert_ne!(
            group_key(ErrorClass::Rejected, "erp", "orders", r),
            group_key(ErrorClass::Rejected, "crm", "orders", r)
        );
        assert_ne!(
            group_key(ErrorClass::Rejected, "erp", "orders", r),
            group_key(ErrorClass::Auth, "erp", "orders", r)
        );
        assert_ne!(
            normalise("erp answered 503: unavailable."),
            normalise("erp answered 502: unavailable.")
        );
        assert_ne!(
            normalise("unknown sku X1"),
            normalise("unknown customer X1")
        );
    }

    #[test]
    fn ids_uuids_hex_timestamps_and_quoted_values_go() {
        assert_eq!(
            normalise(
                "order 1234 for 0190f2a4-8c1e-7c3a-9d2b-1f2e3d4c5b6a at 2026-12-02T17:02:33Z."
            ),
            "order # for # at #:#:#."
        );
        assert_eq!(normalise("token deadbeefcafe rejected"), "token # rejected");
        assert_eq!(normalise("no customer 'ACME' here"), "no customer '#' here");
        assert_eq!(
            normalise("GET http://erp/orders/77 failed"),
            "GET http:# failed"
        );
        assert_eq!(
            normalise("erp did not answer in time."),
            "erp did not answer in time."
        );
        assert_eq!(normalise("it's 5 o'clock"), "it's # o'clock");
    }
}
