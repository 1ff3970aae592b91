//! Who is signed in to the console: the `ferry_session` cookie's value is a
//! random 256-bit token the browser holds; the store keeps only its SHA-256
//! (a leaked database signs nobody in), with the user, the session's CSRF
//! token and its idle and absolute expiry. [`ConsoleUser`] is the extractor
//! every page and action takes: without a live session a page redirects to
//! the sign-in page (htmx gets `HX-Redirect`), anything else is refused with
//! 401. A state-changing request must also prove it comes from a console
//! page: Fetch Metadata (`Sec-Fetch-Site: same-origin`) or, from a browser
//! that sends none, an `Origin` equal to ferry's own; and the session's CSRF
//! token in `X-CSRF-Token`, which the pages give htmx.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::access::sha256_hex;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::Role;

/// The session cookie's name.
pub const COOKIE: &str = "ferry_session";

/// A signed-in console user, with the role the user has now.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

impl ConsoleUser {
    /// The user as the audit log records an action (from the console).
    pub fn actor(&self) -> String {
        crate::store::Channel::Console.actor(&self.name)
    }

    /// Refuses (403 `forbidden-role`) a user below `role`.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role >= role {
            return Ok(());
        }
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden-role",
            "Forbidden",
            format!(
                "{} is a {}: this takes an {} or above",
                self.name,
                self.role.as_str(),
                role.as_str()
            ),
        ))
    }
}

/// The session token a request presents, if any.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Whether the request came over TLS as far as ferry can tell (a TLS
/// proxy's `X-Forwarded-Proto`).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Whether a state-changing request comes from one of ferry's own pages:
/// `Sec-Fetch-Site: same-origin` when the browser sends Fetch Metadata,
/// else an `Origin` whose host is the request's `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site == "same-origin";
    }
    let (Some(origin), Some(host)) = (get("origin"), get("host")) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host)
}

fn htmx(parts: &Parts) -> bool {
    parts.headers.contains_key("hx-request")
}

/// The sign-in page's address, coming back to `to` afterwards.
pub fn login_url(to: &str) -> String {
    format!("/console/login?next={}", super::format::url_part(to))
}

/// The peer's address, as the accept loop saw it (none in a test that
/// calls the router directly).
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// Why a console request has no user: sent to the sign-in page, or refused.
pub enum Rejection {
    /// A page: 303 to the sign-in page.
    SignIn(String),
    Refused(Problem),
    /// An htmx request: 401 with `HX-Redirect` to the sign-in page.
    Htmx(Problem, String),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::SignIn(to) => Redirect::to(&to).into_response(),
            Rejection::Refused(p) => p.into_response(),
            Rejection::Htmx(p, to) => {
                let mut r = p.into_response();
                if let Ok(v) = to.parse() {
                    r.headers_mut().insert("hx-redirect", v);
                }
                r
            }
        }
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Rejection> {
        let reads = matches!(parts.method, Method::GET | Method::HEAD);
        let user = match presented(&parts.headers) {
            Some(token) => {
                let idle = app.config().console.session_idle.as_millis() as i64;
                let now = app.clock.now_ms();
                app.store
                    .session(&sha256_hex(token), now, idle)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %crate::model::Chain(&e), "Reading a console session failed.");
                        Rejection::Refused(Problem::internal("the session could not be read"))
                    })?
            }
            None => None,
        };
        let Some(user) = user else {
            let here = parts
                .uri
                .path_and_query()
                .map_or("/console", |p| p.as_str());
            if reads && !htmx(parts) {
                return Err(Rejection::SignIn(login_url(here)));
            }
            let refused = Problem::unauthorized(
                "sign-in-required",
                "no console session: sign in at /console/login",
            );
            if !htmx(parts) {
                return Err(Rejection::Refused(refused));
            }
            // htmx follows HX-Redirect to the sign-in page, coming back to
            // the page the action was on.
            let back = parts
                .headers
                .get("hx-current-url")
                .and_then(|v| v.to_str().ok())
                .and_then(|u| u.find("/console").map(|i| u[i..].to_owned()))
                .unwrap_or_else(|| "/console".to_owned());
            return Err(Rejection::Htmx(refused, login_url(&back)));
        };
        if !reads {
            let token = parts
                .headers
                .get("x-csrf-token")
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !same_origin(&parts.headers)
                || !crate::redact::secret_eq(user.csrf.as_bytes(), token)
            {
                return Err(Rejection::Refused(Problem::new(
                    StatusCode::FORBIDDEN,
                    "csrf-refused",
                    "Forbidden",
                    "this request does not come from a console page (no same-origin proof or no valid CSRF token); reload the page and try again",
                )));
            }
        }
        Ok(ConsoleUser {
            name: user.name,
            role: user.role,
            csrf: user.csrf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; ferry_session=tok; b=2")]);
        assert_eq!(presented(&h), Some("tok"));
        assert_eq!(presented(&headers(&[("cookie", "ferry_session=")])), None);
        assert_eq!(presented(&headers(&[("cookie", "xferry_session=t")])), None);
    }

    #[test]
    fn same_origin_takes_fetch_metadata_first_then_origin() {
        let host = ("host", "ferry.local:8080");
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "same-site"),
            ("origin", "http://ferry.local:8080"),
            host
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "http://ferry.local:8080"),
            host
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "https://evil.example"),
            host
        ])));
        assert!(!same_origin(&headers(&[("origin", "null"), host])));
        assert!(!same_origin(&headers(&[host])), "no proof at all");
    }

    #[test]
    fn tokens_are_random_and_kept_hashed() {
        let (a, b) = (crate::access::random_token(), crate::access::random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(sha256_hex(&a).len(), 64);
        assert_eq!(
            login_url("/console/messages?state=dead"),
            "/console/login?next=%2Fconsole%2Fmessages%3Fstate%3Ddead"
        );
    }
}
