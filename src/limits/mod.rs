//! The pure limit policies, below every stage: the request budget as GCRA
//! (`pace`: [`pace::Rate`], [`pace::Grant`]), the retry policy with its
//! backoff and `Retry-After` reading (`retry`), the circuit breaker's state
//! machine (`breaker`), the platforms' rate-limit dialects (`dialect`), the
//! adaptive concurrency limit (`aimd`) and the daily-quota view that pauses
//! low-priority routes (`quota`), and the business hours of silence
//! detection (`hours`).
//! Times are passed in; nothing here does I/O, so every window is tested on
//! injected time. Config builds them, the store keeps budgets, deliver
//! applies them. They import only `crate::model`.

pub mod aimd;
pub mod breaker;
pub mod dialect;
pub mod hours;
pub mod pace;
pub mod quota;
pub mod retry;
