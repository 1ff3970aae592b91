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

mod error;
mod mailer;

pub use error::*;
pub use mailer::*;

#[cfg(test)]
mod tests;
