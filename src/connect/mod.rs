//! Connect: the stage that puts a transformed delivery on the wire. One reqwest
//! client per system (rustls, its own connect timeout, no redirects), the
//! system's auth applied (`auth.rs`), the stable `Idempotency-Key` header on
//! every attempt, and a redacted log of request and response for the attempt
//! timeline. It reports what happened; `deliver::retry` decides what it means.
//! `smtp` is the same for email alert channels: an SMTP submission instead of
//! an HTTP request, its answer folded into an HTTP-like status.

mod auth;
mod oauth;
pub mod sign;
pub mod smtp;

pub use crate::transform::Outgoing;
pub use auth::Credentials;
pub use oauth::{TokenError, Tokens};

use std::collections::HashMap;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use secrecy::ExposeSecret;

/// The rule lives with the config that checks `base_url` when it loads.
pub use crate::config::same_origin;
use crate::config::{Auth, Config, Destination, System, SystemName, TokenHeader};
use crate::store::{RequestLog, ResponseLog};

/// Bytes of a body kept in the attempt log.
const EXCERPT: usize = 2048;
/// Bytes of a response body read at most.
const MAX_RESPONSE: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot build the HTTP client for system {system}")]
    Client {
        system: SystemName,
        source: reqwest::Error,
    },
    #[error("alert channel {system}: {reason}")]
    Email { system: SystemName, reason: String },
}

/// What one send observed.
#[derive(Debug)]
pub enum Sent {
    Response {
        status: u16,
        headers: HeaderMap,
        log: ResponseLog,
        /// The body as read (at most 256 KiB): a batch's per-item results.
        body: Bytes,
    },
    Network(String),
    Timeout,
    /// Not sent: the URL built from the path would leave the system's
    /// scheme, host or port (a `config` death); the reason.
    Refused(String),
    /// Not sent: no credential to send it with (the OAuth2 token endpoint
    /// failed, a signing secret is unusable); class `auth`.
    Unauthorized(NoCredential),
}

/// Why a request went without its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoCredential {
    pub reason: String,
    /// The credential itself is wrong: the token endpoint refused the
    /// client or the grant (a 4xx), or the secret is unusable. Otherwise
    /// (unreachable, a 5xx) it is worth retrying within the budget.
    pub rejected: bool,
}

pub struct Attempt {
    pub request: RequestLog,
    pub sent: Sent,
    pub duration_ms: i64,
}

pub struct Connector {
    clients: HashMap<SystemName, reqwest::Client>,
    /// Email alert channels' SMTP submission, by system.
    mailers: HashMap<SystemName, smtp::Mailer>,
    pub credentials: Credentials,
    /// OAuth2 systems' cached access tokens (shared: see [`Outbound`]).
    pub tokens: std::sync::Arc<Tokens>,
}

/// What outlives one configuration's connector: the credential store's
/// view, the clock, and the OAuth2 tokens, so a reload (a new `Connector`)
/// keeps the cached tokens of systems whose OAuth2 settings it leaves alone.
#[derive(Clone)]
pub struct Outbound {
    pub vault: std::sync::Arc<crate::vault::Vault>,
    pub clock: crate::clock::Clock,
    pub tokens: std::sync::Arc<Tokens>,
}

impl Outbound {
    pub fn new(
        vault: std::sync::Arc<crate::vault::Vault>,
        clock: crate::clock::Clock,
    ) -> Result<Outbound, ConnectError> {
        let tokens = Tokens::new(clock.clone()).map_err(|source| ConnectError::Client {
            system: "(OAuth2 token endpoints)".into(),
            source,
        })?;
        Ok(Outbound {
            vault,
            clock,
            tokens: std::sync::Arc::new(tokens),
        })
    }
}

impl Connector {
    pub fn new(config: &Config, outbound: &Outbound) -> Result<Connector, ConnectError> {
        let mut clients = HashMap::new();
        for (name, s) in &config.systems {
            // Proxy variables in the environment are ignored: deliveries carry
            // credentials, so a proxy is used only when the system names one.
            let builder = match &s.proxy {
                None => reqwest::Client::builder().no_proxy(),
                Some(url) => reqwest::Client::builder().proxy(
                    reqwest::Proxy::all(url.as_str()).map_err(|source| ConnectError::Client {
                        system: name.clone(),
                        source,
                    })?,
                ),
            };
            let client = builder
                .connect_timeout(s.connect_timeout)
                .timeout(s.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(s.max_concurrency)
                .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|source| ConnectError::Client {
                    system: name.clone(),
                    source,
                })?;
            clients.insert(name.clone(), client);
        }
        let mut mailers = HashMap::new();
        for (name, s) in &config.systems {
            if let Some(e) = &s.email {
                mailers.insert(name.clone(), mailer(config, name, e)?);
            }
        }
        Ok(Connector {
            clients,
            mailers,
            credentials: Credentials::new(config, outbound.vault.clone(), outbound.clock.clone()),
            tokens: outbound.tokens.clone(),
        })
    }

    /// Sends one attempt of a delivery. An OAuth2 system that answers 401
    /// is sent the request once more with a new token, inside this attempt.
    /// An email channel's delivery is an SMTP submission instead.
    pub async fn send(
        &self,
        system: &System,
        dest: &Destination,
        outgoing: Outgoing,
        delivery_key: &str,
    ) -> Attempt {
        if let Some(mailer) = self.mailers.get(&system.name) {
            return mail(system, mailer, &outgoing.body, delivery_key).await;
        }
        let (url, refused) = match outgoing.target(&dest.path) {
            Ok(path) => {
                let url = format!("{}{path}", system.base_url);
                let refused = same_origin(&system.base_url, &url).err();
                (url, refused)
            }
            Err(why) => (format!("{}{}", system.base_url, dest.path), Some(why)),
        };
        let body = outgoing.body;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (k, v) in dest.headers.iter().chain(&outgoing.headers) {
            headers.insert(k.clone(), v.clone());
        }
        if let Ok(v) = HeaderValue::from_str(delivery_key) {
            headers.insert("idempotency-key", v);
        }
        let started = Instant::now();
        let authorized = match &refused {
            Some(_) => Ok(None),
            None => {
                self.authorize(system, &mut headers, &body, delivery_key, None)
                    .await
            }
        };
        let secret_header = authorized
            .as_ref()
            .ok()
            .and_then(|a| a.as_ref().map(|(h, _)| h.clone()));
        let request = request_log(dest, &url, &headers, secret_header.as_ref(), &body);
        let sent = match (refused, authorized) {
            (Some(why), _) => Sent::Refused(why),
            (None, Err(why)) => Sent::Unauthorized(why),
            (None, Ok(auth)) => {
                let sent = self
                    .call(system, dest, &url, headers.clone(), body.clone())
                    .await;
                match (sent, auth) {
                    (Sent::Response { status: 401, .. }, Some((_, Some(rejected)))) => {
                        // The token was refused: one new token, one more try.
                        match self
                            .authorize(system, &mut headers, &body, delivery_key, Some(&rejected))
                            .await
                        {
                            Ok(_) => self.call(system, dest, &url, headers, body).await,
                            Err(why) => Sent::Unauthorized(why),
                        }
                    }
                    (sent, _) => sent,
                }
            }
        };
        Attempt {
            request,
            sent,
            duration_ms: started.elapsed().as_millis() as i64,
        }
    }

    /// Puts the system's credential on the request: a static header, a
    /// Standard Webhooks signature, or an OAuth2 token (a new one when
    /// `rejected` is the cached one). Returns the header that carries a
    /// secret (for the log's redaction) and the token sent, or why none could be.
    async fn authorize(
        &self,
        system: &System,
        headers: &mut HeaderMap,
        body: &[u8],
        delivery_key: &str,
        rejected: Option<&secrecy::SecretString>,
    ) -> Result<Option<(HeaderName, Option<secrecy::SecretString>)>, NoCredential> {
        match &system.auth {
            Auth::StandardWebhooks { credential } => {
                let secrets = self.credentials.all_live(credential);
                let now_s = self.credentials.clock.now_ms().div_euclid(1000);
                sign::sign(headers, &secrets, delivery_key, now_s, body).map_err(|e| {
                    NoCredential {
                        reason: format!(
                            "cannot sign for {} with credential {credential}: {e}",
                            system.name
                        ),
                        rejected: true,
                    }
                })?;
                Ok(Some((HeaderName::from_static("webhook-signature"), None)))
            }
            Auth::OAuth2(o) => {
                let token = self
                    .tokens
                    .token(&system.name, o, &self.credentials, rejected)
                    .await
                    .map_err(|e| NoCredential {
                        reason: format!("no OAuth2 access token for {}: {e}", system.name),
                        rejected: e.is_rejection(),
                    })?;
                let (name, value) = match &o.header {
                    TokenHeader::Bearer => (
                        header::AUTHORIZATION,
                        format!("Bearer {}", token.expose_secret()),
                    ),
                    TokenHeader::Bare(name) => (name.clone(), token.expose_secret().to_owned()),
                };
                let mut value = HeaderValue::from_str(&value).map_err(|_| NoCredential {
                    reason: format!(
                        "the OAuth2 token for {} is not a valid header value",
                        system.name
                    ),
                    rejected: false,
                })?;
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
                Ok(Some((name, Some(token))))
            }
            auth => Ok(self.credentials.apply(auth, headers).map(|h| (h, None))),
        }
    }

    async fn call(
        &self,
        system: &System,
        dest: &Destination,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Sent {
        match self.clients.get(&system.name) {
            None => Sent::Network(format!("no HTTP client for system {}", system.name)),
            Some(client) => {
                let req = client
                    .request(dest.method.clone(), url)
                    .headers(headers)
                    .body(body);
                match req.send().await {
                    Ok(resp) => read_response(resp).await,
                    Err(e) => classify_error(&e),
                }
            }
        }
    }
}

/// The request as the attempt log keeps it: headers that carry a secret redacted.
fn request_log(
    dest: &Destination,
    url: &str,
    headers: &HeaderMap,
    secret_header: Option<&HeaderName>,
    body: &[u8],
) -> RequestLog {
    RequestLog {
        method: dest.method.to_string(),
        url: url.to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                let own = secret_header.map(|h| h.as_str());
                let value = crate::redact::header_value(k.as_str(), v.as_bytes(), own);
                (k.to_string(), value)
            })
            .collect(),
        body_excerpt: excerpt(body),
    }
}

async fn read_response(mut resp: reqwest::Response) -> Sent {
    let status = resp.status().as_u16();
    let headers = std::mem::take(resp.headers_mut());
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE - body.len())]);
                if body.len() >= MAX_RESPONSE {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Sent::Timeout,
            // The status line arrived; a torn body still tells us the answer.
            Err(_) => break,
        }
    }
    let log = ResponseLog {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    crate::redact::header_value(k.as_str(), v.as_bytes(), None),
                )
            })
            .collect(),
        body_excerpt: excerpt(&body),
    };
    Sent::Response {
        status,
        headers,
        log,
        body: Bytes::from(body),
    }
}

fn classify_error(e: &reqwest::Error) -> Sent {
    if e.is_timeout() {
        return Sent::Timeout;
    }
    // The chain holds the useful part ("connection refused", "dns error").
    Sent::Network(crate::model::Chain(e).to_string())
}

/// The first bytes of a body, as text, cut on a character boundary.
pub fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(EXCERPT)];
    let text = String::from_utf8_lossy(cut);
    if body.len() > EXCERPT {
        format!("{text}… ({} bytes in all)", body.len())
    } else {
        text.into_owned()
    }
}

/// The mailer of an email alert channel, its password from the config's
/// credential.
fn mailer(
    config: &Config,
    name: &SystemName,
    e: &crate::config::EmailChannel,
) -> Result<smtp::Mailer, ConnectError> {
    let fail = |reason: String| ConnectError::Email {
        system: name.clone(),
        reason,
    };
    let mut settings =
        smtp::SmtpSettings::new(&e.url, &e.from, &e.to).map_err(|err| fail(err.to_string()))?;
    if let Some(ca) = &e.ca_file {
        settings = settings.with_ca_file(ca.clone());
    }
    let password = e
        .password
        .as_ref()
        .and_then(|c| config.credentials.get(c))
        .and_then(|c| c.value.clone());
    if let (Some(user), Some(pw)) = (&e.username, password) {
        settings = settings.with_credentials(secrecy::SecretString::from(user.clone()), pw);
    }
    smtp::Mailer::new(&settings).map_err(|err| fail(err.to_string()))
}

/// One SMTP submission of an email alert (its body is `{"subject","text","html"}`),
/// logged and classified like an HTTP answer (see `smtp::SmtpError::http_like_status`).
async fn mail(system: &System, mailer: &smtp::Mailer, body: &Bytes, delivery_key: &str) -> Attempt {
    let started = Instant::now();
    let request = RequestLog {
        method: "SMTP".to_owned(),
        url: system.base_url.clone(),
        headers: Vec::new(),
        body_excerpt: excerpt(body),
    };
    let answer = |status: u16, text: String| Sent::Response {
        status,
        headers: HeaderMap::new(),
        log: crate::store::ResponseLog {
            status,
            headers: Vec::new(),
            body_excerpt: text,
        },
        body: Bytes::new(),
    };
    let sent = match smtp::Email::from_json(body) {
        Err(e) => answer(e.http_like_status(), e.to_string()),
        Ok(email) => {
            let id = format!("<{delivery_key}@ferry>");
            match mailer.send(&email, Some(&id)).await {
                Ok(o) => answer(o.http_like_status(), format!("{} {}", o.code, o.message)),
                Err(smtp::SmtpError::Network(m)) => Sent::Network(m),
                Err(smtp::SmtpError::Timeout(_)) => Sent::Timeout,
                Err(e) => answer(e.http_like_status(), e.to_string()),
            }
        }
    };
    Attempt {
        request,
        sent,
        duration_ms: started.elapsed().as_millis() as i64,
    }
}
