//! Shadow upgrades: for a route whose system sets `next_api_version`, every
//! delivery also runs the next version's mapping (sending nothing) and its
//! output is compared with the live one's, path by path
//! (`transform::diff`). Per route, the counts and the last few differing
//! examples are kept (in memory, per instance) for the admin API
//! (`GET /admin/api/v1/routes/{route}/shadow`) and counted in the metrics,
//! so an upgrade is reviewed on real traffic before the switch. A reload
//! that changes the next mapping starts the route's counts afresh.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::{Route, RouteName};
use crate::store::Claimed;
use crate::telemetry::Metrics;
use crate::transform::{Emits, Mapping, Outgoing, Prepared, TransformError, diff};

/// Differing examples kept per route.
pub const EXAMPLES: usize = 10;
/// Changes kept per example.
const CHANGES: usize = 20;

/// One delivery whose shadow output differed.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub message_id: String,
    pub at_ms: i64,
    /// `$.lines[0].price: "12.50" → 12.5 (string → number)`, `+ $.tags: …`.
    pub changes: Vec<String>,
}

/// A route's shadow comparisons since its next mapping was loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The next version's mapping file.
    pub mapping: PathBuf,
    pub compared: u64,
    pub differing: u64,
    /// Runs that could not be compared (jq had no thread).
    pub not_compared: u64,
    pub since_ms: i64,
    /// Newest first.
    pub examples: VecDeque<Example>,
}

#[derive(Default)]
pub struct Shadows(Mutex<HashMap<RouteName, Stats>>);

impl Shadows {
    /// Runs `next` on `d`'s body and compares it with the live result.
    pub async fn compare(
        &self,
        route: &Route,
        next: &Mapping,
        d: &Claimed,
        live: &Result<Prepared, TransformError>,
        now_ms: i64,
        metrics: &Metrics,
    ) {
        let shadow = next.apply(&d.body, now_ms).await;
        let changes = match (described(live, next.emits), described(&shadow, next.emits)) {
            (_, Err(busy)) | (Err(busy), _) => {
                tracing::debug!(route = %route.name, reason = %busy, "Shadow mapping not compared: jq had no thread.");
                self.with(route, next, now_ms, |s| s.not_compared += 1);
                return;
            }
            (Ok(a), Ok(b)) => changes(&a, &b),
        };
        let differed = !changes.is_empty();
        metrics.shadow(&route.name, differed);
        self.with(route, next, now_ms, |s| {
            s.compared += 1;
            if differed {
                s.differing += 1;
                s.examples.push_front(Example {
                    message_id: d.message_id.to_string(),
                    at_ms: now_ms,
                    changes: changes.into_iter().take(CHANGES).collect(),
                });
                s.examples.truncate(EXAMPLES);
            }
        });
    }

    /// The route's comparisons so far, if its shadow has run.
    pub fn view(&self, route: &str) -> Option<Stats> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
            .cloned()
    }

    fn with(&self, route: &Route, next: &Mapping, now_ms: i64, f: impl FnOnce(&mut Stats)) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let stats = all
            .entry(route.name.clone())
            .or_insert_with(|| fresh(next, now_ms));
        if stats.mapping != next.file {
            *stats = fresh(next, now_ms);
        }
        f(stats);
    }
}

fn fresh(next: &Mapping, now_ms: i64) -> Stats {
    Stats {
        mapping: next.file.clone(),
        compared: 0,
        differing: 0,
        not_compared: 0,
        since_ms: now_ms,
        examples: VecDeque::new(),
    }
}

/// What a mapping made of a message, as something to compare: the JSON
/// text it sends, nothing, or its failure. `Err` when it did not run.
enum Made {
    Sends(String),
    Nothing,
    Failed(String),
}

fn described(r: &Result<Prepared, TransformError>, emits: Emits) -> Result<Made, String> {
    match r {
        Ok(Prepared::Send(o)) => Ok(Made::Sends(request_text(o, emits))),
        Ok(Prepared::Skip) => Ok(Made::Nothing),
        Err(TransformError::Mapping(why)) => Ok(Made::Failed(why.clone())),
        Err(TransformError::Busy(why)) => Err(why.clone()),
    }
}

/// The body, or for `emits = "request"` the whole request as one document.
fn request_text(o: &Outgoing, emits: Emits) -> String {
    let body = String::from_utf8_lossy(&o.body);
    match emits {
        Emits::Body => body.into_owned(),
        Emits::Request => {
            let pairs = |v: &[(String, String)]| {
                serde_json::Value::Object(
                    v.iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect(),
                )
            };
            let headers: Vec<(String, String)> = o
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let body = if body.is_empty() { "null".into() } else { body };
            format!(
                r#"{{"body":{body},"path":{},"query":{},"headers":{}}}"#,
                pairs(&o.path),
                pairs(&o.query),
                pairs(&headers)
            )
        }
    }
}

fn changes(live: &Made, next: &Made) -> Vec<String> {
    match (live, next) {
        (Made::Sends(a), Made::Sends(b)) => match diff::diff(a, b) {
            Ok(c) => c.iter().map(ToString::to_string).collect(),
            Err(e) => vec![format!("the outputs cannot be compared: {e}")],
        },
        (Made::Nothing, Made::Nothing) => Vec::new(),
        (Made::Failed(a), Made::Failed(b)) if a == b => Vec::new(),
        (Made::Nothing, Made::Sends(b)) => {
            vec![format!(
                "live sends nothing; next sends {}",
                crate::transform::clip(b, 120)
            )]
        }
        (Made::Sends(_), Made::Nothing) => vec!["next sends nothing; live sends a request".into()],
        (_, Made::Failed(why)) => vec![format!("next fails: {why}")],
        (Made::Failed(why), _) => vec![format!("live fails (next does not): {why}")],
    }
}
