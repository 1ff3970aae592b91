//! Releasing a blocked ordering key: a dead delivery holds back every later
//! delivery of its route with the same ordering key (see `BEHIND` in each
//! backend's `write.rs`); an operator who will not retry it releases the key,
//! discarding the dead deliveries of (route, key) with a reason so the later
//! ones go. One bulk action like any discard by filter (chunked, each chunk
//! audited), named `release-key` on the target `route/key`.

use super::{BulkAction, MessageFilter, State, Store, StoreError};

impl Store {
    /// Discards the dead deliveries of `route` whose ordering key is `key`,
    /// with `reason`, audited as `release-key` by `actor`; returns how many
    /// (with `dry_run`, how many it would).
    pub async fn release_key(
        &self,
        route: &str,
        key: &str,
        reason: &str,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let filter = MessageFilter {
            state: Some(State::Dead),
            route: Some(route.to_owned()),
            ordering_key: Some(key.to_owned()),
            ..Default::default()
        };
        let action = BulkAction::ReleaseKey {
            reason: reason.to_owned(),
        };
        self.bulk(filter, action, actor, now_ms, dry_run).await
    }
}
