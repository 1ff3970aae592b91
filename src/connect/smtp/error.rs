//! What a submission ended with: the server's answer ([`SmtpOutcome`]) or
//! why not ([`SmtpError`]), and how each reads for the delivery pipeline's
//! retry rules (`http_like_status`, `class`).

use super::*;

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

pub(super) fn reply(code: Option<u16>, message: &str) -> String {
    match code {
        Some(c) if message.is_empty() => c.to_string(),
        Some(c) => format!("{c} {message}"),
        None => message.to_owned(),
    }
}

/// Reply codes that are about authentication (RFC 4954): the credential.
pub(super) const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

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

    pub(super) fn from_lettre(e: &lettre::transport::smtp::Error, timeout: Duration) -> SmtpError {
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
pub(super) fn rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
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

pub(super) fn one_line(s: &str) -> String {
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
