//! Work toward systems no longer in the configuration: no worker loop claims
//! it, so a sweep (every minute, and in each `run_once`) finishes it as dead,
//! class `config`, with the reason, rather than let it wait forever.

use super::{Deliverer, MAX_CLAIM};

impl Deliverer {
    /// Finishes work queued toward systems no longer in the configuration
    /// (dead, class `config`, with the reason): no worker loop claims it.
    /// Returns how many deliveries it finished.
    pub(super) async fn sweep_strays(&self) -> usize {
        let generation = self.current();
        let strays: std::collections::BTreeSet<crate::model::SystemName> = match self
            .store
            .queue_depth()
            .await
        {
            Ok(depths) => depths
                .into_iter()
                .filter(|d| !generation.config.systems.contains_key(d.system.as_str()))
                .map(|d| d.system)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %crate::model::Chain(&e), "Looking for work toward removed systems failed.");
                return 0;
            }
        };
        let mut n = 0;
        for system in strays {
            loop {
                let now = self.clock.now_ms();
                let claimed = match self
                    .store
                    .claim(&system, now, generation.lease_ms, MAX_CLAIM)
                    .await
                {
                    Ok(c) if !c.is_empty() => c,
                    _ => break,
                };
                n += claimed.len();
                for d in claimed {
                    self.deliver(d, now, None).await;
                }
            }
        }
        n
    }
}
