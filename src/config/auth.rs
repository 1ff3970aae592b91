//! Resolving a system's `auth` table: the kind (none, basic, bearer,
//! header, standard-webhooks, oauth2, oauth2-refresh) and the credentials
//! it names, checked against `[credentials]`. Part of `resolve` (through
//! `system`), which owns the collected problems; `connect` applies the
//! result on every request.

use std::time::Duration;

use axum::http::HeaderName;

use super::raw::*;
use super::resolve::Ctx;
use super::*;

/// An OAuth2 client toward one system's token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2 {
    pub grant: Grant,
    /// Where tokens come from (never followed through a redirect).
    pub token_url: reqwest::Url,
    pub client_id: String,
    /// The credential holding the client secret.
    pub client_secret: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub client_auth: ClientAuth,
    pub header: TokenHeader,
    /// A token's lifetime when the answer gives no `expires_in` (Salesforce).
    pub default_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    ClientCredentials,
    /// The refresh-token grant; the store credential holding the refresh
    /// token (a rotated one from the answer is saved there as a new version).
    RefreshToken {
        refresh_token: String,
    },
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// HTTP Basic with them.
    Basic,
}

/// How the access token is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHeader {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The bare token in this header (`X-Shopify-Access-Token`).
    Bare(HeaderName),
}

/// A token's lifetime when the answer does not say, unless `default_ttl` does.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// `auth`: the kind and the credentials it names.
pub(super) fn auth(
    cx: &mut Ctx<'_>,
    loc: &str,
    s: &RawSystem,
    known_credential: &dyn Fn(&str) -> bool,
) -> Auth {
    let Some(a) = &s.auth else {
        return Auth::None;
    };
    let aloc = format!("{loc}.auth");
    if a.kind.starts_with("oauth2") {
        return oauth2(cx, &aloc, a, known_credential)
            .map_or(Auth::None, |o| Auth::OAuth2(Arc::new(o)));
    }
    let credential = match (&a.credential, a.kind.as_str()) {
        (_, "none") => String::new(),
        (Some(c), _) => known(cx, &format!("{aloc}.credential"), c, known_credential),
        (None, _) => {
            cx.problem(&aloc, "`credential` is required");
            String::new()
        }
    };
    match a.kind.as_str() {
        "none" => Auth::None,
        "basic" => Auth::Basic { credential },
        "bearer" => Auth::Bearer { credential },
        "standard-webhooks" => Auth::StandardWebhooks { credential },
        "header" => match a
            .name
            .as_deref()
            .map(|n| cx.header_name(&format!("{aloc}.name"), n))
        {
            Some(Some(name)) => Auth::Header { name, credential },
            Some(None) => Auth::None,
            None => {
                cx.problem(&aloc, "kind `header` needs `name`, the header to send");
                Auth::None
            }
        },
        other => {
            cx.problem(
                format!("{aloc}.kind"),
                format!(
                    "`{other}`: use none, basic, bearer, header, standard-webhooks, oauth2 or oauth2-refresh"
                ),
            );
            Auth::None
        }
    }
}

fn known(cx: &mut Ctx<'_>, at: &str, c: &str, known_credential: &dyn Fn(&str) -> bool) -> String {
    if !known_credential(c) {
        cx.problem(at, format!("unknown credential `{c}`"));
    }
    c.to_owned()
}

/// `kind = "oauth2"` (client credentials) or `"oauth2-refresh"`.
fn oauth2(
    cx: &mut Ctx<'_>,
    aloc: &str,
    a: &RawAuth,
    known_credential: &dyn Fn(&str) -> bool,
) -> Option<OAuth2> {
    let mut required = |field: &str, v: &Option<String>| {
        if v.is_none() {
            cx.problem(aloc, format!("kind `{}` needs `{field}`", a.kind));
        }
        v.clone().unwrap_or_default()
    };
    let token_url = required("token_url", &a.token_url);
    let client_id = required("client_id", &a.client_id);
    let client_secret = required("client_secret", &a.client_secret);
    let grant = match a.kind.as_str() {
        "oauth2" => Grant::ClientCredentials,
        "oauth2-refresh" => Grant::RefreshToken {
            refresh_token: required("refresh_token", &a.refresh_token),
        },
        other => {
            cx.problem(
                format!("{aloc}.kind"),
                format!("`{other}`: use oauth2 or oauth2-refresh"),
            );
            return None;
        }
    };
    if a.credential.is_some() {
        cx.problem(
            format!("{aloc}.credential"),
            "OAuth2 names its credentials in `client_secret` (and `refresh_token`)",
        );
    }
    let client_secret = known(
        cx,
        &format!("{aloc}.client_secret"),
        &client_secret,
        known_credential,
    );
    if let Grant::RefreshToken { refresh_token } = &grant {
        known(
            cx,
            &format!("{aloc}.refresh_token"),
            refresh_token,
            known_credential,
        );
    }
    let url = match reqwest::Url::parse(&token_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Some(u),
        _ => {
            cx.problem(
                format!("{aloc}.token_url"),
                format!("`{token_url}` is not an http(s) URL"),
            );
            None
        }
    };
    let client_auth = match a.client_auth.as_deref() {
        None | Some("post") => ClientAuth::Post,
        Some("basic") => ClientAuth::Basic,
        Some(other) => {
            cx.problem(
                format!("{aloc}.client_auth"),
                format!("`{other}`: use post or basic"),
            );
            ClientAuth::Post
        }
    };
    let header = match a.header.as_deref() {
        None => TokenHeader::Bearer,
        Some(h) if h.eq_ignore_ascii_case("authorization") => TokenHeader::Bearer,
        Some(h) => match cx.header_name(&format!("{aloc}.header"), h) {
            Some(name) => TokenHeader::Bare(name),
            None => TokenHeader::Bearer,
        },
    };
    let default_ttl = cx.duration(
        &format!("{aloc}.default_ttl"),
        a.default_ttl.as_ref(),
        DEFAULT_TTL,
    );
    if default_ttl.is_zero() {
        cx.problem(format!("{aloc}.default_ttl"), "must be longer than 0s");
    }
    Some(OAuth2 {
        grant,
        token_url: url?,
        client_id,
        client_secret,
        scope: a.scope.clone(),
        audience: a.audience.clone(),
        client_auth,
        header,
        default_ttl,
    })
}

/// An `oauth2-refresh` refresh token must come from the credential store:
/// a rotated one from a token answer is saved there.
pub(super) fn refresh_tokens_in_store(
    cx: &mut Ctx<'_>,
    raw: &RawConfig,
    systems: &BTreeMap<SystemName, Arc<System>>,
) {
    for s in systems.values() {
        if let Auth::OAuth2(o) = &s.auth
            && let Grant::RefreshToken { refresh_token } = &o.grant
            && raw
                .credentials
                .get(refresh_token)
                .is_some_and(|c| c.store.is_none())
        {
            cx.problem(
                format!("systems.{}.auth.refresh_token", s.name),
                format!(
                    "credential `{refresh_token}` must be `{{ store = ... }}`: a rotated refresh token is saved in the credential store"
                ),
            );
        }
    }
}
