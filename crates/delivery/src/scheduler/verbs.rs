//! The operator's verbs on the running queue: hold, release, delete, retry,
//! flush (`crate::control` documents what each one does).

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};

use postern_spool::{Durability, QueueId, RcptStatus, SpoolError, StateRecord};
use postern_track::{MailEvent, QueueAction};

use crate::clock::ms;
use crate::control::{Verb, VerbContext, VerbOutcome, VerbReport};
use crate::route::domain_of;
use crate::transport::Transport;

use super::{Event, Reply, Scheduler, Settled};

impl<T: Transport> Scheduler<T> {
    pub(super) fn control(&mut self, verb: Verb, cx: &VerbContext, reply: Reply) {
        if cx.quarantined_only
            && let Verb::Hold(id) | Verb::Release(id) | Verb::Delete(id) | Verb::Retry(Some(id)) =
                &verb
            && !self.msgs.get(id).is_some_and(super::Msg::is_quarantined)
            && (self.msgs.contains_key(id) || self.unloadable.contains_key(id))
        {
            // Queued but not quarantined — or not loadable, so not known to
            // be quarantined: the quarantine verbs leave it alone.
            reply.send(VerbReport::outcome(VerbOutcome::NotQuarantined));
            return;
        }
        match verb {
            Verb::Hold(id) => self.hold(id, true, "admin", &cx.by, reply),
            Verb::Release(id) => self.hold(id, false, "admin", &cx.by, reply),
            Verb::Delete(id) => self.delete(id, &cx.by, reply),
            Verb::Retry(Some(id)) if self.unloadable.contains_key(&id) => {
                let n = self.retry_loads(Some(id));
                reply.send(VerbReport::done(n, 0, 0));
            }
            Verb::Retry(Some(id)) => {
                let report = match self.refusal(&id) {
                    Some(o) => VerbReport::outcome(o),
                    None if self.is_held(&id) => VerbReport::outcome(VerbOutcome::Held),
                    None => self.retry_where(Some(id), |_| true),
                };
                reply.send(report);
            }
            Verb::Retry(None) => {
                let loads = self.retry_loads(None);
                let mut report = self.retry_where(None, |_| true);
                report.messages += loads;
                reply.send(report);
            }
            Verb::Flush(domain) => {
                let report =
                    self.retry_where(None, |addr| domain_of(addr).eq_ignore_ascii_case(&domain));
                reply.send(report);
            }
        }
    }

    pub(super) fn is_held(&self, id: &QueueId) -> bool {
        self.msgs.get(id).is_some_and(|m| m.state.is_held())
    }

    /// Why a verb cannot act on `id` at all, if it cannot.
    pub(super) fn refusal(&self, id: &QueueId) -> Option<VerbOutcome> {
        let Some(m) = self.msgs.get(id) else {
            return Some(if self.loading.contains(id) {
                VerbOutcome::Loading
            } else {
                VerbOutcome::NotFound
            });
        };
        if m.deleting {
            Some(VerbOutcome::Deleting)
        } else if m.state.is_final() {
            Some(VerbOutcome::Finishing)
        } else {
            None
        }
    }

    /// Makes the deferred recipients that `matches` (by address) due now, in
    /// `only` or in every message that is not held or being deleted.
    pub(super) fn retry_where(
        &mut self,
        only: Option<QueueId>,
        matches: impl Fn(&str) -> bool,
    ) -> VerbReport {
        let now = self.clock.now_ms();
        let ids: Vec<QueueId> = match only {
            Some(id) => vec![id],
            None => self.msgs.keys().copied().collect(),
        };
        let mut report = VerbReport::done(0, 0, 0);
        for id in ids {
            let Some(m) = self.msgs.get_mut(&id) else {
                continue;
            };
            // A settling message is rescheduled by `on_settled` from the
            // times set here.
            if m.state.is_held() || m.deleting {
                continue;
            }
            let mut hit = 0;
            for (i, r) in m.state.rcpts.iter_mut().enumerate() {
                let Some(rcpt) = m.env.recipients.get(i) else {
                    continue;
                };
                if r.status.is_final() || !matches(&rcpt.address) {
                    continue;
                }
                if m.busy[i] {
                    report.in_flight += 1;
                    continue;
                }
                if r.status == RcptStatus::Deferred {
                    r.next_attempt_ms = Some(now);
                }
                // Pending recipients are due at once anyway.
                hit += 1;
            }
            if hit > 0 {
                report.messages += 1;
                report.rcpts += hit;
                if let Some(due) = m.next_due() {
                    self.due.schedule(id, due);
                }
            }
        }
        report
    }

    /// `hold` (`held`) or `release` (`!held`): recorded in `state/<id>`
    /// (fsynced) before the answer. `via`: who (`admin`, `quarantine-expiry`).
    pub(super) fn hold(&mut self, id: QueueId, held: bool, via: &str, by: &str, reply: Reply) {
        if let Some(o) = self.refusal(&id) {
            reply.send(VerbReport::outcome(o));
            return;
        }
        let now = self.clock.now_ms();
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        if m.state.is_held() == held {
            reply.send(VerbReport::outcome(if held {
                VerbOutcome::AlreadyHeld
            } else {
                VerbOutcome::NotHeld
            }));
            return;
        }
        let rec = StateRecord::Hold { held, at_ms: now };
        m.state.apply(&rec);
        if !held {
            // Out of a quarantine: the lifetime counts from now.
            m.expires_ms = m
                .expires_ms
                .max(now.saturating_add(ms(self.settings.max_lifetime)));
        }
        let action = QueueAction {
            rcpts: m.open_addresses(),
            via: via.into(),
            in_flight: 0,
            by: by.into(),
        };
        if held {
            self.due.cancel(&id);
            self.withdraw_waiting_jobs(id);
        }
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        let in_flight = m.busy_count();
        let report = VerbReport::done(1, m.idle_open_rcpts(), in_flight);
        self.log.emit(
            id,
            if held {
                MailEvent::Held(QueueAction {
                    in_flight,
                    ..action
                })
            } else {
                MailEvent::Released(action)
            },
        );
        if !held && let Some(due) = m.next_due() {
            self.due.schedule(id, due);
        }
        m.has_file = true;
        m.persisting += 1;
        let states = self.states.clone();
        let lock = Arc::clone(&m.file_lock);
        let tx = self.tx.clone();
        self.tracker.spawn_blocking(move || {
            let result = {
                let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
                states.append(&id, &[rec], Durability::Sync)
            };
            let mut report = report;
            if let Err(e) = result {
                tracing::error!(queue_id = %id, error = %e,
                    "delivery: cannot record the hold in state/ (a restart undoes it)");
                report.error = Some(format!("not recorded on disk (a restart undoes it): {e}"));
            }
            // The scheduler hears of it before the caller does, so the
            // caller's next request sees the new state.
            let _ = tx.send(Event::Persisted(id));
            reply.send(report);
        });
    }

    /// Takes back the jobs of `id` that wait for a connection slot (not
    /// started: nothing was attempted). Returns how many.
    pub(super) fn withdraw_waiting_jobs(&mut self, id: QueueId) -> usize {
        let mut taken = Vec::new();
        for d in self.dests.values_mut() {
            let mut keep = VecDeque::with_capacity(d.pending.len());
            for job in d.pending.drain(..) {
                if job.queue_id == id {
                    taken.push(job);
                } else {
                    keep.push_back(job);
                }
            }
            d.pending = keep;
        }
        let n = taken.len();
        if let Some(m) = self.msgs.get_mut(&id) {
            for job in taken {
                for i in job.rcpts {
                    if let Some(b) = m.busy.get_mut(i) {
                        *b = false;
                    }
                }
                m.jobs_out = m.jobs_out.saturating_sub(1);
            }
        }
        let idle: Vec<Arc<str>> = self
            .dests
            .iter()
            .filter(|(_, d)| d.active == 0 && d.pending.is_empty() && !d.blocked)
            .map(|(k, _)| Arc::clone(k))
            .collect();
        for k in idle {
            self.dests.remove(&k);
        }
        n
    }

    /// `delete`: see `control.rs`.
    pub(super) fn delete(&mut self, id: QueueId, by: &str, reply: Reply) {
        if self.unloadable.contains_key(&id) {
            self.delete_unloadable(id, by, reply);
            return;
        }
        // Gone, or already being removed: nothing left to delete.
        if let Some(o) = self.refusal(&id) {
            reply.send(VerbReport::outcome(o));
            return;
        }
        self.due.cancel(&id);
        self.withdraw_waiting_jobs(id);
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        m.deleting = true;
        by.clone_into(&mut m.delete_by);
        let in_flight = m.busy_count();
        m.delete_in_flight = in_flight;
        if m.jobs_out > 0 {
            // The attempt ends and is recorded first (`finish_delete`).
            reply.send(VerbReport {
                outcome: VerbOutcome::Pending,
                messages: 1,
                rcpts: m.idle_open_rcpts(),
                in_flight,
                error: None,
            });
        } else {
            // At most a short wait for a state write or a settle in progress.
            m.delete_reply = reply.0;
            self.settle(id);
        }
    }

    /// During shutdown: a deleting message whose last attempt just ended is
    /// removed now rather than after the restart.
    pub(super) fn finish_delete(&mut self, id: QueueId) {
        if self.msgs.get(&id).is_some_and(|m| m.deleting) {
            self.settle(id);
        }
    }

    /// The removal of a deleted message (no job or write outstanding).
    pub(super) fn remove_deleted(&mut self, id: QueueId) {
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        m.settling = true;
        self.due.cancel(&id);
        let action = QueueAction {
            rcpts: m.open_addresses(),
            via: m.delete_via.into(),
            in_flight: m.delete_in_flight,
            by: m.delete_by.clone(),
        };
        let reply = Reply(m.delete_reply.take());
        let spool = self.spool.clone();
        let lock = Arc::clone(&m.file_lock);
        let log = self.log.clone();
        let tx = self.tx.clone();
        self.tracker.spawn_blocking(move || {
            let rcpts = action.rcpts.len();
            let result = {
                let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
                spool.remove(&id)
            };
            let error = match result {
                Ok(()) | Err(SpoolError::NotFound(_)) => None,
                // Unlinked but perhaps not durably (spool docs §3): gone from
                // the queue all the same.
                Err(e) if matches!(spool.envelope(&id), Err(SpoolError::NotFound(_))) => {
                    tracing::warn!(queue_id = %id, error = %e,
                        "delivery: removal of a deleted message may not be durable");
                    None
                }
                Err(e) => Some(e.to_string()),
            };
            let removed = error.is_none();
            if removed {
                log.emit(id, MailEvent::Deleted(action));
            } else {
                tracing::error!(queue_id = %id, error = ?error, "delivery: cannot delete the message");
            }
            // The scheduler hears of it before the caller does.
            let _ = tx.send(Event::Settled(Box::new(Settled {
                id,
                records: Vec::new(),
                new_messages: Vec::new(),
                removed,
                retry: false,
                delete_failed: !removed,
            })));
            reply.send(match error {
                None => VerbReport::done(1, rcpts, 0),
                Some(e) => VerbReport {
                    error: Some(e),
                    ..VerbReport::outcome(VerbOutcome::Failed)
                },
            });
        });
    }

    /// `delete` of a message that could not be loaded: the operator gives up
    /// on it. Its file (and state) are removed without a DSN; its recipients
    /// are unknown, so the `deleted` event names none.
    fn delete_unloadable(&mut self, id: QueueId, by: &str, reply: Reply) {
        let by = by.to_owned();
        self.due.cancel(&id);
        let spool = self.spool.clone();
        let log = self.log.clone();
        let tx = self.tx.clone();
        self.tracker.spawn_blocking(move || {
            let error = match spool.remove(&id) {
                Ok(()) | Err(SpoolError::NotFound(_)) => None,
                Err(e) => Some(e.to_string()),
            };
            let removed = error.is_none();
            if removed {
                log.emit(
                    id,
                    MailEvent::Deleted(QueueAction {
                        rcpts: Vec::new(),
                        via: "admin".into(),
                        in_flight: 0,
                        by,
                    }),
                );
            } else {
                tracing::error!(queue_id = %id, error = ?error, "delivery: cannot delete the message");
            }
            let _ = tx.send(Event::Settled(Box::new(Settled {
                id,
                records: Vec::new(),
                new_messages: Vec::new(),
                removed,
                retry: false,
                delete_failed: !removed,
            })));
            reply.send(match error {
                None => VerbReport::done(1, 0, 0),
                Some(e) => VerbReport {
                    error: Some(e),
                    ..VerbReport::outcome(VerbOutcome::Failed)
                },
            });
        });
    }
}
