//! Access over the admin API, for admin tokens only (an operator acts on
//! messages but cannot manage access; a viewer reads messages but not
//! this): the console's users (added with a password, hashed with Argon2id
//! off the runtime; removing one ends its sessions) and the API tokens (a
//! new one answered once; the store keeps its SHA-256). Audited under the
//! calling token, from the API. `ferry users` / `ferry tokens` and the
//! console's users page do the same.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Caller, store_problem};
use crate::access::{account_name, password};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{Account, AccountKind, Role};

fn admin_only(caller: &Caller) -> Result<(), Problem> {
    if caller.role >= Role::Admin {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden-role",
        "Forbidden",
        format!(
            "token {} is a {}: managing users and tokens takes an admin token",
            caller.name,
            caller.role.as_str()
        ),
    ))
}

fn role_of(s: &str) -> Result<Role, Problem> {
    Role::parse(s).ok_or_else(|| {
        Problem::bad_request(
            "bad-role",
            format!("role `{s}`: use viewer, operator or admin"),
        )
    })
}

fn exists(what: &str, name: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "exists",
        "Conflict",
        format!("a {what} named {name} exists already"),
    )
}

#[derive(Serialize, ToSchema)]
pub(super) struct Accounts {
    accounts: Vec<Account>,
}

async fn list(
    app: &AppState,
    caller: &Caller,
    kind: AccountKind,
) -> Result<Json<Accounts>, Problem> {
    admin_only(caller)?;
    let accounts = app.store.accounts(kind).await.map_err(store_problem)?;
    Ok(Json(Accounts { accounts }))
}

async fn remove(
    app: &AppState,
    caller: &Caller,
    kind: AccountKind,
    name: &str,
) -> Result<StatusCode, Problem> {
    admin_only(caller)?;
    let now = app.clock.now_ms();
    match app
        .store
        .remove_account(kind, name, &caller.actor(), now)
        .await
    {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(Problem::not_found(format!("no such account {name}"))),
        Err(e) => Err(store_problem(e)),
    }
}

/// The console's users (names, roles, who added them; never a password).
#[utoipa::path(get, path = "/users", operation_id = "list_users", tag = "access",
    responses((status = 200, description = "The users", body = Accounts)))]
pub(super) async fn users(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Accounts>, Problem> {
    list(&app, &caller, AccountKind::User).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewUser {
    name: String,
    /// viewer, operator or admin
    role: String,
    /// At least 12 characters; kept as an Argon2id hash.
    password: String,
}

/// Adds a console user with a password.
#[utoipa::path(post, path = "/users", operation_id = "add_user", tag = "access",
    request_body = NewUser,
    responses(
        (status = 201, description = "Added", body = Account),
        (status = 400, description = "A bad name, role or password", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn add_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, Json<Account>), Problem> {
    admin_only(&caller)?;
    account_name("user", &body.name).map_err(|e| Problem::bad_request("bad-name", e))?;
    let role = role_of(&body.role)?;
    let pw = body.password;
    let phc = app
        .sign_ins
        .argon2(move || password::hash(&pw))
        .await
        .map_err(|e| Problem::internal(format!("hashing failed: {e}")))?
        .map_err(|e| Problem::bad_request("bad-password", e.to_string()))?;
    let account = Account {
        name: body.name.clone(),
        role,
        created_ms: app.clock.now_ms(),
        created_by: caller.actor(),
    };
    let added = app
        .store
        .add_account(AccountKind::User, account.clone(), &phc)
        .await
        .map_err(store_problem)?;
    if !added {
        return Err(exists("user", &body.name));
    }
    let account = Account {
        created_by: caller.name,
        ..account
    };
    Ok((StatusCode::CREATED, Json(account)))
}

/// Removes a console user; the user's sessions end at once.
#[utoipa::path(delete, path = "/users/{name}", operation_id = "remove_user", tag = "access",
    params(("name" = String, Path, description = "The user's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn remove_user(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    remove(&app, &caller, AccountKind::User, &name).await
}

/// The admin API's tokens (names and roles; never a token).
#[utoipa::path(get, path = "/tokens", operation_id = "list_tokens", tag = "access",
    responses((status = 200, description = "The tokens", body = Accounts)))]
pub(super) async fn tokens(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Accounts>, Problem> {
    list(&app, &caller, AccountKind::Token).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewToken {
    name: String,
    /// viewer, operator or admin
    role: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct CreatedToken {
    name: String,
    role: Role,
    /// The token, answered this once: the store keeps only its SHA-256.
    token: String,
}

/// Creates an API token with a role.
#[utoipa::path(post, path = "/tokens", operation_id = "add_token", tag = "access",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created; the token is in this answer only", body = CreatedToken),
        (status = 400, description = "A bad name or role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn add_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), Problem> {
    admin_only(&caller)?;
    account_name("token", &body.name).map_err(|e| Problem::bad_request("bad-name", e))?;
    let role = role_of(&body.role)?;
    let token = crate::access::api_token();
    let account = Account {
        name: body.name.clone(),
        role,
        created_ms: app.clock.now_ms(),
        created_by: caller.actor(),
    };
    let sha = crate::access::sha256_hex(&token);
    let added = app
        .store
        .add_account(AccountKind::Token, account, &sha)
        .await
        .map_err(store_problem)?;
    if !added {
        return Err(exists("token", &body.name));
    }
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: body.name,
            role,
            token,
        }),
    ))
}

/// Revokes an API token at once.
#[utoipa::path(delete, path = "/tokens/{name}", operation_id = "remove_token", tag = "access",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn remove_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    remove(&app, &caller, AccountKind::Token, &name).await
}
