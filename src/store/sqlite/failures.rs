//! The SQLite store's reads of failure groups (`store::failures`): the
//! groups' counts on the `deliveries_failure_group` index, then each
//! group's latest samples, on a read connection.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::SqliteStore;
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
    let mut out = Vec::with_capacity(counts.len());
    for g in counts {
        let s = samples
            .query_map([&g.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        out.push(g.with_samples(s));
    }
    Ok(out)
}
