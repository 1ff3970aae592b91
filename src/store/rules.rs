//! The store's rules, decided once for both backends: which states an
//! operator may retry or discard (one message, or by filter), and what a
//! [`MessageFilter`] selects, as SQL conditions with one `?` placeholder
//! each. The backends only render them (SQLite keeps the `?`, PostgreSQL
//! numbers them `$n`) and bind the values.

use super::{MessageFilter, State};

impl State {
    /// An operator may requeue it: it failed, waits for a retry, or was
    /// finished (a replay of a delivered or discarded message).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            State::Dead
                | State::Retrying
                | State::Discarded
                | State::Delivered
                | State::Skipped
                | State::Superseded
        )
    }

    /// An operator may stop it for good: anything not finished yet.
    pub fn discardable(self) -> bool {
        !matches!(
            self,
            State::Delivered | State::Discarded | State::Skipped | State::Superseded
        )
    }

    /// The states `pred` accepts, as an SQL list: `('dead', 'retrying')`.
    pub fn sql_list(pred: fn(State) -> bool) -> String {
        let names: Vec<String> = State::ALL
            .into_iter()
            .filter(|s| pred(*s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
    }
}

/// What an operator does to the messages a filter selects, chunk by chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    /// Requeue now, with a fresh retry budget and the same downstream
    /// idempotency key.
    Retry,
    /// Stop for good, with the operator's reason.
    Discard { reason: String },
    /// Discard the dead deliveries that hold back one ordering key of a
    /// route, so the later ones of that key go: audited as `release-key`
    /// on the target `route/key`.
    ReleaseKey { reason: String },
}

impl BulkAction {
    /// The audit log's word for it.
    pub fn verb(&self) -> &'static str {
        match self {
            BulkAction::Retry => "retry",
            BulkAction::Discard { .. } => "discard",
            BulkAction::ReleaseKey { .. } => "release-key",
        }
    }

    /// The reason a discarding action gives, or `None` for a retry.
    pub fn discard_reason(&self) -> Option<&str> {
        match self {
            BulkAction::Retry => None,
            BulkAction::Discard { reason } | BulkAction::ReleaseKey { reason } => Some(reason),
        }
    }

    /// What the audit log names as the target of the action on `f`: the
    /// filter as JSON, or `route/key` for a released ordering key.
    pub fn audit_target(&self, f: &MessageFilter) -> String {
        match self {
            BulkAction::ReleaseKey { .. } => format!(
                "{}/{}",
                f.route.as_deref().unwrap_or_default(),
                f.ordering_key.as_deref().unwrap_or_default()
            ),
            _ => serde_json::to_string(f).unwrap_or_default(),
        }
    }

    /// The filter's state, `dead` unless it names one, or `None` when the
    /// action cannot apply to that state: a delivery in flight is left to its
    /// worker, a queued one is already due (retry), a finished one stays as
    /// it ended.
    pub fn target_state(&self, f: &MessageFilter) -> Option<State> {
        let state = f.state.unwrap_or(State::Dead);
        let applies = match self {
            BulkAction::Retry => state.retryable(),
            BulkAction::Discard { .. } | BulkAction::ReleaseKey { .. } => {
                state.discardable() && state != State::Delivering
            }
        };
        applies.then_some(state)
    }
}

/// A value a filter's condition compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

impl MessageFilter {
    /// The filter as conditions over `deliveries`, each with one `?`
    /// placeholder and its value, to be joined with `AND` (none: all rows).
    pub fn conditions(&self) -> Vec<(&'static str, Arg)> {
        let text = |s: &str| Arg::Text(s.to_owned());
        let mut c = Vec::new();
        if let Some(s) = self.state {
            c.push(("state = ?", text(s.as_str())));
        }
        if let Some(r) = &self.route {
            c.push(("route = ?", text(r)));
        }
        if let Some(class) = self.class {
            c.push(("last_class = ?", text(class.as_str())));
        }
        if let Some(t) = self.since_ms {
            c.push(("received_ms >= ?", Arg::Int(t)));
        }
        if let Some(t) = self.until_ms {
            c.push(("received_ms < ?", Arg::Int(t)));
        }
        if let Some(g) = &self.group {
            c.push(("failure_group = ?", text(g)));
        }
        if let Some(s) = &self.system {
            c.push(("system = ?", text(s)));
        }
        if let Some(k) = &self.ordering_key {
            c.push(("ordering_key = ?", text(k)));
        }
        if let Some(t) = self.text.as_deref().filter(|t| !t.is_empty()) {
            // One placeholder: the searched columns as one lower-cased text.
            let escaped = t
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            c.push((
                "LOWER(message_id || ' ' || delivery_key || ' ' || COALESCE(ordering_key, '') || ' '
                   || COALESCE(entity_key, '') || ' ' || COALESCE(last_explanation, '')) LIKE ? ESCAPE '\\'",
                Arg::Text(format!("%{escaped}%")),
            ));
        }
        if let Some(b) = &self.before {
            c.push((
                "id < (SELECT id FROM deliveries WHERE message_id = ?)",
                text(b),
            ));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lists_render_the_rules() {
        assert_eq!(
            State::sql_list(State::retryable),
            "('retrying', 'delivered', 'dead', 'discarded', 'skipped', 'superseded')"
        );
        assert_eq!(
            State::sql_list(State::discardable),
            "('queued', 'delivering', 'retrying', 'dead')"
        );
    }

    #[test]
    fn a_bulk_discard_leaves_work_in_flight_to_its_worker() {
        let discard = BulkAction::Discard { reason: "x".into() };
        let f = |s| MessageFilter {
            state: Some(s),
            ..Default::default()
        };
        assert_eq!(
            discard.target_state(&MessageFilter::default()),
            Some(State::Dead)
        );
        assert_eq!(discard.target_state(&f(State::Delivering)), None);
        assert_eq!(discard.target_state(&f(State::Queued)), Some(State::Queued));
        assert_eq!(BulkAction::Retry.target_state(&f(State::Queued)), None);
    }
}
