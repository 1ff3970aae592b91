//! Users and API tokens, for admins only (an operator acts on messages but
//! cannot manage access): the console's people with their roles, added with
//! a password (hashed with Argon2id off the runtime), given a new password
//! or removed (which ends their sessions); the admin API's tokens, a new one
//! shown once (the store keeps only its SHA-256), or revoked. Every change
//! is audited under the admin, from the console; `ferry users` and
//! `ferry tokens` do the same from the CLI.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::format::time;
use super::session::ConsoleUser;
use super::{Chrome, PageError, html};
use crate::access::{account_name, password};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{Account, AccountKind, Role};

struct AccountRow {
    name: String,
    role: &'static str,
    created: String,
    created_by: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<AccountRow>,
    tokens: Vec<AccountRow>,
    roles: [&'static str; 3],
}

/// A new token, shown once in place of the form's result.
#[derive(Template)]
#[template(
    source = r#"<div class="flash ok" id="new-token"><p>Token <strong>{{ name }}</strong> ({{ role }}): copy it now, it is not shown again.</p><pre class="mono" id="token-value">{{ token }}</pre></div>"#,
    ext = "html"
)]
struct NewToken {
    name: String,
    role: &'static str,
    token: String,
}

fn rows(accounts: Vec<Account>) -> Vec<AccountRow> {
    accounts
        .into_iter()
        .map(|a| AccountRow {
            name: a.name,
            role: a.role.as_str(),
            created: time(a.created_ms),
            created_by: a.created_by,
        })
        .collect()
}

pub async fn page(State(app): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    user.require(Role::Admin)?;
    html(&UsersPage {
        chrome: Chrome::new(&user, "users"),
        users: rows(app.store.accounts(AccountKind::User).await?),
        tokens: rows(app.store.accounts(AccountKind::Token).await?),
        roles: ["viewer", "operator", "admin"],
    })
}

/// Back to the users page (htmx follows).
fn back() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("hx-redirect", HeaderValue::from_static("/console/users"));
    r
}

fn bad(slug: &str, detail: impl Into<String>) -> PageError {
    Problem::bad_request(slug, detail).into()
}

fn role_of(s: &str) -> Result<Role, PageError> {
    Role::parse(s).ok_or_else(|| {
        bad(
            "bad-role",
            format!("role `{s}`: use viewer, operator or admin"),
        )
    })
}

fn conflict(detail: String) -> PageError {
    Problem::new(StatusCode::CONFLICT, "exists", "Conflict", detail).into()
}

#[derive(Debug, Deserialize)]
pub struct UserForm {
    name: String,
    role: String,
    password: String,
    #[serde(default)]
    confirm: String,
}

/// A password as typed twice, hashed off the runtime.
async fn hashed(app: &AppState, pw: String, confirm: &str) -> Result<String, PageError> {
    if pw != confirm {
        return Err(bad("password-mismatch", "the two passwords differ"));
    }
    app.sign_ins
        .argon2(move || password::hash(&pw))
        .await
        .map_err(|e| Problem::internal(format!("hashing failed: {e}")))?
        .map_err(|e| bad("bad-password", e.to_string()))
}

pub async fn add_user(
    State(app): State<AppState>,
    user: ConsoleUser,
    Form(f): Form<UserForm>,
) -> Result<Response, PageError> {
    user.require(Role::Admin)?;
    account_name("user", &f.name).map_err(|e| bad("bad-name", e))?;
    let role = role_of(&f.role)?;
    let phc = hashed(&app, f.password, &f.confirm).await?;
    let account = Account {
        name: f.name.clone(),
        role,
        created_ms: app.clock.now_ms(),
        created_by: user.actor(),
    };
    if !app
        .store
        .add_account(AccountKind::User, account, &phc)
        .await?
    {
        return Err(conflict(format!("a user named {} exists already", f.name)));
    }
    Ok(back())
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn set_password(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(name): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    user.require(Role::Admin)?;
    let phc = hashed(&app, f.password, &f.confirm).await?;
    let now = app.clock.now_ms();
    if !app
        .store
        .set_password(&name, &phc, &user.actor(), now)
        .await?
    {
        return Err(Problem::not_found(format!("no user {name}")).into());
    }
    Ok(back())
}

pub async fn remove_user(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    remove(app, user, AccountKind::User, name).await
}

pub async fn remove_token(
    State(app): State<AppState>,
    user: ConsoleUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    remove(app, user, AccountKind::Token, name).await
}

async fn remove(
    app: AppState,
    user: ConsoleUser,
    kind: AccountKind,
    name: String,
) -> Result<Response, PageError> {
    user.require(Role::Admin)?;
    let now = app.clock.now_ms();
    if !app
        .store
        .remove_account(kind, &name, &user.actor(), now)
        .await?
    {
        return Err(Problem::not_found(format!("no such account {name}")).into());
    }
    Ok(back())
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    name: String,
    role: String,
}

pub async fn add_token(
    State(app): State<AppState>,
    user: ConsoleUser,
    Form(f): Form<TokenForm>,
) -> Result<Response, PageError> {
    user.require(Role::Admin)?;
    account_name("token", &f.name).map_err(|e| bad("bad-name", e))?;
    let role = role_of(&f.role)?;
    let token = crate::access::api_token();
    let account = Account {
        name: f.name.clone(),
        role,
        created_ms: app.clock.now_ms(),
        created_by: user.actor(),
    };
    let sha = crate::access::sha256_hex(&token);
    if !app
        .store
        .add_account(AccountKind::Token, account, &sha)
        .await?
    {
        return Err(conflict(format!("a token named {} exists already", f.name)));
    }
    html(&NewToken {
        name: f.name,
        role: role.as_str(),
        token,
    })
}
