//! What the alert watcher keeps in the store: each channel's state per
//! condition ([`AlertState`]: firing, how many alerts went out, when and
//! with what count, how many the throttle held back), so a restart neither
//! repeats nor forgets an alert, and the newest message per route as every
//! instance saw it (silence detection across instances). The alerts
//! themselves are ordinary messages of the channel's route (`store.accept`,
//! deduplicated by condition and sequence number).

use super::{Store, StoreError};

/// One channel's state for one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    pub channel: String,
    pub key: String,
    pub firing: bool,
    /// Alerts sent for this key so far (the next one's dedupe suffix).
    pub seq: i64,
    pub opened_ms: i64,
    pub last_sent_ms: i64,
    pub last_count: i64,
    /// Changes held back by the throttle since the last alert.
    pub suppressed: i64,
}

impl Store {
    /// Every channel's state of every condition it has alerted on.
    pub async fn alert_states(&self) -> Result<Vec<AlertState>, StoreError> {
        on_backend!(self, b => b.alert_states().await)
    }

    pub async fn set_alert_state(&self, s: AlertState) -> Result<(), StoreError> {
        on_backend!(self, b => b.set_alert_state(s).await)
    }

    /// Records this instance's newest message per route (kept when newer
    /// than what is stored) and answers the newest of all instances.
    pub async fn route_traffic(
        &self,
        seen: Vec<(String, i64)>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        on_backend!(self, b => b.route_traffic(seen).await)
    }
}
