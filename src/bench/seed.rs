//! The console bench's store: `n` messages shaped like a real week of
//! traffic, written through the store's own methods (so the rows are
//! exactly what ferry writes, indexes and failure groups included), fast
//! enough because every step is group-committed: `accept` in waves of
//! [`WAVE`] concurrent calls, then each system's due deliveries `claim`ed
//! [`CLAIM`] at a time and every attempt `record`ed concurrently, until
//! nothing is due; then the newest [`QUEUED_PER_MILLE`] ‰ are accepted and
//! left queued (the workers are off), one failure group is discarded by an
//! operator in bulk and another acknowledged.
//!
//! The shape: five routes over three systems (Shopify orders and Stripe
//! payments into the ERP, the ERP's stock and prices to Shopify, its
//! customers to HubSpot), received evenly over the last 7 days (minus an
//! hour, so no dedupe key or retention line falls during the bench). By a
//! hash of each message id: ~92% delivered at the first attempt, ~1.5%
//! after one or two failed ones (HTTP 503 or 429), ~5% dead from six causes
//! whose explanations carry varying ids (SKUs, inventory items, e-mail
//! addresses, price lists) and so fall into six failure groups, ~1.5% dead
//! then discarded (a seventh cause), HubSpot throttling the last 12 hours
//! (~0.5% retrying, due in the next minutes) and the newest ~0.5% queued.
//! The explanations and hints are the words `deliver::classify` writes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use sha2::{Digest, Sha256};

use crate::model::{ErrorClass, MessageId, RouteName, SystemName};
use crate::store::{
    AttemptRecord, Claimed, DedupeKey, GroupStatus, IdempotencyRecord, MessageFilter, NewMessage,
    Next, RequestLog, ResponseLog, State, StatusMark, Store, StoredResponse, group_key,
};

/// Concurrent `accept` calls per wave: enough to fill the group commits.
const WAVE: usize = 2048;
/// Deliveries per `claim`, each recorded concurrently.
const CLAIM: usize = 1024;
/// The newest messages, per mille, left queued.
const QUEUED_PER_MILLE: u64 = 5;
/// The week the messages were received in (ending when seeding starts).
const WEEK_MS: i64 = 7 * 86_400_000;
/// Kept free at the old end of the week: no webhook dedupe key (7 days)
/// expires while the bench runs.
const MARGIN_MS: i64 = 3_600_000;
/// HubSpot throttles (429) this long back from now: what it got since is
/// partly still retrying.
const THROTTLED_MS: i64 = 12 * 3_600_000;
/// Attempts before a transient cause gives up (the config's `max_attempts`).
pub(super) const MAX_ATTEMPTS: u32 = 5;
/// The operator who acts on the groups.
const OPERATOR: &str = "ana";

/// A route of the bench's config: name, destination system, share of the
/// traffic (out of 100), whether it is a webhook (else the ERP's API),
/// method and path.
pub(super) struct RouteSpec {
    pub name: &'static str,
    pub system: &'static str,
    weight: u64,
    pub webhook: Option<&'static str>,
    pub method: &'static str,
    pub path: &'static str,
    /// Fates by basis points of the route's messages; the rest is delivered.
    fates: &'static [(u64, Fate)],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Fails once or twice with this cause, then is delivered.
    Flaky(Cause),
    /// Dead with this cause (after one attempt, or after [`MAX_ATTEMPTS`]).
    Dead(Cause),
    /// Dead, then discarded with its whole group by an operator.
    Discarded(Cause),
}

pub(super) const ROUTES: [RouteSpec; 5] = [
    RouteSpec {
        name: "shopify_orders",
        system: "erp",
        weight: 40,
        webhook: Some("shopify"),
        method: "POST",
        path: "/orders",
        fates: &[
            (375, Fate::Dead(Cause::UnknownSku)),
            (375, Fate::Discarded(Cause::DuplicateOrder)),
            (150, Fate::Flaky(Cause::ErpUnavailable)),
        ],
    },
    RouteSpec {
        name: "erp_stock",
        system: "shopify",
        weight: 25,
        webhook: None,
        method: "PUT",
        path: "/inventory_levels/set.json",
        fates: &[
            (400, Fate::Dead(Cause::NoInventoryItem)),
            (150, Fate::Flaky(Cause::ShopifyThrottled)),
        ],
    },
    RouteSpec {
        name: "erp_prices",
        system: "shopify",
        weight: 10,
        webhook: None,
        method: "PUT",
        path: "/prices.json",
        fates: &[
            (500, Fate::Dead(Cause::PriceMapping)),
            (150, Fate::Flaky(Cause::ShopifyThrottled)),
        ],
    },
    RouteSpec {
        name: "erp_customers",
        system: "hubspot",
        weight: 15,
        webhook: None,
        method: "POST",
        path: "/crm/v3/objects/contacts",
        fates: &[
            (667, Fate::Dead(Cause::InvalidEmail)),
            (333, Fate::Dead(Cause::HubspotAuth)),
            (150, Fate::Flaky(Cause::HubspotThrottled)),
        ],
    },
    RouteSpec {
        name: "stripe_payments",
        system: "erp",
        weight: 10,
        webhook: Some("stripe"),
        method: "POST",
        path: "/payments",
        fates: &[
            (500, Fate::Dead(Cause::ErpTimeout)),
            (150, Fate::Flaky(Cause::ErpUnavailable)),
        ],
    },
];

/// Why an attempt failed, in `deliver::classify`'s words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    UnknownSku,
    DuplicateOrder,
    NoInventoryItem,
    PriceMapping,
    InvalidEmail,
    HubspotAuth,
    ErpTimeout,
    ErpUnavailable,
    ShopifyThrottled,
    HubspotThrottled,
}

impl Cause {
    fn class(self) -> ErrorClass {
        match self {
            Cause::UnknownSku | Cause::DuplicateOrder | Cause::InvalidEmail => ErrorClass::Rejected,
            Cause::NoInventoryItem => ErrorClass::NotFound,
            Cause::PriceMapping => ErrorClass::Mapping,
            Cause::HubspotAuth => ErrorClass::Auth,
            Cause::ErpTimeout => ErrorClass::Timeout,
            Cause::ErpUnavailable => ErrorClass::ServerError,
            Cause::ShopifyThrottled | Cause::HubspotThrottled => ErrorClass::RateLimited,
        }
    }

    /// Whether the delivery dies at its first attempt (else it is retried
    /// up to [`MAX_ATTEMPTS`]).
    fn permanent(self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Rejected | ErrorClass::NotFound | ErrorClass::Mapping
        )
    }

    /// The HTTP status answered; `None` when nothing came back (a timeout)
    /// or nothing was sent (a mapping error).
    fn status(self) -> Option<u16> {
        match self {
            Cause::UnknownSku | Cause::InvalidEmail => Some(422),
            Cause::DuplicateOrder => Some(409),
            Cause::NoInventoryItem => Some(404),
            Cause::HubspotAuth => Some(401),
            Cause::ErpUnavailable => Some(503),
            Cause::ShopifyThrottled | Cause::HubspotThrottled => Some(429),
            Cause::PriceMapping | Cause::ErpTimeout => None,
        }
    }

    /// What the destination answered (`n` is the message's varying id).
    fn response_body(self, n: u64) -> String {
        match self {
            Cause::UnknownSku => {
                format!(r#"{{"error":"unknown sku SKU-{n}","field":"lines[].sku"}}"#)
            }
            Cause::DuplicateOrder => format!(r#"{{"error":"order {n} already exists"}}"#),
            Cause::NoInventoryItem => {
                format!(r#"{{"errors":"Not Found","inventory_item_id":{n}}}"#)
            }
            Cause::InvalidEmail => format!(
                r#"{{"status":"error","message":"Property values were not valid","email":"buyer{n}@example","error":"INVALID_EMAIL"}}"#
            ),
            Cause::HubspotAuth => {
                r#"{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}"#.to_owned()
            }
            Cause::ErpUnavailable => "<html><body>503 Service Unavailable</body></html>".into(),
            Cause::ShopifyThrottled => r#"{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}"#.into(),
            Cause::HubspotThrottled => r#"{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","policyName":"SECONDLY"}"#.into(),
            Cause::PriceMapping | Cause::ErpTimeout => String::new(),
        }
    }

    /// The explanation `deliver::classify` writes for it.
    fn explanation(self, system: &str, n: u64) -> String {
        match self {
            Cause::UnknownSku | Cause::DuplicateOrder | Cause::InvalidEmail => format!(
                "{system} rejected the message ({}): {}",
                self.status().unwrap_or(422),
                self.response_body(n)
            ),
            Cause::NoInventoryItem => format!(
                "{system} answered 404 Not Found: the address or the record does not exist. Response: {}",
                self.response_body(n)
            ),
            Cause::PriceMapping => format!(
                "the message could not be transformed for {system}: jq error: cannot use null (null) as object key in price list PL-{n}"
            ),
            Cause::HubspotAuth => format!(
                "{system} answered 401 Unauthorized: it did not accept the credential \"hubspot_token\"."
            ),
            Cause::ErpTimeout => format!("{system} did not answer in time."),
            Cause::ErpUnavailable => format!(
                "{system} answered 503 Service Unavailable: the server is temporarily unable to handle the request."
            ),
            Cause::ShopifyThrottled | Cause::HubspotThrottled => format!(
                "{system} answered 429 Too Many Requests: it is limiting how fast ferry may send."
            ),
        }
    }

    fn hint(self, system: &str) -> String {
        match self.class() {
            ErrorClass::Rejected => "fix the data or the mapping, then edit and replay.".into(),
            ErrorClass::NotFound => format!(
                "check the path in the mapping, {system}'s base_url and whether the record exists in {system}; then edit and replay the message."
            ),
            ErrorClass::Mapping => {
                "fix the mapping or the source data, then edit and replay the message.".into()
            }
            ErrorClass::Auth => {
                format!("renew or re-authorize the credential \"hubspot_token\" for {system}")
            }
            ErrorClass::Timeout => {
                format!("check {system}'s health and load, or raise its timeout")
            }
            ErrorClass::RateLimited => {
                format!("lower the send rate to {system} or ask for a higher quota")
            }
            _ => format!(
                "check {system}'s status page or logs; ferry retries with backoff until max_attempts or max_age"
            ),
        }
    }
}

/// splitmix64: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable hash of a message id (its fate, its varying ids, its timings).
fn hash_id(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The route of message `i`, by weight.
fn route_of(i: u64) -> &'static RouteSpec {
    let mut r = mix(i) % 100;
    for spec in &ROUTES {
        if r < spec.weight {
            return spec;
        }
        r -= spec.weight;
    }
    &ROUTES[0]
}

fn spec(route: &str) -> &'static RouteSpec {
    ROUTES
        .iter()
        .find(|r| r.name == route)
        .unwrap_or(&ROUTES[0])
}

/// What happens to a message of `spec` with hash `h`, received at
/// `received_ms`: its fate, or `None` for delivered at once; HubSpot's
/// throttling of the last hours adds retrying ones.
fn fate(spec: &RouteSpec, h: u64, received_ms: i64, now_ms: i64) -> Option<Fate> {
    let mut r = h % 10_000;
    for &(bp, f) in spec.fates {
        if r < bp {
            return Some(f);
        }
        r -= bp;
    }
    let throttled = spec.system == "hubspot" && received_ms > now_ms - THROTTLED_MS;
    (throttled && (h >> 20) % 10 < 4).then_some(Fate::Flaky(Cause::HubspotThrottled))
}

/// The `k`th attempt (0-based) of a message: (start, duration), after the
/// earlier ones and their backoffs (1 s, 2 s, 4 s, ... with jitter).
fn schedule(received_ms: i64, h: u64, k: u32, cause: Option<Cause>) -> (i64, i64) {
    let mut start = received_ms + 20 + (h % 400) as i64;
    let dur = |j: u32, c: Option<Cause>| match c {
        Some(Cause::ErpTimeout) => 10_000,
        Some(Cause::PriceMapping) => 1,
        _ => 25 + (mix(h ^ u64::from(j)) % 350) as i64,
    };
    for j in 0..k {
        start += dur(j, cause) + (1000 << j) + (mix(h + u64::from(j)) % 1000) as i64;
    }
    (start, dur(k, cause))
}

/// A UUIDv7 message id made at `ms` (as ingest makes them, at reception),
/// its other bits from `h`: the same ids, and so the same fates, on every
/// run and backend.
fn uuid_at(ms: i64, h: u64) -> MessageId {
    let mut rest = [0u8; 10];
    rest[..8].copy_from_slice(&mix(h).to_le_bytes());
    rest[8..].copy_from_slice(&(h as u16).to_le_bytes());
    let id = uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &rest).into_uuid();
    MessageId::new(id.to_string())
}

/// The downstream idempotency key, derived as `ingest` derives it.
fn delivery_key(route: &str, event: &str, system: &str) -> String {
    let mut h = Sha256::new();
    for part in [route, event, system] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("ferry-{}", hex::encode(&h.finalize()[..16]))
}

const CITIES: [&str; 6] = ["Lyon", "Porto", "Gent", "Bremen", "Turin", "Leeds"];
const NAMES: [&str; 6] = ["Ana", "Marc", "Ines", "Jonas", "Lea", "Tom"];

/// Message `i` of the week: route, ids, headers and body as ingest would
/// have stored them, received at `received_ms`.
fn message(i: u64, received_ms: i64, now_ms: i64) -> NewMessage {
    let spec = route_of(i);
    let h = mix(i ^ 0x5eed);
    let id = uuid_at(received_ms, h);
    let n = 10_000 + h % 90_000;
    let city = CITIES[(h % 6) as usize];
    let name = NAMES[((h >> 8) % 6) as usize];
    let at = crate::deliver::hold::utc_time(received_ms);
    let (event, body, headers) = match spec.name {
        "shopify_orders" => {
            let event = format!("{:016x}-{:04x}", mix(h), i % 0xffff);
            let body = format!(
                r#"{{"id":{},"order_number":{},"email":"buyer{n}@example.com","created_at":"{at}","currency":"EUR","total_price":"{}.90","line_items":[{{"sku":"SKU-{}","quantity":{},"price":"19.95"}},{{"sku":"TEA-MATCHA-XL","quantity":1,"price":"24.00"}}],"shipping_address":{{"first_name":"{name}","city":"{city}","country_code":"FR"}},"tags":"web"}}"#,
                5_000_000_000 + i,
                1000 + i,
                20 + h % 300,
                1000 + (h >> 4) % 4000,
                1 + (h >> 12) % 4,
            );
            let headers = format!(
                r#"{{"content-type":"application/json","user-agent":"Shopify-Captain-Hook","x-shopify-topic":"orders/create","x-shopify-shop-domain":"tea-house.myshopify.com","x-shopify-api-version":"2025-07","x-shopify-webhook-id":"{event}","x-shopify-hmac-sha256":"[redacted]"}}"#
            );
            (event, body, headers)
        }
        "stripe_payments" => {
            let event = format!("evt_{:024x}", mix(h) as u128 * 7 + i as u128);
            let body = format!(
                r#"{{"id":"{event}","object":"event","type":"payment_intent.succeeded","created":{},"data":{{"object":{{"id":"pi_{:016x}","object":"payment_intent","amount":{},"currency":"eur","status":"succeeded","metadata":{{"order":"{}"}}}}}},"livemode":true}}"#,
                received_ms / 1000,
                mix(h + 1),
                500 + h % 30_000,
                1000 + i
            );
            let headers = r#"{"content-type":"application/json; charset=utf-8","user-agent":"Stripe/1.0 (+https://stripe.com/docs/webhooks)","stripe-signature":"[redacted]"}"#.to_owned();
            (event, body, headers)
        }
        route => {
            let event = format!("erp-{route}-{i}");
            let body = match route {
                "erp_stock" => format!(
                    r#"{{"sku":"SKU-{}","location":"WH-{}","available":{},"reserved":{},"updated_at":"{at}"}}"#,
                    1000 + h % 4000,
                    1 + (h >> 8) % 3,
                    h % 500,
                    (h >> 16) % 20
                ),
                "erp_prices" => format!(
                    r#"{{"price_list":"PL-{}","sku":"SKU-{}","amount":"{}.{:02}","currency":"EUR","valid_from":"{at}"}}"#,
                    1 + h % 40,
                    1000 + (h >> 8) % 4000,
                    1 + h % 200,
                    (h >> 16) % 100
                ),
                _ => format!(
                    r#"{{"customer_id":"C-{n}","email":"buyer{n}@example.com","first_name":"{name}","last_name":"Martin","company":"{city} Tea Rooms","phone":"+33 4 72 00 {:02} {:02}","updated_at":"{at}"}}"#,
                    h % 100,
                    (h >> 8) % 100
                ),
            };
            let headers = format!(
                r#"{{"content-type":"application/json","user-agent":"erp-connector/4.2","idempotency-key":"{event}","authorization":"[redacted]"}}"#
            );
            (event, body, headers)
        }
    };
    let (dedupe, idempotency) = match spec.webhook {
        Some(_) => (
            Some(DedupeKey {
                key: event.clone(),
                expires_ms: received_ms + WEEK_MS,
            }),
            None,
        ),
        // The janitor has pruned API keys older than their 24-hour window.
        None => {
            let expires_ms = received_ms + 86_400_000;
            let record = (expires_ms > now_ms + MARGIN_MS).then(|| IdempotencyRecord {
                client: "erp".into(),
                key: event.clone(),
                fingerprint: Sha256::digest(body.as_bytes()).to_vec(),
                expires_ms,
                response: StoredResponse {
                    status: 202,
                    body: format!(
                        r#"{{"id":"{id}","route":"{}","status":"accepted"}}"#,
                        spec.name
                    )
                    .into_bytes(),
                },
            });
            (None, record)
        }
    };
    let key_source = match spec.webhook {
        Some(_) => event.clone(),
        None => format!("erp\0{event}"),
    };
    NewMessage {
        delivery_key: delivery_key(spec.name, &key_source, spec.system),
        route: RouteName::new(spec.name),
        system: SystemName::new(spec.system),
        received_ms,
        event_id: Some(event),
        headers,
        body: Bytes::from(body),
        dedupe,
        idempotency,
        ordering_key: None,
        entity_key: None,
        job_id: None,
        id,
    }
}

/// The request as `deliver` logs it (secrets redacted; the body excerpt
/// dropped once delivered).
fn request_log(d: &Claimed, delivered: bool) -> RequestLog {
    let spec = spec(d.route.as_str());
    RequestLog {
        method: spec.method.into(),
        url: format!("https://{}.example.com{}", spec.system, spec.path),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("idempotency-key".into(), d.delivery_key.clone()),
            ("authorization".into(), "[redacted]".into()),
            ("user-agent".into(), "ferry/0.1".into()),
        ],
        body_excerpt: match delivered {
            true => String::new(),
            false => String::from_utf8_lossy(&d.body[..d.body.len().min(1024)]).into_owned(),
        },
    }
}

fn response_log(status: u16, body: String, at_ms: i64) -> ResponseLog {
    ResponseLog {
        status,
        headers: vec![
            (
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            ),
            ("date".into(), http_date(at_ms)),
            ("x-request-id".into(), format!("{:x}", mix(at_ms as u64))),
        ],
        body_excerpt: body,
    }
}

fn http_date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}

/// The attempt a claimed delivery gets: its outcome by its fate and how
/// many attempts it had.
fn attempt(d: &Claimed, now_ms: i64) -> AttemptRecord {
    let spec = spec(d.route.as_str());
    let system = d.system.as_str();
    let h = hash_id(d.message_id.as_str());
    let k = d.attempts;
    let fate = fate(spec, h, d.received_ms, now_ms);
    let cause = match fate {
        Some(Fate::Flaky(c) | Fate::Dead(c) | Fate::Discarded(c)) => Some(c),
        None => None,
    };
    let (started_ms, duration_ms) = schedule(d.received_ms, h, k, cause);
    let end = started_ms + duration_ms;
    // A flaky delivery fails once or twice; one HubSpot throttled lately
    // is still retrying.
    let flaky_failures = 1 + (h >> 32) % 2;
    let failed = match fate {
        None => false,
        Some(Fate::Flaky(Cause::HubspotThrottled)) if d.received_ms > now_ms - THROTTLED_MS => true,
        Some(Fate::Flaky(_)) => u64::from(k) < flaky_failures,
        Some(_) => true,
    };
    let base = AttemptRecord {
        delivery_id: d.delivery_id,
        lease_until: d.lease_until,
        started_ms,
        duration_ms,
        request: request_log(d, !failed),
        response: None,
        class: None,
        explanation: "delivered".into(),
        hint: String::new(),
        next: Next::Delivered,
        failure_group: None,
    };
    let Some(cause) = cause.filter(|_| failed) else {
        let body = format!(r#"{{"id":"{}","status":"ok"}}"#, mix(h) % 1_000_000_000);
        return AttemptRecord {
            response: Some(response_log(201, body, end)),
            ..base
        };
    };
    let n = 1000 + (h >> 4) % 4000;
    let explanation = cause.explanation(system, n);
    let last = cause.permanent() || k + 1 >= MAX_ATTEMPTS;
    let throttled_now = cause == Cause::HubspotThrottled && d.received_ms > now_ms - THROTTLED_MS;
    let next = if throttled_now && k + 1 >= 3 {
        // Still throttled: due again within the next minutes.
        Next::Retry {
            at_ms: now_ms + 60_000 + (h % 600_000) as i64,
            counts_against_budget: true,
            rate_limited: true,
            auth: false,
        }
    } else if last {
        Next::Dead
    } else {
        Next::Retry {
            at_ms: schedule(d.received_ms, h, k + 1, Some(cause)).0,
            counts_against_budget: true,
            rate_limited: cause.class() == ErrorClass::RateLimited,
            auth: cause.class() == ErrorClass::Auth,
        }
    };
    AttemptRecord {
        response: cause
            .status()
            .map(|s| response_log(s, cause.response_body(n), end)),
        class: Some(cause.class()),
        failure_group: (next == Next::Dead)
            .then(|| group_key(cause.class(), system, d.route.as_str(), &explanation)),
        explanation,
        hint: cause.hint(system),
        next,
        ..base
    }
}

/// What seeding did.
pub(super) struct Seeded {
    pub took: Duration,
    /// A message received halfway through the week: its id's tail is what
    /// the text search looks for.
    pub probe_id: String,
}

/// Fills `store` with `n` messages as of `now_ms` (see the module's words).
pub(super) async fn seed(store: &Store, n: u64, now_ms: i64) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let start_ms = now_ms - WEEK_MS + MARGIN_MS;
    let span = (now_ms - start_ms) as u64;
    let received = |i: u64| start_ms + (i as u128 * span as u128 / n.max(1) as u128) as i64;
    let queued = (n * QUEUED_PER_MILLE / 1000).max(1).min(n);
    let mut probe_id = String::new();
    let mut accept = async |from: u64, to: u64| -> anyhow::Result<()> {
        let mut i = from;
        while i < to {
            let end = (i + WAVE as u64).min(to);
            let msgs: Vec<NewMessage> = (i..end).map(|j| message(j, received(j), now_ms)).collect();
            if (i..end).contains(&(n / 2)) {
                probe_id = msgs[(n / 2 - i) as usize].id.to_string();
            }
            for r in join_all(msgs.into_iter().map(|m| store.accept(m))).await {
                r?;
            }
            i = end;
            if i % 100_000 < WAVE as u64 {
                eprintln!(
                    "  accepted {i} of {n} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    };
    accept(0, n - queued).await?;
    eprintln!(
        "  accepted {} in {:.1} s; delivering...",
        n - queued,
        started.elapsed().as_secs_f64()
    );
    let systems: Vec<&str> = {
        let mut s: Vec<&str> = ROUTES.iter().map(|r| r.system).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let recorded = join_all(systems.iter().map(|s| deliver(store, s, now_ms))).await;
    let mut attempts = 0;
    for r in recorded {
        attempts += r?;
    }
    eprintln!(
        "  recorded {attempts} attempts ({:.1} s); queueing the newest {queued}...",
        started.elapsed().as_secs_f64()
    );
    accept(n - queued, n).await?;
    operators(store, now_ms).await?;
    Ok(Seeded {
        took: started.elapsed(),
        probe_id,
    })
}

/// Claims and records `system`'s due deliveries until none is due; returns
/// the attempts recorded.
async fn deliver(store: &Store, system: &str, now_ms: i64) -> anyhow::Result<u64> {
    let mut attempts = 0;
    loop {
        let claimed = store.claim(system, now_ms, 3_600_000, CLAIM).await?;
        if claimed.is_empty() {
            return Ok(attempts);
        }
        let records = claimed.iter().map(|d| store.record(attempt(d, now_ms)));
        for r in join_all(records).await {
            if !r? {
                anyhow::bail!("a seeded delivery lost its lease");
            }
            attempts += 1;
        }
    }
}

/// What operators did during the week: discarded the duplicate orders'
/// group in bulk and acknowledged the invalid e-mails' group.
async fn operators(store: &Store, now_ms: i64) -> anyhow::Result<()> {
    let orders = spec("shopify_orders");
    let duplicates = group_key(
        ErrorClass::Rejected,
        orders.system,
        orders.name,
        &Cause::DuplicateOrder.explanation(orders.system, 1),
    );
    store
        .discard_matching(
            MessageFilter {
                state: Some(State::Dead),
                group: Some(duplicates),
                ..Default::default()
            },
            "duplicates of orders the ERP already has (Shopify resent them)",
            OPERATOR,
            now_ms,
            false,
        )
        .await?;
    let customers = spec("erp_customers");
    let emails = group_key(
        ErrorClass::Rejected,
        customers.system,
        customers.name,
        &Cause::InvalidEmail.explanation(customers.system, 1),
    );
    store
        .set_group_status(
            &emails,
            StatusMark {
                status: GroupStatus::Acknowledged,
                note: "the ERP team is cleaning the addresses".into(),
                actor: OPERATOR.into(),
                at_ms: now_ms,
            },
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_one_group_whatever_its_ids() {
        for c in [
            Cause::UnknownSku,
            Cause::DuplicateOrder,
            Cause::NoInventoryItem,
            Cause::PriceMapping,
            Cause::InvalidEmail,
            Cause::HubspotAuth,
            Cause::ErpTimeout,
        ] {
            let k = |n| group_key(c.class(), "erp", "r", &c.explanation("erp", n));
            assert_eq!(k(1234), k(98_765), "{c:?}");
        }
    }

    #[test]
    fn routes_and_fates_add_up() {
        assert_eq!(ROUTES.iter().map(|r| r.weight).sum::<u64>(), 100);
        let now = 10 * WEEK_MS;
        let (mut dead, mut n) = (0, 0);
        for i in 0..20_000u64 {
            let s = route_of(i);
            let f = fate(s, mix(i), now - WEEK_MS, now);
            n += 1;
            dead += u64::from(matches!(f, Some(Fate::Dead(_))));
        }
        let share = dead as f64 / n as f64;
        assert!((0.04..0.06).contains(&share), "dead share {share}");
    }
}
