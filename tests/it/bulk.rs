//! Bulk sync: an NDJSON upload becomes a job, its lines go out in batches to
//! a HubSpot-like batch API within its rate limit, and the items the
//! platform refuses end dead with the platform's reason while every other
//! item is created exactly once. ferry and the simulated platform share a
//! manual clock; nothing sleeps.

use crate::common::*;
use ferry::clock::Clock;
use ferry::sim::platform::hubspot::{HubspotConfig, HubspotSim};
use reqwest::Method;
use serde_json::Value;

const ITEMS: usize = 25_000;

/// Every hundredth contact has an address HubSpot refuses.
fn refused(i: usize) -> bool {
    i % 100 == 37
}

fn ndjson(range: std::ops::Range<usize>) -> String {
    let mut out = String::new();
    for i in range {
        let email = if refused(i) {
            format!("invalid-{i}")
        } else {
            format!("c{i}@example.com")
        };
        out.push_str(&format!(
            "{{\"objectWriteTraceId\":\"c{i}\",\"properties\":{{\"email\":\"{email}\"}}}}\n"
        ));
    }
    out
}

async fn hubspot_app() -> (TestApp, HubspotSim) {
    let clock = Clock::manual(T0);
    let crm = HubspotSim::start(clock.clone(), HubspotConfig::default())
        .await
        .unwrap();
    let t = TestApp::spawn_with(Options {
        clock: Some(clock),
        extra: format!(
            r#"
[systems.crm]
base_url = "{}"
rate_limit = {{ per_second = 10, burst = 10, dialect = "hubspot" }}

[routes.contacts]
source = {{ kind = "api", credentials = ["erp_client"] }}
destination = {{ system = "crm", path = "/crm/v3/objects/contacts", batch = {{ max_items = 100, path = "/crm/v3/objects/contacts/batch/create", body = "{{inputs: .}}", results = "(.response.errors // []) as $e | [.request[] | .objectWriteTraceId as $id | [$e[] | select(any(.context.objectWriteTraceId[]?; . == $id)) | .message] | .[0]]" }} }}
"#,
            crm.url()
        ),
        ..Default::default()
    })
    .await;
    (t, crm)
}

async fn upload(t: &TestApp, key: &str, body: String) -> Value {
    let r = t
        .http
        .post(format!("{}/api/v1/routes/contacts/bulk", t.base))
        .bearer_auth(ERP_KEY)
        .header("idempotency-key", key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

async fn job(t: &TestApp, id: &str) -> Value {
    t.http
        .get(format!("{}/api/v1/routes/contacts/bulk/{id}", t.base))
        .bearer_auth(ERP_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_job_of_25000_contacts_goes_in_batches_and_only_the_refused_die() {
    let (t, crm) = hubspot_app().await;
    let answer = upload(&t, "contacts-2026-01-01", ndjson(0..ITEMS)).await;
    assert_eq!(answer["lines"], ITEMS);
    assert_eq!(answer["accepted"], ITEMS);
    let id = answer["job"].as_str().unwrap().to_owned();

    let steps = drive(&t, "crm", async || job(&t, &id).await["done"] == true).await;
    let calls = crm.seen();
    let throttled = crm.counters().throttled;
    println!(
        "bulk: {} calls ({} answered 429) in {steps} steps, {:.1} virtual s",
        calls.len(),
        throttled,
        (t.clock.now_ms() - T0) as f64 / 1000.0
    );
    assert!(calls.len() <= 260, "{} calls", calls.len());
    assert!(calls.iter().all(|c| c.items.unwrap_or(0) <= 100));
    let view = job(&t, &id).await;
    let refused_n = (0..ITEMS).filter(|i| refused(*i)).count();
    assert_eq!(view["messages"]["delivered"], ITEMS - refused_n, "{view}");
    assert_eq!(view["messages"]["dead"], refused_n, "{view}");
    let created = crm.created();
    assert_eq!(created.len(), ITEMS - refused_n);
    assert!(created.values().all(|n| *n == 1), "each created once");
    assert!((0..ITEMS).all(|i| refused(i) != created.contains_key(&format!("c{i}"))));

    // Exactly the refused ones are dead, each with the platform's reason.
    let dead = t
        .admin_json(
            Method::GET,
            "/messages?state=dead&route=contacts&limit=1000",
            None,
        )
        .await;
    let dead = dead["messages"].as_array().unwrap();
    assert_eq!(dead.len(), refused_n);
    for m in dead {
        let why = m["last_explanation"].as_str().unwrap();
        assert!(why.contains("Email address invalid-"), "{why}");
        assert_eq!(m["last_class"], "rejected");
    }
}

#[tokio::test]
async fn a_bulk_upload_resumed_with_its_key_doubles_nothing_and_bad_lines_are_reported() {
    let (t, _crm) = hubspot_app().await;
    let first = upload(&t, "k1", ndjson(0..50)).await;
    let mut again = ndjson(0..80);
    again.push_str("not json\n\n{\"objectWriteTraceId\":\"late\",\"properties\":{}}");
    let second = upload(&t, "k1", again).await;
    assert_eq!(second["job"], first["job"], "the same key is the same job");
    assert_eq!(second["resumed"], true);
    assert_eq!(
        (
            &second["lines"],
            &second["accepted"],
            &second["duplicates"],
            &second["rejected"]
        ),
        (&82.into(), &31.into(), &50.into(), &1.into())
    );
    assert_eq!(second["errors"][0]["line"], 81);
    assert!(
        second["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let view = job(&t, first["job"].as_str().unwrap()).await;
    assert_eq!(view["messages"]["queued"], 81);
    assert_eq!(view["done"], false);
    // A line that changed since is a new message, never dropped as a duplicate.
    let changed = ndjson(0..80).replacen("c0@example.com", "c0@example.org", 1);
    let third = upload(&t, "k1", changed).await;
    assert_eq!(
        (&third["accepted"], &third["duplicates"]),
        (&1.into(), &79.into())
    );
}

/// ferry with an API route `items` sending batches of 8 to the receiver,
/// built by the jq program `body`.
async fn items_app(body: &str) -> TestApp {
    TestApp::spawn_with(Options {
        extra: format!(
            r#"
[routes.items]
source = {{ kind = "api", credentials = ["erp_client"] }}
destination = {{ system = "erp", path = "/items", batch = {{ max_items = 8, path = "/items/batch", body = "{body}" }} }}
"#
        ),
        ..Default::default()
    })
    .await
}

/// Uploads `body` to the `items` route as a bulk job and delivers it all.
async fn sync_items(t: &TestApp, body: String) {
    let r = t
        .http
        .post(format!("{}/api/v1/routes/items/bulk", t.base))
        .bearer_auth(ERP_KEY)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    drive(t, "erp", async || t.stats("items").await.pending() == 0).await;
}

/// A platform that refuses a whole batch for one bad item: the batch is
/// split in halves until the bad item stands alone, and only it dies.
#[tokio::test]
async fn a_refused_batch_is_split_until_only_the_bad_item_fails() {
    use ferry::sim::receiver::{Received, Reply};
    let t = items_app("{inputs: .}").await;
    t.receiver
        .set_responder(std::sync::Arc::new(|r: &Received| {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let inputs = v["inputs"].as_array().cloned().unwrap_or_default();
            if inputs.iter().any(|i| i["bad"] == true) {
                Reply::status(422).body(r#"{"error":"sku X-5 does not exist"}"#)
            } else {
                Reply::status(200)
            }
        }));
    let body: String = (0..8)
        .map(|i| format!("{{\"n\":{i},\"bad\":{}}}\n", i == 5))
        .collect();
    sync_items(&t, body).await;
    let stats = t.stats("items").await;
    assert_eq!((stats.delivered, stats.dead), (7, 1));
    let sizes: Vec<usize> = t
        .receiver
        .received()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["inputs"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes.len(), 7, "8, then halves of 4, 2 and 1: {sizes:?}");
    assert_eq!(sizes[0], 8);
    let delivered: usize = t
        .receiver
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["inputs"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(delivered, 7, "each good item went through once");
    let dead = t
        .admin_json(Method::GET, "/messages?state=dead&route=items", None)
        .await;
    let why = dead["messages"][0]["last_explanation"].as_str().unwrap();
    assert!(why.contains("sku X-5 does not exist"), "{why}");
}

/// A batch body the mapping cannot build for one item: the batch is split
/// without sending anything until that item stands alone; only it dies.
#[tokio::test]
async fn an_item_the_batch_mapping_refuses_fails_alone_and_nothing_is_sent_for_it() {
    let t = items_app("{inputs: map({n, code: (.code | ascii_downcase)})}").await;
    let body: String = (0..8)
        .map(|i| match i {
            3 => "{\"n\":3,\"code\":null}\n".to_owned(),
            _ => format!("{{\"n\":{i},\"code\":\"A{i}\"}}\n"),
        })
        .collect();
    sync_items(&t, body).await;
    let stats = t.stats("items").await;
    assert_eq!((stats.delivered, stats.dead), (7, 1));
    let sent: usize = t
        .receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["inputs"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(sent, 7, "the bad item was never sent; the others once each");
    let dead = t
        .admin_json(Method::GET, "/messages?state=dead&route=items", None)
        .await;
    assert_eq!(dead["messages"][0]["last_class"], "mapping");
}
