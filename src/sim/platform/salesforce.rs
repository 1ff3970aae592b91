//! A Salesforce-like REST API: `POST /services/data/v{ver}/sobjects/{object}/`
//! creates a record (201 with its id), `PATCH .../sobjects/{object}/{id}`
//! updates one (204). A daily quota of API requests (reset at the next UTC
//! midnight of the sim's clock) counts every call; every answer says how much
//! is spent (`Sforce-Limit-Info: api-usage=used/quota`, what ferry's
//! `salesforce` dialect reads), and once the quota is spent Salesforce
//! answers 403 `REQUEST_LIMIT_EXCEEDED`, not 429.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};

use axum::response::Response;
use axum::routing::{patch, post};
use serde_json::json;

use super::{Call, DailyQuota, Recorder, Running, StartError, answer};
use crate::clock::Clock;

/// Salesforce's answer once the day's quota is spent.
pub const LIMIT_EXCEEDED_BODY: &str =
    r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalesforceConfig {
    /// API requests per UTC day.
    pub daily_quota: u64,
}

impl Default for SalesforceConfig {
    fn default() -> SalesforceConfig {
        SalesforceConfig { daily_quota: 1000 }
    }
}

struct Limits {
    quota: DailyQuota,
    next_id: u64,
}

struct Shared {
    clock: Clock,
    /// A `std` mutex: held only for arithmetic.
    limits: Mutex<Limits>,
    recorder: Arc<Recorder>,
}

/// A running Salesforce-like API.
#[derive(Clone)]
pub struct SalesforceSim {
    running: Running,
    shared: Arc<Shared>,
}

running_accessors!(SalesforceSim);

impl SalesforceSim {
    /// Starts on 127.0.0.1, port 0; `clock` decides which day it is.
    pub async fn start(
        clock: Clock,
        config: SalesforceConfig,
    ) -> Result<SalesforceSim, StartError> {
        let recorder = Arc::new(Recorder::default());
        let shared = Arc::new(Shared {
            clock,
            limits: Mutex::new(Limits {
                quota: DailyQuota::new(config.daily_quota),
                next_id: 1,
            }),
            recorder: recorder.clone(),
        });
        let router = Router::new()
            .route("/services/data/{ver}/sobjects/{object}", post(create))
            .route("/services/data/{ver}/sobjects/{object}/", post(create))
            .route("/services/data/{ver}/sobjects/{object}/{id}", patch(update))
            .with_state(shared.clone());
        Ok(SalesforceSim {
            running: Running::start(router, recorder).await?,
            shared,
        })
    }

    /// Requests counted against today's quota, by the sim's clock.
    pub fn used_today(&self) -> u64 {
        let now = self.shared.clock.now_ms();
        let mut limits = self.shared.limits.lock().expect("salesforce poisoned");
        limits.quota.used(now)
    }
}

/// A record id in Salesforce's 18-character shape, `001` for accounts.
fn record_id(object: &str, n: u64) -> String {
    let prefix = match object {
        "Account" => "001",
        "Contact" => "003",
        "Opportunity" => "006",
        "Lead" => "00Q",
        _ => "a00",
    };
    format!("{prefix}5g00000{n:08}")
}

async fn create(
    State(s): State<Arc<Shared>>,
    Path((ver, object)): Path<(String, String)>,
    call: Call,
) -> Response {
    handle(s, ver, object, None, call)
}

async fn update(
    State(s): State<Arc<Shared>>,
    Path((ver, object, id)): Path<(String, String, String)>,
    call: Call,
) -> Response {
    handle(s, ver, object, Some(id), call)
}

/// One call: counted against the day, then created, updated or refused.
fn handle(s: Arc<Shared>, ver: String, object: String, id: Option<String>, call: Call) -> Response {
    let mut record = call.seen(&s.clock);
    let body = call.body;
    let mut limits = s.limits.lock().expect("salesforce poisoned");
    let taken = limits.quota.take(record.at_ms);
    let used = match taken {
        Ok(u) | Err(u) => u,
    };
    let info = [(
        "sforce-limit-info",
        format!("api-usage={used}/{}", limits.quota.quota),
    )];
    let (status, text) = if taken.is_err() {
        (403, LIMIT_EXCEEDED_BODY.to_owned())
    } else if !ver.starts_with('v') {
        let text =
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]);
        (404, text.to_string())
    } else if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        let text = json!([{"errorCode": "JSON_PARSER_ERROR", "message": "The request body is not valid JSON."}]);
        (400, text.to_string())
    } else if id.is_some() {
        (204, String::new())
    } else {
        let n = limits.next_id;
        limits.next_id += 1;
        let text = json!({"id": record_id(&object, n), "success": true, "errors": []});
        (201, text.to_string())
    };
    drop(limits);
    record.status = status;
    s.recorder.record(record, status == 403);
    answer(status, &info, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T23:59:00Z.
    const LATE: i64 = 1_767_225_600_000 + 86_400_000 - 60_000;

    #[test]
    fn ids_look_like_salesforce_ids() {
        assert_eq!(record_id("Account", 7).len(), 18);
        assert!(record_id("Account", 7).starts_with("001"));
    }

    #[tokio::test]
    async fn a_spent_quota_answers_403_until_utc_midnight() {
        let clock = Clock::manual(LATE);
        let sim = SalesforceSim::start(clock.clone(), SalesforceConfig { daily_quota: 2 })
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/services/data/v60.0/sobjects/Account/", sim.url());
        let send = || http.post(&url).body(r#"{"Name":"Teehaus"}"#).send();

        let r = send().await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["sforce-limit-info"], "api-usage=1/2");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["success"], true);
        let id = v["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("001"));

        let patch_url = format!("{}/services/data/v60.0/sobjects/Account/{id}", sim.url());
        let r = http.patch(&patch_url).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["sforce-limit-info"], "api-usage=2/2");

        let r = send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["sforce-limit-info"], "api-usage=2/2");
        assert_eq!(r.text().await.unwrap(), LIMIT_EXCEEDED_BODY);

        clock.advance(60_000);
        let r = send().await.unwrap();
        assert_eq!(r.status(), 201, "a new UTC day");
        assert_eq!(r.headers()["sforce-limit-info"], "api-usage=1/2");
        assert_eq!(sim.used_today(), 1);
        let c = sim.counters();
        assert_eq!((c.requests, c.ok, c.throttled), (4, 3, 1));
        sim.stop();
    }
}
