//! Edit and replay: an operator corrects a message's payload and sends it
//! again. The original body stays as received; the new one is checked like
//! an ingested body (the route's size and depth limits, UTF-8, one JSON
//! value), the audit entry records who changed what (a path-level diff from
//! the payload it replaces, `transform::diff`) and why, and the replay goes
//! out under a new downstream idempotency key, since its effect differs.
//! `POST /admin/api/v1/messages/{id}/edit` and `ferry messages edit` share
//! [`edit`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::config::Config;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{Edit, Edited, Store, StoreError};

/// Why an edit was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no message {0}")]
    NotFound(String),
    #[error("message {id} is {state}: let it finish (or discard it) before editing it")]
    Busy { id: String, state: &'static str },
    #[error("the edited payload is not acceptable: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replaces message `id`'s payload with `body` and requeues it; returns
/// the replay's downstream idempotency key.
pub async fn edit(
    store: &Store,
    config: &Config,
    id: &str,
    body: &[u8],
    actor: &str,
    note: &str,
    now_ms: i64,
) -> Result<String, EditError> {
    let Some(m) = store.message(id).await? else {
        return Err(EditError::NotFound(id.to_owned()));
    };
    let route = config.routes.get(&m.summary.route);
    let (max_body, max_depth) = route.map_or((1 << 20, 128), |r| (r.max_body, r.max_depth));
    check(body, max_body, max_depth).map_err(EditError::Invalid)?;
    let before = m.edited_body.as_deref().unwrap_or(&m.body);
    let after = String::from_utf8_lossy(body);
    let changes = match crate::transform::diff::diff(before, &after) {
        Ok(c) if c.is_empty() => "no change to the payload".to_owned(),
        Ok(c) => c
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        Err(_) => "the payload replaced (the one before was not JSON)".to_owned(),
    };
    let detail = match note.trim() {
        "" => format!("edited payload {}:\n{changes}", m.edits + 1),
        n => format!("edited payload {} ({n}):\n{changes}", m.edits + 1),
    };
    let edit = Edit {
        id: id.to_owned(),
        body: body.to_vec(),
        actor: actor.to_owned(),
        detail,
        now_ms,
    };
    match store.edit(edit).await? {
        Edited::Done { delivery_key } => Ok(delivery_key),
        Edited::NotFound => Err(EditError::NotFound(id.to_owned())),
        Edited::Busy(s) => Err(EditError::Busy {
            id: id.to_owned(),
            state: s.as_str(),
        }),
    }
}

/// The checks an ingested body passes, on an edited one.
fn check(body: &[u8], max_body: usize, max_depth: usize) -> Result<(), String> {
    if body.len() > max_body {
        return Err(format!(
            "{} bytes, over the route's max_body of {max_body}",
            body.len()
        ));
    }
    crate::transform::json_check::check(body, max_depth).map_err(|e| e.to_string())
}

/// A new payload for a message, and why.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct EditBody<'a> {
    /// The new payload (any JSON value), kept as written (numbers exact).
    #[serde(borrow)]
    #[schema(value_type = Value)]
    body: &'a RawValue,
    #[serde(default)]
    note: String,
}

/// Replaces a message's payload and replays it under a new downstream
/// idempotency key; the original stays, the edit is audited with a diff.
#[utoipa::path(post, path = "/messages/{id}/edit",
    operation_id = "edit_message", tag = "messages",
    params(("id" = String, Path, description = "The message's id")),
    request_body = EditBody,
    responses(
        (status = 200, description = "Edited and requeued", body = super::schema::Edited),
        (status = 400, description = "Not the expected body, or a payload the route refuses", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The message is queued or in flight", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn edit_one(
    State(app): State<AppState>,
    axum::Extension(caller): axum::Extension<super::Caller>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    let req: EditBody = serde_json::from_slice(&raw).map_err(|e| {
        Problem::bad_request(
            "bad-edit",
            format!("send {{\"body\": <the new payload>, \"note\": \"why\"}}: {e}"),
        )
    })?;
    let body = req.body.get().as_bytes();
    let now = app.clock.now_ms();
    let config = app.config();
    match edit(
        &app.store,
        &config,
        &id,
        body,
        &caller.actor(),
        &req.note,
        now,
    )
    .await
    {
        Ok(delivery_key) => {
            app.wake.notify();
            Ok(Json(json!({ "edited": id, "delivery_key": delivery_key })))
        }
        Err(EditError::NotFound(id)) => Err(Problem::not_found(format!("no message {id}"))),
        Err(e @ EditError::Busy { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "not-editable",
            "Conflict",
            e.to_string(),
        )),
        Err(e @ EditError::Invalid(_)) => Err(Problem::bad_request("bad-payload", e.to_string())),
        Err(EditError::Store(e)) => Err(super::store_problem(e)),
    }
}
