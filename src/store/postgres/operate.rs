//! The operators' writes on PostgreSQL: retry one message or many, discard
//! one or many, release an ordering key (what may be selected is decided in `store::rules`). Work on a filter goes in chunks of [`CHUNK`] deliveries, each
//! its own transaction with its own audit entry, walking up the delivery id
//! (keyset) with `FOR UPDATE`, so a delivery changed by one chunk is never
//! selected by the next, and other instances' accepts and claims interleave
//! between chunks. Each chunk wakes every instance's workers.

use super::read::Param;
use super::{PgStore, WORK_CHANNEL};
use crate::store::*;

impl PgStore {
    /// One message back to the queue (`store.retry` of one id).
    pub async fn retry_one(
        &self,
        id: String,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let clause = format!(
            "message_id = $1 AND state IN {}",
            State::sql_list(State::retryable)
        );
        let args = vec![Box::new(id.clone()) as Param];
        let work = Chunked {
            clause,
            args,
            target: id,
            action: BulkAction::Retry,
        };
        self.chunked(work, actor, now_ms, dry_run).await
    }

    /// Applies `action` to every delivery `f` selects (its state already
    /// settled by `BulkAction::target_state`); the dry run only counts.
    pub async fn bulk(
        &self,
        f: MessageFilter,
        action: BulkAction,
        actor: &str,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let (clause, args) = super::read::where_clause(&f, 0);
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
        let Chunked {
            clause,
            mut args,
            target,
            action,
        } = work;
        let mut client = self.client().await?;
        if dry_run {
            let n: i64 = client
                .query_one(
                    &format!("SELECT COUNT(*) FROM deliveries WHERE {clause}"),
                    &super::read::params(&args),
                )
                .await?
                .try_get(0)?;
            return Ok(n as u64);
        }
        let n = args.len();
        let select = format!(
            "SELECT id FROM deliveries WHERE {clause} AND id > ${} ORDER BY id LIMIT {CHUNK} FOR UPDATE",
            n + 1
        );
        args.push(Box::new(0i64));
        let mut total = 0u64;
        loop {
            let tx = client.transaction().await?;
            let rows = tx.query(&select, &super::read::params(&args)).await?;
            let ids: Vec<i64> = rows
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                break;
            }
            let detail = apply(&tx, &action, &ids, now_ms).await?;
            let entry = Audit {
                at_ms: now_ms,
                actor,
                action: action.verb(),
                target: &target,
                detail: &detail,
            };
            audit(&tx, entry).await?;
            tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL])
                .await?;
            tx.commit().await?;
            total += ids.len() as u64;
            if ids.len() < CHUNK {
                break;
            }
            args[n] = Box::new(ids[ids.len() - 1]);
            tracing::debug!(
                done = total,
                action = action.verb(),
                "A chunk of a bulk action is done."
            );
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
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let state: Option<String> = tx
            .query_opt(
                "SELECT state FROM deliveries WHERE message_id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match state.as_deref().and_then(State::parse) {
            None => return Ok(Discarded::NotFound),
            Some(s) if !s.discardable() => return Ok(Discarded::NotDiscardable),
            Some(_) => {}
        }
        tx.execute(
            "UPDATE deliveries SET state = 'discarded', discard_reason = $2, updated_ms = $3 WHERE message_id = $1",
            &[&id, &reason, &now_ms],
        )
        .await?;
        let entry = Audit {
            at_ms: now_ms,
            actor,
            action: "discard",
            target: id,
            detail: reason,
        };
        audit(&tx, entry).await?;
        tx.commit().await?;
        Ok(Discarded::Done)
    }
}

/// A bulk action on the deliveries `clause` selects.
struct Chunked {
    clause: String,
    args: Vec<Param>,
    /// What the audit log names: the message id, the filter, or a
    /// released `route/key`.
    target: String,
    action: BulkAction,
}

/// One chunk of a bulk action, in its transaction; what the audit log says
/// of it.
async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    action: &BulkAction,
    ids: &[i64],
    now_ms: i64,
) -> Result<String, StoreError> {
    Ok(match action {
        BulkAction::Retry => {
            tx.execute(
                "UPDATE deliveries SET state = 'queued', next_attempt_ms = $2, budget_start_ms = $2,
                   attempts = 0, rate_limited_streak = 0, auth_streak = 0, discard_reason = NULL, updated_ms = $2
                 WHERE id = ANY($1)",
                &[&ids, &now_ms],
            )
            .await?;
            format!("{} message(s) requeued", ids.len())
        }
        BulkAction::Discard { reason } | BulkAction::ReleaseKey { reason } => {
            tx.execute(
                "UPDATE deliveries SET state = 'discarded', discard_reason = $3, updated_ms = $2
                 WHERE id = ANY($1)",
                &[&ids, &now_ms, reason],
            )
            .await?;
            format!("{} message(s) discarded: {reason}", ids.len())
        }
    })
}

pub(super) async fn audit(
    tx: &deadpool_postgres::Transaction<'_>,
    a: Audit<'_>,
) -> Result<(), StoreError> {
    let (channel, actor) = Channel::split(a.actor);
    tx.execute(
        "INSERT INTO audit (at_ms, actor, action, target, detail, channel) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&a.at_ms, &actor, &a.action, &a.target, &a.detail, &channel],
    )
    .await?;
    Ok(())
}
