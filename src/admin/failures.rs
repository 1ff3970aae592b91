//! Admin: failures grouped by cause (`store::failures`), read by the console
//! and `ferry failures`: `GET /failures` (filters `route`, `system`,
//! `class`) and `GET /failures/{group}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::store_problem;
use crate::model::ErrorClass;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::GroupFilter;

/// Query-string form of a [`GroupFilter`].
#[derive(Debug, Default, Deserialize)]
pub struct GroupQuery {
    pub route: Option<String>,
    pub system: Option<String>,
    pub class: Option<String>,
}

impl GroupQuery {
    pub fn resolve(&self) -> Result<GroupFilter, Problem> {
        let class = self
            .class
            .as_deref()
            .map(|c| {
                ErrorClass::parse(c).ok_or_else(|| {
                    Problem::bad_request("bad-filter", format!("unknown error class `{c}`"))
                })
            })
            .transpose()?;
        Ok(GroupFilter {
            route: self.route.clone(),
            system: self.system.clone(),
            class,
        })
    }
}

pub async fn list(
    State(app): State<AppState>,
    Query(q): Query<GroupQuery>,
) -> Result<Json<Value>, Problem> {
    let filter = q.resolve()?;
    let groups = app
        .store
        .failure_groups(&filter)
        .await
        .map_err(store_problem)?;
    Ok(Json(json!({ "groups": groups })))
}

pub async fn show(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, Problem> {
    match app.store.failure_group(&key).await.map_err(store_problem)? {
        Some(g) => Ok(Json(json!(g))),
        None => Err(Problem::not_found(format!("no failure group {key}"))),
    }
}
