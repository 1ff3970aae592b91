//! The week the bench seeds: its routes, each message's fate (delivered,
//! dead of one of a handful of causes with varying ids, retrying, queued)
//! by a hash of its number, and the message itself as ingest would have
//! stored it.

use super::*;

/// A route of the bench's config: name, destination system, share of the
/// traffic (out of 100), whether it is a webhook (else the ERP's API),
/// method and path.
pub(in crate::bench) struct RouteSpec {
    pub name: &'static str,
    pub system: &'static str,
    pub(super) weight: u64,
    pub webhook: Option<&'static str>,
    pub method: &'static str,
    pub path: &'static str,
    /// Fates by basis points of the route's messages; the rest is delivered.
    fates: &'static [(u64, Fate)],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Fails once or twice with this cause, then is delivered.
    Flaky(Cause),
    /// Dead with this cause (after one attempt, or after [`MAX_ATTEMPTS`]).
    Dead(Cause),
    /// Dead, then discarded with its whole group by an operator.
    Discarded(Cause),
}

pub(in crate::bench) const ROUTES: [RouteSpec; 5] = [
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
pub(super) enum Cause {
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
    pub(super) fn class(self) -> ErrorClass {
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
    pub(super) fn permanent(self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Rejected | ErrorClass::NotFound | ErrorClass::Mapping
        )
    }

    /// The HTTP status answered; `None` when nothing came back (a timeout)
    /// or nothing was sent (a mapping error).
    pub(super) fn status(self) -> Option<u16> {
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
    pub(super) fn response_body(self, n: u64) -> String {
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
    pub(super) fn explanation(self, system: &str, n: u64) -> String {
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

    pub(super) fn hint(self, system: &str) -> String {
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
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable hash of a message id (its fate, its varying ids, its timings).
pub(super) fn hash_id(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The route of message `i`, by weight.
pub(super) fn route_of(i: u64) -> &'static RouteSpec {
    let mut r = mix(i) % 100;
    for spec in &ROUTES {
        if r < spec.weight {
            return spec;
        }
        r -= spec.weight;
    }
    &ROUTES[0]
}

pub(super) fn spec(route: &str) -> &'static RouteSpec {
    ROUTES
        .iter()
        .find(|r| r.name == route)
        .unwrap_or(&ROUTES[0])
}

/// What happens to a message of `spec` with hash `h`, received at
/// `received_ms`: its fate, or `None` for delivered at once; HubSpot's
/// throttling of the last hours adds retrying ones.
pub(super) fn fate(spec: &RouteSpec, h: u64, received_ms: i64, now_ms: i64) -> Option<Fate> {
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
pub(super) fn schedule(received_ms: i64, h: u64, k: u32, cause: Option<Cause>) -> (i64, i64) {
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
pub(super) fn uuid_at(ms: i64, h: u64) -> MessageId {
    let mut rest = [0u8; 10];
    rest[..8].copy_from_slice(&mix(h).to_le_bytes());
    rest[8..].copy_from_slice(&(h as u16).to_le_bytes());
    let id = uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &rest).into_uuid();
    MessageId::new(id.to_string())
}

pub(super) const CITIES: [&str; 6] = ["Lyon", "Porto", "Gent", "Bremen", "Turin", "Leeds"];
pub(super) const NAMES: [&str; 6] = ["Ana", "Marc", "Ines", "Jonas", "Lea", "Tom"];

/// Message `i` of the week: route, ids, headers and body as ingest would
/// have stored them, received at `received_ms`.
pub(super) fn message(i: u64, received_ms: i64, now_ms: i64) -> NewMessage {
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
        delivery_key: crate::ingest::delivery_key(spec.name, &key_source, spec.system),
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
