//! Getting messages into the scheduler: the startup scan of the spool, and
//! loading one message (envelope and `state/<id>`) when it is announced.
//!
//! A load that fails (an I/O error reading the message or its state) is not
//! the end of the message: it is remembered as [`Unloadable`], shown by
//! `postern queue list` with the error, and loaded again after a backoff
//! ([`LOAD_RETRY_FIRST`] doubling up to [`LOAD_RETRY_MAX`]), or at once on
//! `postern queue retry`. Only a message whose file is gone is forgotten.

use std::time::Duration;

use postern_spool::{QueueId, Spool, SpoolError, StateStore};
use postern_track::{MailEvent, Queued};

use crate::clock::ms;
use crate::control::LoadFailure;
use crate::transport::Transport;

use super::{Event, Loaded, Msg, Origin, Scheduler};

/// First retry of a failed load.
pub(super) const LOAD_RETRY_FIRST: Duration = Duration::from_secs(10);
/// Longest wait between retries of a failed load.
pub(super) const LOAD_RETRY_MAX: Duration = Duration::from_mins(10);

/// A message whose load failed, waiting for its next try.
pub(super) struct Unloadable {
    pub(super) origin: Origin,
    pub(super) error: String,
    pub(super) attempts: u32,
    pub(super) next_ms: u64,
}

/// The wait before load retry number `attempts` (1 = after the first failure).
pub(super) fn load_retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    LOAD_RETRY_FIRST
        .saturating_mul(1u32 << doublings)
        .min(LOAD_RETRY_MAX)
}

impl<T: Transport> Scheduler<T> {
    /// Startup: every message in `msg/` with its state, loaded once; orphaned
    /// state files removed. Blocking (run before the loop, in spawn_blocking).
    pub(crate) fn recovery_scan(spool: &Spool) -> Vec<Loaded> {
        let states = StateStore::new(spool.dir());
        let listing = match spool.scan() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "delivery: cannot list the spool; nothing recovered");
                return Vec::new();
            }
        };
        let envelopes = listing.envelopes;
        // Recovery moved damaged files aside when the spool opened, so a file
        // that cannot be read now most likely met an I/O error: read it again
        // for a typed error, and let the scheduler retry it (not forget it).
        let mut unreadable = Vec::new();
        for (name, reason) in listing.invalid {
            let Ok(id) = QueueId::parse(&name) else {
                tracing::warn!(file = %name, %reason, "delivery: ignoring a file in msg/ that is not a queue id");
                continue;
            };
            tracing::warn!(queue_id = %id, %reason, "delivery: cannot read a queued message; will retry");
            unreadable.push(Loaded {
                id,
                origin: Origin::Recovery,
                result: spool
                    .envelope(&id)
                    .and_then(|env| states.load(&id, env.recipients.len()).map(|st| (env, st))),
            });
        }
        let known: std::collections::HashSet<QueueId> = envelopes
            .iter()
            .map(|e| e.queue_id)
            .chain(unreadable.iter().map(|l| l.id))
            .collect();
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
                let result = states.load(&id, env.recipients.len()).map(|st| (env, st));
                Loaded {
                    id,
                    origin: Origin::Recovery,
                    result,
                }
            })
            .chain(unreadable)
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
                .and_then(|env| states.load(&id, env.recipients.len()).map(|st| (env, st)));
            let _ = tx.send(Event::Loaded(Box::new(Loaded { id, origin, result })));
        });
    }

    /// A message the smtpd has just committed: its envelope is the one on
    /// disk and it has no `state/<id>` yet (a fresh queue id), so it is
    /// queued as if loaded, without a blocking read.
    pub(super) fn on_committed(&mut self, env: postern_spool::Envelope, origin: Origin) {
        let id = env.queue_id;
        if self.msgs.contains_key(&id) || self.loading.contains(&id) {
            return;
        }
        self.on_loaded(Loaded {
            id,
            origin,
            result: Ok((env, None)),
        });
    }

    pub(super) fn on_loaded(&mut self, l: Loaded) {
        self.loading.remove(&l.id);
        let (env, state) = match l.result {
            Ok(x) => x,
            Err(SpoolError::NotFound(_)) => {
                // Removed meanwhile (`postern queue delete` offline, an operator).
                if self.unloadable.remove(&l.id).is_some() {
                    self.due.cancel(&l.id);
                    tracing::info!(queue_id = %l.id, "delivery: a message that could not be loaded is gone");
                }
                return;
            }
            Err(e) => {
                self.load_failed(l.id, l.origin, &e);
                return;
            }
        };
        if self.unloadable.remove(&l.id).is_some() {
            tracing::info!(queue_id = %l.id, "delivery: loaded a message that could not be loaded before");
        }
        if self.msgs.contains_key(&l.id) {
            return;
        }
        let now = self.clock.now_ms();
        self.log.emit(
            l.id,
            MailEvent::Queued(Queued {
                sender: env.reverse_path.clone(),
                rcpt_count: env.recipients.len(),
                size: env.wire_size(),
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

impl<T: Transport> Scheduler<T> {
    /// Remembers a failed load and schedules the next try.
    fn load_failed(&mut self, id: QueueId, origin: Origin, err: &SpoolError) {
        let now = self.clock.now_ms();
        let u = self.unloadable.entry(id).or_insert(Unloadable {
            origin,
            error: String::new(),
            attempts: 0,
            next_ms: now,
        });
        u.attempts = u.attempts.saturating_add(1);
        u.error = err.to_string();
        let delay = load_retry_delay(u.attempts);
        u.next_ms = now.saturating_add(ms(delay));
        tracing::error!(queue_id = %id, error = %err, attempts = u.attempts,
            retry_in_secs = delay.as_secs(),
            "delivery: cannot load message; will retry (postern queue list shows it)");
        self.due.schedule(id, u.next_ms);
    }

    /// Every message whose load failed, sorted by queue id.
    pub(super) fn load_failures(&self) -> Vec<LoadFailure> {
        let mut out: Vec<LoadFailure> = self
            .unloadable
            .iter()
            .map(|(id, u)| LoadFailure {
                queue_id: *id,
                error: u.error.clone(),
                attempts: u.attempts,
                next_attempt_ms: u.next_ms,
            })
            .collect();
        out.sort_by_key(|f| f.queue_id);
        out
    }

    /// `retry`: load now the messages whose load failed (`only`: that one).
    /// Returns how many.
    pub(super) fn retry_loads(&mut self, only: Option<QueueId>) -> usize {
        let ids: Vec<(QueueId, Origin)> = self
            .unloadable
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o == **id))
            .map(|(id, u)| (*id, u.origin))
            .collect();
        for (id, origin) in &ids {
            self.due.cancel(id);
            self.load(*id, *origin);
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_retries_back_off_to_a_cap() {
        assert_eq!(load_retry_delay(1), LOAD_RETRY_FIRST);
        assert_eq!(load_retry_delay(2), LOAD_RETRY_FIRST * 2);
        assert_eq!(load_retry_delay(4), LOAD_RETRY_FIRST * 8);
        assert_eq!(load_retry_delay(7), LOAD_RETRY_MAX);
        assert_eq!(load_retry_delay(u32::MAX), LOAD_RETRY_MAX);
    }
}
