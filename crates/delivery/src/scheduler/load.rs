//! Getting messages into the scheduler: the startup scan of the spool, and
//! loading one message (envelope and `state/<id>`) when it is announced.

use postern_spool::{QueueId, Spool, StateStore};
use postern_track::{MailEvent, Queued};

use crate::transport::Transport;

use super::{Event, Loaded, Msg, Origin, Scheduler};

impl<T: Transport> Scheduler<T> {
    /// Startup: every message in `msg/` with its state, loaded once; orphaned
    /// state files removed. Blocking (run before the loop, in spawn_blocking).
    pub(crate) fn recovery_scan(spool: &Spool) -> Vec<Loaded> {
        let states = StateStore::new(spool.dir());
        let envelopes = match spool.list() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "delivery: cannot list the spool; nothing recovered");
                return Vec::new();
            }
        };
        let known: std::collections::HashSet<QueueId> =
            envelopes.iter().map(|e| e.queue_id).collect();
        match states.list() {
            Ok(ids) => {
                for id in ids.into_iter().filter(|id| !known.contains(id)) {
                    tracing::info!(queue_id = %id, "delivery: removing orphaned state file");
                    if let Err(e) = states.remove(&id) {
                        tracing::warn!(queue_id = %id, error = %e, "delivery: cannot remove orphaned state");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "delivery: cannot list state/"),
        }
        envelopes
            .into_iter()
            .map(|env| {
                let id = env.queue_id;
                let result = states
                    .load(&id, env.recipients.len())
                    .map(|st| (env, st))
                    .map_err(|e| e.to_string());
                Loaded {
                    id,
                    origin: Origin::Recovery,
                    result,
                }
            })
            .collect()
    }

    pub(super) fn load(&mut self, id: QueueId, origin: Origin) {
        if self.msgs.contains_key(&id) || !self.loading.insert(id) {
            return;
        }
        let spool = self.spool.clone();
        let states = self.states.clone();
        let tx = self.tx.clone();
        self.tracker.spawn_blocking(move || {
            let result = spool
                .envelope(&id)
                .map_err(|e| e.to_string())
                .and_then(|env| {
                    states
                        .load(&id, env.recipients.len())
                        .map(|st| (env, st))
                        .map_err(|e| e.to_string())
                });
            let _ = tx.send(Event::Loaded(Box::new(Loaded { id, origin, result })));
        });
    }

    pub(super) fn on_loaded(&mut self, l: Loaded) {
        self.loading.remove(&l.id);
        let (env, state) = match l.result {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(queue_id = %l.id, error = %e, "delivery: cannot load message");
                return;
            }
        };
        if self.msgs.contains_key(&l.id) {
            return;
        }
        let now = self.clock.now_ms();
        self.log.emit(
            l.id,
            MailEvent::Queued(Queued {
                sender: env.reverse_path.clone(),
                rcpt_count: env.recipients.len(),
                size: env.message_size,
                origin: l.origin.as_str().into(),
            }),
        );
        let msg = Msg::new(env, state, &self.settings, now);
        let due = msg.next_due();
        self.msgs.insert(l.id, msg);
        match due {
            Some(due) => self.due.schedule(l.id, due),
            // Every recipient is final: finish what a crash interrupted.
            None => self.settle(l.id),
        }
    }
}
