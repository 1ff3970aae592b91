//! Resolving a destination's `batch` table (its bulk endpoint): limits,
//! path and the two jq programs, compiled here so a bad one stops the
//! configuration instead of a delivery. Part of `resolve`.

use std::sync::Arc;
use std::time::Duration;

use super::Batch;
use super::raw::RawBatch;
use super::resolve::Ctx;
use super::units::parse_size;
use crate::transform::jq::Jq;

/// The variable both programs may read: the items' downstream idempotency
/// keys, in the order of the items (stable across batches and retries).
pub const KEYS: &str = "$keys";

/// What a platform's bulk endpoint commonly takes at most.
const DEFAULT_MAX_ITEMS: usize = 100;
const DEFAULT_MAX_BYTES: usize = 1 << 20;
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(1);

pub(super) fn batch(cx: &mut Ctx<'_>, loc: &str, b: &RawBatch) -> Option<Batch> {
    let max_items = b.max_items.unwrap_or(DEFAULT_MAX_ITEMS);
    if max_items == 0 {
        cx.problem(format!("{loc}.max_items"), "must be at least 1");
    }
    let max_bytes = match b.max_bytes.as_deref().map(parse_size) {
        None => DEFAULT_MAX_BYTES,
        Some(Ok(n)) if n > 0 => n,
        Some(Ok(_)) => {
            cx.problem(format!("{loc}.max_bytes"), "must be more than zero");
            DEFAULT_MAX_BYTES
        }
        Some(Err(e)) => {
            cx.problem(format!("{loc}.max_bytes"), e);
            DEFAULT_MAX_BYTES
        }
    };
    let max_wait = cx.duration(
        &format!("{loc}.max_wait"),
        b.max_wait.as_ref(),
        DEFAULT_MAX_WAIT,
    );
    if !b.path.starts_with('/') {
        cx.problem(format!("{loc}.path"), "must start with `/`");
    }
    let timeout = cx.jq_timeout;
    let mut compile = |field: &str, code: &str| match Jq::compile_with(code, &[KEYS]) {
        Ok(jq) => Some(Arc::new(jq.with_timeout(timeout))),
        Err(e) => {
            cx.problem(format!("{loc}.{field}"), e.to_string());
            None
        }
    };
    let body = compile("body", &b.body);
    let results = match &b.results {
        Some(code) => Some(compile("results", code)?),
        None => None,
    };
    Some(Batch {
        max_items: max_items.max(1),
        max_bytes,
        max_wait_ms: max_wait.as_millis() as i64,
        path: b.path.clone(),
        body: body?,
        results,
    })
}
