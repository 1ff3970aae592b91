//! The PostgreSQL store's reads for operators and workers: lists by filter, one
//! message with its attempt timeline, counts per route and state, the audit
//! log. The same queries as SQLite's, with PostgreSQL's placeholders.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PgStore;
use crate::model::ErrorClass;
use crate::store::*;

pub(super) type Param = Box<dyn ToSql + Sync + Send>;

pub(super) fn params(args: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// SQL condition over `deliveries` for a filter, numbering its placeholders
/// after the first `offset`.
pub(super) fn where_clause(f: &MessageFilter, offset: usize) -> (String, Vec<Param>) {
    let mut parts = vec!["1 = 1".to_owned()];
    let mut args: Vec<Param> = Vec::new();
    for (sql, arg) in f.conditions() {
        args.push(match arg {
            Arg::Text(t) => Box::new(t),
            Arg::Int(i) => Box::new(i),
        });
        parts.push(sql.replace('?', &format!("${}", offset + args.len())));
    }
    (parts.join(" AND "), args)
}

const SUMMARY_COLUMNS: &str = "d.message_id, d.route, d.system, d.state, d.received_ms, m.event_id,
    d.attempts, d.next_attempt_ms, d.last_class, d.last_explanation, d.last_hint, d.ordering_key";
/// How many columns [`SUMMARY_COLUMNS`] has: what a query selects after them
/// starts at this index.
const SUMMARY_LEN: usize = 12;

fn summary(r: &Row) -> Result<MessageSummary, StoreError> {
    let state = State::parse(r.try_get(3)?).unwrap_or(State::Dead);
    let class: Option<&str> = r.try_get(8)?;
    let next_attempt_ms: i64 = r.try_get(7)?;
    Ok(MessageSummary {
        id: r.try_get(0)?,
        route: r.try_get(1)?,
        system: r.try_get(2)?,
        state,
        received_ms: r.try_get(4)?,
        event_id: r.try_get(5)?,
        attempts: r.try_get::<_, i32>(6)? as u32,
        next_attempt_ms: matches!(state, State::Queued | State::Retrying)
            .then_some(next_attempt_ms),
        last_class: class.and_then(ErrorClass::parse),
        last_explanation: r.try_get(9)?,
        last_hint: r.try_get(10)?,
        ordering_key: r.try_get(11)?,
    })
}

impl PgStore {
    pub async fn list(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>, StoreError> {
        let (clause, mut args) = where_clause(filter, 0);
        args.push(Box::new(i64::from(
            filter.limit.unwrap_or(50).clamp(1, 1000),
        )));
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM (SELECT * FROM deliveries WHERE {clause} ORDER BY id DESC LIMIT ${}) d
             JOIN messages m ON m.id = d.message_id ORDER BY d.id DESC",
            args.len()
        );
        let rows = self.client().await?.query(&sql, &params(&args)).await?;
        rows.iter().map(summary).collect()
    }

    pub async fn message(&self, id: &str) -> Result<Option<MessageDetail>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}, d.delivery_key, m.headers, m.body, d.discard_reason, d.id,
                            d.edited_body, d.edits
                     FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.message_id = $1"
                ),
                &[&id],
            )
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let delivery_id: i64 = r.try_get(SUMMARY_LEN + 4)?;
        let headers: &str = r.try_get(SUMMARY_LEN + 1)?;
        let body: &[u8] = r.try_get(SUMMARY_LEN + 2)?;
        let edited: Option<&[u8]> = r.try_get(SUMMARY_LEN + 5)?;
        let edits: i32 = r.try_get(SUMMARY_LEN + 6)?;
        let rows = client
            .query(
                "SELECT started_ms, duration_ms, request, response, class, explanation, hint, outcome
                 FROM attempts WHERE delivery_id = $1 ORDER BY id",
                &[&delivery_id],
            )
            .await?;
        let mut attempts = Vec::with_capacity(rows.len());
        for (i, a) in rows.iter().enumerate() {
            let response: Option<&str> = a.try_get(3)?;
            let class: Option<&str> = a.try_get(4)?;
            attempts.push(AttemptView {
                n: i as u32 + 1,
                started_ms: a.try_get(0)?,
                duration_ms: a.try_get(1)?,
                request: serde_json::from_str(a.try_get(2)?)?,
                response: response.map(serde_json::from_str).transpose()?,
                class: class.and_then(ErrorClass::parse),
                explanation: a.try_get(5)?,
                hint: a.try_get(6)?,
                outcome: a.try_get(7)?,
            });
        }
        Ok(Some(MessageDetail {
            summary: summary(&r)?,
            delivery_key: r.try_get(SUMMARY_LEN)?,
            headers: serde_json::from_str(headers).unwrap_or(serde_json::Value::Null),
            body: String::from_utf8_lossy(body).into_owned(),
            edited_body: edited.map(|b| String::from_utf8_lossy(b).into_owned()),
            edits: edits.max(0) as u32,
            discard_reason: r.try_get(SUMMARY_LEN + 3)?,
            attempts,
        }))
    }

    pub async fn next_due(&self, system: &str) -> Result<Option<i64>, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                concat!(
                    "SELECT MIN(next_attempt_ms) FROM deliveries q
                     WHERE system = $1 AND state IN ('queued', 'retrying', 'delivering')
                       AND NOT (",
                    super::write::behind!(),
                    ")"
                ),
                &[&system],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn stats(&self) -> Result<Vec<RouteStats>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT route, state, COUNT(*) FROM deliveries GROUP BY route, state ORDER BY route",
                &[],
            )
            .await?;
        let mut out: Vec<RouteStats> = Vec::new();
        for r in &rows {
            let route: String = r.try_get(0)?;
            let n: i64 = r.try_get(2)?;
            if out.last().is_none_or(|s| s.route != route) {
                out.push(RouteStats {
                    route,
                    ..Default::default()
                });
            }
            if let (Some(s), Some(st)) = (out.last_mut(), State::parse(r.try_get(1)?)) {
                s.add(st, n as u64);
            }
        }
        Ok(out)
    }

    pub async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT route, system, COUNT(*) FROM deliveries
                 WHERE state IN ('queued', 'retrying', 'delivering') GROUP BY route, system",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(QueueDepth {
                    route: r.try_get(0)?,
                    system: r.try_get(1)?,
                    depth: r.try_get::<_, i64>(2)? as u64,
                })
            })
            .collect()
    }

    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_where(None, limit).await
    }

    pub async fn audit_of(&self, target: &str, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_where(Some(target), limit).await
    }

    /// The newest `limit` entries, of one target or of all.
    async fn audit_where(
        &self,
        target: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT at_ms, actor, action, target, detail, channel FROM audit
                 WHERE $1::TEXT IS NULL OR target = $1 ORDER BY id DESC LIMIT $2",
                &[&target, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at_ms: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    action: r.try_get(2)?,
                    target: r.try_get(3)?,
                    detail: r.try_get(4)?,
                    channel: r.try_get(5)?,
                })
            })
            .collect()
    }
}
