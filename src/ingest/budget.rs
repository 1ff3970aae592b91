//! The budget of unverified bytes: webhook bodies are buffered whole before
//! their signature can be checked, so each read first reserves its size
//! (its `Content-Length`, or the route's `max_body` when it sends none)
//! from one budget shared by every request (`server.max_unverified_bytes`).
//! With none left the webhook is answered 503 with `Retry-After` before a
//! byte is read; the reservation is returned once the signature was checked.
//! So unsigned uploads, however many, hold at most this much memory.

use axum::http::StatusCode;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::problem::Problem;

/// What a refused sender is told to wait, in seconds.
const RETRY_AFTER_S: u64 = 1;

pub struct Unverified {
    bytes: Semaphore,
    total: usize,
    gauge: Gauge,
}

/// Bytes reserved for one body until it is verified (dropped).
pub struct Reservation<'a> {
    permit: Option<SemaphorePermit<'a>>,
    budget: &'a Unverified,
}

impl Unverified {
    /// A budget of `total` bytes (at most `u32::MAX`; the config checks it),
    /// shown in `gauge`.
    pub fn new(total: usize, gauge: Gauge) -> Unverified {
        Unverified {
            bytes: Semaphore::new(total),
            total,
            gauge,
        }
    }

    /// Reserves `bytes`, or refuses at once (503) when the budget has not that many left.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation<'_>, Problem> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX);
        match self.bytes.try_acquire_many(n) {
            Ok(permit) => {
                self.show();
                Ok(Reservation {
                    permit: Some(permit),
                    budget: self,
                })
            }
            Err(_) => {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unverified-bytes",
                    "Service unavailable",
                    format!(
                        "ferry is reading as many unverified webhook bodies as it buffers at once \
                         ({} bytes, server.max_unverified_bytes); nothing was read: send it again shortly",
                        self.total
                    ),
                );
                p.retry_after = Some(RETRY_AFTER_S);
                Err(p)
            }
        }
    }

    fn show(&self) {
        let used = self.total - self.bytes.available_permits();
        self.gauge.set(used as i64);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.budget.show();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_until_a_reservation_returns() {
        let gauge = Gauge::default();
        let budget = Unverified::new(1000, gauge.clone());
        let a = budget.reserve(600).unwrap();
        assert_eq!(gauge.get(), 600);
        let p = budget.reserve(600).err().expect("only 400 left");
        assert_eq!((p.status, p.retry_after), (503, Some(1)));
        let b = budget.reserve(400).unwrap();
        assert!(budget.reserve(1).is_err());
        drop(a);
        assert_eq!(gauge.get(), 400);
        assert!(budget.reserve(600).is_ok());
        drop(b);
        assert_eq!(gauge.get(), 0);
    }
}
