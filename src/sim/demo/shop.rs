//! The demo's simulated shop: a task that sends `order.created` webhooks,
//! signed the Standard Webhooks way, to ferry's `shop-orders` route a few times
//! a second. Every tenth order is sent a second time with the same
//! `webhook-id` (as a shop does when it missed the first acknowledgement), so
//! ferry's dedupe shows; every twentieth contains a product the ERP does not
//! know, so the ERP's 422 and a dead message show.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SHOP_WEBHOOK_SECRET;
use crate::clock::Clock;
use crate::ingest::verify::sign_standard_webhooks;

/// What the shop sells and the ERP knows: SKU, name, unit price in cents.
pub(super) const CATALOG: &[(&str, &str, u64)] = &[
    ("TEA-EARL-250", "Earl Grey, loose leaf, 250 g", 899),
    ("TEA-SENCHA-100", "Sencha Fukamushi, 100 g", 1250),
    ("TEA-ROOIBOS-250", "Rooibos Vanilla, 250 g", 749),
    ("POT-CAST-080", "Cast-iron teapot, 0.8 l", 4900),
    ("CUP-PORC-2", "Porcelain cups, set of 2", 2400),
    ("FILTER-100", "Paper tea filters, 100 pcs", 399),
];

/// Products listed in the shop but missing from the ERP.
const UNKNOWN: &[(&str, &str)] = &[
    ("TEA-MATCHA-XL", "Ceremonial matcha, 250 g"),
    ("GIFT-BOX-25", "Gift box 2025"),
    ("POT-GLASS-120", "Glass teapot, 1.2 l"),
];

const CUSTOMERS: &[(&str, &str, &str, &str)] = &[
    ("Anna Schmidt", "anna.schmidt@example.de", "Berlin", "DE"),
    ("Lukas Weber", "l.weber@example.at", "Wien", "AT"),
    ("Sophie Martin", "sophie.martin@example.fr", "Lyon", "FR"),
    ("Jan de Vries", "jan.devries@example.nl", "Utrecht", "NL"),
    ("Marta Rossi", "marta.rossi@example.it", "Bologna", "IT"),
    ("Noah Keller", "noah.keller@example.ch", "Basel", "CH"),
];

const SHIPPING_CENTS: u64 = 490;
/// Wait before the second copy of a duplicated webhook.
const RESEND_AFTER: Duration = Duration::from_millis(1500);

/// What the shop saw; read by the summary line.
#[derive(Default)]
pub(super) struct ShopStats {
    sent: AtomicU64,
    resent: AtomicU64,
    duplicates_absorbed: AtomicU64,
    refused: AtomicU64,
}

impl ShopStats {
    pub fn sent(&self) -> u64 {
        self.sent.load(Relaxed)
    }
    pub fn resent(&self) -> u64 {
        self.resent.load(Relaxed)
    }
    /// Second copies that ferry answered 200 "duplicate".
    pub fn duplicates_absorbed(&self) -> u64 {
        self.duplicates_absorbed.load(Relaxed)
    }
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }
}

/// One signed webhook request.
struct Webhook {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

/// Sends orders to `url` until `stop`; waits for pending second copies.
pub(super) async fn run(url: String, stats: Arc<ShopStats>, stop: CancellationToken) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo shop: cannot build an HTTP client: {e}");
            return;
        }
    };
    let mut rng = StdRng::seed_from_u64(0x5EED);
    let resends = TaskTracker::new();
    let mut n: u64 = 0;
    loop {
        let pause = Duration::from_millis(rng.random_range(180..420));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
        n += 1;
        let now_ms = Clock::System.now_ms();
        let body = order(n, now_ms, &mut rng, n % 20 == 7).to_string();
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let timestamp = now_ms.div_euclid(1000);
        let signature =
            match sign_standard_webhooks(SHOP_WEBHOOK_SECRET, &id, timestamp, body.as_bytes()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("demo shop: cannot sign: {e}");
                    return;
                }
            };
        let hook = Arc::new(Webhook {
            id,
            timestamp,
            signature,
            body,
        });
        stats.sent.fetch_add(1, Relaxed);
        send(&http, &url, &hook, &stats).await;
        if n % 10 == 4 {
            let (http, url, stats, stop) = (http.clone(), url.clone(), stats.clone(), stop.clone());
            resends.spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(RESEND_AFTER) => {
                        stats.resent.fetch_add(1, Relaxed);
                        send(&http, &url, &hook, &stats).await;
                    }
                }
            });
        }
    }
    resends.close();
    resends.wait().await;
}

async fn send(http: &reqwest::Client, url: &str, hook: &Webhook, stats: &ShopStats) {
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &hook.id)
        .header("webhook-timestamp", hook.timestamp.to_string())
        .header("webhook-signature", &hook.signature)
        .body(hook.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {}
        Ok(r) if r.status() == reqwest::StatusCode::OK => {
            stats.duplicates_absorbed.fetch_add(1, Relaxed);
        }
        Ok(r) => {
            stats.refused.fetch_add(1, Relaxed);
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            eprintln!("demo shop: ferry answered {status} to {}: {text}", hook.id);
        }
        Err(e) => {
            stats.refused.fetch_add(1, Relaxed);
            eprintln!("demo shop: sending {} failed: {e}", hook.id);
        }
    }
}

/// A Standard Webhooks `order.created` payload for order number `1000 + n`.
fn order(n: u64, now_ms: i64, rng: &mut StdRng, unknown_product: bool) -> serde_json::Value {
    let (name, email, city, country) = CUSTOMERS[rng.random_range(0..CUSTOMERS.len())];
    let mut total = SHIPPING_CENTS;
    let mut lines = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let (sku, title, price) = CATALOG[rng.random_range(0..CATALOG.len())];
        let quantity: u64 = rng.random_range(1..=3);
        total += price * quantity;
        lines.push(
            json!({"sku": sku, "title": title, "quantity": quantity, "unit_price": money(price)}),
        );
    }
    if unknown_product {
        let (sku, title) = UNKNOWN[(n / 20) as usize % UNKNOWN.len()];
        total += 1990;
        lines.push(json!({"sku": sku, "title": title, "quantity": 1, "unit_price": money(1990)}));
    }
    let created = rfc3339(now_ms);
    json!({
        "type": "order.created",
        "timestamp": created,
        "data": {
            "id": format!("ord_{:08}", 52_000_000 + n),
            "number": 1000 + n,
            "created_at": created,
            "financial_status": "paid",
            "currency": "EUR",
            "customer": {"name": name, "email": email},
            "shipping_address": {"name": name, "city": city, "country": country},
            "lines": lines,
            "shipping": money(SHIPPING_CENTS),
            "total": money(total),
        }
    })
}

/// Cents as a decimal string ("12.50"): money never goes through floats.
fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// `2026-01-01T12:00:00Z` for epoch milliseconds (UTC, whole seconds).
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000 + 3_723_000), "2000-02-29T01:02:03Z");
    }

    #[test]
    fn unknown_products_are_not_in_the_catalog() {
        for (sku, _) in UNKNOWN {
            assert!(CATALOG.iter().all(|(known, _, _)| known != sku));
        }
    }
}
