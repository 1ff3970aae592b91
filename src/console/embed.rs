//! The read-only embed of one route's failures, for another system's page
//! (the ERP's own screens) to frame: `GET
//! /console/embed/failures?token=...` renders the route's failure groups
//! with the console's own table (`groups_table.html`), without navigation,
//! links or actions, and without a session: the embed token
//! (`store::embed`, `ferry embed add ROUTE`) is the credential, and it
//! shows only its route. This page alone may be framed: its
//! `frame-ancestors` is `'self'` and `console.embed_origins` (read at each
//! request, so a reload applies at once), and it carries no
//! `X-Frame-Options`; every other console page keeps `'none'` and `DENY`.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_http::set_header::SetResponseHeaderLayer;

use super::failures::{Group, total};
use super::format::time;
use super::{CSP, PageError, html};
use crate::access::sha256_hex;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::GroupFilter;

/// The embed's Content-Security-Policy: the console's, framed by ferry
/// itself and by `origins` (validated origins: `config::Console`).
pub fn csp(origins: &[String]) -> String {
    let mut ancestors = String::from("frame-ancestors 'self'");
    for o in origins {
        ancestors.push(' ');
        ancestors.push_str(o);
    }
    CSP.replace("frame-ancestors 'none'", &ancestors)
}

/// The embed's own router: outside the console's layers (which forbid
/// framing), with the same headers otherwise.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/embed/failures", get(failures))
        .layer(axum::middleware::from_fn(
            crate::problem::rejections_as_problems,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

#[derive(Debug, Default, Deserialize)]
pub struct EmbedQuery {
    token: Option<String>,
}

#[derive(Template)]
#[template(path = "console/embed_failures.html")]
struct EmbedPage {
    route: String,
    groups: Vec<Group>,
    /// The shared table links nothing here.
    linked: bool,
    total: String,
    as_of: String,
}

/// The page (or its refusal), with the embed's CSP either way.
async fn failures(State(app): State<AppState>, Query(q): Query<EmbedQuery>) -> Response {
    let origins = app.config().console.embed_origins.clone();
    let mut r = match page(&app, q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&csp(&origins)) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

async fn page(app: &AppState, q: EmbedQuery) -> Result<Response, PageError> {
    let token = q.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        Problem::unauthorized(
            "embed-token-required",
            "this page takes its embed token: /console/embed/failures?token=... (`ferry embed add ROUTE`)",
        )
    })?;
    let Some(t) = app.store.embed_token(&sha256_hex(&token)).await? else {
        return Err(Problem::unauthorized(
            "bad-embed-token",
            "the embed token is not valid (revoked, or never made): make one with `ferry embed add ROUTE`",
        )
        .into());
    };
    if app.config().route(&t.route).is_none() {
        return Err(Problem::not_found(format!(
            "route `{}` of this embed token is no longer configured",
            t.route
        ))
        .into());
    }
    let filter = GroupFilter {
        route: Some(t.route.clone()),
        ..Default::default()
    };
    let now = app.clock.now_ms();
    let groups: Vec<Group> = app
        .store
        .failure_groups(&filter)
        .await?
        .into_iter()
        .map(|g| Group::of(g, now))
        .collect();
    html(&EmbedPage {
        route: t.route,
        total: total(&groups),
        groups,
        linked: false,
        as_of: time(now),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_frame_ancestors_changes() {
        let none = super::csp(&[]);
        assert!(none.contains("frame-ancestors 'self';"), "{none}");
        let two = super::csp(&[
            "https://erp.example.com".into(),
            "http://10.0.0.5:8443".into(),
        ]);
        assert!(
            two.contains("frame-ancestors 'self' https://erp.example.com http://10.0.0.5:8443;"),
            "{two}"
        );
        assert_eq!(
            two.replace(
                "frame-ancestors 'self' https://erp.example.com http://10.0.0.5:8443",
                "frame-ancestors 'none'"
            ),
            super::super::CSP
        );
    }
}
