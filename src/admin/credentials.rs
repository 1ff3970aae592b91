//! `GET /admin/api/v1/credentials`: each configured credential's metadata,
//! never a value: where it comes from (env, file, the encrypted store) and,
//! for a store credential, its versions still accepted (created, expires,
//! accepted until, last used), as `ferry credentials list` shows them.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::config::SecretSource;
use crate::problem::Problem;
use crate::state::AppState;

/// Each configured credential's metadata, never a value.
#[utoipa::path(get, path = "/credentials",
    operation_id = "list_credentials", tag = "credentials",
    responses((status = 200, description = "The credentials", body = super::schema::CredentialList)))]
pub(super) async fn credentials(State(app): State<AppState>) -> Result<Json<Value>, Problem> {
    let config = app.config();
    let now = app.clock.now_ms();
    let stored = match config.store_credentials().next() {
        Some(_) => app
            .store
            .credential_versions()
            .await
            .map_err(super::store_problem)?,
        None => Vec::new(),
    };
    let credentials: Vec<Value> = config
        .credentials
        .values()
        .map(|c| match &c.source {
            SecretSource::Env(var) => json!({ "name": c.name, "source": "env", "env": var }),
            SecretSource::File(path) => {
                json!({ "name": c.name, "source": "file", "file": path.display().to_string() })
            }
            SecretSource::Store(name) => {
                let versions: Vec<Value> = stored
                    .iter()
                    .rev()
                    .filter(|v| &v.name == name && v.retire_ms.is_none_or(|r| now < r))
                    .map(|v| {
                        json!({
                            "version": v.version,
                            "created_ms": v.created_ms,
                            "expires_ms": v.expires_ms,
                            "accepted_until_ms": v.retire_ms,
                            "last_used_ms": v.last_used_ms,
                        })
                    })
                    .collect();
                json!({ "name": c.name, "source": "store", "store": name, "versions": versions })
            }
        })
        .collect();
    Ok(Json(json!({ "credentials": credentials })))
}
