//! The PostgreSQL store's reads of failure groups (`store::failures`): the
//! same two queries as SQLite's, with PostgreSQL's placeholders.

use futures_util::future::try_join_all;

use super::PgStore;
use super::operate::audit;
use super::read::{Param, params};
use crate::store::*;

impl PgStore {
    pub async fn failure_groups(
        &self,
        filter: &GroupFilter,
        key: Option<&str>,
    ) -> Result<Vec<FailureGroup>, StoreError> {
        let mut clause = vec!["1 = 1".to_owned()];
        let mut args: Vec<Param> = Vec::new();
        for (sql, arg) in filter.conditions(key) {
            args.push(match arg {
                Arg::Text(t) => Box::new(t),
                Arg::Int(i) => Box::new(i),
            });
            clause.push(sql.replace('?', &format!("${}", args.len())));
        }
        let client = self.client().await?;
        let sql = GROUPS_SQL.replace("{}", &clause.join(" AND "));
        let args = params(&args);
        let (samples_sql, status_sql) = (
            SAMPLES_SQL.replace('?', "$1"),
            STATUS_SQL.replace('?', "$1"),
        );
        let (rows, samples, status) = tokio::try_join!(
            client.query(&sql, &args),
            client.prepare_cached(&samples_sql),
            client.prepare_cached(&status_sql),
        )?;
        let counts = rows
            .iter()
            .map(|r| {
                Ok(GroupCounts {
                    key: r.try_get(0)?,
                    route: r.try_get(1)?,
                    system: r.try_get(2)?,
                    class: r.try_get(3)?,
                    count: r.try_get(4)?,
                    first_seen_ms: r.try_get(5)?,
                    last_seen_ms: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
        // Every group's samples and status in one pipeline on the
        // connection, not two round trips a group.
        let (samples, marks) = tokio::try_join!(
            try_join_all(
                counts
                    .iter()
                    .map(|g| async { client.query(&samples, &[&g.key]).await })
            ),
            try_join_all(
                counts
                    .iter()
                    .map(|g| async { client.query_opt(&status, &[&g.key]).await })
            ),
        )?;
        let mut out = Vec::with_capacity(counts.len());
        for ((g, s), mark) in counts.into_iter().zip(samples).zip(marks) {
            let s = s
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
            let mark = match mark {
                None => None,
                Some(r) => Some(StatusMark {
                    status: GroupStatus::parse(r.try_get(0)?).unwrap_or_default(),
                    note: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    at_ms: r.try_get(3)?,
                }),
            };
            out.push(g.with_samples(s, mark));
        }
        Ok(out)
    }

    /// Sets a group's status, audited in the same transaction.
    pub async fn set_group_status(&self, key: &str, mark: StatusMark) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO failure_group_status (key, status, note, actor, at_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key) DO UPDATE SET status = excluded.status,
               note = excluded.note, actor = excluded.actor, at_ms = excluded.at_ms",
            &[
                &key,
                &mark.status.as_str(),
                &mark.note,
                &Channel::split(&mark.actor).1,
                &mark.at_ms,
            ],
        )
        .await?;
        audit(
            &tx,
            Audit {
                at_ms: mark.at_ms,
                actor: &mark.actor,
                action: "group_status",
                target: key,
                detail: &mark.audit_detail(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
