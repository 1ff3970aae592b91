//! The PostgreSQL store's reads of failure groups (`store::failures`): the
//! same two queries as SQLite's, with PostgreSQL's placeholders.

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
        let rows = client.query(&sql, &params(&args)).await?;
        let samples = client
            .prepare_cached(&SAMPLES_SQL.replace('?', "$1"))
            .await?;
        let status = client
            .prepare_cached(&STATUS_SQL.replace('?', "$1"))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let g = GroupCounts {
                key: r.try_get(0)?,
                route: r.try_get(1)?,
                system: r.try_get(2)?,
                class: r.try_get(3)?,
                count: r.try_get(4)?,
                first_seen_ms: r.try_get(5)?,
                last_seen_ms: r.try_get(6)?,
            };
            let s = client
                .query(&samples, &[&g.key])
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
            let mark = match client.query_opt(&status, &[&g.key]).await? {
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
