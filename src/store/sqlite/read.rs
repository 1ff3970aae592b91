//! The SQLite store's reads for operators and workers: lists by filter, one
//! message with its attempt timeline, counts per route and state, the audit log.
//! They run on read connections (WAL snapshots), never on the writer.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::SqliteStore;
use crate::model::ErrorClass;
use crate::store::*;

/// SQL condition over `deliveries` for a filter, with its arguments.
pub(super) fn where_clause(f: &MessageFilter) -> (String, Vec<Value>) {
    let mut parts = vec!["1 = 1"];
    let mut args = Vec::new();
    for (sql, arg) in f.conditions() {
        parts.push(sql);
        args.push(match arg {
            Arg::Text(t) => Value::Text(t),
            Arg::Int(i) => Value::Integer(i),
        });
    }
    (parts.join(" AND "), args)
}

const SUMMARY_COLUMNS: &str = "d.message_id, d.route, d.system, d.state, d.received_ms, m.event_id,
    d.attempts, d.next_attempt_ms, d.last_class, d.last_explanation, d.last_hint, d.ordering_key";
/// How many columns [`SUMMARY_COLUMNS`] has: what a query selects after them
/// starts at this index.
const SUMMARY_LEN: usize = 12;

fn summary(r: &Row<'_>) -> rusqlite::Result<MessageSummary> {
    let state: String = r.get(3)?;
    let state = State::parse(&state).unwrap_or(State::Dead);
    let class: Option<String> = r.get(8)?;
    Ok(MessageSummary {
        id: r.get(0)?,
        route: r.get(1)?,
        system: r.get(2)?,
        state,
        received_ms: r.get(4)?,
        event_id: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_ms: if matches!(state, State::Queued | State::Retrying) {
            r.get(7)?
        } else {
            None
        },
        last_class: class.as_deref().and_then(ErrorClass::parse),
        last_explanation: r.get(9)?,
        last_hint: r.get(10)?,
        ordering_key: r.get(11)?,
    })
}

impl SqliteStore {
    pub async fn list(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>, StoreError> {
        let (clause, mut args) = where_clause(filter);
        args.push(Value::Integer(i64::from(
            filter.limit.unwrap_or(50).clamp(1, 1000),
        )));
        self.read(move |c| {
            // The page's ids first, then their rows: where an index serves the
            // filter (a state, a failure group) the ids are sorted from the
            // index alone. Sorting whole rows instead cost 84 ms for the
            // 50,000 dead ones of a million (6 ms this way).
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id
                 WHERE d.id IN (SELECT id FROM deliveries WHERE {clause} ORDER BY id DESC LIMIT ?)
                 ORDER BY d.id DESC"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), summary)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn message(&self, id: &str) -> Result<Option<MessageDetail>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| message(c, &id)).await
    }

    pub async fn next_due(&self, system: &str) -> Result<Option<i64>, StoreError> {
        let system = system.to_owned();
        self.read(move |c| {
            // What waits behind its ordering key is not due, whatever its time.
            Ok(c.query_row(
                &format!(
                    "SELECT MIN(next_attempt_ms) FROM deliveries q INDEXED BY deliveries_due
                     WHERE system = ? AND state IN ('queued', 'retrying', 'delivering')
                       AND NOT ({})",
                    super::write::BEHIND
                ),
                [system],
                |r| r.get(0),
            )?)
        })
        .await
    }

    pub async fn stats(&self) -> Result<Vec<RouteStats>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT route, state, COUNT(*) FROM deliveries GROUP BY route, state ORDER BY route")?;
            let mut rows = stmt.query([])?;
            let mut out: Vec<RouteStats> = Vec::new();
            while let Some(r) = rows.next()? {
                let route: String = r.get(0)?;
                let state: String = r.get(1)?;
                let n: i64 = r.get(2)?;
                if out.last().is_none_or(|s| s.route != route) {
                    out.push(RouteStats { route, ..Default::default() });
                }
                if let (Some(s), Some(st)) = (out.last_mut(), State::parse(&state)) {
                    s.add(st, n as u64);
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT route, system, COUNT(*) FROM deliveries INDEXED BY deliveries_due
                 WHERE state IN ('queued', 'retrying', 'delivering') GROUP BY route, system",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(QueueDepth {
                    route: r.get(0)?,
                    system: r.get(1)?,
                    depth: r.get::<_, i64>(2)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn queue_depth_capped(
        &self,
        system: &str,
        cap: u64,
    ) -> Result<Vec<QueueDepth>, StoreError> {
        let system = system.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT route, COUNT(*) FROM (
                   SELECT route FROM deliveries INDEXED BY deliveries_due
                   WHERE system = ?1 AND state IN ('queued', 'retrying', 'delivering') LIMIT ?2)
                 GROUP BY route",
            )?;
            let rows = stmt.query_map(params![system, cap as i64], |r| {
                Ok(QueueDepth {
                    route: r.get(0)?,
                    system: system.as_str().into(),
                    depth: r.get::<_, i64>(1)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_where(None, limit).await
    }

    pub async fn audit_of(&self, target: &str, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_where(Some(target.to_owned()), limit).await
    }

    /// The newest `limit` entries, of one target or of all.
    async fn audit_where(
        &self,
        target: Option<String>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT at_ms, actor, action, target, detail, channel FROM audit
                 WHERE ?1 IS NULL OR target = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![target, limit], |r| {
                Ok(AuditEntry {
                    at_ms: r.get(0)?,
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    target: r.get(3)?,
                    detail: r.get(4)?,
                    channel: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

fn message(c: &Connection, id: &str) -> Result<Option<MessageDetail>, StoreError> {
    let row = c
        .query_row(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, d.delivery_key, m.headers, m.body, d.discard_reason, d.id,
                        d.edited_body, d.edits
                 FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.message_id = ?"
            ),
            [id],
            |r| {
                let body: Vec<u8> = r.get(SUMMARY_LEN + 2)?;
                let edited: Option<Vec<u8>> = r.get(SUMMARY_LEN + 5)?;
                Ok((
                    (summary(r)?, r.get::<_, String>(SUMMARY_LEN)?),
                    r.get::<_, String>(SUMMARY_LEN + 1)?,
                    String::from_utf8_lossy(&body).into_owned(),
                    r.get::<_, Option<String>>(SUMMARY_LEN + 3)?,
                    r.get::<_, i64>(SUMMARY_LEN + 4)?,
                    (
                        edited.map(|b| String::from_utf8_lossy(&b).into_owned()),
                        r.get::<_, u32>(SUMMARY_LEN + 6)?,
                    ),
                ))
            },
        )
        .optional()?;
    let Some((
        (summary, delivery_key),
        headers,
        body,
        discard_reason,
        delivery_id,
        (edited_body, edits),
    )) = row
    else {
        return Ok(None);
    };
    let mut stmt = c.prepare(
        "SELECT started_ms, duration_ms, request, response, class, explanation, hint, outcome
         FROM attempts WHERE delivery_id = ? ORDER BY id",
    )?;
    let raw = stmt.query_map([delivery_id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut attempts = Vec::new();
    for (i, row) in raw.enumerate() {
        let (started_ms, duration_ms, request, response, class, explanation, hint, outcome) = row?;
        attempts.push(AttemptView {
            n: i as u32 + 1,
            started_ms,
            duration_ms,
            request: serde_json::from_str(&request)?,
            response: response.map(|r| serde_json::from_str(&r)).transpose()?,
            class: class.as_deref().and_then(ErrorClass::parse),
            explanation,
            hint,
            outcome,
        });
    }
    Ok(Some(MessageDetail {
        summary,
        delivery_key,
        headers: serde_json::from_str(&headers).unwrap_or(serde_json::Value::Null),
        body,
        edited_body,
        edits,
        discard_reason,
        attempts,
    }))
}
