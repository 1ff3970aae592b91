//! Export of a filtered message list, as CSV or NDJSON, for the
//! spreadsheets and scripts operations staff already use: every message the
//! filter selects (not one page), read page by page by keyset (the store's
//! `before` cursor, never OFFSET) and streamed as it is read.
//! `GET /admin/api/v1/messages/export?format=csv|ndjson&<filter>` and
//! `ferry messages export` write the same lines ([`Format::line`]).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::FilterQuery;
use crate::deliver::hold::utc_time;
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{MessageFilter, MessageSummary, Store, StoreError};

/// Messages read per page.
const PAGE: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

const COLUMNS: [&str; 10] = [
    "id",
    "route",
    "system",
    "state",
    "received",
    "event_id",
    "attempts",
    "last_class",
    "last_explanation",
    "ordering_key",
];

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    /// The first line (CSV's header row), if the format has one.
    pub fn header(self) -> Option<String> {
        match self {
            Format::Csv => Some(format!("{}\r\n", COLUMNS.join(","))),
            Format::Ndjson => None,
        }
    }

    /// One message as a line of the export.
    pub fn line(self, m: &MessageSummary) -> String {
        match self {
            Format::Ndjson => {
                let mut v = serde_json::to_value(m).unwrap_or_default();
                v["received"] = serde_json::Value::String(utc_time(m.received_ms));
                format!("{v}\n")
            }
            Format::Csv => {
                let fields = [
                    m.id.to_string(),
                    m.route.to_string(),
                    m.system.to_string(),
                    m.state.as_str().to_owned(),
                    utc_time(m.received_ms),
                    m.event_id.clone().unwrap_or_default(),
                    m.attempts.to_string(),
                    m.last_class
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default(),
                    m.last_explanation.clone().unwrap_or_default(),
                    m.ordering_key.clone().unwrap_or_default(),
                ];
                let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                format!("{}\r\n", row.join(","))
            }
        }
    }
}

/// A CSV field (RFC 4180 quoting). A value a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, a tab or CR first) is prefixed with `'`:
/// payloads and downstream answers are not to be trusted.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// The next page of `filter` after `before` (newest first).
pub async fn page(
    store: &Store,
    filter: &MessageFilter,
    before: Option<String>,
) -> Result<Vec<MessageSummary>, StoreError> {
    let mut f = filter.clone();
    f.limit = Some(PAGE);
    f.before = before;
    store.list(&f).await
}

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    format: Option<String>,
    #[serde(flatten)]
    filter: FilterQuery,
}

/// Every message the filter selects (not one page), as CSV or NDJSON,
/// streamed as it is read.
#[utoipa::path(get, path = "/messages/export",
    operation_id = "export_messages", tag = "messages",
    params(("format" = Option<String>, Query, description = "csv (default) or ndjson"), FilterQuery),
    responses(
        (status = 200, description = "The messages, one a line", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "A bad format or filter", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn export(
    State(app): State<AppState>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, Problem> {
    let f = q.format.as_deref().unwrap_or("csv");
    let format = Format::parse(f).ok_or_else(|| {
        Problem::bad_request("bad-format", format!("format `{f}`: use csv or ndjson"))
    })?;
    let filter = q.filter.resolve(app.clock.now_ms())?;
    Ok(stream(app, filter, format))
}

/// Every message `filter` selects as an attachment in `format`, read page
/// by page as the answer is written (the admin API's and the console's
/// export).
pub fn stream(app: AppState, filter: MessageFilter, format: Format) -> Response {
    let start = (app, filter, None::<String>, format.header(), false);
    let lines = futures_util::stream::unfold(
        start,
        move |(app, filter, before, first, done)| async move {
            if let Some(h) = first {
                return Some((Ok(h), (app, filter, before, None, done)));
            }
            if done {
                return None;
            }
            match page(&app.store, &filter, before).await {
                Ok(ms) if ms.is_empty() => None,
                Ok(ms) => {
                    let last = ms.last().map(|m| m.id.to_string());
                    let text: String = ms.iter().map(|m| format.line(m)).collect();
                    let done = ms.len() < PAGE as usize;
                    Some((Ok(text), (app, filter, last, None, done)))
                }
                Err(e) => {
                    tracing::error!(error = %crate::model::Chain(&e), "An export stopped: the store failed.");
                    Some((
                        Err(std::io::Error::other(e.to_string())),
                        (app, filter, None, None, true),
                    ))
                }
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (
                header::CONTENT_DISPOSITION,
                match format {
                    Format::Csv => "attachment; filename=\"messages.csv\"",
                    Format::Ndjson => "attachment; filename=\"messages.ndjson\"",
                },
            ),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\n"), "\"say \"\"hi\"\"\n\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }
}
