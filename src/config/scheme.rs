//! The vocabulary of inbound authentication: which [`Scheme`] a route's
//! webhooks are signed with, as the configuration names it. `config` builds
//! it from the file; `ingest::verify` checks requests against it. It sits in
//! `config` so the configuration needs nothing from the stages above it.

use std::str::FromStr;

/// How a route's inbound webhooks are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// standardwebhooks.com: `webhook-id`, `webhook-timestamp` and a space-delimited
    /// `webhook-signature` list of `v1,<base64>`; secret `whsec_<base64 key>`.
    StandardWebhooks,
    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=..][,v0=..]`; the key is the whole secret string.
    Stripe,
    /// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body.
    Shopify,
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    Github,
    /// `X-HubSpot-Signature-v3` over method + URI + body + millisecond timestamp.
    HubspotV3,
    /// A configurable HMAC over the raw body.
    Hmac(HmacSpec),
    /// `Authorization: Basic base64(user:pass)`; the secret is `user:pass`.
    Basic,
    /// The named header's value equals the secret.
    ApiKey { header: String },
}

impl Scheme {
    /// The name used for this scheme in ferry's configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Stripe => "stripe",
            Scheme::Shopify => "shopify",
            Scheme::Github => "github",
            Scheme::HubspotV3 => "hubspot-v3",
            Scheme::Hmac(_) => "hmac",
            Scheme::Basic => "basic",
            Scheme::ApiKey { .. } => "api-key",
        }
    }
}

/// Generic HMAC over the raw body: the header value is `prefix + encode(mac)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSpec {
    pub header: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SigEncoding,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl HmacAlgorithm {
    pub(crate) fn output_len(self) -> usize {
        match self {
            HmacAlgorithm::Sha1 => 20,
            HmacAlgorithm::Sha256 => 32,
            HmacAlgorithm::Sha512 => 64,
        }
    }
}

impl FromStr for HmacAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" => Ok(HmacAlgorithm::Sha1),
            "sha256" => Ok(HmacAlgorithm::Sha256),
            "sha512" => Ok(HmacAlgorithm::Sha512),
            _ => Err(format!(
                "unknown HMAC algorithm {s:?} (expected sha1, sha256 or sha512)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigEncoding {
    Hex,
    Base64,
}

impl FromStr for SigEncoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "hex" => Ok(SigEncoding::Hex),
            "base64" => Ok(SigEncoding::Base64),
            _ => Err(format!(
                "unknown signature encoding {s:?} (expected hex or base64)"
            )),
        }
    }
}
