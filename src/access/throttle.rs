//! Sign-in throttling: wrong passwords are counted per user name and per
//! peer address over a sliding minute; at [`MAX_FAILURES`] in either, the
//! next attempt is refused until the oldest failure leaves the window,
//! whether or not its password is right (so a guesser learns nothing).
//! Kept in memory per instance, on the injected clock; bounded by
//! forgetting the quietest keys when [`MAX_KEYS`] are tracked.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Wrong passwords allowed per window, per user and per address.
pub const MAX_FAILURES: usize = 5;
/// The sliding window.
pub const WINDOW_MS: i64 = 60_000;
/// Keys tracked at most (users and addresses together).
const MAX_KEYS: usize = 10_000;

/// Failures by key ("user:NAME", "addr:IP").
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    /// How long until `keys` may try again (milliseconds), or `None` when
    /// they may now.
    pub fn wait_ms(&self, keys: &[String], now_ms: i64) -> Option<i64> {
        let mut map = self.failures.lock().expect("throttle poisoned");
        keys.iter()
            .filter_map(|k| {
                let q = map.get_mut(k)?;
                expire(q, now_ms);
                (q.len() >= MAX_FAILURES).then(|| q.front().map_or(0, |t| t + WINDOW_MS - now_ms))
            })
            .max()
            .map(|ms| ms.max(1))
    }

    /// Counts a wrong password against each of `keys`.
    pub fn failed(&self, keys: &[String], now_ms: i64) {
        let mut map = self.failures.lock().expect("throttle poisoned");
        if map.len() >= MAX_KEYS {
            map.retain(|_, q| {
                expire(q, now_ms);
                !q.is_empty()
            });
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for k in keys {
            let q = map.entry(k.clone()).or_default();
            expire(q, now_ms);
            q.push_back(now_ms);
        }
    }

    /// A right password clears its user's count (not its address's).
    pub fn succeeded(&self, user_key: &str) {
        self.failures
            .lock()
            .expect("throttle poisoned")
            .remove(user_key);
    }
}

fn expire(q: &mut VecDeque<i64>, now_ms: i64) {
    while q.front().is_some_and(|&t| t + WINDOW_MS <= now_ms) {
        q.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_attempt_in_a_minute_waits_for_the_oldest_failure() {
        let t = Throttle::default();
        let keys = ["user:ann".to_owned(), "addr:10.0.0.1".to_owned()];
        for i in 0..5 {
            assert_eq!(t.wait_ms(&keys, 1_000 + i), None, "attempt {}", i + 1);
            t.failed(&keys, 1_000 + i);
        }
        assert_eq!(t.wait_ms(&keys, 2_000), Some(59_000));
        // Another user from the same address waits too; the same user from
        // elsewhere as well.
        assert!(
            t.wait_ms(&["user:bob".into(), "addr:10.0.0.1".into()], 2_000)
                .is_some()
        );
        assert!(
            t.wait_ms(&["user:ann".into(), "addr:10.0.0.2".into()], 2_000)
                .is_some()
        );
        assert_eq!(t.wait_ms(&keys, 61_000), None, "the oldest left the window");
        t.succeeded("user:ann");
        assert_eq!(t.wait_ms(&["user:ann".into()], 2_000), None);
    }
}
