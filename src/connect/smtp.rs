//! SMTP submission: how an alert channel of kind `email` puts a message on
//! the wire, the SMTP counterpart of the HTTP request in [`super`]. Alerts
//! are ferry's own durable messages, claimed by its workers like any
//! delivery; for an email channel the attempt is [`Mailer::send`] (or the
//! one-shot [`send`]) instead of an HTTP request, and the answer is folded
//! into an HTTP-like status ([`http_like_status`]) and an [`ErrorClass`] so
//! the delivery pipeline's retry rules (`deliver::retry`) treat it like any
//! other attempt. This module only reports what happened; it keeps no state
//! between attempts except the connection pool.
//!
//! The transport is lettre's `AsyncSmtpTransport` over rustls (ring, the
//! provider the rest of ferry uses) with the bundled web PKI roots, plus an
//! optional private CA ([`SmtpSettings::ca_file`]).
//!
//! # The server URL
//!
//! | form | TLS | default port |
//! |---|---|---|
//! | `smtp://host:587` | STARTTLS, required (never a silent plain-text fallback) | 587 |
//! | `smtps://host:465` | implicit TLS (TLS from the first byte) | 465 |
//! | `smtp+plain://127.0.0.1:2525` | none: loopback hosts only (`127.0.0.0/8`, `::1`, `localhost`), for tests and local relays | 25 |
//!
//! Nothing else is accepted: no user or password in the URL (they come from
//! a credential), no path, query or fragment, and `smtps://…:587` or
//! `smtp://…:465` are refused because TLS-first against a STARTTLS port (or
//! the reverse) only hangs until the timeout.
//!
//! # Status mapping
//!
//! | what happened | [`http_like_status`] | [`ErrorClass`] | retry? |
//! |---|---|---|---|
//! | 2xx: the server took the message | 200 | (delivered) | — |
//! | 4xx reply (421, 450, 451, 452, 454, …) | 503 | `server_error` | yes |
//! | cannot connect, connection dropped or reset | 503 | `network` | yes |
//! | no answer within [`SmtpSettings::timeout`] | 504 | `timeout` | yes |
//! | the server spoke something that is not SMTP | 502 | `server_error` | yes |
//! | 535 (credentials refused), 534, 538, 530 (authentication required), no common AUTH mechanism | 401 | `auth` | no |
//! | any other 5xx (550, 551, 552, 553, 554, 500–504, …) | 422 | `rejected` | no |
//! | TLS failed: certificate not trusted (wrong or missing CA), wrong name, expired, no common protocol, or STARTTLS not offered | 495 | `config` | no |
//! | settings or message unusable (bad address, unreadable `ca_file`, bad JSON): nothing was sent | 400 | `config` | no |
//!
//! A TLS failure is a configuration problem, not a flaky network: retrying
//! the same certificate against the same roots fails the same way, and a
//! server that stops offering STARTTLS may be an attacker stripping it. 495
//! is nginx's "SSL Certificate Error", used here only as a distinct number.
//!
//! A connection that drops after the end of DATA but before the server's
//! answer may have delivered: a retry can then send the message twice.
//! [`Mailer::send`] takes a stable `Message-ID` so receivers can tell.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::model::ErrorClass;

/// How long one submission may take, connect to the server's last answer,
/// when the settings do not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the three URL forms accept, for error messages.
const FORMS: &str = "smtp://host:587 (STARTTLS), smtps://host:465 (implicit TLS) or \
                     smtp+plain://127.0.0.1:2525 (no TLS, loopback only)";

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text first, then `STARTTLS`, required: a server that does not
    /// offer it is an error, never a plain-text fallback (`smtp://`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
    /// No TLS at all: allowed only to a loopback host (`smtp+plain://`).
    None,
}

/// Where and how an email channel submits, and to whom.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// A private CA (PEM, one or more certificates) added to the trust
    /// roots (the bundled web PKI roots stay trusted too).
    pub ca_file: Option<PathBuf>,
    pub username: Option<SecretString>,
    pub password: Option<SecretString>,
    /// The sender, a mailbox: `alerts@example.com` or `Ferry <alerts@example.com>`.
    pub from: String,
    /// The recipients, mailboxes like `from`; at least one.
    pub to: Vec<String>,
    /// The whole submission: connect, TLS, AUTH and the mail transaction.
    pub timeout: Duration,
}

/// A settings or URL problem, one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn bad(msg: impl Into<String>) -> SettingsError {
    SettingsError(msg.into())
}

impl SmtpSettings {
    /// Settings from the server URL (see the module doc), the sender and
    /// the recipients, checked; no credentials, no CA file, the default
    /// timeout (add them with the `with_` methods).
    pub fn new<S: AsRef<str>>(url: &str, from: &str, to: &[S]) -> Result<Self, SettingsError> {
        let (host, port, tls) = parse_url(url)?;
        let settings = SmtpSettings {
            host,
            port,
            tls,
            ca_file: None,
            username: None,
            password: None,
            from: from.to_owned(),
            to: to.iter().map(|t| t.as_ref().to_owned()).collect(),
            timeout: DEFAULT_TIMEOUT,
        };
        settings.validate()?;
        Ok(settings)
    }

    pub fn with_credentials(mut self, username: SecretString, password: SecretString) -> Self {
        self.username = Some(username);
        self.password = Some(password);
        self
    }

    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server as a URL again, for logs and the attempt timeline.
    pub fn url(&self) -> String {
        let scheme = match self.tls {
            SmtpTls::StartTls => "smtp",
            SmtpTls::Implicit => "smtps",
            SmtpTls::None => "smtp+plain",
        };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// The rules [`SmtpSettings::new`] applies, for settings built field by
    /// field: plain text only to loopback, addresses that parse, at least
    /// one recipient, username and password together, a timeout.
    pub fn validate(&self) -> Result<(), SettingsError> {
        check_host(&self.host)?;
        if self.tls == SmtpTls::None && !is_loopback(&self.host) {
            return Err(plain_not_loopback(&self.host));
        }
        if self.port == 0 {
            return Err(bad("the SMTP port must be 1-65535, not 0"));
        }
        mailbox("from", &self.from)?;
        if self.to.is_empty() {
            return Err(bad("an email channel needs at least one recipient (to)"));
        }
        for to in &self.to {
            mailbox("to", to)?;
        }
        match (&self.username, &self.password) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(bad(
                    "SMTP username and password go together: set both or neither",
                ));
            }
            _ => {}
        }
        if self.timeout.is_zero() {
            return Err(bad("the SMTP timeout must be more than zero"));
        }
        Ok(())
    }
}

/// Parses the server URL into host, port and TLS mode (see the module doc).
pub fn parse_url(url: &str) -> Result<(String, u16, SmtpTls), SettingsError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(bad(format!("the SMTP URL is empty: expected {FORMS}")));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(format!("`{url}` is not an SMTP URL: expected {FORMS}")));
    };
    let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "smtp" => (SmtpTls::StartTls, 587),
        "smtps" => (SmtpTls::Implicit, 465),
        "smtp+plain" => (SmtpTls::None, 25),
        _ => {
            return Err(bad(format!(
                "`{scheme}://` is not an SMTP scheme: use {FORMS}"
            )));
        }
    };
    if rest.contains('@') {
        return Err(bad(
            "the SMTP URL must not carry a user or password: set username and password \
             (from a credential) instead",
        ));
    }
    // A trailing slash is harmless; anything after it is not.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(at) = authority.find(['/', '?', '#']) {
        return Err(bad(format!(
            "the SMTP URL `{url}` has a path, query or fragment (`{}`): only scheme://host:port is allowed",
            &authority[at..]
        )));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(bad(format!("the SMTP URL `{url}` has an unclosed `[`")));
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(format!("`[{host}]` is not an IPv6 address")));
        }
        match after {
            "" => (host, None),
            p if p.starts_with(':') => (host, Some(&p[1..])),
            p => return Err(bad(format!("unexpected `{p}` after `[{host}]`"))),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad(format!("the SMTP URL `{url}` names no host")));
    }
    if host.contains(':') && !authority.starts_with('[') {
        return Err(bad(format!(
            "write an IPv6 address in brackets: smtp://[{host}]:587, say"
        )));
    }
    check_host(host)?;
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad(format!("`{p}` is not a port (1-65535)"))),
        },
    };
    match (tls, port) {
        (SmtpTls::Implicit, 587) => {
            return Err(bad(format!(
                "port 587 is the STARTTLS port: use smtp://{}:587 (smtps:// starts with TLS and would hang there)",
                shown_host(host)
            )));
        }
        (SmtpTls::StartTls, 465) => {
            return Err(bad(format!(
                "port 465 is implicit TLS: use smtps://{}:465 (smtp:// waits for a greeting that never comes there)",
                shown_host(host)
            )));
        }
        (SmtpTls::None, _) if !is_loopback(host) => return Err(plain_not_loopback(host)),
        _ => {}
    }
    Ok((host.to_ascii_lowercase(), port, tls))
}

fn shown_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn plain_not_loopback(host: &str) -> SettingsError {
    bad(format!(
        "smtp+plain:// (no TLS) is allowed only to a loopback host (127.0.0.1, ::1, localhost), \
         not `{host}`: use smtp:// (STARTTLS) or smtps:// (implicit TLS)"
    ))
}

fn check_host(host: &str) -> Result<(), SettingsError> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(bad(format!("`{host}` is not a host name or IP address")));
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

fn mailbox(field: &str, value: &str) -> Result<Mailbox, SettingsError> {
    value
        .parse::<Mailbox>()
        .map_err(|e| bad(format!("{field} `{value}` is not an email address: {e}")))
}

/// One email: what the alert formatter writes as the message body, JSON
/// `{"subject": "...", "text": "...", "html": "..."}` (`html` optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub subject: String,
    /// The plain-text body, always sent.
    pub text: String,
    /// An HTML alternative: with it the email is `multipart/alternative`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl Email {
    /// Reads the JSON a message body carries; an error is a `config` one
    /// (the formatter wrote something else).
    pub fn from_json(body: &[u8]) -> Result<Email, SmtpError> {
        serde_json::from_slice(body).map_err(|e| {
            SmtpError::Config(format!(
                "the email body is not {{subject, text, html}} JSON: {e}"
            ))
        })
    }
}

/// The server's positive answer to the end of DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpOutcome {
    pub code: u16,
    pub message: String,
}

impl SmtpOutcome {
    /// 200 for a 2xx; a positive answer that is not 2xx (a 3xx at the end
    /// of DATA) is not SMTP as it should be: 502.
    pub fn http_like_status(&self) -> u16 {
        match self.code {
            200..=299 => 200,
            _ => 502,
        }
    }
}

/// Why a submission did not deliver. Each variant's text is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// Nothing was sent: the settings or the message are unusable.
    #[error("{0}")]
    Config(String),
    /// TLS could not be set up: an untrusted or mismatched certificate, no
    /// common protocol, or STARTTLS not offered. A configuration problem.
    #[error("TLS with the SMTP server failed: {0}")]
    Tls(String),
    /// Connecting failed or the connection broke.
    #[error("could not reach the SMTP server: {0}")]
    Network(String),
    /// No answer within the settings' timeout.
    #[error("the SMTP server did not answer within {0:?}")]
    Timeout(Duration),
    /// The server answered something that is not SMTP.
    #[error("the SMTP server's answer is not SMTP: {0}")]
    Protocol(String),
    /// The server refused the credentials or wants some (`code` is `None`
    /// when no AUTH mechanism in common was offered).
    #[error("the SMTP server refused authentication: {}", reply(*.code, .message))]
    Auth { code: Option<u16>, message: String },
    /// A 4xx: try again later.
    #[error("the SMTP server answered {}", reply(Some(*.code), .message))]
    Transient { code: u16, message: String },
    /// A 5xx other than an authentication one: the message is refused.
    #[error("the SMTP server answered {}", reply(Some(*.code), .message))]
    Permanent { code: u16, message: String },
}

fn reply(code: Option<u16>, message: &str) -> String {
    match code {
        Some(c) if message.is_empty() => c.to_string(),
        Some(c) => format!("{c} {message}"),
        None => message.to_owned(),
    }
}

/// Reply codes that are about authentication (RFC 4954): the credential.
const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

impl SmtpError {
    /// The HTTP-like status the delivery pipeline's retry rules read (the
    /// module doc has the table).
    pub fn http_like_status(&self) -> u16 {
        match self {
            SmtpError::Config(_) => 400,
            SmtpError::Tls(_) => 495,
            SmtpError::Network(_) | SmtpError::Transient { .. } => 503,
            SmtpError::Timeout(_) => 504,
            SmtpError::Protocol(_) => 502,
            SmtpError::Auth { .. } => 401,
            SmtpError::Permanent { .. } => 422,
        }
    }

    /// ferry's class of the failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            SmtpError::Config(_) | SmtpError::Tls(_) => ErrorClass::Config,
            SmtpError::Network(_) => ErrorClass::Network,
            SmtpError::Timeout(_) => ErrorClass::Timeout,
            SmtpError::Protocol(_) | SmtpError::Transient { .. } => ErrorClass::ServerError,
            SmtpError::Auth { .. } => ErrorClass::Auth,
            SmtpError::Permanent { .. } => ErrorClass::Rejected,
        }
    }

    /// Whether the same attempt may succeed later without a change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SmtpError::Network(_)
                | SmtpError::Timeout(_)
                | SmtpError::Protocol(_)
                | SmtpError::Transient { .. }
        )
    }

    /// The reply code, when the server answered one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SmtpError::Auth { code, .. } => *code,
            SmtpError::Transient { code, .. } | SmtpError::Permanent { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// An SMTP reply code and its text as the error it is.
    pub fn from_reply(code: u16, message: impl Into<String>) -> SmtpError {
        let message = message.into();
        match code {
            c if AUTH_CODES.contains(&c) => SmtpError::Auth {
                code: Some(c),
                message,
            },
            400..=499 => SmtpError::Transient { code, message },
            500..=599 => SmtpError::Permanent { code, message },
            _ => SmtpError::Protocol(reply(Some(code), &message)),
        }
    }

    fn from_lettre(e: &lettre::transport::smtp::Error, timeout: Duration) -> SmtpError {
        use std::error::Error as _;
        let detail = e
            .source()
            .map(|s| one_line(&crate::model::Chain(s).to_string()));
        if let Some(code) = e.status() {
            return SmtpError::from_reply(u16::from(code), detail.unwrap_or_default());
        }
        if e.is_timeout() {
            return SmtpError::Timeout(timeout);
        }
        if let Some(tls) = rustls_error(e) {
            return SmtpError::Tls(one_line(&tls.to_string()));
        }
        let detail = detail.unwrap_or_else(|| e.to_string());
        if e.is_tls() {
            SmtpError::Tls(detail)
        } else if e.is_client() {
            // lettre's own refusals, by their (stable, tested) words.
            if detail.contains("STARTTLS") {
                SmtpError::Tls(format!(
                    "{detail}: the server offers no STARTTLS (smtp:// requires it; \
                     a server that stopped offering it may be an attacker stripping it)"
                ))
            } else if detail.contains("authentication mechanism") {
                SmtpError::Auth {
                    code: None,
                    message: format!("{detail} (ferry speaks PLAIN and LOGIN)"),
                }
            } else {
                SmtpError::Config(detail)
            }
        } else if e.is_response() {
            SmtpError::Protocol(detail)
        } else {
            SmtpError::Network(detail)
        }
    }
}

/// The rustls error inside a failed handshake: lettre reports it as a
/// connection error wrapping an `io::Error` that wraps the rustls one.
/// (`io::Error::source` skips its inner error, so look with `get_ref`.)
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            cur = Some(inner);
            continue;
        }
        cur = err.source();
    }
    None
}

fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The HTTP-like status of a submission's result (the module doc's table):
/// 200 delivered, 503/504/502 retryable, 401 auth, 422 rejected, 495 TLS
/// configuration, 400 unusable settings or message.
pub fn http_like_status(result: &Result<SmtpOutcome, SmtpError>) -> u16 {
    match result {
        Ok(o) => o.http_like_status(),
        Err(e) => e.http_like_status(),
    }
}

/// An email channel's transport: the checked settings and a pool of SMTP
/// connections, reused between sends. Build it inside a Tokio runtime and
/// drop it inside one (lettre's pool spawns its cleanup task on both), and
/// keep it as long as the channel's settings do: a `Mailer` per attempt
/// gets nothing from the pool.
pub struct Mailer {
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    /// Rebuilt after a timeout: see [`Mailer::send`].
    transport: Mutex<Arc<AsyncSmtpTransport<Tokio1Executor>>>,
    build: Box<dyn Fn() -> AsyncSmtpTransport<Tokio1Executor> + Send + Sync>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the settings and reads the CA file; connects on the first send.
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, SmtpError> {
        settings
            .validate()
            .map_err(|e| SmtpError::Config(e.to_string()))?;
        let from = mailbox("from", &settings.from).map_err(|e| SmtpError::Config(e.0))?;
        let to = settings
            .to
            .iter()
            .map(|t| mailbox("to", t).map_err(|e| SmtpError::Config(e.0)))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(settings)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(settings)?),
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(u), Some(p)) => Some(Credentials::new(
                u.expose_secret().to_owned(),
                p.expose_secret().to_owned(),
            )),
            _ => None,
        };
        let (host, port, timeout) = (settings.host.clone(), settings.port, settings.timeout);
        let build = move || {
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                .port(port)
                .tls(tls.clone())
                .timeout(Some(timeout));
            if let Some(c) = &credentials {
                b = b.credentials(c.clone());
            }
            b.build()
        };
        Ok(Mailer {
            server: settings.url(),
            from,
            to,
            timeout,
            transport: Mutex::new(Arc::new(build())),
            build: Box::new(build),
        })
    }

    /// The server, as a URL (for logs).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Submits one email. `message_id` (without the angle brackets: a
    /// delivery key at a domain, say `01h…@ferry.example`) makes every
    /// retry of the same alert the same message to the receiver; without
    /// one lettre makes none and the server may add its own.
    ///
    /// The whole submission is bounded by the settings' timeout: lettre
    /// bounds only the TCP connect on Tokio, so a server that accepts and
    /// then says nothing would hold the attempt forever. A submission cut
    /// off mid-transaction leaves its connection out of step with the
    /// server, and lettre's pool would park it for the next send; so after
    /// a timeout the pool is shut down and a fresh one takes its place.
    pub async fn send(
        &self,
        email: &Email,
        message_id: Option<&str>,
    ) -> Result<SmtpOutcome, SmtpError> {
        let message = self.message(email, message_id)?;
        let transport = self.transport.lock().expect("mailer lock").clone();
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Ok(Ok(response)) => Ok(SmtpOutcome {
                code: u16::from(response.code()),
                message: one_line(&response.message().collect::<Vec<_>>().join(" ")),
            }),
            Ok(Err(e)) => Err(SmtpError::from_lettre(&e, self.timeout)),
            Err(_) => {
                {
                    let mut current = self.transport.lock().expect("mailer lock");
                    if Arc::ptr_eq(&current, &transport) {
                        *current = Arc::new((self.build)());
                    }
                }
                transport.shutdown().await;
                Err(SmtpError::Timeout(self.timeout))
            }
        }
    }

    fn message(&self, email: &Email, message_id: Option<&str>) -> Result<Message, SmtpError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            // Line breaks in a subject would start new headers.
            .subject(one_line(&email.subject));
        for to in &self.to {
            b = b.to(to.clone());
        }
        if let Some(id) = message_id {
            let id = id.trim_matches(['<', '>']);
            if id.is_empty() || !id.contains('@') || id.bytes().any(|c| !c.is_ascii_graphic()) {
                return Err(SmtpError::Config(format!(
                    "`{id}` is not a Message-ID (left@right, printable ASCII)"
                )));
            }
            b = b.message_id(Some(format!("<{id}>")));
        }
        let built = match &email.html {
            None => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.text.clone()),
            ),
            Some(html) => b.multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                html.clone(),
            )),
        };
        built.map_err(|e| SmtpError::Config(format!("cannot build the email: {e}")))
    }
}

/// Submits one email with a transport made for it (no pool reuse): the
/// simple form for a test or a one-off; a channel keeps a [`Mailer`].
pub async fn send(settings: &SmtpSettings, email: &Email) -> Result<SmtpOutcome, SmtpError> {
    Mailer::new(settings)?.send(email, None).await
}

/// TLS toward the server's host name: the web PKI roots plus `ca_file`.
fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, SmtpError> {
    let mut b = TlsParameters::builder(settings.host.clone());
    if let Some(path) = &settings.ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| SmtpError::Config(format!("ca_file `{shown}` cannot be read: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SmtpError::Config(format!("ca_file `{shown}` is not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(SmtpError::Config(format!(
                "ca_file `{shown}` holds no certificate"
            )));
        }
        for cert in certs {
            let cert = Certificate::from_der(cert.to_vec()).map_err(|e| {
                SmtpError::Config(format!("ca_file `{shown}`: {}", one_line(&e.to_string())))
            })?;
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| {
        SmtpError::Config(format!(
            "cannot set up TLS for {}: {}",
            settings.host,
            one_line(&e.to_string())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, u16, SmtpTls) {
        parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn err(url: &str) -> String {
        let e = parse_url(url).expect_err(url).0;
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn the_three_url_forms() {
        assert_eq!(
            ok("smtp://mail.example.com:587"),
            ("mail.example.com".into(), 587, SmtpTls::StartTls)
        );
        assert_eq!(
            ok("smtps://mail.example.com:465"),
            ("mail.example.com".into(), 465, SmtpTls::Implicit)
        );
        assert_eq!(
            ok("smtp+plain://127.0.0.1:2525"),
            ("127.0.0.1".into(), 2525, SmtpTls::None)
        );
        // Default ports, case, a trailing slash, IPv6 and loopback names.
        assert_eq!(
            ok("SMTP://Mail.Example.com"),
            ("mail.example.com".into(), 587, SmtpTls::StartTls)
        );
        assert_eq!(ok("smtps://mail.example.com/").1, 465);
        assert_eq!(ok("smtp+plain://localhost").1, 25);
        assert_eq!(
            ok("smtp+plain://[::1]:2525"),
            ("::1".into(), 2525, SmtpTls::None)
        );
        assert_eq!(ok("smtp://[2001:db8::1]:25").0, "2001:db8::1");
        assert_eq!(ok("smtp+plain://127.0.0.2:1025").1, 1025);
        // Other ports for the TLS forms (a relay's 25, a provider's 2587).
        assert_eq!(ok("smtp://relay.internal:25").1, 25);
        assert_eq!(ok("smtps://relay.internal:2465").1, 2465);
    }

    #[test]
    fn url_errors_say_what_to_write() {
        assert!(err("").contains("empty"));
        assert!(err("mail.example.com:587").contains("smtps://host:465"));
        assert!(err("https://mail.example.com").contains("not an SMTP scheme"));
        assert!(err("submission://mail.example.com").contains("not an SMTP scheme"));
        assert!(err("smtp://user:pw@mail.example.com:587").contains("credential"));
        assert!(err("smtp://mail.example.com:587/inbox").contains("`/inbox`"));
        assert!(err("smtp://mail.example.com:587?tls=no").contains("query"));
        assert!(err("smtp://:587").contains("no host"));
        assert!(err("smtp://mail.example.com:0").contains("not a port"));
        assert!(err("smtp://mail.example.com:99999").contains("not a port"));
        assert!(err("smtp://mail.example.com:smtp").contains("not a port"));
        assert!(err("smtp://mail_server:587").contains("not a host name"));
        assert!(err("smtp://[::1:587").contains("unclosed"));
        assert!(err("smtp://[nope]:587").contains("not an IPv6"));
        assert!(err("smtp+plain://::1:25").contains("in brackets"));
        let wrong_tls = err("smtps://mail.example.com:587");
        assert!(
            wrong_tls.contains("use smtp://mail.example.com:587"),
            "{wrong_tls}"
        );
        let wrong_tls = err("smtp://mail.example.com:465");
        assert!(
            wrong_tls.contains("use smtps://mail.example.com:465"),
            "{wrong_tls}"
        );
        for remote in [
            "smtp+plain://mail.example.com:25",
            "smtp+plain://10.0.0.5:25",
            "smtp+plain://[2001:db8::1]:25",
            "smtp+plain://localhost.example.com:25",
        ] {
            assert!(err(remote).contains("only to a loopback host"), "{remote}");
        }
    }

    #[test]
    fn settings_check_addresses_and_the_plain_rule() {
        let s = SmtpSettings::new(
            "smtp://mail.example.com",
            "Ferry <alerts@example.com>",
            &["ops@example.com"],
        )
        .unwrap();
        assert_eq!(s.url(), "smtp://mail.example.com:587");
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        let e = SmtpSettings::new(
            "smtp://mail.example.com",
            "not an address",
            &["ops@example.com"],
        );
        assert!(e.unwrap_err().0.contains("from `not an address`"));
        let none: [&str; 0] = [];
        let e = SmtpSettings::new("smtp://mail.example.com", "a@example.com", &none);
        assert!(e.unwrap_err().0.contains("at least one recipient"));
        let mut s = SmtpSettings::new(
            "smtp+plain://127.0.0.1:2525",
            "a@example.com",
            &["b@example.com"],
        )
        .unwrap();
        assert_eq!(s.url(), "smtp+plain://127.0.0.1:2525");
        s.host = "mail.example.com".into();
        assert!(s.validate().unwrap_err().0.contains("loopback"));
        s.host = "::1".into();
        assert_eq!(s.url(), "smtp+plain://[::1]:2525");
        s.username = Some("u".to_owned().into());
        assert!(s.validate().unwrap_err().0.contains("together"));
        assert!(matches!(Mailer::new(&s), Err(SmtpError::Config(_))));
    }

    #[test]
    fn email_json() {
        let e =
            Email::from_json(br#"{"subject":"Route orders is failing","text":"5 dead"}"#).unwrap();
        assert_eq!(e.html, None);
        let e = Email::from_json(br#"{"subject":"s","text":"t","html":"<p>t</p>"}"#).unwrap();
        assert_eq!(e.html.as_deref(), Some("<p>t</p>"));
        let bad = Email::from_json(br#"{"subject":"s","txt":"t"}"#).unwrap_err();
        assert_eq!(bad.http_like_status(), 400);
        assert_eq!(bad.class(), ErrorClass::Config);
    }

    #[test]
    fn status_mapping() {
        let status = |code: u16| SmtpError::from_reply(code, "x").http_like_status();
        for transient in [421, 450, 451, 452, 454] {
            assert_eq!(status(transient), 503, "{transient}");
            assert!(SmtpError::from_reply(transient, "x").is_retryable());
        }
        for permanent in [500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555] {
            assert_eq!(status(permanent), 422, "{permanent}");
            let e = SmtpError::from_reply(permanent, "x");
            assert!(!e.is_retryable());
            assert_eq!(e.class(), ErrorClass::Rejected);
        }
        for auth in [530, 534, 535, 538] {
            assert_eq!(status(auth), 401, "{auth}");
            assert_eq!(SmtpError::from_reply(auth, "x").class(), ErrorClass::Auth);
        }
        assert_eq!(status(250), 502);
        let ok = |code| {
            Ok(SmtpOutcome {
                code,
                message: "queued".into(),
            })
        };
        assert_eq!(http_like_status(&ok(250)), 200);
        assert_eq!(http_like_status(&ok(251)), 200);
        assert_eq!(http_like_status(&ok(354)), 502);
        let e = |e: SmtpError| {
            (
                http_like_status(&Err(e.clone())),
                e.class(),
                e.is_retryable(),
            )
        };
        assert_eq!(
            e(SmtpError::Network("refused".into())),
            (503, ErrorClass::Network, true)
        );
        assert_eq!(
            e(SmtpError::Timeout(Duration::from_secs(1))),
            (504, ErrorClass::Timeout, true)
        );
        assert_eq!(
            e(SmtpError::Protocol("?".into())),
            (502, ErrorClass::ServerError, true)
        );
        assert_eq!(
            e(SmtpError::Tls("UnknownIssuer".into())),
            (495, ErrorClass::Config, false)
        );
        assert_eq!(
            e(SmtpError::Config("bad".into())),
            (400, ErrorClass::Config, false)
        );
        assert_eq!(
            e(SmtpError::Auth {
                code: None,
                message: "no mechanism".into()
            }),
            (401, ErrorClass::Auth, false)
        );
        assert_eq!(
            SmtpError::from_reply(451, "4.7.1 greylisted").to_string(),
            "the SMTP server answered 451 4.7.1 greylisted"
        );
    }

    #[test]
    fn a_wrapped_rustls_error_is_found() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let outer: Box<dyn std::error::Error + 'static> = Box::new(io);
        assert!(matches!(
            rustls_error(outer.as_ref()),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(rustls_error(&plain).is_none());
    }
}
