//! The operators' writes on SQLite: retry one message or many, discard one
//! or many, release an ordering key (what may be selected is decided in `store::rules`). Work on a filter goes in chunks of [`CHUNK`] deliveries, each its
//! own group-committed write with its own audit entry, walking up the
//! delivery id (keyset), so a delivery changed by one chunk is never selected
//! by the next and accepts interleave between chunks: a retry of a million
//! dead messages never holds the writer for more than one chunk.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::*;

impl SqliteStore {
    /// One message back to the queue (`store.retry` of one id).
    pub async fn retry_one(
        &self,
        id: String,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let clause = format!(
            "message_id = ? AND state IN {}",
            State::sql_list(State::retryable)
        );
        let target = id.clone();
        let args = vec![Value::Text(id)];
        let work = Chunked {
            clause,
            args,
            target,
            action: BulkAction::Retry,
        };
        self.chunked(work, actor, now_ms, dry_run).await
    }

    /// Applies `action` to every delivery `f` selects (its state already
    /// settled by `BulkAction::target_state`); the dry run only counts, on a
    /// read connection.
    pub async fn bulk(
        &self,
        f: MessageFilter,
        action: BulkAction,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let (clause, args) = super::read::where_clause(&f);
        let target = action.audit_target(&f);
        let work = Chunked {
            clause,
            args,
            target,
            action,
        };
        self.chunked(work, actor, now_ms, dry_run).await
    }

    async fn chunked(
        &self,
        work: Chunked,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        if dry_run {
            let Chunked { clause, args, .. } = work;
            return self
                .read(move |c| {
                    let n: i64 = c.query_row(
                        &format!("SELECT COUNT(*) FROM deliveries WHERE {clause}"),
                        rusqlite::params_from_iter(args),
                        |r| r.get(0),
                    )?;
                    Ok(n as u64)
                })
                .await;
        }
        let work = std::sync::Arc::new(work);
        let (mut total, mut after) = (0u64, 0i64);
        loop {
            let (chunk, actor) = (work.clone(), actor.to_owned());
            let ids = self
                .inner
                .writer
                .write(move |c| chunk.apply(c, after, &actor, now_ms))
                .await?;
            total += ids.len() as u64;
            match ids.last() {
                Some(&last) if ids.len() == CHUNK => after = last,
                _ => break,
            }
            tracing::debug!(
                done = total,
                action = work.action.verb(),
                "A chunk of a bulk action is done."
            );
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    pub async fn discard(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Discarded, StoreError> {
        let (id, actor, reason) = (id.to_owned(), actor.to_owned(), reason.to_owned());
        self.inner
            .writer
            .write(move |c| {
                let state: Option<String> = c
                    .query_row("SELECT state FROM deliveries WHERE message_id = ?", [&id], |r| r.get(0))
                    .optional()?;
                match state.as_deref().and_then(State::parse) {
                    None => return Ok(Discarded::NotFound),
                    Some(s) if !s.discardable() => return Ok(Discarded::NotDiscardable),
                    Some(_) => {}
                }
                c.execute(
                    "UPDATE deliveries SET state = 'discarded', discard_reason = ?2, updated_ms = ?3 WHERE message_id = ?1",
                    params![id, reason, now_ms],
                )?;
                audit(
                    c,
                    Audit {
                        at_ms: now_ms,
                        actor: &actor,
                        action: "discard",
                        target: &id,
                        detail: &reason,
                    },
                )?;
                Ok(Discarded::Done)
            })
            .await
    }
}

/// A bulk action on the deliveries `clause` selects.
struct Chunked {
    clause: String,
    args: Vec<Value>,
    /// What the audit log names: the message id, the filter, or a
    /// released `route/key`.
    target: String,
    action: BulkAction,
}

impl Chunked {
    /// One chunk, the deliveries after id `after`: their ids.
    fn apply(
        &self,
        c: &Connection,
        after: i64,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut args = self.args.clone();
        args.push(Value::Integer(after));
        args.push(Value::Integer(CHUNK as i64));
        let ids: Vec<i64> = c
            .prepare(&format!(
                "SELECT id FROM deliveries WHERE {} AND id > ? ORDER BY id LIMIT ?",
                self.clause
            ))?
            .query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(ids);
        }
        let detail = match &self.action {
            BulkAction::Retry => {
                let mut up = c.prepare_cached(
                    "UPDATE deliveries SET state = 'queued', next_attempt_ms = ?2, budget_start_ms = ?2,
                     attempts = 0, rate_limited_streak = 0, auth_streak = 0, discard_reason = NULL, updated_ms = ?2
                     WHERE id = ?1",
                )?;
                for id in &ids {
                    up.execute(params![id, now_ms])?;
                }
                format!("{} message(s) requeued", ids.len())
            }
            BulkAction::Discard { reason } | BulkAction::ReleaseKey { reason } => {
                let mut up = c.prepare_cached(
                    "UPDATE deliveries SET state = 'discarded', discard_reason = ?3, updated_ms = ?2 WHERE id = ?1",
                )?;
                for id in &ids {
                    up.execute(params![id, now_ms, reason])?;
                }
                format!("{} message(s) discarded: {reason}", ids.len())
            }
        };
        audit(
            c,
            Audit {
                at_ms: now_ms,
                actor,
                action: self.action.verb(),
                target: &self.target,
                detail: &detail,
            },
        )?;
        Ok(ids)
    }
}

pub(super) fn audit(c: &Connection, a: Audit<'_>) -> Result<(), StoreError> {
    let (channel, actor) = Channel::split(a.actor);
    c.prepare_cached(
        "INSERT INTO audit (at_ms, actor, action, target, detail, channel) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![a.at_ms, actor, a.action, a.target, a.detail, channel])?;
    Ok(())
}
