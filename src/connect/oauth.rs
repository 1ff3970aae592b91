//! OAuth2 access tokens for outbound requests (`auth = { kind = "oauth2" }`
//! and `"oauth2-refresh"`): our own small client over reqwest. One cached
//! token per system, fetched by one worker at a time while the others wait
//! for it (a `tokio::sync::Mutex` per system: single flight), refreshed once
//! 75% of its lifetime has passed (before the 80% the contract names), and
//! fetched anew when a system answers 401 to the token in the cache; a
//! failure answers the workers waiting behind it for a second. The
//! token endpoint is never followed through a redirect. A failure here is
//! the attempt's `auth` failure with the endpoint's reason; no token, client
//! secret or refresh token ever appears in an error, a log or the store's
//! attempt records. With the refresh-token grant, a rotated refresh token in
//! the answer is saved in the credential store (`vault`) before the access
//! token is used.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::auth::Credentials;
use crate::clock::Clock;
use crate::config::{ClientAuth, Grant, OAuth2, SystemName};

/// How long the token endpoint may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of a token answer read at most.
const MAX_ANSWER: usize = 64 * 1024;
/// How long a failed token request answers for the workers waiting behind
/// it, so a down endpoint is asked once, not once per waiting delivery.
const FAILURE_HOLD_MS: i64 = 1_000;

/// Why no token could be had: shown as the attempt's explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the token endpoint {url} answered {status}{detail}")]
    Refused {
        url: String,
        status: u16,
        /// The OAuth2 `error` and `error_description`, when given.
        detail: String,
    },
    #[error("the token endpoint {url} answered without a usable access_token")]
    Malformed { url: String },
    #[error("credential {0} has no value")]
    NoCredential(String),
    #[error("the rotated refresh token could not be saved in the credential store: {0}")]
    NotSaved(String),
    #[error("cannot take the credential store's turn to refresh: {0}")]
    Locked(String),
}

impl TokenError {
    /// Whether the endpoint refused the client or the grant (a 4xx other
    /// than 408 and 429), or a credential has no value: retrying the same
    /// will not help.
    pub fn is_rejection(&self) -> bool {
        match self {
            TokenError::Refused { status, .. } => {
                (400..500).contains(status) && !matches!(status, 408 | 429)
            }
            TokenError::NoCredential(_) => true,
            _ => false,
        }
    }
}

/// A cached access token.
struct Token {
    value: SecretString,
    /// From here on the next request fetches a new one.
    refresh_at_ms: i64,
}

/// A system's slot: its token, or the last failure while it is fresh,
/// for the OAuth2 settings they were got with (a reload that changes them
/// starts the slot over).
#[derive(Default)]
struct Slot {
    token: Option<Token>,
    failed: Option<(TokenError, i64)>,
    settings: Option<OAuth2>,
}

/// Each OAuth2 system's cached token.
pub struct Tokens {
    /// Its own client: no proxy from the environment, no redirects.
    http: reqwest::Client,
    clock: Clock,
    /// One slot per OAuth2 system, made at its first use (so one `Tokens`
    /// serves every configuration a reload brings); the tokio mutex is held
    /// across the token request, so concurrent workers wait for one fetch.
    /// The outer `std` mutex is held only to find or add a slot.
    slots: std::sync::Mutex<HashMap<SystemName, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Token requests made, for the figures (requests per deliveries).
    requests: AtomicU64,
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

impl Tokens {
    pub fn new(clock: Clock) -> Result<Tokens, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TOKEN_TIMEOUT)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Tokens {
            http,
            clock,
            slots: Default::default(),
            requests: AtomicU64::new(0),
        })
    }

    /// Token requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The system's token: the cached one unless it is due for refresh or
    /// is `rejected` (the one a 401 answered), else a new one, fetched once
    /// for every worker waiting.
    pub async fn token(
        &self,
        system: &SystemName,
        o: &OAuth2,
        credentials: &Credentials,
        rejected: Option<&SecretString>,
    ) -> Result<SecretString, TokenError> {
        let slot = self
            .slots
            .lock()
            .expect("token slots poisoned")
            .entry(system.clone())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if slot.settings.as_ref() != Some(o) {
            *slot = Slot {
                settings: Some(o.clone()),
                ..Slot::default()
            };
        }
        let now = self.clock.now_ms();
        if let Some(t) = slot.token.as_ref() {
            let refused = rejected.is_some_and(|r| r.expose_secret() == t.value.expose_secret());
            if now < t.refresh_at_ms && !refused {
                return Ok(t.value.clone());
            }
        }
        if let Some((e, until)) = &slot.failed
            && now < *until
        {
            return Err(e.clone());
        }
        slot.token = None;
        let fresh = match &o.grant {
            Grant::ClientCredentials => self.fetch(o, credentials).await,
            Grant::RefreshToken { refresh_token } => {
                // One instance at a time: the answer may spend the refresh token.
                let lock = credentials
                    .lock_rotation(refresh_token)
                    .await
                    .map_err(TokenError::Locked)?;
                let fresh = self.fetch(o, credentials).await;
                lock.release().await;
                fresh
            }
        };
        match fresh {
            Ok(fresh) => {
                let value = fresh.value.clone();
                slot.token = Some(fresh);
                slot.failed = None;
                Ok(value)
            }
            Err(e) => {
                slot.failed = Some((e.clone(), self.clock.now_ms() + FAILURE_HOLD_MS));
                Err(e)
            }
        }
    }

    async fn fetch(&self, o: &OAuth2, credentials: &Credentials) -> Result<Token, TokenError> {
        let secret = credentials
            .current(&o.client_secret)
            .ok_or_else(|| TokenError::NoCredential(o.client_secret.clone()))?;
        let refresh = match &o.grant {
            Grant::ClientCredentials => None,
            Grant::RefreshToken { refresh_token } => Some((
                refresh_token,
                credentials
                    .current(refresh_token)
                    .ok_or_else(|| TokenError::NoCredential(refresh_token.clone()))?,
            )),
        };
        let mut form: Vec<(&str, &str)> = match &refresh {
            None => vec![("grant_type", "client_credentials")],
            Some((_, token)) => vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.expose_secret()),
            ],
        };
        if let Some(s) = &o.scope {
            form.push(("scope", s));
        }
        if let Some(a) = &o.audience {
            form.push(("audience", a));
        }
        let mut req = self.http.post(o.token_url.clone());
        match o.client_auth {
            ClientAuth::Post => {
                form.push(("client_id", &o.client_id));
                form.push(("client_secret", secret.expose_secret()));
            }
            ClientAuth::Basic => {
                let pair = format!(
                    "{}:{}",
                    form_encode(&o.client_id),
                    form_encode(secret.expose_secret())
                );
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                req = req.header(axum::http::header::AUTHORIZATION, format!("Basic {basic}"));
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let url = o.token_url.to_string();
        let unreachable = |e: reqwest::Error| TokenError::Unreachable {
            url: url.clone(),
            reason: crate::model::Chain(&e.without_url()).to_string(),
        };
        let mut resp = req
            .header(axum::http::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(TokenError::Malformed { url });
            }
        }
        if !(200..300).contains(&status) {
            return Err(TokenError::Refused {
                url,
                status,
                detail: oauth_error(&body),
            });
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| TokenError::Malformed { url: url.clone() })?;
        let Some(access) = answer.access_token.filter(|t| !t.is_empty()) else {
            return Err(TokenError::Malformed { url });
        };
        if let (Some((name, old)), Some(new)) = (&refresh, answer.refresh_token.as_deref())
            && new != old.expose_secret()
        {
            // Before the access token is used: the old refresh token may be spent now.
            credentials
                .save_rotated(name, new)
                .await
                .map_err(TokenError::NotSaved)?;
        }
        let ttl_ms = answer
            .expires_in
            .as_ref()
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
            .filter(|s| *s > 0)
            .map_or(o.default_ttl.as_millis() as i64, |s| s.saturating_mul(1000));
        Ok(Token {
            value: SecretString::from(access),
            refresh_at_ms: self.clock.now_ms().saturating_add(ttl_ms / 4 * 3),
        })
    }
}

/// `error: error_description` of an OAuth2 error answer (no other text of
/// the body: it is the endpoint's, and could echo what was sent).
fn oauth_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        error: Option<String>,
        error_description: Option<String>,
    }
    let Ok(e) = serde_json::from_slice::<E>(body) else {
        return String::new();
    };
    let cut = |s: String| s.chars().take(200).collect::<String>();
    match (e.error.map(cut), e.error_description.map(cut)) {
        (Some(e), Some(d)) => format!(" ({e}: {d})"),
        (Some(e), None) => format!(" ({e})"),
        (None, Some(d)) => format!(" ({d})"),
        (None, None) => String::new(),
    }
}

/// application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks of Basic's parts.
fn form_encode(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'*');
    utf8_percent_encode(s, SET).to_string().replace("%20", "+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Auth, Config};

    fn config(token_url: &str) -> Config {
        let text = format!(
            r#"
[credentials]
secret = {{ env = "S" }}

[systems.api]
base_url = "http://127.0.0.1:9"
auth = {{ kind = "oauth2", token_url = "{token_url}", client_id = "c", client_secret = "secret" }}
"#
        );
        let env = |k: &str| (k == "S").then(|| "s".to_owned());
        Config::parse(&text, "t", std::path::Path::new("."), &env).unwrap()
    }

    fn oauth(c: &Config) -> OAuth2 {
        match &c.systems["api"].auth {
            Auth::OAuth2(o) => (**o).clone(),
            _ => unreachable!(),
        }
    }

    /// Nothing listens on port 9 of loopback (discard): every fetch fails.
    #[tokio::test]
    async fn a_failure_answers_for_a_second_and_new_settings_start_over() {
        let clock = Clock::manual(1_000_000);
        let tokens = Tokens::new(clock.clone()).unwrap();
        let (a, b) = (
            config("http://127.0.0.1:9/a"),
            config("http://127.0.0.1:9/b"),
        );
        let creds = Credentials::new(&a, Arc::new(crate::vault::Vault::none()), clock.clone());
        let system: SystemName = "api".into();
        let err = tokens
            .token(&system, &oauth(&a), &creds, None)
            .await
            .unwrap_err();
        assert!(matches!(err, TokenError::Unreachable { .. }), "{err}");
        assert!(!err.is_rejection());
        tokens
            .token(&system, &oauth(&a), &creds, None)
            .await
            .unwrap_err();
        assert_eq!(
            tokens.requests(),
            1,
            "the failure answered the second caller"
        );
        // a reload that changes the settings does not inherit the failure
        tokens
            .token(&system, &oauth(&b), &creds, None)
            .await
            .unwrap_err();
        assert_eq!(tokens.requests(), 2);
        clock.advance(FAILURE_HOLD_MS);
        tokens
            .token(&system, &oauth(&b), &creds, None)
            .await
            .unwrap_err();
        assert_eq!(tokens.requests(), 3, "asked again once the hold is over");
    }

    #[test]
    fn refusals_are_told_from_outages() {
        let refused = |status| TokenError::Refused {
            url: "u".into(),
            status,
            detail: String::new(),
        };
        assert!(refused(400).is_rejection() && refused(401).is_rejection());
        for transient in [302, 408, 429, 500, 503] {
            assert!(!refused(transient).is_rejection(), "{transient}");
        }
        assert!(TokenError::NoCredential("x".into()).is_rejection());
        assert_eq!(form_encode("a b+c/d-e.f_g"), "a+b%2Bc%2Fd-e.f_g");
    }
}
