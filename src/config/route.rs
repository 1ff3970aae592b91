//! Resolving one `[routes.<name>]` table: its source (credentials, scheme,
//! dedupe, windows, body limits), its transform and its destination (method,
//! path, headers, ordering key, batch, priority). Part of `resolve`, which owns
//! the collected problems.

use std::time::Duration;

use axum::http::{HeaderValue, Method};

use super::raw::*;
use super::resolve::Ctx;
use super::resolve::MAX_DEPTH;
use super::scheme::{HmacAlgorithm, HmacSpec, Scheme, SigEncoding};
use super::units::parse_size;
use super::*;

pub(super) fn route(
    cx: &mut Ctx<'_>,
    name: &str,
    r: &RawRoute,
    system: Option<&RawSystem>,
    known_credential: &dyn Fn(&str) -> bool,
) -> Option<Route> {
    let loc = format!("routes.{name}");
    let sloc = format!("{loc}.source");
    let src = &r.source;
    check_credentials(cx, &sloc, src, known_credential);
    let max_body = max_body(cx, &sloc, src);
    let max_depth = src.max_depth.unwrap_or(MAX_DEPTH);
    if !(1..=MAX_DEPTH).contains(&max_depth) {
        cx.problem(
            format!("{sloc}.max_depth"),
            format!("must be between 1 and {MAX_DEPTH}"),
        );
    }
    let source = source(cx, &sloc, src)?;
    let destination = destination(cx, &format!("{loc}.destination"), &r.destination);
    let (transform, shadow) = super::transform::transform(cx, &loc, r, system);
    Some(Route {
        name: name.into(),
        source,
        destination,
        max_body,
        max_depth,
        transform,
        shadow,
        silence: super::alerts::silence(cx, &loc, r),
    })
}

/// The source's credentials: at least one, each one known.
fn check_credentials(
    cx: &mut Ctx<'_>,
    sloc: &str,
    src: &RawSource,
    known_credential: &dyn Fn(&str) -> bool,
) {
    for c in &src.credentials {
        if !known_credential(c) {
            cx.problem(
                format!("{sloc}.credentials"),
                format!("unknown credential `{c}`"),
            );
        }
    }
    if src.credentials.is_empty() {
        cx.problem(
            format!("{sloc}.credentials"),
            "list at least one credential (the secret or key this source is checked against)",
        );
    }
}

/// `max_body`, 1 MiB unless given.
fn max_body(cx: &mut Ctx<'_>, sloc: &str, src: &RawSource) -> usize {
    match src.max_body.as_deref().map(parse_size) {
        None => 1 << 20,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            cx.problem(format!("{sloc}.max_body"), e);
            1 << 20
        }
    }
}

/// The source's kind: a signed webhook (scheme, dedupe, windows) or the ERP's API.
fn source(cx: &mut Ctx<'_>, sloc: &str, src: &RawSource) -> Option<Source> {
    Some(match src.kind.as_str() {
        "webhook" => {
            let scheme = scheme(cx, sloc, src)?;
            let dedupe = dedupe(cx, sloc, src);
            Source::Webhook {
                scheme,
                credentials: src.credentials.clone(),
                dedupe,
                dedupe_window: cx.duration(
                    &format!("{sloc}.dedupe_window"),
                    src.dedupe_window.as_ref(),
                    Duration::from_secs(7 * 86_400),
                ),
                tolerance: cx.duration(
                    &format!("{sloc}.tolerance"),
                    src.tolerance.as_ref(),
                    Duration::from_secs(300),
                ),
            }
        }
        "api" => Source::Api {
            credentials: src.credentials.clone(),
            idempotency_window: cx.duration(
                &format!("{sloc}.idempotency_window"),
                src.idempotency_window.as_ref(),
                Duration::from_secs(86_400),
            ),
        },
        other => {
            cx.problem(
                format!("{sloc}.kind"),
                format!("`{other}`: use `webhook` or `api`"),
            );
            return None;
        }
    })
}

/// `dedupe`: the scheme's event id unless it says otherwise.
fn dedupe(cx: &mut Ctx<'_>, sloc: &str, src: &RawSource) -> Dedupe {
    match &src.dedupe {
        None => Dedupe::SchemeEventId,
        Some(RawDedupe::Keyword(k)) if k == "none" => Dedupe::Off,
        Some(RawDedupe::Keyword(k)) if k == "event-id" => Dedupe::SchemeEventId,
        Some(RawDedupe::Keyword(k)) if k == "body-hash" => Dedupe::BodyHash,
        Some(RawDedupe::Keyword(k)) => {
            cx.problem(
                format!("{sloc}.dedupe"),
                format!(
                    "`{k}`: use \"event-id\", \"body-hash\", \"none\" or {{ header = \"...\" }}"
                ),
            );
            Dedupe::Off
        }
        Some(RawDedupe::Header { header }) => {
            match cx.header_name(&format!("{sloc}.dedupe.header"), header) {
                Some(h) => Dedupe::Header(h),
                None => Dedupe::Off,
            }
        }
    }
}

/// The destination: method, path, headers, ordering key, batch and priority.
fn destination(cx: &mut Ctx<'_>, dloc: &str, d: &RawDestination) -> Destination {
    let method = d.method.as_deref().unwrap_or("POST");
    let method = match Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
        Ok(m) if ["POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) => m,
        _ => {
            cx.problem(
                format!("{dloc}.method"),
                format!("`{method}`: use POST, PUT, PATCH or DELETE"),
            );
            Method::POST
        }
    };
    if !d.path.starts_with('/') {
        cx.problem(format!("{dloc}.path"), "must start with `/`");
    } else if d.path.starts_with("//") || d.path.contains('\\') {
        // `//host` or `\\host` would let a path name another authority.
        cx.problem(
            format!("{dloc}.path"),
            "must not start with `//` or contain `\\`",
        );
    }
    let mut headers = Vec::new();
    for (k, v) in &d.headers {
        let name = cx.header_name(&format!("{dloc}.headers"), k);
        match (name, HeaderValue::from_str(v)) {
            (Some(n), Ok(v)) => headers.push((n, v)),
            (_, Err(_)) => cx.problem(
                format!("{dloc}.headers.{k}"),
                "value is not a valid header value",
            ),
            _ => {}
        }
    }
    let mut key = |name: &str, code: &Option<String>| {
        code.as_deref()
            .and_then(|code| match crate::transform::jq::Jq::compile(code) {
                Ok(jq) => Some(std::sync::Arc::new(jq.with_timeout(cx.jq_timeout))),
                Err(e) => {
                    cx.problem(format!("{dloc}.{name}"), e.to_string());
                    None
                }
            })
    };
    let ordering_key = key("ordering_key", &d.ordering_key);
    let entity_key = key("entity_key", &d.entity_key);
    let priority = match d.priority.as_deref() {
        None | Some("normal") => Priority::Normal,
        Some("low") => Priority::Low,
        Some(other) => {
            cx.problem(
                format!("{dloc}.priority"),
                format!("`{other}`: use normal or low"),
            );
            Priority::Normal
        }
    };
    Destination {
        system: d.system.as_str().into(),
        method,
        path: d.path.clone(),
        headers,
        ordering_key,
        entity_key,
        batch: d
            .batch
            .as_ref()
            .and_then(|b| super::batch::batch(cx, &format!("{dloc}.batch"), b)),
        priority,
    }
}

fn scheme(cx: &mut Ctx<'_>, sloc: &str, src: &RawSource) -> Option<Scheme> {
    let Some(name) = src.scheme.as_deref() else {
        cx.problem(sloc, "a webhook source needs `scheme` (standard-webhooks, stripe, shopify, github, hubspot-v3, hmac, basic, api-key)");
        return None;
    };
    let header = |cx: &mut Ctx<'_>| match &src.header {
        Some(h) => cx
            .header_name(&format!("{sloc}.header"), h)
            .map(|h| h.to_string()),
        None => {
            cx.problem(sloc, format!("scheme `{name}` needs `header`"));
            None
        }
    };
    Some(match name {
        "standard-webhooks" => Scheme::StandardWebhooks,
        "stripe" => Scheme::Stripe,
        "shopify" => Scheme::Shopify,
        "github" => Scheme::Github,
        "hubspot-v3" => Scheme::HubspotV3,
        "basic" => Scheme::Basic,
        "api-key" => Scheme::ApiKey {
            header: header(cx)?,
        },
        "hmac" => {
            let algorithm: HmacAlgorithm = src
                .algorithm
                .as_deref()
                .unwrap_or("sha256")
                .parse()
                .map_err(|e: String| cx.problem(format!("{sloc}.algorithm"), e))
                .ok()?;
            let encoding: SigEncoding = src
                .encoding
                .as_deref()
                .unwrap_or("hex")
                .parse()
                .map_err(|e: String| cx.problem(format!("{sloc}.encoding"), e))
                .ok()?;
            Scheme::Hmac(HmacSpec {
                header: header(cx)?,
                algorithm,
                encoding,
                prefix: src.prefix.clone(),
            })
        }
        other => {
            cx.problem(
                format!("{sloc}.scheme"),
                format!("`{other}`: use standard-webhooks, stripe, shopify, github, hubspot-v3, hmac, basic or api-key"),
            );
            return None;
        }
    })
}
