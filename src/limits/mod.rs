//! The pure limit policies, below every stage: the request budget as GCRA
//! (`pace`: [`pace::Rate`], [`pace::Grant`]), the retry policy with its
//! backoff and `Retry-After` reading (`retry`), the circuit breaker's state
//! machine (`breaker`) and the platforms' rate-limit dialects (`dialect`).
//! Times are passed in; nothing here does I/O, so every window is tested on
//! injected time. Config builds them, the store keeps budgets, deliver
//! applies them. They import only `crate::model`.

pub mod breaker;
pub mod dialect;
pub mod pace;
pub mod retry;
