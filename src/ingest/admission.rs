//! Admission: ingest's back-pressure, checked after a request is verified and
//! before it is stored. Each system's queue has a limit
//! (`systems.<name>.max_queue`, default 100,000); past it, ingest answers 503 with
//! `Retry-After` instead of growing a backlog the destination cannot drain,
//! and nothing already accepted is touched. The depth is the janitor's last
//! count from the store (every instance's work, on PostgreSQL) plus what this
//! instance accepted since, so it errs on the full side between counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;

use crate::config::{Config, SystemName};
use crate::problem::Problem;

/// What a refused sender is told to wait: a little longer than the janitor
/// takes to count the queue again.
const RETRY_AFTER_S: u64 = 5;

/// Each system's queue depth as ingest sees it.
pub struct Backlog {
    /// A system added by a reload gets its entry from the janitor's count.
    depth: std::sync::RwLock<HashMap<SystemName, AtomicU64>>,
}

impl Backlog {
    pub fn new(config: &Config) -> Backlog {
        Backlog {
            depth: std::sync::RwLock::new(
                config
                    .systems
                    .keys()
                    .map(|s| (s.clone(), AtomicU64::new(0)))
                    .collect(),
            ),
        }
    }

    /// Refuses a message toward `system` while its queue is at its limit.
    pub fn admit(&self, config: &Config, system: &str) -> Result<(), Problem> {
        self.admit_more(config, system, 0)
    }

    /// Like [`Backlog::admit`], with `in_flight` more messages on their way
    /// to the store and not counted yet (a bulk upload's window).
    pub fn admit_more(
        &self,
        config: &Config,
        system: &str,
        in_flight: usize,
    ) -> Result<(), Problem> {
        let all = self.depth.read().unwrap_or_else(|e| e.into_inner());
        let (Some(limit), Some(depth)) = (
            config.systems.get(system).map(|s| s.max_queue),
            all.get(system),
        ) else {
            return Ok(());
        };
        let depth = depth
            .load(Ordering::Relaxed)
            .saturating_add(in_flight as u64);
        if depth < limit {
            return Ok(());
        }
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue-full",
            "Queue full",
            format!(
                "the queue toward {system} holds {depth} messages, at its limit of {limit} \
                 (max_queue); nothing was stored: send it again later"
            ),
        );
        p.retry_after = Some(RETRY_AFTER_S);
        Err(p)
    }

    /// Counts a message this instance has just stored.
    pub fn accepted(&self, system: &str) {
        let all = self.depth.read().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = all.get(system) {
            d.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The janitor's fresh count for `system`.
    pub fn set(&self, system: &str, depth: u64) {
        let all = self.depth.read().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = all.get(system) {
            d.store(depth, Ordering::Relaxed);
            return;
        }
        drop(all);
        self.depth
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(system.into(), AtomicU64::new(depth));
    }
}
