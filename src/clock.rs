//! Time, injected: every component that stamps, schedules or checks a window
//! (ingest tolerance, dedupe windows, retry schedules, claims) asks a [`Clock`],
//! so tests drive time by hand instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Wall-clock time.
    #[default]
    System,
    /// Test time: milliseconds since the epoch, moved only by `advance`/`set`.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start_ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start_ms)))
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    pub fn set(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.store(ms, Ordering::SeqCst);
        }
    }

    /// Waits until `at_ms`. On a manual clock the wait is simulated: time
    /// jumps forward to `at_ms` (never back), so a test sees a paced send
    /// happen at exactly the time it was granted, without sleeping.
    pub async fn sleep_until(&self, at_ms: i64) {
        match self {
            Clock::System => {
                let wait = at_ms - self.now_ms();
                if wait > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
                }
            }
            Clock::Manual(t) => {
                t.fetch_max(at_ms, Ordering::SeqCst);
            }
        }
    }
}
