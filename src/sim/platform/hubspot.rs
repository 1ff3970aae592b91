//! A HubSpot-like CRM batch API: `POST /crm/v3/objects/{object}/batch/create`
//! (and `/batch/upsert`) with `{"inputs":[...]}`, at most 100 inputs a call.
//! Throttled by a rolling window (100 requests per 10 s, as HubSpot's
//! private apps) and a daily budget; every answer carries HubSpot's
//! `X-HubSpot-RateLimit-*` headers (what ferry's `hubspot` dialect reads),
//! and a spent window answers 429. Items are checked one by one (by default
//! an input whose `properties.email` contains "invalid" is refused): a batch
//! with refused items answers 207 with the good results and one error per
//! bad item, carrying the item's `objectWriteTraceId` so the caller can tell
//! which. The sim remembers which trace ids it created and how often, so a
//! test can assert "exactly these items, once each".

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};

use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use super::{Call, DailyQuota, Recorder, Running, StartError, answer};
use crate::clock::Clock;

/// Decides whether one batch input is refused (`true`: a validation error).
pub type ItemCheck = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// The default check: `properties.email` containing "invalid" is refused.
pub fn invalid_email() -> ItemCheck {
    Arc::new(|input: &Value| {
        input
            .pointer("/properties/email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.contains("invalid"))
    })
}

#[derive(Clone)]
pub struct HubspotConfig {
    /// Requests per rolling window (HubSpot private apps: 100 per 10 s).
    pub per_window: u32,
    pub window_ms: i64,
    /// Requests per UTC day.
    pub daily: u64,
    /// Most inputs in one batch call.
    pub max_inputs: usize,
    pub refuse: ItemCheck,
}

impl Default for HubspotConfig {
    fn default() -> HubspotConfig {
        HubspotConfig {
            per_window: 100,
            window_ms: 10_000,
            daily: 1_000_000,
            max_inputs: 100,
            refuse: invalid_email(),
        }
    }
}

/// At most `max` requests in any `window_ms`: the times of the admitted
/// requests still inside the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollingWindow {
    pub max: u32,
    pub window_ms: i64,
    times: VecDeque<i64>,
}

impl RollingWindow {
    pub fn new(max: u32, window_ms: i64) -> RollingWindow {
        RollingWindow {
            max,
            window_ms,
            times: VecDeque::new(),
        }
    }

    /// Forgets the requests older than the window.
    fn slide(&mut self, now_ms: i64) {
        while self
            .times
            .front()
            .is_some_and(|t| *t <= now_ms - self.window_ms)
        {
            self.times.pop_front();
        }
    }

    /// Admits one request: `Ok(remaining)` after it, or `Err(ms)` until the
    /// oldest request leaves the window. A refused request is not counted.
    pub fn take(&mut self, now_ms: i64) -> Result<u32, i64> {
        self.slide(now_ms);
        if self.times.len() as u32 >= self.max {
            let oldest = self.times.front().copied().unwrap_or(now_ms);
            return Err((oldest + self.window_ms - now_ms).max(1));
        }
        self.times.push_back(now_ms);
        Ok(self.max - self.times.len() as u32)
    }
}

/// The limits' state; one lock, held only for arithmetic.
struct Limits {
    window: RollingWindow,
    daily: DailyQuota,
    next_id: u64,
    /// Trace id → times created.
    created: BTreeMap<String, u32>,
}

struct Shared {
    clock: Clock,
    config: HubspotConfig,
    limits: Mutex<Limits>,
    recorder: Arc<Recorder>,
}

/// A running HubSpot-like batch API.
#[derive(Clone)]
pub struct HubspotSim {
    running: Running,
    shared: Arc<Shared>,
}

running_accessors!(HubspotSim);

impl HubspotSim {
    /// Starts on 127.0.0.1, port 0; `clock` drives the window and the day.
    pub async fn start(clock: Clock, config: HubspotConfig) -> Result<HubspotSim, StartError> {
        if config.per_window == 0 || config.window_ms <= 0 || config.max_inputs == 0 {
            return Err(StartError::Settings(
                "a HubSpot window needs a size, a length and room for one input",
            ));
        }
        let recorder = Arc::new(Recorder::default());
        let shared = Arc::new(Shared {
            clock,
            limits: Mutex::new(Limits {
                window: RollingWindow::new(config.per_window, config.window_ms),
                daily: DailyQuota::new(config.daily),
                next_id: 1_000_001,
                created: BTreeMap::new(),
            }),
            config,
            recorder: recorder.clone(),
        });
        let router = Router::new()
            .route("/crm/v3/objects/{object}/batch/{op}", post(handle))
            .with_state(shared.clone());
        Ok(HubspotSim {
            running: Running::start(router, recorder).await?,
            shared,
        })
    }

    /// Each created item's `objectWriteTraceId` and how many times it was
    /// created (more than 1: a duplicate effect).
    pub fn created(&self) -> BTreeMap<String, u32> {
        self.lock().created.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.shared.limits.lock().expect("hubspot limits poisoned")
    }
}

fn error(message: String) -> String {
    json!({
        "status": "error",
        "message": message,
        "correlationId": uuid::Uuid::now_v7().to_string(),
        "category": "VALIDATION_ERROR",
    })
    .to_string()
}

async fn handle(
    State(s): State<Arc<Shared>>,
    Path((object, op)): Path<(String, String)>,
    call: Call,
) -> Response {
    let mut record = call.seen(&s.clock);
    let body = call.body;
    let now = record.at_ms;
    let mut limits = s.limits.lock().expect("hubspot limits poisoned");
    // Every call counts against the day; only admitted calls fill the window.
    let daily = limits.daily.take(now);
    let window = match daily {
        Ok(_) => limits.window.take(now),
        Err(_) => Err(0),
    };
    let (remaining, daily_used) = (*window.as_ref().unwrap_or(&0), limits.daily.used(now));
    let out = [
        (
            "x-hubspot-ratelimit-interval-milliseconds",
            s.config.window_ms.to_string(),
        ),
        ("x-hubspot-ratelimit-max", s.config.per_window.to_string()),
        ("x-hubspot-ratelimit-remaining", remaining.to_string()),
        ("x-hubspot-ratelimit-daily", limits.daily.quota.to_string()),
        (
            "x-hubspot-ratelimit-daily-remaining",
            (limits.daily.quota - daily_used).to_string(),
        ),
    ];
    let inputs = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("inputs")?.as_array().cloned());
    record.items = inputs.as_ref().map(Vec::len);
    let (status, text) = if window.is_err() || daily.is_err() {
        let (policy, limit) = match daily {
            Err(_) => ("DAILY", "daily"),
            Ok(_) => ("TEN_SECONDLY_ROLLING", "ten_secondly_rolling"),
        };
        let text = json!({
            "status": "error",
            "message": format!("You have reached your {limit} limit."),
            "errorType": "RATE_LIMIT",
            "correlationId": uuid::Uuid::now_v7().to_string(),
            "policyName": policy,
        });
        (429, text.to_string())
    } else if op != "create" && op != "upsert" {
        (404, error(format!("Unknown batch operation {op}.")))
    } else {
        match inputs {
            None => (
                400,
                error("Invalid input JSON: a body {\"inputs\":[...]} is required.".to_owned()),
            ),
            Some(inputs) if inputs.len() > s.config.max_inputs => (
                400,
                error(format!(
                    "Batch input is limited to {} inputs; {} were given.",
                    s.config.max_inputs,
                    inputs.len()
                )),
            ),
            Some(inputs) => create(&mut limits, &s.config, &object, &inputs),
        }
    };
    drop(limits);
    record.status = status;
    s.recorder.record(record, status == 429);
    answer(status, &out, text)
}

/// Creates the valid inputs: 201 when all were, 207 with errors otherwise.
fn create(
    limits: &mut Limits,
    config: &HubspotConfig,
    object: &str,
    inputs: &[Value],
) -> (u16, String) {
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        let trace = input
            .get("objectWriteTraceId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let properties = input.get("properties").cloned().unwrap_or(json!({}));
        if (config.refuse)(input) {
            let email = properties
                .get("email")
                .and_then(Value::as_str)
                .unwrap_or("");
            errors.push(json!({
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": format!(
                    "Property values were not valid: [{{\"isValid\":false,\"message\":\"Email address {email} is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}}]"
                ),
                "context": {"objectWriteTraceId": [trace]},
            }));
            continue;
        }
        let id = limits.next_id.to_string();
        limits.next_id += 1;
        *limits.created.entry(trace.clone()).or_default() += 1;
        results.push(json!({
            "id": id,
            "objectWriteTraceId": trace,
            "objectType": object,
            "properties": properties,
            "archived": false,
        }));
    }
    if errors.is_empty() {
        (
            201,
            json!({"status": "COMPLETE", "results": results}).to_string(),
        )
    } else {
        let n = errors.len();
        let body =
            json!({"status": "COMPLETE", "results": results, "numErrors": n, "errors": errors});
        (207, body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn the_window_admits_its_size_then_waits_for_the_oldest() {
        let mut w = RollingWindow::new(3, 10_000);
        assert_eq!(w.take(T0), Ok(2));
        assert_eq!(w.take(T0 + 1_000), Ok(1));
        assert_eq!(w.take(T0 + 2_000), Ok(0));
        assert_eq!(w.take(T0 + 3_000), Err(7_000));
        assert_eq!(w.take(T0 + 9_999), Err(1));
        assert_eq!(w.take(T0 + 10_000), Ok(0), "the first left the window");
        assert_eq!(w.take(T0 + 10_500), Err(500));
        assert_eq!(w.take(T0 + 60_000), Ok(2), "all left");
    }

    #[test]
    fn refused_requests_do_not_fill_the_window() {
        let mut w = RollingWindow::new(1, 1_000);
        w.take(T0).unwrap();
        for i in 1..100 {
            assert!(w.take(T0 + i).is_err());
        }
        assert_eq!(w.take(T0 + 1_000), Ok(0));
    }

    fn batch(traces: &[(&str, &str)]) -> Value {
        let inputs: Vec<Value> = traces
            .iter()
            .map(|(t, email)| json!({"objectWriteTraceId": t, "properties": {"email": email}}))
            .collect();
        json!({ "inputs": inputs })
    }

    #[tokio::test]
    async fn batches_get_hubspots_answers_and_a_burst_gets_429() {
        let clock = Clock::manual(T0);
        let config = HubspotConfig {
            per_window: 4,
            ..Default::default()
        };
        let sim = HubspotSim::start(clock.clone(), config).await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/crm/v3/objects/contacts/batch/create", sim.url());
        let send = |body: Value| http.post(&url).json(&body).send();

        let r = send(batch(&[("t1", "a@example.com"), ("t2", "b@example.com")]))
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-hubspot-ratelimit-remaining"], "3");
        assert_eq!(r.headers()["x-hubspot-ratelimit-max"], "4");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["results"][1]["objectWriteTraceId"], "t2");

        let r = send(batch(&[("t3", "c@example.com"), ("t4", "invalid@example")]))
            .await
            .unwrap();
        assert_eq!(r.status(), 207);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["numErrors"], 1);
        assert_eq!(v["errors"][0]["context"]["objectWriteTraceId"][0], "t4");
        assert_eq!(v["errors"][0]["category"], "VALIDATION_ERROR");
        assert_eq!(v["results"].as_array().unwrap().len(), 1);

        let too_many: Vec<(String, &str)> = (0..101).map(|i| (format!("x{i}"), "e@x.io")).collect();
        let refs: Vec<(&str, &str)> = too_many.iter().map(|(t, e)| (t.as_str(), *e)).collect();
        let r = send(batch(&refs)).await.unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["category"], "VALIDATION_ERROR");

        send(batch(&[("t5", "d@example.com")])).await.unwrap();
        let r = send(batch(&[("t6", "e@example.com")])).await.unwrap();
        assert_eq!(r.status(), 429);
        let h = r.headers();
        assert_eq!(h["x-hubspot-ratelimit-remaining"], "0");
        assert_eq!(h["x-hubspot-ratelimit-interval-milliseconds"], "10000");
        assert_eq!(h["x-hubspot-ratelimit-daily"], "1000000");

        clock.advance(10_000);
        let r = send(batch(&[("t6", "e@example.com")])).await.unwrap();
        assert_eq!(r.status(), 201);

        let created: Vec<(String, u32)> = sim.created().into_iter().collect();
        let want: Vec<(String, u32)> = ["t1", "t2", "t3", "t5", "t6"]
            .iter()
            .map(|t| (t.to_string(), 1))
            .collect();
        assert_eq!(created, want);
        let items: Vec<Option<usize>> = sim.seen().iter().map(|s| s.items).collect();
        assert_eq!(
            items,
            vec![Some(2), Some(2), Some(101), Some(1), Some(1), Some(1)]
        );
        let c = sim.counters();
        assert_eq!((c.requests, c.ok, c.throttled), (6, 4, 1));
        sim.stop();
    }
}
