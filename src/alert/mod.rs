//! Alerts: nothing fails silently. The watcher (`watch`) looks, every
//! second, at what should make someone act — failure groups, circuits,
//! holds, queues, routes gone silent, a refused reload, shadow differences —
//! as [`Condition`]s keyed by what they are about (a failure group, a
//! system, a route). For each channel that takes a condition, [`decide`]
//! compares it with the channel's stored [`AlertState`]: a new condition
//! fires at once; one that keeps growing (10,000 deaths of one cause) gets
//! at most one follow-up per `repeat_every` with the running count; one
//! that clears (the group resolved, the circuit closed, traffic back) is
//! resolved. An alert is an ordinary message of the channel's route
//! (`alert:<name>`), written with `store.accept` (deduplicated by condition
//! and sequence number, so instances and restarts send it once) and
//! delivered by ferry's own workers, with the channel's retries, rate limit
//! and breaker. `format` writes each channel kind's body. It sits beside
//! the routers, over the store and deliver's views in `state`.

pub mod conditions;
pub mod format;
pub mod watch;

use crate::config::AlertEvent;
use crate::store::AlertState;

/// Something that should make someone act, as the watcher sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What it is about: `dead:<group>`, `circuit:<system>`, `silence:<route>`, ...
    pub key: String,
    pub event: AlertEvent,
    /// The event a resolve is sent as (`circuit_closed` for a circuit), if
    /// not the firing one.
    pub resolved_as: Option<AlertEvent>,
    pub route: Option<String>,
    pub system: Option<String>,
    /// One line: what happened.
    pub title: String,
    /// Why, in plain words.
    pub reason: String,
    /// What to do.
    pub hint: String,
    /// How many (dead messages, waiting messages); 1 for a state.
    pub count: u64,
    /// The console page that shows it (a path under `/console`).
    pub link: String,
}

/// What one channel does about one condition on this look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    /// The first alert of a condition.
    Fire,
    /// A firing condition grew, and `repeat_every` has passed.
    FollowUp,
    /// A firing condition grew within `repeat_every`: held back.
    Suppress,
    /// The condition cleared.
    Resolve,
}

/// The decision for `channel`'s `prev` state of a condition now `current`
/// (`None`: cleared), and the state to keep after it.
pub fn decide(
    channel: &str,
    key: &str,
    prev: Option<&AlertState>,
    current: Option<&Condition>,
    now_ms: i64,
    repeat_ms: i64,
) -> (Decision, Option<AlertState>) {
    let firing = prev.is_some_and(|p| p.firing);
    match (current, prev) {
        (Some(c), _) if !firing => {
            let seq = prev.map_or(0, |p| p.seq) + 1;
            let state = AlertState {
                channel: channel.to_owned(),
                key: key.to_owned(),
                firing: true,
                seq,
                opened_ms: now_ms,
                last_sent_ms: now_ms,
                last_count: c.count as i64,
                suppressed: 0,
            };
            (Decision::Fire, Some(state))
        }
        (Some(c), Some(p)) => {
            let count = c.count as i64;
            if count <= p.last_count {
                return (Decision::Nothing, None);
            }
            if now_ms - p.last_sent_ms >= repeat_ms {
                let state = AlertState {
                    seq: p.seq + 1,
                    last_sent_ms: now_ms,
                    last_count: count,
                    suppressed: 0,
                    ..p.clone()
                };
                return (Decision::FollowUp, Some(state));
            }
            if count - p.last_count == p.suppressed {
                return (Decision::Nothing, None);
            }
            let state = AlertState {
                suppressed: count - p.last_count,
                ..p.clone()
            };
            (Decision::Suppress, Some(state))
        }
        (None, Some(p)) if firing => {
            let state = AlertState {
                firing: false,
                seq: p.seq + 1,
                last_sent_ms: now_ms,
                suppressed: 0,
                ..p.clone()
            };
            (Decision::Resolve, Some(state))
        }
        _ => (Decision::Nothing, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(count: u64) -> Condition {
        Condition {
            key: "dead:g1".into(),
            event: AlertEvent::Dead,
            resolved_as: None,
            route: Some("orders".into()),
            system: Some("erp".into()),
            title: "t".into(),
            reason: "r".into(),
            hint: "h".into(),
            count,
            link: "/console/failures/g1".into(),
        }
    }

    #[test]
    fn a_storm_is_one_alert_then_a_follow_up_per_interval_then_a_resolve() {
        let repeat = 60_000;
        let step = |prev: &Option<AlertState>, c: Option<u64>, now| {
            decide(
                "slack",
                "dead:g1",
                prev.as_ref(),
                c.map(cond).as_ref(),
                now,
                repeat,
            )
        };
        let (d, s) = step(&None, Some(1), 0);
        assert_eq!(d, Decision::Fire);
        let mut state = s;
        for (i, n) in (2..=10_000u64).step_by(500).enumerate() {
            let (d, s) = step(&state, Some(n), 1_000 + i as i64);
            assert_eq!(d, Decision::Suppress, "{n}");
            state = s.or(state);
        }
        assert_eq!(state.as_ref().unwrap().suppressed, 9_502 - 1);
        let (d, _) = step(&state, Some(9_502), 30_000);
        assert_eq!(d, Decision::Nothing, "nothing new");
        let (d, s) = step(&state, Some(10_000), 60_000);
        assert_eq!(d, Decision::FollowUp);
        state = s;
        assert_eq!(
            (
                state.as_ref().unwrap().last_count,
                state.as_ref().unwrap().seq
            ),
            (10_000, 2)
        );
        let (d, _) = step(&state, Some(10_000), 200_000);
        assert_eq!(d, Decision::Nothing, "no follow-up without news");
        let (d, s) = step(&state, None, 210_000);
        assert_eq!(d, Decision::Resolve);
        state = s;
        assert!(!state.as_ref().unwrap().firing);
        let (d, _) = step(&state, None, 220_000);
        assert_eq!(d, Decision::Nothing);
        let (d, s) = step(&state, Some(1), 230_000);
        assert_eq!(
            (d, s.unwrap().seq),
            (Decision::Fire, 4),
            "fires again, next sequence"
        );
    }
}
