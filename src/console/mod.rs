//! Console: the operators' HTML pages under `/console`, beside the admin
//! JSON API and over the same store methods (it sits above `admin`, whose
//! filters, edit check and export it reuses, and below `app`, which mounts
//! it). Server-rendered with askama (every value escaped), htmx 2 vendored
//! into the binary for the actions, no CDN and no build step. Every page
//! takes a signed-in [`session::ConsoleUser`]; every action also takes an
//! operator and the CSRF proof the session's extractor checks. Every
//! answer carries a strict Content-Security-Policy: no inline script or
//! style anywhere, charts are SVG with presentation attributes. No page
//! may be framed (`frame-ancestors 'none'`, `X-Frame-Options: DENY`) but
//! the read-only embed of a route's failures (`embed.rs`), which takes an
//! embed token instead of a session and may be framed by
//! `console.embed_origins`.

mod actions;
mod assets;
mod chart;
mod dashboard;
pub mod embed;
mod failures;
mod format;
mod login;
mod messages;
mod pages;
pub mod session;
mod users;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::model::Chain;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{Role, StoreError};
use session::ConsoleUser;

/// The console's Content-Security-Policy: scripts and styles only from
/// ferry itself, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/console", get(dashboard::page))
        .route("/console/", get(dashboard::page))
        .route("/console/failures", get(failures::list))
        .route("/console/failures/{group}", get(failures::show))
        .route(
            "/console/failures/{group}/status",
            post(actions::group_status),
        )
        .route(
            "/console/failures/{group}/retry",
            post(actions::group_retry),
        )
        .route(
            "/console/failures/{group}/discard",
            post(actions::group_discard),
        )
        .route("/console/messages", get(messages::list))
        .route("/console/messages/export", get(messages::export))
        .route("/console/messages/retry", post(actions::retry_matching))
        .route("/console/messages/discard", post(actions::discard_matching))
        .route("/console/messages/{id}", get(messages::show))
        .route("/console/messages/{id}/retry", post(actions::retry_one))
        .route("/console/messages/{id}/discard", post(actions::discard_one))
        .route("/console/messages/{id}/edit", post(actions::edit_one))
        .route(
            "/console/routes/{route}/ordering-keys/release",
            post(actions::release_key),
        )
        .route("/console/audit", get(pages::audit))
        .route("/console/users", get(users::page).post(users::add_user))
        .route("/console/users/{name}/remove", post(users::remove_user))
        .route("/console/users/{name}/password", post(users::set_password))
        .route("/console/tokens", post(users::add_token))
        .route("/console/tokens/{name}/remove", post(users::remove_token))
        .route("/console/routes", get(pages::routes))
        .route("/console/systems", get(pages::systems))
        .route("/console/mappings", get(pages::mappings))
        .route("/console/credentials", get(pages::credentials))
        .route("/console/config", get(pages::config))
        .route("/console/login", get(login::page).post(login::sign_in))
        .route("/console/logout", post(login::sign_out))
        .route("/console/static/{file}", get(assets::serve));
    let pages = pages
        .layer(axum::middleware::from_fn(
            crate::problem::rejections_as_problems,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));
    // The embed alone may be framed: outside the layers above.
    pages.merge(embed::router())
}

/// What every page's frame shows: who is signed in, what they may do, the
/// CSRF token htmx sends with every action, and which tab is open.
pub struct Chrome {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub can_act: bool,
    /// May manage users and tokens.
    pub is_admin: bool,
    pub nav: &'static str,
}

impl Chrome {
    pub fn new(user: &ConsoleUser, nav: &'static str) -> Chrome {
        Chrome {
            user: user.name.clone(),
            role: user.role.as_str(),
            csrf: user.csrf.clone(),
            can_act: user.role >= Role::Operator,
            is_admin: user.role >= Role::Admin,
            nav,
        }
    }

    /// The `hx-headers` attribute's JSON: the CSRF token for every htmx
    /// request (askama escapes it for the attribute).
    pub fn hx_headers(&self) -> String {
        serde_json::json!({ "X-CSRF-Token": self.csrf }).to_string()
    }

    /// The navigation's entries: (path, label, key); users and tokens for
    /// admins only.
    pub fn tabs(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        let all = &[
            ("/console", "Dashboard", "dashboard"),
            ("/console/failures", "Failures", "failures"),
            ("/console/messages", "Messages", "messages"),
            ("/console/routes", "Routes", "routes"),
            ("/console/systems", "Systems", "systems"),
            ("/console/mappings", "Mappings", "mappings"),
            ("/console/credentials", "Credentials", "credentials"),
            ("/console/config", "Config", "config"),
            ("/console/audit", "Audit", "audit"),
            ("/console/users", "Users", "users"),
        ];
        if self.is_admin {
            all
        } else {
            &all[..all.len() - 1]
        }
    }
}

/// Why a page could not be shown: a problem document for htmx and API
/// callers (the console's script shows its detail), as the admin API does.
#[derive(Debug)]
pub struct PageError(pub Problem);

impl From<Problem> for PageError {
    fn from(p: Problem) -> Self {
        PageError(p)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %Chain(&e), "A console request failed in the store.");
        PageError(Problem::internal(format!(
            "the store failed: {}",
            Chain(&e)
        )))
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "A console page failed to render.");
        PageError(Problem::internal(format!("the page failed to render: {e}")))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

/// A rendered page as an HTML answer.
pub fn html(t: &impl askama::Template) -> Result<Response, PageError> {
    let body = t.render()?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response())
}
