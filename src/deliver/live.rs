//! The configuration the workers run on now, with what is built from it:
//! each system's HTTP client (`connect`), its in-flight places, the items
//! one request carries, the lease. A reload builds a new [`Generation`]
//! and the worker loops restart on it between steps; attempts already
//! started finish on the one they began with, so no work is dropped. A
//! system whose `max_concurrency` is unchanged keeps its places, so the
//! requests still in flight count against the new loops too; breakers,
//! limits and quota views carry across by system name (`PerSystem`).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{Deliverer, LEASE_MARGIN_MS, PACE_HORIZON_MS, plan};
use crate::config::{Config, SystemName};
use crate::connect::{ConnectError, Connector, Outbound};

pub(super) struct Generation {
    pub config: Arc<Config>,
    pub connector: Connector,
    /// Per-system caps (`rate_limit.max_concurrency`), the only ones: a
    /// cap shared by all systems would let one whose requests hang take
    /// every place and slow the others.
    pub per_system: HashMap<SystemName, Arc<Semaphore>>,
    /// Per system, the most deliveries one request can carry (its largest
    /// `batch.max_items`, else 1): claims are sized in requests × this.
    pub per_request: HashMap<SystemName, usize>,
    pub lease_ms: i64,
}

impl Generation {
    /// What `config` needs built, keeping `previous`'s places where a
    /// system's `max_concurrency` did not change.
    pub fn build(
        config: Arc<Config>,
        previous: Option<&Generation>,
        outbound: &Outbound,
    ) -> Result<Generation, ConnectError> {
        let connector = Connector::new(&config, outbound)?;
        // A lease must outlive the slowest attempt, or a live send is re-claimed.
        let slowest = config
            .systems
            .values()
            .map(|s| s.timeout + s.connect_timeout)
            .max()
            .unwrap_or_default();
        let lease_ms = (slowest.as_millis() as i64) * 2 + PACE_HORIZON_MS + LEASE_MARGIN_MS;
        let kept = |name: &SystemName, max: usize| {
            let old = previous?.per_system.get(name)?;
            let same = previous?.config.systems.get(name)?.max_concurrency == max;
            same.then(|| old.clone())
        };
        let per_system = config
            .systems
            .iter()
            .map(|(k, s)| {
                let places = kept(k, s.max_concurrency)
                    .unwrap_or_else(|| Arc::new(Semaphore::new(s.max_concurrency)));
                (k.clone(), places)
            })
            .collect();
        Ok(Generation {
            per_request: plan::items_per_request(&config),
            config,
            connector,
            per_system,
            lease_ms,
        })
    }
}

impl Deliverer {
    /// The generation the workers run on now.
    pub(super) fn current(&self) -> Arc<Generation> {
        self.live.borrow().clone()
    }

    /// The configuration the workers run on now.
    pub fn config(&self) -> Arc<Config> {
        self.current().config.clone()
    }

    /// Switches the workers to `config`: builds its clients (an error
    /// leaves the running configuration as it is), carries each system's
    /// breaker, limit and quota view by name, and restarts the loops.
    pub fn reload(&self, config: Arc<Config>) -> Result<(), ConnectError> {
        let next = Generation::build(config.clone(), Some(&self.current()), &self.outbound)?;
        let now = self.clock.now_ms();
        self.breakers.reload(&config, now);
        self.quotas.reload(&config);
        self.concurrency.reload(&config, now);
        for s in config.systems.values() {
            if s.breaker.is_some() {
                self.metrics.circuit_init(&s.name);
            }
            self.metrics
                .concurrency_limit(&s.name, self.concurrency.limit(s));
        }
        self.live.send_replace(Arc::new(next));
        Ok(())
    }
}
