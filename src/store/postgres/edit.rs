//! An operator's edit and replay on PostgreSQL: the edited payload beside
//! the original, a new downstream idempotency key, a fresh retry budget and
//! the audit entry, in one transaction (the row locked against a worker).

use super::PgStore;
use super::operate::audit;
use crate::store::{Audit, Edit, Edited, State, StoreError};

impl PgStore {
    pub async fn edit(&self, e: Edit) -> Result<Edited, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT state, delivery_key, edits FROM deliveries WHERE message_id = $1 FOR UPDATE",
                &[&e.id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Edited::NotFound);
        };
        let (state, key, edits): (String, String, i32) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        match State::parse(&state) {
            Some(s) if s.retryable() => {}
            Some(s) => return Ok(Edited::Busy(s)),
            None => return Ok(Edited::NotFound),
        }
        let delivery_key = Edit::key(&key, i64::from(edits) + 1);
        tx.execute(
            "UPDATE deliveries SET edited_body = $2, edits = edits + 1, delivery_key = $3,
               state = 'queued', next_attempt_ms = $4, budget_start_ms = $4, attempts = 0,
               rate_limited_streak = 0, auth_streak = 0, discard_reason = NULL, updated_ms = $4
             WHERE message_id = $1",
            &[&e.id, &e.body, &delivery_key, &e.now_ms],
        )
        .await?;
        let entry = Audit {
            at_ms: e.now_ms,
            actor: &e.actor,
            action: "edit",
            target: &e.id,
            detail: &e.detail,
        };
        audit(&tx, entry).await?;
        tx.commit().await?;
        Ok(Edited::Done { delivery_key })
    }
}
