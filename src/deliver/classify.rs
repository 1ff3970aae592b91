//! The words of a failed attempt: which [`ErrorClass`] it is, whether it may
//! be retried, and the explanation and hint operations staff read in the
//! console. Part of `retry` (which adds the budget, age and schedule), pure
//! like it.

use axum::http::{StatusCode, header};

use super::retry::{ErrorClass, Explained, Failure, Fate, Outcome};

/// Classifies an attempt; `None` means delivered.
pub(super) fn classify(
    outcome: &Outcome<'_>,
    system: &str,
    credential: Option<&str>,
) -> Option<Failure> {
    use {ErrorClass as C, Fate::*};
    Some(match *outcome {
        Outcome::Response {
            status,
            headers,
            body_excerpt,
        } => return answered(status, headers, body_excerpt, system, credential),
        Outcome::Network(text) => (
            C::Network,
            format!(
                "could not reach {system}: {}.",
                excerpt(text).trim_end_matches('.')
            ),
            format!("check that {system} is up and that its address, DNS and firewall are right"),
            Retry,
        ),
        Outcome::Timeout => (
            C::Timeout,
            format!("{system} did not answer in time."),
            format!("check {system}'s health and load, or raise its timeout"),
            Retry,
        ),
        Outcome::ItemRejected { status, reason } => (
            C::Rejected,
            format!(
                "{system} answered {} to a batch and refused this item of it: {}",
                status_text(status),
                excerpt(reason)
            ),
            "correct the data in the source system, then replay the message (or edit and replay it)"
                .to_owned(),
            Dead,
        ),
        Outcome::Mapping(text) => (
            C::Mapping,
            format!(
                "the message could not be transformed for {system}: {}",
                excerpt(text)
            ),
            "fix the mapping or the source data, then edit and replay the message.".into(),
            Dead,
        ),
        Outcome::Auth { reason: text, .. } => (
            C::Auth,
            format!("nothing was sent to {system}: {}", excerpt(text)),
            match credential {
                Some(c) => format!(
                    "check the credential \"{c}\" and {system}'s token endpoint (its address, the client id and secret)"
                ),
                None => format!("check {system}'s auth settings"),
            },
            Retry,
        ),
        Outcome::Config(text) => (
            C::Config,
            format!(
                "ferry's configuration for {system} is invalid: {}",
                excerpt(text)
            ),
            format!(
                "fix the configuration for {system} and reload ferry, then replay the message."
            ),
            Dead,
        ),
    })
}

/// An HTTP answer: `None` for 2xx, else what its status says.
fn answered(
    status: u16,
    headers: &axum::http::HeaderMap,
    body_excerpt: &str,
    system: &str,
    credential: Option<&str>,
) -> Option<Failure> {
    use {ErrorClass as C, Fate::*};
    let st = status_text(status);
    Some(match status {
        200..=299 => return None,
        300..=399 => {
            let to = headers.get(header::LOCATION).and_then(|v| v.to_str().ok());
            let to = to
                .map(|l| format!(" pointing to {}", excerpt(l)))
                .unwrap_or_default();
            (
                C::Rejected,
                format!(
                    "{system} answered {st}{to}: the destination answered with a redirect; \
                     ferry does not follow redirects."
                ),
                format!("fix the base_url for {system}, then replay the message."),
                Dead,
            )
        }
        403 if crate::limits::dialect::salesforce_quota_exceeded(body_excerpt) => (
            C::RateLimited,
            format!(
                "{system} answered {st}: its daily API request quota is spent \
                 (REQUEST_LIMIT_EXCEEDED); ferry waits for it to reset."
            ),
            format!(
                "ask for a higher daily quota in {system}, lower the traffic to it, or \
                 mark less urgent routes priority = \"low\" with rate_limit.pause_low_at"
            ),
            Retry,
        ),
        401 | 403 => {
            let cred = credential.map_or("the credential".into(), |c| {
                format!("the credential \"{c}\"")
            });
            let advice = match status {
                401 => format!("renew or re-authorize {cred} for {system}"),
                _ => format!("check that {cred} is allowed to do this in {system}"),
            };
            (
                C::Auth,
                format!("{system} answered {st}: it did not accept {cred}."),
                advice,
                Retry,
            )
        }
        400..=499 => client_error(status, &excerpt(body_excerpt), system),
        _ => server_error(status, system),
    })
}

/// A 4xx other than an auth failure.
fn client_error(status: u16, body: &str, system: &str) -> Failure {
    use {ErrorClass as C, Fate::*};
    let st = status_text(status);
    match status {
        404 | 410 => {
            let what = match status {
                404 => "the address or the record does not exist",
                _ => "the record was removed and will not come back",
            };
            let said = if body.is_empty() {
                String::new()
            } else {
                format!(" Response: {body}")
            };
            (
                C::NotFound,
                format!("{system} answered {st}: {what}.{said}"),
                format!(
                    "check the path in the mapping, {system}'s base_url and whether the \
                     record exists in {system}; then edit and replay the message."
                ),
                Dead,
            )
        }
        408 => (
            C::Timeout,
            format!("{system} answered {st}: it gave up waiting for the request."),
            format!("check {system}'s health and load, or raise its timeout"),
            Retry,
        ),
        429 => (
            C::RateLimited,
            format!("{system} answered {st}: it is limiting how fast ferry may send."),
            format!("lower the send rate to {system} or ask for a higher quota"),
            Retry,
        ),
        _ => {
            let explanation = match body.is_empty() {
                true => format!("{system} rejected the message ({st}) without saying why."),
                false => format!("{system} rejected the message ({status}): {body}"),
            };
            (
                C::Rejected,
                explanation,
                "fix the data or the mapping, then edit and replay.".into(),
                Dead,
            )
        }
    }
}

/// A 5xx, or a status that is no valid final answer.
fn server_error(status: u16, system: &str) -> Failure {
    let what = match status {
        500 => "the server hit an internal error",
        502 => "a gateway in front of the server got a bad answer from it",
        503 => "the server is temporarily unable to handle the request",
        504 => "a gateway in front of the server timed out waiting for it",
        501 | 505..=599 => "the server reported an error",
        _ => "this status is not a valid final HTTP answer",
    };
    (
        ErrorClass::ServerError,
        format!("{system} answered {}: {what}.", status_text(status)),
        format!("check {system}'s health"),
        Fate::Retry,
    )
}

pub(super) fn explained(class: ErrorClass, explanation: String, hint: String) -> Explained {
    Explained {
        class,
        explanation,
        hint,
    }
}

/// "503 Service Unavailable", or just the number for unknown statuses.
pub(super) fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// Longest excerpt, in characters, quoted from a response body or error text.
const EXCERPT_CHARS: usize = 200;

/// First ~200 characters of `text` on one line (whitespace runs collapsed).
pub(super) fn excerpt(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= EXCERPT_CHARS {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}
