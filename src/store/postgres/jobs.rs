//! The PostgreSQL store's bulk sync jobs: the same rows and reads as
//! SQLite's. A job row is written outside the accept batches: it is one
//! statement at the start and one at the end of an upload.

use super::PgStore;
use crate::store::*;

impl PgStore {
    pub async fn start_job(&self, job: NewJob) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO jobs (id, route, client, created_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING",
                &[&job.id, &job.route, &job.client, &job.created_ms],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn end_job(&self, id: &str, upload: JobUpload) -> Result<(), StoreError> {
        let errors = serde_json::to_string(&upload.errors)?;
        self.client()
            .await?
            .execute(
                "UPDATE jobs SET lines = $2, rejected = $3, errors = $4, finished_ms = $5 WHERE id = $1",
                &[
                    &id,
                    &(upload.lines as i64),
                    &(upload.rejected as i64),
                    &errors,
                    &upload.finished_ms,
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobView>, StoreError> {
        let client = self.client().await?;
        let Some(r) = client
            .query_opt(
                "SELECT route, created_ms, finished_ms, lines, rejected, errors, client FROM jobs WHERE id = $1",
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let route: String = r.try_get(0)?;
        let mut messages = RouteStats {
            route: route.clone(),
            ..Default::default()
        };
        for s in client
            .query(
                "SELECT state, COUNT(*) FROM deliveries WHERE job_id = $1 GROUP BY state",
                &[&id],
            )
            .await?
        {
            if let Some(state) = State::parse(s.try_get(0)?) {
                messages.add(state, s.try_get::<_, i64>(1)? as u64);
            }
        }
        Ok(Some(JobView {
            id: id.to_owned(),
            route,
            client: r.try_get(6)?,
            created_ms: r.try_get(1)?,
            finished_ms: r.try_get(2)?,
            lines: r.try_get::<_, i64>(3)? as u64,
            rejected: r.try_get::<_, i64>(4)? as u64,
            errors: serde_json::from_str(r.try_get(5)?)?,
            messages,
        }))
    }
}
