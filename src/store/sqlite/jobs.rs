//! The SQLite store's bulk sync jobs: a row per upload, written through the
//! group-committing writer, and a job's progress read as its deliveries'
//! counts by state (index `deliveries_job`).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::*;

impl SqliteStore {
    pub async fn start_job(&self, job: NewJob) -> Result<bool, StoreError> {
        self.inner
            .writer
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "INSERT INTO jobs (id, route, client, created_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO NOTHING",
                    )?
                    .execute(params![job.id, job.route, job.client, job.created_ms])?;
                Ok(n == 1)
            })
            .await
    }

    pub async fn end_job(&self, id: &str, upload: JobUpload) -> Result<(), StoreError> {
        let id = id.to_owned();
        let errors = serde_json::to_string(&upload.errors)?;
        self.inner.writer.write(move |c| {
            c.prepare_cached(
                "UPDATE jobs SET lines = ?2, rejected = ?3, errors = ?4, finished_ms = ?5 WHERE id = ?1",
            )?
            .execute(params![
                id,
                upload.lines as i64,
                upload.rejected as i64,
                errors,
                upload.finished_ms
            ])?;
            Ok(())
        })
        .await
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobView>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            let row = c
                .query_row(
                    "SELECT route, created_ms, finished_ms, lines, rejected, errors, client FROM jobs WHERE id = ?",
                    [&id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((route, created_ms, finished_ms, lines, rejected, errors, client)) = row else {
                return Ok(None);
            };
            let mut messages = RouteStats {
                route: route.clone(),
                ..Default::default()
            };
            let mut stmt = c.prepare_cached(
                "SELECT state, COUNT(*) FROM deliveries WHERE job_id = ? GROUP BY state",
            )?;
            let mut rows = stmt.query([&id])?;
            while let Some(r) = rows.next()? {
                let state: String = r.get(0)?;
                if let Some(s) = State::parse(&state) {
                    messages.add(s, r.get::<_, i64>(1)? as u64);
                }
            }
            Ok(Some(JobView {
                id,
                route,
                client,
                created_ms,
                finished_ms,
                lines: lines as u64,
                rejected: rejected as u64,
                errors: serde_json::from_str(&errors)
                    ?,
                messages,
            }))
        })
        .await
    }
}
