//! Signing in and out of the console. `POST /console/login` checks the
//! form's password against the user's Argon2id hash off the async runtime
//! (at most `access::CHECKS_AT_ONCE` at once; an unknown user is checked
//! against a dummy hash, so both take as long), throttled per user name and
//! per peer address (`access::throttle`: the sixth wrong password within a
//! minute is refused with 429 and `Retry-After`, right or wrong). A right
//! password starts a new session (any session the browser held is ended:
//! the token rotates at every sign-in) and sets the cookie `HttpOnly;
//! SameSite=Strict; Path=/console`, `Secure` over TLS; then 303 to `next`,
//! which must be a console page. The form itself must come from ferry's
//! own origin (no login CSRF).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::{self, COOKIE, ConsoleUser};
use super::{PageError, html};
use crate::access::{random_token, sha256_hex};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::NewSession;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    error: Option<String>,
    username: String,
    next: String,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Where to go after signing in: a console page of ferry's own, else the
/// dashboard (never another site: `//evil`, `/\evil` and schemes are out).
fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console")
                && !n.starts_with("/console/login")
                && !n.contains("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

pub async fn page(Query(q): Query<NextQuery>) -> Result<Response, PageError> {
    html(&LoginPage {
        error: None,
        username: String::new(),
        next: local_next(q.next.as_deref()),
    })
}

fn again(status: StatusCode, error: String, f: &LoginForm) -> Result<Response, PageError> {
    let mut r = html(&LoginPage {
        error: Some(error),
        username: f.username.clone(),
        next: local_next(f.next.as_deref()),
    })?;
    *r.status_mut() = status;
    Ok(r)
}

pub async fn sign_in(
    State(app): State<AppState>,
    session::Peer(peer): session::Peer,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    if !session::same_origin(&headers) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf-refused",
            "Forbidden",
            "a sign-in must come from ferry's own sign-in page",
        )
        .into());
    }
    let address = peer.map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    let user_key = format!("user:{}", f.username);
    let keys = [user_key.clone(), format!("addr:{address}")];
    let now = app.clock.now_ms();
    if let Some(ms) = app.sign_ins.throttle.wait_ms(&keys, now) {
        let secs = (ms as u64).div_ceil(1000);
        tracing::warn!(user = %f.username, %address, "Console sign-in throttled after repeated wrong passwords.");
        let mut r = again(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong passwords: try again in {secs} s."),
            &f,
        )?;
        r.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits"),
        );
        return Ok(r);
    }
    let found = app.store.user(&f.username).await?;
    let phc = found.as_ref().map_or_else(
        || app.sign_ins.dummy_phc().to_owned(),
        |(_, phc)| phc.clone(),
    );
    let password = f.password.clone();
    let right = app
        .sign_ins
        .argon2(move || crate::access::password::verify(&password, &phc))
        .await
        .map_err(|e| Problem::internal(format!("the password check failed: {e}")))?;
    let Some((account, _)) = found.filter(|_| right) else {
        app.sign_ins.throttle.failed(&keys, now);
        tracing::info!(user = %f.username, %address, "Console sign-in refused: wrong user or password.");
        return again(
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.".to_owned(),
            &f,
        );
    };
    app.sign_ins.throttle.succeeded(&user_key);
    if let Some(old) = session::presented(&headers) {
        app.store.end_session(&sha256_hex(old)).await?;
    }
    let config = app.config();
    let console = &config.console;
    let token = random_token();
    app.store
        .start_session(NewSession {
            token_sha256: sha256_hex(&token),
            user: account.name.clone(),
            csrf: random_token(),
            now_ms: now,
            expires_ms: now + console.session_lifetime.as_millis() as i64,
            address,
        })
        .await?;
    let secure = if console.secure_cookies || session::over_tls(&headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        console.session_lifetime.as_secs()
    );
    tracing::info!(user = %account.name, "Console sign-in.");
    let mut r = Redirect::to(&local_next(f.next.as_deref())).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie.parse().expect("a cookie value"));
    Ok(r)
}

/// Ends the session and sends the browser (htmx or not) to the sign-in page.
pub async fn sign_out(
    State(app): State<AppState>,
    _user: ConsoleUser,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(token) = session::presented(&headers) {
        app.store.end_session(&sha256_hex(token)).await?;
    }
    let clear = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    // htmx would follow a redirect itself and swap the sign-in page in:
    // it is told to navigate instead.
    let (status, to) = if headers.contains_key("hx-request") {
        (StatusCode::NO_CONTENT, "hx-redirect")
    } else {
        (StatusCode::SEE_OTHER, "location")
    };
    Ok((
        status,
        [
            (header::SET_COOKIE, clear),
            (
                header::HeaderName::from_static(to),
                "/console/login".to_owned(),
            ),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn next_stays_on_the_console() {
        let n = |s: &str| local_next(Some(s));
        assert_eq!(
            n("/console/messages?state=dead"),
            "/console/messages?state=dead"
        );
        for bad in [
            "https://evil.example/console",
            "//evil.example",
            "/console//evil",
            "/console\\@evil",
            "/admin/api/v1/messages",
            "/console/login?next=/x",
            "/console\nSet-Cookie: x",
        ] {
            assert_eq!(n(bad), "/console", "{bad:?}");
        }
        assert_eq!(local_next(None), "/console");
    }
}
