//! An operator's edit and replay on SQLite: the edited payload beside the
//! original, a new downstream idempotency key, a fresh retry budget and the
//! audit entry, in one write.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::operate::audit;
use crate::store::{Audit, Edit, Edited, State, StoreError};

impl SqliteStore {
    pub async fn edit(&self, e: Edit) -> Result<Edited, StoreError> {
        self.inner
            .writer
            .write(move |c| {
                let row: Option<(String, String, i64)> = c
                    .query_row(
                        "SELECT state, delivery_key, edits FROM deliveries WHERE message_id = ?",
                        [&e.id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let Some((state, key, edits)) = row else {
                    return Ok(Edited::NotFound);
                };
                match State::parse(&state) {
                    Some(s) if s.retryable() => {}
                    Some(s) => return Ok(Edited::Busy(s)),
                    None => return Ok(Edited::NotFound),
                }
                let delivery_key = Edit::key(&key, edits + 1);
                c.execute(
                    "UPDATE deliveries SET edited_body = ?2, edits = edits + 1, delivery_key = ?3,
                     state = 'queued', next_attempt_ms = ?4, budget_start_ms = ?4, attempts = 0,
                     rate_limited_streak = 0, auth_streak = 0, discard_reason = NULL, updated_ms = ?4
                     WHERE message_id = ?1",
                    params![e.id, &e.body[..], delivery_key, e.now_ms],
                )?;
                let entry = Audit {
                    at_ms: e.now_ms,
                    actor: &e.actor,
                    action: "edit",
                    target: &e.id,
                    detail: &e.detail,
                };
                audit(c, entry)?;
                Ok(Edited::Done { delivery_key })
            })
            .await
    }
}
