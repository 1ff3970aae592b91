//! The SQLite store's reads of failure groups (`store::failures`): the
//! groups' counts on the `deliveries_failure_group` index, then each
//! group's latest samples, on a read connection.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::SqliteStore;
use super::operate::audit;
use crate::store::*;

impl SqliteStore {
    pub async fn failure_groups(
        &self,
        filter: &GroupFilter,
        key: Option<&str>,
    ) -> Result<Vec<FailureGroup>, StoreError> {
        let conditions = filter.conditions(key);
        self.read(move |c| groups(c, conditions)).await
    }

    /// Sets a group's status, audited in the same transaction.
    pub async fn set_group_status(&self, key: &str, mark: StatusMark) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.inner
            .writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO failure_group_status (key, status, note, actor, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (key) DO UPDATE SET status = excluded.status,
                       note = excluded.note, actor = excluded.actor, at_ms = excluded.at_ms",
                )?
                .execute(params![
                    key,
                    mark.status.as_str(),
                    mark.note,
                    Channel::split(&mark.actor).1,
                    mark.at_ms
                ])?;
                audit(
                    c,
                    Audit {
                        at_ms: mark.at_ms,
                        actor: &mark.actor,
                        action: "group_status",
                        target: &key,
                        detail: &mark.audit_detail(),
                    },
                )
            })
            .await
    }
}

fn groups(c: &Connection, conditions: Vec<(&str, Arg)>) -> Result<Vec<FailureGroup>, StoreError> {
    let mut clause = vec!["1 = 1"];
    clause.extend(conditions.iter().map(|(sql, _)| *sql));
    let args = conditions.into_iter().map(|(_, a)| match a {
        Arg::Text(t) => Value::Text(t),
        Arg::Int(i) => Value::Integer(i),
    });
    let sql = GROUPS_SQL.replace("{}", &clause.join(" AND "));
    let mut stmt = c.prepare_cached(&sql)?;
    let counts = stmt
        .query_map(params_from_iter(args), |r| {
            Ok(GroupCounts {
                key: r.get(0)?,
                route: r.get(1)?,
                system: r.get(2)?,
                class: r.get(3)?,
                count: r.get(4)?,
                first_seen_ms: r.get(5)?,
                last_seen_ms: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut samples = c.prepare_cached(SAMPLES_SQL)?;
    let mut status = c.prepare_cached(STATUS_SQL)?;
    let mut out = Vec::with_capacity(counts.len());
    for g in counts {
        let s = samples
            .query_map([&g.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mark = status
            .query_row([&g.key], |r| {
                let s: String = r.get(0)?;
                Ok(StatusMark {
                    status: GroupStatus::parse(&s).unwrap_or_default(),
                    note: r.get(1)?,
                    actor: r.get(2)?,
                    at_ms: r.get(3)?,
                })
            })
            .optional()?;
        out.push(g.with_samples(s, mark));
    }
    Ok(out)
}
