//! Applying a job's results (statuses, events, `state/<id>` records) and
//! settling a message: DSNs due, removal when every recipient is final, or the
//! next due time.

use std::sync::{Arc, PoisonError};

use postern_spool::{Durability, QueueId, RcptStatus, SpoolError, StateRecord};
use postern_track::{Expired, MailEvent, RcptOutcome};

use crate::cause;
use crate::clock::{ms, rfc3339};
use crate::control::VerbReport;
use crate::dsn::{self, Action};
use crate::transport::{JobOutcome, RcptResult, Transport, Verdict};

use super::{Event, Origin, SETTLE_RETRY, Scheduler, SettleJob, Settled, human_duration, one_line};

impl<T: Transport> Scheduler<T> {
    /// Applies one job's results: new statuses, events, state records; then
    /// persists them and settles the message.
    pub(super) fn apply_outcome(&mut self, outcome: JobOutcome, settle_after: bool) {
        let JobOutcome { job, mut results } = outcome;
        let id = job.queue_id;
        let now = self.clock.now_ms();
        let settings = Arc::clone(&self.settings);
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        m.jobs_out = m.jobs_out.saturating_sub(1);
        let mut records = Vec::with_capacity(job.rcpts.len());
        let mut expired = Vec::new();
        let mut any_final = false;
        for &i in &job.rcpts {
            if i >= m.busy.len() {
                continue;
            }
            m.busy[i] = false;
            let pos = results.iter().position(|r| r.rcpt == i);
            let res = match pos {
                Some(p) => results.swap_remove(p),
                None => RcptResult::deferred(
                    i,
                    cause::internal("the transport returned no result for this recipient"),
                ),
            };
            let prev = &m.state.rcpts[i];
            if prev.status.is_final() {
                continue;
            }
            let attempts = prev.attempts + 1;
            let address = m.env.recipients[i].address.clone();
            let reply = res.reply.as_deref().map(one_line);
            let mut cause_info = res.cause.clone();
            let (status, next, class) = match res.verdict {
                Verdict::Delivered => (RcptStatus::Delivered, None, 2),
                Verdict::Bounced => (RcptStatus::Bounced, None, 5),
                Verdict::Deferred if now >= m.expires_ms => {
                    let last = reply
                        .clone()
                        .or_else(|| cause_info.as_ref().map(|c| c.summary.clone()));
                    cause_info = Some(cause::expired(
                        &human_duration(settings.max_lifetime),
                        last.as_deref(),
                    ));
                    expired.push(address.clone());
                    (RcptStatus::Bounced, None, 4)
                }
                Verdict::Deferred => {
                    let next = now
                        .saturating_add(ms(settings.retry_delay(attempts)))
                        .min(m.expires_ms.max(now));
                    (RcptStatus::Deferred, Some(next), 4)
                }
            };
            m.remote_dsn[i] = res.remote_dsn;
            m.final_delivery[i] = res.final_delivery;
            any_final |= status.is_final();
            let rec = StateRecord::Rcpt {
                rcpt: u32::try_from(i).unwrap_or(u32::MAX),
                status,
                attempts,
                next_attempt_ms: next,
                reply: reply.clone(),
                cause: cause_info.as_ref().map(|c| c.id.clone()),
                mx: (!res.mx.is_empty()).then(|| res.mx.clone()),
                at_ms: now,
            };
            m.state.apply(&rec);
            records.push(rec);
            let ev = RcptOutcome {
                rcpt: address,
                mx: res.mx,
                ip: res.ip,
                status: dsn::status_for(
                    reply.as_deref(),
                    cause_info.as_ref().map(|c| c.id.as_str()),
                    class,
                ),
                reply,
                cause: cause_info,
                tls: res.tls,
                attempts,
                next_attempt: next.map(rfc3339),
                age_ms: Some(now.saturating_sub(m.received_ms)),
            };
            self.log.emit(
                id,
                match status {
                    RcptStatus::Delivered => MailEvent::Delivered(ev),
                    RcptStatus::Deferred => MailEvent::Deferred(ev),
                    _ => MailEvent::Bounced(ev),
                },
            );
        }
        if !expired.is_empty() {
            self.log.emit(
                id,
                MailEvent::Expired(Expired {
                    rcpts: expired,
                    age_secs: now.saturating_sub(m.received_ms) / 1000,
                    lifetime_secs: settings.max_lifetime.as_secs(),
                }),
            );
        }
        if records.is_empty() {
            if settle_after {
                self.settle(id);
            }
            return;
        }
        // Fast path: the removal is the record (module docs).
        let fast = !m.has_file
            && m.jobs_out == 0
            && m.state.is_final()
            && m.state
                .rcpts
                .iter()
                .all(|r| r.status == RcptStatus::Delivered);
        if fast && !self.needs_success_dsn(id) {
            if settle_after {
                self.settle(id);
            }
            return;
        }
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        m.has_file = true;
        m.persisting += 1;
        let durability = if any_final {
            Durability::Sync
        } else {
            Durability::Lazy
        };
        let states = self.states.clone();
        let lock = Arc::clone(&m.file_lock);
        let tx = self.tx.clone();
        self.tracker.spawn_blocking(move || {
            let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = states.append(&id, &records, durability) {
                tracing::error!(queue_id = %id, error = %e,
                    "delivery: cannot record outcomes in state/ (a restart may repeat them)");
            }
            let _ = tx.send(Event::Persisted(id));
        });
    }

    pub(super) fn needs_success_dsn(&self, id: QueueId) -> bool {
        let Some(m) = self.msgs.get(&id) else {
            return false;
        };
        !m.env.reverse_path.is_empty()
            && m.state.rcpts.iter().enumerate().any(|(i, r)| {
                r.status == RcptStatus::Delivered
                    && !r.reported
                    && !m.remote_dsn[i]
                    && m.notify_of(i).success
            })
    }

    /// When no job or write is outstanding for `id`: queue the DSNs that are
    /// due, remove the message if every recipient is final, else schedule it.
    pub(super) fn settle(&mut self, id: QueueId) {
        let now = self.clock.now_ms();
        let settings = Arc::clone(&self.settings);
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        if m.jobs_out > 0 || m.persisting > 0 || m.settling {
            return;
        }
        if m.deleting {
            self.remove_deleted(id);
            return;
        }
        let null_sender = m.env.reverse_path.is_empty();
        // Recipients whose final outcome has not been reported yet.
        let mut report: Vec<(usize, Action)> = Vec::new();
        let mut suppressed: Vec<usize> = Vec::new();
        for (i, r) in m.state.rcpts.iter().enumerate() {
            if !r.status.is_final() || r.reported {
                continue;
            }
            let n = m.notify_of(i);
            match r.status {
                RcptStatus::Bounced if n.failure => report.push((i, Action::Failed)),
                // Handed to another SMTP server that did not take over DSN
                // duty: `relayed` (RFC 3461 §6.2.2); put into a local
                // mailbox (Maildir): `delivered` (RFC 3464 §2.3.3).
                RcptStatus::Delivered if n.success && !m.remote_dsn[i] => {
                    let action = if m.final_delivery[i] {
                        Action::Delivered
                    } else {
                        Action::Relayed
                    };
                    report.push((i, action));
                }
                RcptStatus::Bounced => suppressed.push(i),
                _ => {}
            }
        }
        // The one delay warning (not while held: the operator is holding it).
        let mut delayed: Vec<usize> = Vec::new();
        if let Some(warn) = settings.delay_warning
            && !m.state.delay_notice_sent
            && !m.state.is_held()
            && now.saturating_sub(m.received_ms) >= ms(warn)
        {
            delayed = m
                .state
                .rcpts
                .iter()
                .enumerate()
                .filter(|(i, r)| r.status == RcptStatus::Deferred && m.notify_of(*i).delay)
                .map(|(i, _)| i)
                .collect();
        }
        let all_final = m.state.is_final();
        let nothing_to_do = report.is_empty() && suppressed.is_empty() && delayed.is_empty();
        if nothing_to_do && !all_final {
            if let Some(due) = m.next_due() {
                self.due.schedule(id, due);
            }
            return;
        }
        m.settling = true;
        self.due.cancel(&id);
        if nothing_to_do {
            // Every recipient final and reported: only the removal is left.
            self.remove_settled(id);
            return;
        }
        self.dsn_counter += 1;
        let job = SettleJob {
            id,
            env: Arc::clone(&m.env),
            state: m.state.clone(),
            received_ms: m.received_ms,
            expires_ms: m.expires_ms,
            report,
            suppressed,
            delayed,
            remove: all_final,
            null_sender,
            unique: format!("{id}.{}", self.dsn_counter),
            now,
            hostname: settings.hostname.clone(),
            badmail_dir: settings.badmail_dir.clone(),
            spool: self.spool.clone(),
            states: self.states.clone(),
            lock: Arc::clone(&m.file_lock),
            log: self.log.clone(),
        };
        let tx = self.tx.clone();
        self.tracker.spawn_blocking(move || {
            let settled = job.run();
            let _ = tx.send(Event::Settled(Box::new(settled)));
        });
    }

    /// The removal of a message with nothing left to report, without a
    /// blocking wait or a thread hand-off: the spool's committer takes the
    /// file away and reports once the removal is durable (its directory fsync
    /// shared with the commits in flight: `Spool::remove_then`). What
    /// `SettleJob::run` does with `remove` and nothing else.
    fn remove_settled(&self, id: QueueId) {
        let token = self.tracker.token();
        let tx = self.tx.clone();
        self.spool.remove_then(&id, move |res| {
            if let Err(e) = res
                && !matches!(e, SpoolError::NotFound(_))
            {
                // Taken away but maybe not durable (spool docs §3): not
                // listed any more either way; forget it.
                tracing::error!(queue_id = %id, error = %e,
                        "delivery: removal of a finished message may not be durable");
            }
            let _ = tx.send(Event::Settled(Box::new(Settled {
                id,
                records: Vec::new(),
                new_messages: Vec::new(),
                removed: true,
                retry: false,
                delete_failed: false,
            })));
            drop(token);
        });
    }

    pub(super) fn on_settled(&mut self, s: &Settled) {
        for id in &s.new_messages {
            self.load(*id, Origin::Dsn);
        }
        if s.removed {
            self.unloadable.remove(&s.id);
            if let Some(mut m) = self.msgs.remove(&s.id)
                && let Some(tx) = m.delete_reply.take()
            {
                // Finished by a settle (every recipient final) while a delete
                // waited: it is gone either way.
                let _ = tx.send(VerbReport::done(1, 0, 0));
            }
            self.due.cancel(&s.id);
            return;
        }
        if let Some(u) = self.unloadable.get(&s.id) {
            // A delete of an unloadable message failed: back to its retries.
            let next = u.next_ms;
            self.due.schedule(s.id, next);
            return;
        }
        let now = self.clock.now_ms();
        let Some(m) = self.msgs.get_mut(&s.id) else {
            return;
        };
        m.settling = false;
        for rec in &s.records {
            m.state.apply(rec);
        }
        if s.delete_failed {
            m.deleting = false;
        } else if m.deleting {
            self.settle(s.id);
            return;
        }
        if s.retry {
            let retry_at = now.saturating_add(ms(SETTLE_RETRY));
            let due = m.next_due().map_or(retry_at, |d| d.min(retry_at));
            self.due.schedule(s.id, due);
        } else if let Some(due) = m.next_due() {
            self.due.schedule(s.id, due);
        }
    }
}
