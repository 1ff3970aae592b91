//! The demo's simulated ERP: the [`responder`] a
//! [`Receiver`](crate::sim::receiver::Receiver) uses to answer ferry's sales
//! orders, and [`push_stock`], the ERP calling ferry's idempotent API with stock
//! levels, and [`sync_contacts`], its opening CRM sync as one bulk job.
//! Orders naming an unknown SKU get 422 with a JSON error (a permanent
//! failure: the message dies). The other answers follow a fixed cycle over the
//! ERP's attempt counter, so every behaviour shows within seconds: one attempt
//! in twelve gets 503, one 429 with `Retry-After: 2`, two are slow (300–700 ms)
//! and the rest succeed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::ERP_CLIENT_KEY;
use super::shop::CATALOG;
use crate::sim::receiver::{Received, Reply, Responder};

/// ferry's token toward the ERP, as the demo config's `erp_token` holds it.
const EXPECTED_AUTH: &str = "Bearer demo-erp-token";
/// How often the ERP sends a stock level.
const STOCK_EVERY: Duration = Duration::from_secs(5);
/// Warehouses of the opening stock sync: with the catalog, 60 levels at
/// once, more than the shop's bucket of 40 holds, so ferry's pacing shows.
const LOCATIONS: &[&str] = &[
    "main-warehouse",
    "berlin-store",
    "wien-store",
    "lyon-store",
    "utrecht-store",
    "bologna-store",
    "basel-store",
    "returns",
    "consignment",
    "outlet",
];

/// What the ERP answered; read by the summary line.
#[derive(Default)]
pub(super) struct ErpStats {
    /// Attempts on known products: drives the answer cycle.
    cycle: AtomicU64,
    ok: AtomicU64,
    slow: AtomicU64,
    rate_limited: AtomicU64,
    unavailable: AtomicU64,
    rejected: AtomicU64,
    unauthorized: AtomicU64,
}

impl ErpStats {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "201×{} (slow {}), 429×{}, 503×{}, 422×{}",
            self.ok.load(Relaxed),
            self.slow.load(Relaxed),
            self.rate_limited.load(Relaxed),
            self.unavailable.load(Relaxed),
            self.rejected.load(Relaxed),
        );
        let unauthorized = self.unauthorized.load(Relaxed);
        if unauthorized > 0 {
            s.push_str(&format!(", 401×{unauthorized}"));
        }
        s
    }
}

fn json_reply(status: u16, body: serde_json::Value) -> Reply {
    Reply::status(status)
        .header("content-type", "application/json")
        .body(&body.to_string())
}

/// The ERP's answer to one delivery attempt.
pub(super) fn responder(stats: Arc<ErpStats>) -> Responder {
    Arc::new(move |req: &Received| {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(EXPECTED_AUTH) {
            stats.unauthorized.fetch_add(1, Relaxed);
            return json_reply(401, json!({"error": "invalid API token"}));
        }
        if let Some(sku) = unknown_sku(&req.body) {
            stats.rejected.fetch_add(1, Relaxed);
            return json_reply(
                422,
                json!({"error": format!("unknown sku {sku}"), "field": "lines[].sku"}),
            );
        }
        let n = stats.cycle.fetch_add(1, Relaxed);
        match n % 12 {
            2 => {
                stats.unavailable.fetch_add(1, Relaxed);
                json_reply(503, json!({"error": "posting run in progress, try again"}))
            }
            6 => {
                stats.rate_limited.fetch_add(1, Relaxed);
                json_reply(429, json!({"error": "too many requests"})).header("Retry-After", "2")
            }
            k => {
                let slow = k == 4 || k == 9;
                let delay = if slow {
                    300 + (n * 37) % 400
                } else {
                    10 + n % 20
                };
                if slow {
                    stats.slow.fetch_add(1, Relaxed);
                }
                stats.ok.fetch_add(1, Relaxed);
                json_reply(201, json!({"sales_order": format!("SO-{}", 10_000 + n)}))
                    .delay(Duration::from_millis(delay))
            }
        }
    })
}

/// The first order line whose SKU the ERP does not know.
fn unknown_sku(body: &[u8]) -> Option<String> {
    let order: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Some("(unreadable order)".to_owned()),
    };
    let lines = order["data"]["lines"].as_array()?;
    lines.iter().find_map(|line| {
        let sku = line["sku"].as_str().unwrap_or("(none)");
        (!CATALOG.iter().any(|(known, _, _)| *known == sku)).then(|| sku.to_owned())
    })
}

/// The ERP posting stock levels to ferry's API, each with its own
/// `Idempotency-Key`, until `stop`: first an opening sync of every product
/// at every location at once, then one level every few seconds.
pub(super) async fn push_stock(url: String, stop: CancellationToken) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo ERP: cannot build an HTTP client: {e}");
            return;
        }
    };
    let mut n: u64 = 0;
    for location in LOCATIONS {
        for (sku, _, _) in CATALOG {
            if stop.is_cancelled() {
                return;
            }
            n += 1;
            send_stock(&http, &url, n, sku, location).await;
        }
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(STOCK_EVERY) => {}
        }
        n += 1;
        let (sku, _, _) = CATALOG[n as usize % CATALOG.len()];
        send_stock(&http, &url, n, sku, LOCATIONS[0]).await;
    }
}

/// Contacts in the ERP's opening CRM sync; one in a hundred has an address
/// the CRM refuses, so the per-item results show.
const CONTACTS: usize = 2_000;

/// The ERP's opening sync of its customers into the CRM: one NDJSON upload,
/// a bulk job that ferry sends to the CRM's batch API 100 at a time.
pub(super) async fn sync_contacts(url: String) {
    let mut ndjson = String::with_capacity(CONTACTS * 110);
    for i in 0..CONTACTS {
        let email = if i % 100 == 42 {
            format!("customer-{i}-at-invalid")
        } else {
            format!("customer-{i}@example.com")
        };
        ndjson.push_str(&format!(
            "{{\"objectWriteTraceId\":\"cust-{i}\",\"properties\":{{\"email\":\"{email}\",\"lifecyclestage\":\"customer\"}}}}\n"
        ));
    }
    let sent = reqwest::Client::new()
        .post(&url)
        .bearer_auth(ERP_CLIENT_KEY)
        .header("idempotency-key", "opening-contact-sync")
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => eprintln!(
            "demo ERP: ferry answered {} to the contact sync",
            r.status()
        ),
        Err(e) => eprintln!("demo ERP: the contact sync failed: {e}"),
    }
}

async fn send_stock(http: &reqwest::Client, url: &str, n: u64, sku: &str, location: &str) {
    let body = json!({"sku": sku, "location": location, "available": 40 + (n * 7) % 60});
    let sent = http
        .post(url)
        .bearer_auth(ERP_CLIENT_KEY)
        .header("idempotency-key", format!("stock-{n}"))
        .json(&body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            eprintln!("demo ERP: ferry answered {status} to stock update {n}: {text}");
        }
        Err(e) => eprintln!("demo ERP: stock update {n} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unknown_skus() {
        let known = br#"{"data":{"lines":[{"sku":"TEA-EARL-250"}]}}"#;
        let unknown = br#"{"data":{"lines":[{"sku":"TEA-EARL-250"},{"sku":"NOPE-1"}]}}"#;
        assert_eq!(unknown_sku(known), None);
        assert_eq!(unknown_sku(unknown).as_deref(), Some("NOPE-1"));
    }
}
