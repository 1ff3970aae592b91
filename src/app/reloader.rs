//! Applying a reload (`reload` says what starts one): the file is loaded and
//! checked as a whole (mappings compiled); an invalid one is refused and the
//! running configuration stays, with the reason logged, counted
//! (`ferry_config_reloads_total{result}`) and shown by the admin API. A
//! valid one goes to the workers first (`Deliverer::reload`: new clients,
//! breakers and budgets kept by system name, loops restarted between steps)
//! and then to the HTTP handlers; the listener and requests in flight are
//! never touched.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::deliver::Deliverer;
use crate::reload::{self, LastReload, Trigger};
use crate::state::AppState;

pub struct Reloader {
    pub(super) state: AppState,
    pub(super) deliverer: Arc<Deliverer>,
}

impl Reloader {
    /// Reloads on each trigger (after the save settles) and when the poll
    /// sees the files' content change, until `shutdown`.
    pub async fn run(self, mut triggers: mpsc::Receiver<Trigger>, shutdown: CancellationToken) {
        let mut poll = tokio::time::interval(reload::POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            let trigger = tokio::select! {
                _ = shutdown.cancelled() => return,
                t = triggers.recv() => match t {
                    Some(t) => t,
                    None => return,
                },
                _ = poll.tick() => Trigger::Files,
            };
            if trigger == Trigger::Files {
                // Editors write in steps: let the save finish.
                tokio::time::sleep(reload::DEBOUNCE).await;
                while let Ok(t) = triggers.try_recv() {
                    if t == Trigger::Asked {
                        self.reload(Trigger::Asked).await;
                    }
                }
            }
            self.reload(trigger).await;
        }
    }

    /// One reload from the config file; `None` when there is no file to
    /// reload from, or (for file events) when its content did not change
    /// since the last attempt.
    pub async fn reload(&self, trigger: Trigger) -> Option<LastReload> {
        let reloads = self.state.reloads.get()?.clone();
        let running = self.state.config();
        if !reloads.changed(&running) && trigger == Trigger::Files {
            return None;
        }
        let file = reloads.file().to_owned();
        let loaded = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || Config::load(&file)).await
        };
        let outcome = match loaded {
            Ok(Ok(new)) => {
                let hash = reload::fingerprint(&file, &new);
                if hash == reloads.running_hash() {
                    Ok((None, Vec::new()))
                } else {
                    self.apply(new, &running)
                        .map(|restart| (Some(hash), restart))
                }
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("loading the configuration stopped: {e}")),
        };
        let mut last = LastReload {
            at_ms: self.state.clock.now_ms(),
            result: "unchanged",
            reason: None,
            restart_needed: Vec::new(),
        };
        let applied = match outcome {
            Ok((Some(hash), restart_needed)) => {
                last.result = "applied";
                last.restart_needed = restart_needed;
                if last.restart_needed.is_empty() {
                    tracing::info!(file = %file.display(), "Configuration reloaded.");
                } else {
                    tracing::warn!(file = %file.display(), needs_restart = ?last.restart_needed, "Configuration reloaded; these changed settings take effect only after a restart.");
                }
                Some(hash)
            }
            Ok((None, _)) => {
                tracing::info!(file = %file.display(), "Configuration reload asked for; nothing changed.");
                None
            }
            Err(reason) => {
                tracing::error!(file = %file.display(), %reason, "Configuration reload refused; the running configuration stays.");
                last.result = "refused";
                last.reason = Some(reason);
                None
            }
        };
        reloads.record(last.clone(), applied);
        self.state.metrics.config_reload(last.result);
        Some(last)
    }

    /// The workers, then the handlers, on `new`; the settings that wait
    /// for a restart.
    fn apply(&self, new: Config, running: &Config) -> Result<Vec<&'static str>, String> {
        let restart = reload::restart_needed(running, &new);
        // Every `{ store = ... }` credential must be in the store already.
        self.state
            .vault
            .check(&new)
            .map_err(|e| crate::model::Chain(&e).to_string())?;
        let new = Arc::new(new);
        self.deliverer
            .reload(new.clone())
            .map_err(|e| crate::model::Chain(&e).to_string())?;
        self.state.config.send_replace(new);
        Ok(restart)
    }
}
