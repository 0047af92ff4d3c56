//! The queue manager: one task that owns every queued message's delivery state,
//! decides what is due, hands jobs to connection slots within the
//! per-destination and global limits, applies outcomes (retry with backoff,
//! bounce, expiry), records them durably in `state/<id>`, queues DSNs, and
//! removes finished messages.
//!
//! ```text
//!  notify(id) / recovery scan ─▶ load envelope + state ─▶ DueQueue (min-heap)
//!                                                          │ due
//!                     per-destination FIFO ◀── group recipients by route
//!                          │ slot free (≤ per-destination, ≤ total)
//!                          ▼
//!                  Transport::run(job, feed) ── outcome ─▶ apply: delivered / deferred
//!                          ▲  next job, same destination     (backoff, lifetime) / bounced
//!                          └──────────────────────────────── state/<id> append (fsync if final)
//!                                                          ▼
//!                                  settle: DSN (failure / delay / success) ─▶ spool commit
//!                                          all final ─▶ Spool::remove
//! ```
//!
//! Everything blocking (spool reads, state appends, DSN commits, removal) runs
//! in `spawn_blocking` and reports back as an [`Event`]; the scheduler task
//! itself never waits on the disk or the network. No operation scans the queue:
//! picking due work is a heap pop, and applying an outcome touches one message.
//!
//! The operator's verbs (`hold`, `release`, `delete`, `retry`, `flush`; see
//! [`crate::control`]) arrive as events too. A held or deleting message is
//! never in the heap (`Msg::next_due` is `None`); jobs it has waiting for a
//! slot are withdrawn, and attempts under way end and are recorded first.
//!
//! # Durability rules (`docs/spool-format.md` §10)
//! - A final outcome (delivered, bounced) is fsynced to `state/<id>` before the
//!   scheduler acts on it (queues a DSN, removes the message). Deferrals are
//!   written without fsync: losing one only means an earlier retry.
//! - Fast path: when one job ends a message with every recipient delivered and
//!   nothing recorded before, the removal itself (whose directory fsync is the
//!   commit point) is the record; no state file is written.
//! - The duplicate window: between the remote `250` and that fsync, a crash
//!   makes us deliver again after restart. It cannot be closed (RFC 1047); it is
//!   kept to one fsync.
//!
//! # Security
//! Envelopes and replies are untrusted text, only stored and logged. A DSN is
//! never sent for a message from the null sender (RFC 5321 §4.5.5); such
//! messages go to the badmail folder when they fail.
//!
//! # Standards
//! RFC 5321 §4.5.4.1 (retry strategy, give-up time), RFC 3461 (NOTIFY, RET,
//! ENVID, ORCPT), RFC 3464 (DSN format), RFC 5321 §4.5.5 (null sender).

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postern_spool::{
    DsnKind, Durability, Envelope, EnvelopeRecipient, MailParams, MessageState, QueueId,
    RcptStatus, Receipt, Spool, SpoolError, StateRecord, StateStore,
};
use postern_track::{
    Badmail, CauseInfo, DsnSent, Expired, MailEvent, MailLog, QueueAction, Queued, RcptOutcome,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cause;
use crate::clock::{Clock, ms, parse_rfc3339_ms, rfc3339};
use crate::control::{MessageView, Verb, VerbOutcome, VerbReport};
use crate::dsn::{self, Action, DsnInput, DsnRecipient, Returned};
use crate::route::{Route, Router, domain_of};
use crate::settings::DeliverySettings;
use crate::transport::{Completion, Job, JobFeed, JobOutcome, RcptResult, Transport, Verdict};

/// The scheduler never sleeps longer than this, so a wall clock that steps is
/// noticed within a minute.
const MAX_SLEEP: Duration = Duration::from_mins(1);
/// After a failed DSN commit or removal, try settling the message again after
/// this long.
const SETTLE_RETRY: Duration = Duration::from_mins(1);
/// Replies stored in state files and DSNs are cut to this many characters.
const MAX_REPLY: usize = 512;

/// Where a message came from, for the `queued` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Accepted by the smtpd.
    Smtp,
    /// A DSN we generated.
    Dsn,
    /// Found by the startup scan.
    Recovery,
    /// Dropped into the pickup folder.
    Pickup,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Smtp => "smtp",
            Origin::Dsn => "dsn",
            Origin::Recovery => "recovery",
            Origin::Pickup => "pickup",
        }
    }
}

/// Counts for `postern queue` summaries and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Messages known to the scheduler.
    pub messages: usize,
    /// Recipients not attempted yet (held messages' excluded).
    pub pending: usize,
    /// Recipients waiting for a retry (held messages' excluded).
    pub deferred: usize,
    /// Messages the operator holds.
    pub held_messages: usize,
    /// Recipients of held messages not final and not being attempted.
    pub held: usize,
    /// Recipients being attempted now.
    pub in_flight: usize,
    /// Open connection slots.
    pub connections: usize,
    /// Messages in the due-time heap.
    pub scheduled: usize,
    /// Jobs waiting for a connection slot.
    pub waiting_jobs: usize,
}

/// Everything the scheduler task reacts to.
pub(crate) enum Event {
    Notify(QueueId, Origin),
    Loaded(Box<Loaded>),
    Done(Box<Completion>),
    Persisted(QueueId),
    Settled(Box<Settled>),
    /// An operator's command; the report goes to the sender, if any.
    Control(Verb, Option<oneshot::Sender<VerbReport>>),
    /// The messages in the queue (one, with `Some`).
    Inspect(Option<QueueId>, oneshot::Sender<Vec<MessageView>>),
    Snapshot(oneshot::Sender<QueueSnapshot>),
}

pub(crate) struct Loaded {
    id: QueueId,
    origin: Origin,
    result: Result<(Envelope, Option<MessageState>), String>,
}

pub(crate) struct Settled {
    id: QueueId,
    /// Records now durable (applied to the in-memory state).
    records: Vec<StateRecord>,
    /// DSNs queued: notify the scheduler of them.
    new_messages: Vec<QueueId>,
    removed: bool,
    /// Something failed; settle again later.
    retry: bool,
    /// A delete could not remove the message: it stays queued.
    delete_failed: bool,
}

/// Where the report of a verb goes, if anyone waits for it.
pub(crate) struct Reply(Option<oneshot::Sender<VerbReport>>);

impl Reply {
    fn send(self, report: VerbReport) {
        if let Some(tx) = self.0 {
            let _ = tx.send(report);
        }
    }
}

/// One queued message.
struct Msg {
    env: Arc<Envelope>,
    state: MessageState,
    has_file: bool,
    received_ms: u64,
    expires_ms: u64,
    busy: Vec<bool>,
    /// Success DSN duty passed on to the next hop (in memory only).
    remote_dsn: Vec<bool>,
    /// Delivered into a local mailbox (in memory only; after a restart an
    /// unreported success says `relayed`, the weaker claim).
    final_delivery: Vec<bool>,
    jobs_out: usize,
    persisting: usize,
    settling: bool,
    /// The operator deleted it: removed (no DSN) once no job or write is
    /// outstanding.
    deleting: bool,
    /// Attempts under way when the delete came (for the `deleted` event).
    delete_in_flight: usize,
    /// Who waits for the removal's report (a delete that did not have to wait
    /// for an attempt).
    delete_reply: Option<oneshot::Sender<VerbReport>>,
    /// Serialises appends to `state/<id>` from blocking tasks.
    file_lock: Arc<Mutex<()>>,
}

impl Msg {
    fn new(
        env: Envelope,
        state: Option<MessageState>,
        settings: &DeliverySettings,
        now: u64,
    ) -> Self {
        let n = env.recipients.len();
        let has_file = state.is_some();
        let state = state.unwrap_or_else(|| MessageState::new(n));
        let received_ms = parse_rfc3339_ms(&env.received_at)
            .or_else(|| Some(env.queue_id.timestamp_micros() / 1000))
            .filter(|t| *t > 0)
            .unwrap_or(now);
        Self {
            expires_ms: received_ms.saturating_add(ms(settings.max_lifetime)),
            env: Arc::new(env),
            state,
            has_file,
            received_ms,
            busy: vec![false; n],
            remote_dsn: vec![false; n],
            final_delivery: vec![false; n],
            jobs_out: 0,
            persisting: 0,
            settling: false,
            deleting: false,
            delete_in_flight: 0,
            delete_reply: None,
            file_lock: Arc::new(Mutex::new(())),
        }
    }

    /// The earliest time a not-busy, non-final recipient is due; `None` also
    /// while the message is held or being deleted (never scheduled then).
    fn next_due(&self) -> Option<u64> {
        if self.state.is_held() || self.deleting {
            return None;
        }
        self.state
            .rcpts
            .iter()
            .zip(&self.busy)
            .filter(|(r, busy)| !**busy && !r.status.is_final())
            .map(|(r, _)| match r.status {
                RcptStatus::Deferred => r.next_attempt_ms.unwrap_or(0),
                _ => 0,
            })
            .min()
    }

    fn notify_of(&self, i: usize) -> Notify {
        Notify::parse(self.env.recipients.get(i).and_then(|r| r.notify.as_deref()))
    }

    /// Recipients not final and not being attempted.
    fn idle_open_rcpts(&self) -> usize {
        self.state
            .rcpts
            .iter()
            .zip(&self.busy)
            .filter(|(r, busy)| !**busy && !r.status.is_final())
            .count()
    }

    fn busy_count(&self) -> usize {
        self.busy.iter().filter(|b| **b).count()
    }

    /// Addresses of the recipients not delivered or bounced yet.
    fn open_addresses(&self) -> Vec<String> {
        self.state
            .rcpts
            .iter()
            .zip(&self.env.recipients)
            .filter(|(r, _)| !r.status.is_final())
            .map(|(_, e)| e.address.clone())
            .collect()
    }

    fn view(&self) -> MessageView {
        MessageView {
            envelope: Arc::clone(&self.env),
            state: self.state.clone(),
            in_flight: self.busy.clone(),
            deleting: self.deleting,
            expires_ms: self.expires_ms,
        }
    }
}

/// RFC 3461 §4.1 NOTIFY as stored (`NEVER`, `SUCCESS,FAILURE,DELAY`). Absent:
/// `FAILURE,DELAY` (the RFC leaves the default to the MTA; most send both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
struct Notify {
    success: bool,
    failure: bool,
    delay: bool,
}

impl Notify {
    fn parse(s: Option<&str>) -> Self {
        let Some(s) = s else {
            return Notify {
                success: false,
                failure: true,
                delay: true,
            };
        };
        let mut n = Notify {
            success: false,
            failure: false,
            delay: false,
        };
        for word in s.split(',') {
            match word.trim().to_ascii_uppercase().as_str() {
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => {}
            }
        }
        n
    }
}

struct Dest {
    active: usize,
    pending: VecDeque<Job>,
    blocked: bool,
}

/// Runs the scheduler; see the module documentation.
pub(crate) struct Scheduler<T: Transport> {
    settings: Arc<DeliverySettings>,
    router: Router,
    spool: Spool,
    states: StateStore,
    log: MailLog,
    clock: Arc<dyn Clock>,
    transport: Arc<T>,
    tx: mpsc::UnboundedSender<Event>,
    msgs: HashMap<QueueId, Msg>,
    loading: std::collections::HashSet<QueueId>,
    due: crate::due::DueQueue,
    dests: HashMap<Arc<str>, Dest>,
    active_total: usize,
    blocked: VecDeque<Arc<str>>,
    tracker: TaskTracker,
    dsn_counter: u64,
}

impl<T: Transport> Scheduler<T> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        settings: Arc<DeliverySettings>,
        spool: Spool,
        log: MailLog,
        clock: Arc<dyn Clock>,
        transport: Arc<T>,
        tx: mpsc::UnboundedSender<Event>,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            router: Router::new(Arc::clone(&settings)),
            states: StateStore::new(spool.dir()),
            settings,
            spool,
            log,
            clock,
            transport,
            tx,
            msgs: HashMap::new(),
            loading: std::collections::HashSet::new(),
            due: crate::due::DueQueue::new(),
            dests: HashMap::new(),
            active_total: 0,
            blocked: VecDeque::new(),
            tracker,
            dsn_counter: 0,
        }
    }

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

    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Event>,
        recovered: Vec<Loaded>,
        cancel: CancellationToken,
    ) {
        for l in recovered {
            self.on_loaded(l);
        }
        loop {
            let now = self.clock.now_ms();
            self.dispatch_due(now);
            let sleep = match self.due.next_due() {
                Some(due) => Duration::from_millis(due.saturating_sub(now)).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                ev = rx.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                () = tokio::time::sleep(sleep) => {}
            }
        }
        self.drain(rx).await;
    }

    /// Shutdown: no new jobs; answer slots asking for more with "close"; keep
    /// applying outcomes until every slot and blocking task has returned.
    async fn drain(&mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        for d in self.dests.values_mut() {
            d.pending.clear();
        }
        self.blocked.clear();
        self.tracker.close();
        loop {
            if self.active_total == 0 && self.tracker.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                ev = rx.recv() => match ev {
                    Some(Event::Done(c)) => {
                        let mut c = *c;
                        if let Some(next) = c.next.take() {
                            let _ = next.send(None);
                        }
                        let id = c.outcome.job.queue_id;
                        self.apply_outcome(c.outcome, false);
                        self.release_slot(&c.dest, false);
                        self.finish_delete(id);
                    }
                    Some(Event::Persisted(id)) => {
                        if let Some(m) = self.msgs.get_mut(&id) {
                            m.persisting = m.persisting.saturating_sub(1);
                        }
                        self.finish_delete(id);
                    }
                    Some(Event::Snapshot(tx)) => { let _ = tx.send(self.snapshot()); }
                    Some(Event::Control(_, reply)) => Reply(reply).send(VerbReport {
                        error: Some("the server is shutting down".into()),
                        ..VerbReport::outcome(VerbOutcome::Failed)
                    }),
                    Some(_) => {}
                    None => break,
                },
                () = self.tracker.wait() => {
                    if self.active_total == 0 { break; }
                }
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Notify(id, origin) => self.load(id, origin),
            Event::Loaded(l) => self.on_loaded(*l),
            Event::Done(c) => self.on_done(*c),
            Event::Persisted(id) => {
                if let Some(m) = self.msgs.get_mut(&id) {
                    m.persisting = m.persisting.saturating_sub(1);
                }
                self.settle(id);
            }
            Event::Settled(s) => self.on_settled(&s),
            Event::Control(verb, reply) => self.control(verb, Reply(reply)),
            Event::Inspect(which, tx) => {
                let views = match which {
                    Some(id) => self.msgs.get(&id).map(Msg::view).into_iter().collect(),
                    None => self.msgs.values().map(Msg::view).collect(),
                };
                let _ = tx.send(views);
            }
            Event::Snapshot(tx) => {
                let _ = tx.send(self.snapshot());
            }
        }
    }

    fn snapshot(&self) -> QueueSnapshot {
        let mut s = QueueSnapshot {
            messages: self.msgs.len(),
            connections: self.active_total,
            scheduled: self.due.len(),
            waiting_jobs: self.dests.values().map(|d| d.pending.len()).sum(),
            ..QueueSnapshot::default()
        };
        for m in self.msgs.values() {
            let held = m.state.is_held();
            if held {
                s.held_messages += 1;
            }
            for (r, busy) in m.state.rcpts.iter().zip(&m.busy) {
                match (*busy, held, r.status) {
                    (true, _, _) => s.in_flight += 1,
                    (false, _, RcptStatus::Delivered | RcptStatus::Bounced) => {}
                    (false, true, _) => s.held += 1,
                    (false, false, RcptStatus::Pending) => s.pending += 1,
                    (false, false, RcptStatus::Deferred) => s.deferred += 1,
                }
            }
        }
        s
    }

    // -----------------------------------------------------------------------
    // Operator verbs (`control.rs` documents what each one does).

    fn control(&mut self, verb: Verb, reply: Reply) {
        match verb {
            Verb::Hold(id) => self.hold(id, true, reply),
            Verb::Release(id) => self.hold(id, false, reply),
            Verb::Delete(id) => self.delete(id, reply),
            Verb::Retry(Some(id)) => {
                let report = match self.refusal(&id) {
                    Some(o) => VerbReport::outcome(o),
                    None if self.is_held(&id) => VerbReport::outcome(VerbOutcome::Held),
                    None => self.retry_where(Some(id), |_| true),
                };
                reply.send(report);
            }
            Verb::Retry(None) => reply.send(self.retry_where(None, |_| true)),
            Verb::Flush(domain) => {
                let report =
                    self.retry_where(None, |addr| domain_of(addr).eq_ignore_ascii_case(&domain));
                reply.send(report);
            }
        }
    }

    fn is_held(&self, id: &QueueId) -> bool {
        self.msgs.get(id).is_some_and(|m| m.state.is_held())
    }

    /// Why a verb cannot act on `id` at all, if it cannot.
    fn refusal(&self, id: &QueueId) -> Option<VerbOutcome> {
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
    fn retry_where(&mut self, only: Option<QueueId>, matches: impl Fn(&str) -> bool) -> VerbReport {
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
    /// (fsynced) before the answer.
    fn hold(&mut self, id: QueueId, held: bool, reply: Reply) {
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
        let action = QueueAction {
            rcpts: m.open_addresses(),
            via: "admin".into(),
            in_flight: 0,
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
    fn withdraw_waiting_jobs(&mut self, id: QueueId) -> usize {
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
    fn delete(&mut self, id: QueueId, reply: Reply) {
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
    fn finish_delete(&mut self, id: QueueId) {
        if self.msgs.get(&id).is_some_and(|m| m.deleting) {
            self.settle(id);
        }
    }

    /// The removal of a deleted message (no job or write outstanding).
    fn remove_deleted(&mut self, id: QueueId) {
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        m.settling = true;
        self.due.cancel(&id);
        let action = QueueAction {
            rcpts: m.open_addresses(),
            via: "admin".into(),
            in_flight: m.delete_in_flight,
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

    fn load(&mut self, id: QueueId, origin: Origin) {
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

    fn on_loaded(&mut self, l: Loaded) {
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

    fn dispatch_due(&mut self, now: u64) {
        while let Some(id) = self.due.pop_due(now) {
            self.dispatch_message(id, now);
        }
    }

    fn dispatch_message(&mut self, id: QueueId, now: u64) {
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        if m.settling || m.deleting || m.state.is_held() {
            return;
        }
        let mut groups: Vec<(Route, Vec<usize>, u32)> = Vec::new();
        for (i, r) in m.state.rcpts.iter().enumerate() {
            let due = match r.status {
                RcptStatus::Pending => true,
                RcptStatus::Deferred => r.next_attempt_ms.unwrap_or(0) <= now,
                _ => false,
            };
            if !due || m.busy[i] {
                continue;
            }
            let Some(rcpt) = m.env.recipients.get(i) else {
                continue;
            };
            let route = self.router.route(domain_of(&rcpt.address));
            match groups.iter_mut().find(|(r, _, _)| r.key == route.key) {
                Some((_, v, attempt)) => {
                    v.push(i);
                    *attempt = (*attempt).max(r.attempts + 1);
                }
                None => groups.push((route, vec![i], r.attempts + 1)),
            }
        }
        if groups.is_empty() {
            if m.jobs_out == 0 && m.persisting == 0 {
                self.settle(id);
            } else if let Some(due) = m.next_due() {
                self.due.schedule(id, due);
            }
            return;
        }
        let mut jobs = Vec::with_capacity(groups.len());
        for (route, rcpts, attempt) in groups {
            for i in &rcpts {
                m.busy[*i] = true;
            }
            m.jobs_out += 1;
            jobs.push(Job {
                queue_id: id,
                envelope: Arc::clone(&m.env),
                rcpts,
                attempt,
                route: Arc::new(route),
            });
        }
        if let Some(due) = m.next_due() {
            self.due.schedule(id, due);
        }
        for job in jobs {
            self.enqueue(job);
        }
    }

    fn enqueue(&mut self, job: Job) {
        let key = Arc::clone(&job.route.key);
        self.dests
            .entry(Arc::clone(&key))
            .or_insert_with(|| Dest {
                active: 0,
                pending: VecDeque::new(),
                blocked: false,
            })
            .pending
            .push_back(job);
        self.try_start(&key);
    }

    /// Starts connection slots for `key` while limits allow.
    fn try_start(&mut self, key: &Arc<str>) {
        let per_dest = self.settings.max_connections_per_destination.max(1);
        let total = self.settings.max_connections.max(1);
        loop {
            let Some(d) = self.dests.get_mut(key) else {
                return;
            };
            if d.pending.is_empty() || d.active >= per_dest {
                break;
            }
            if self.active_total >= total {
                if !d.blocked {
                    d.blocked = true;
                    self.blocked.push_back(Arc::clone(key));
                }
                return;
            }
            let Some(job) = d.pending.pop_front() else {
                break;
            };
            d.active += 1;
            self.active_total += 1;
            let feed = JobFeed::new(
                self.tx.clone(),
                Arc::clone(key),
                &job,
                self.settings.max_messages_per_connection,
            );
            let transport = Arc::clone(&self.transport);
            self.tracker.spawn(transport.run(job, feed));
        }
        self.forget_idle_dest(key);
    }

    fn forget_idle_dest(&mut self, key: &Arc<str>) {
        if let Some(d) = self.dests.get(key)
            && d.active == 0
            && d.pending.is_empty()
            && !d.blocked
        {
            self.dests.remove(key);
        }
    }

    fn release_slot(&mut self, key: &Arc<str>, restart: bool) {
        if let Some(d) = self.dests.get_mut(key) {
            d.active = d.active.saturating_sub(1);
        }
        self.active_total = self.active_total.saturating_sub(1);
        if !restart {
            self.forget_idle_dest(key);
            return;
        }
        self.try_start(key);
        let total = self.settings.max_connections.max(1);
        while self.active_total < total {
            let Some(k) = self.blocked.pop_front() else {
                break;
            };
            if let Some(d) = self.dests.get_mut(&k) {
                d.blocked = false;
            }
            self.try_start(&k);
        }
    }

    fn on_done(&mut self, mut c: Completion) {
        self.apply_outcome(c.outcome, true);
        if let Some(next_tx) = c.next.take() {
            let next = self
                .dests
                .get_mut(&c.dest)
                .and_then(|d| d.pending.pop_front());
            if let Some(job) = next {
                match next_tx.send(Some(job)) {
                    Ok(()) => return,
                    Err(Some(job)) => {
                        // The slot went away; put the job back first in line.
                        if let Some(d) = self.dests.get_mut(&c.dest) {
                            d.pending.push_front(job);
                        }
                    }
                    Err(None) => {}
                }
            } else {
                let _ = next_tx.send(None);
            }
        }
        self.release_slot(&c.dest, true);
    }

    /// Applies one job's results: new statuses, events, state records; then
    /// persists them and settles the message.
    fn apply_outcome(&mut self, outcome: JobOutcome, settle_after: bool) {
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

    fn needs_success_dsn(&self, id: QueueId) -> bool {
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
    fn settle(&mut self, id: QueueId) {
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

    fn on_settled(&mut self, s: &Settled) {
        for id in &s.new_messages {
            self.load(*id, Origin::Dsn);
        }
        if s.removed {
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

/// The blocking half of `settle`.
struct SettleJob {
    id: QueueId,
    env: Arc<Envelope>,
    state: MessageState,
    received_ms: u64,
    expires_ms: u64,
    report: Vec<(usize, Action)>,
    suppressed: Vec<usize>,
    delayed: Vec<usize>,
    remove: bool,
    null_sender: bool,
    unique: String,
    now: u64,
    hostname: String,
    badmail_dir: std::path::PathBuf,
    spool: Spool,
    states: StateStore,
    lock: Arc<Mutex<()>>,
    log: MailLog,
}

impl SettleJob {
    fn run(self) -> Settled {
        let mut records = Vec::new();
        let mut new_messages = Vec::new();
        let mut retry = false;
        let to_u32 = |v: &[usize]| -> Vec<u32> {
            v.iter()
                .map(|i| u32::try_from(*i).unwrap_or(u32::MAX))
                .collect()
        };
        let addresses = |v: &[usize]| -> Vec<String> {
            v.iter()
                .filter_map(|i| self.env.recipients.get(*i))
                .map(|r| r.address.clone())
                .collect()
        };

        // Failures and successes: one DSN per settle (RFC 3464 allows mixed
        // actions in one report), or badmail for the null sender.
        if !self.report.is_empty() {
            let idx: Vec<usize> = self.report.iter().map(|(i, _)| *i).collect();
            let has_failure = self.report.iter().any(|(_, a)| *a == Action::Failed);
            let kind = if has_failure {
                DsnKind::Failure
            } else {
                DsnKind::Success
            };
            if self.null_sender {
                if has_failure {
                    match self.to_badmail(&addresses(&idx)) {
                        Ok(path) => self.log.emit(
                            self.id,
                            MailEvent::Badmail(Badmail {
                                reason: "a message from the null sender (a bounce) could not be \
                                         delivered; a bounce is never bounced (RFC 5321 §4.5.5)"
                                    .into(),
                                path,
                            }),
                        ),
                        Err(e) => {
                            tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot write badmail");
                            retry = true;
                        }
                    }
                }
                if !retry {
                    records.push(StateRecord::Dsn {
                        kind,
                        rcpts: to_u32(&idx),
                        dsn_queue_id: None,
                        at_ms: self.now,
                    });
                    self.log.emit(
                        self.id,
                        MailEvent::DsnSent(DsnSent {
                            kind: kind.as_str().into(),
                            rcpts: addresses(&idx),
                            to: String::new(),
                            dsn_queue_id: None,
                            suppressed: Some("null sender".into()),
                        }),
                    );
                }
            } else {
                let rcpts: Vec<DsnRecipient> = self
                    .report
                    .iter()
                    .map(|(i, a)| self.dsn_recipient(*i, *a))
                    .collect();
                match self.queue_dsn(&rcpts, "") {
                    Ok(dsn_id) => {
                        records.push(StateRecord::Dsn {
                            kind,
                            rcpts: to_u32(&idx),
                            dsn_queue_id: Some(dsn_id),
                            at_ms: self.now,
                        });
                        new_messages.push(dsn_id);
                        self.log.emit(
                            self.id,
                            MailEvent::DsnSent(DsnSent {
                                kind: kind.as_str().into(),
                                rcpts: addresses(&idx),
                                to: self.env.reverse_path.clone(),
                                dsn_queue_id: Some(dsn_id),
                                suppressed: None,
                            }),
                        );
                    }
                    Err(e) => {
                        tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot queue DSN; retrying");
                        retry = true;
                    }
                }
            }
        }
        if !self.suppressed.is_empty() {
            records.push(StateRecord::Dsn {
                kind: DsnKind::Failure,
                rcpts: to_u32(&self.suppressed),
                dsn_queue_id: None,
                at_ms: self.now,
            });
            self.log.emit(
                self.id,
                MailEvent::DsnSent(DsnSent {
                    kind: "failure".into(),
                    rcpts: addresses(&self.suppressed),
                    to: self.env.reverse_path.clone(),
                    dsn_queue_id: None,
                    suppressed: Some(if self.null_sender {
                        "null sender".into()
                    } else {
                        "NOTIFY excludes FAILURE".into()
                    }),
                }),
            );
        }
        if !self.delayed.is_empty() {
            if self.null_sender {
                records.push(StateRecord::Dsn {
                    kind: DsnKind::Delay,
                    rcpts: to_u32(&self.delayed),
                    dsn_queue_id: None,
                    at_ms: self.now,
                });
            } else {
                let rcpts: Vec<DsnRecipient> = self
                    .delayed
                    .iter()
                    .map(|i| self.dsn_recipient(*i, Action::Delayed))
                    .collect();
                match self.queue_dsn(&rcpts, ".delay") {
                    Ok(dsn_id) => {
                        records.push(StateRecord::Dsn {
                            kind: DsnKind::Delay,
                            rcpts: to_u32(&self.delayed),
                            dsn_queue_id: Some(dsn_id),
                            at_ms: self.now,
                        });
                        new_messages.push(dsn_id);
                        self.log.emit(
                            self.id,
                            MailEvent::DsnSent(DsnSent {
                                kind: "delay".into(),
                                rcpts: addresses(&self.delayed),
                                to: self.env.reverse_path.clone(),
                                dsn_queue_id: Some(dsn_id),
                                suppressed: None,
                            }),
                        );
                    }
                    Err(e) => {
                        tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot queue delay DSN");
                        retry = true;
                    }
                }
            }
        }

        // Record what was sent before acting further: a crash now repeats
        // nothing but (at worst) a DSN whose record did not reach the disk.
        if !records.is_empty() {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = self.states.append(&self.id, &records, Durability::Sync) {
                tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot record DSN in state/");
            }
        }
        let mut removed = false;
        if self.remove && !retry {
            match self.spool.remove(&self.id) {
                Ok(()) | Err(SpoolError::NotFound(_)) => removed = true,
                Err(e) => {
                    // Unlinked but maybe not durable (spool docs §3): not listed
                    // any more either way; forget it.
                    tracing::error!(queue_id = %self.id, error = %e,
                        "delivery: removal of a finished message may not be durable");
                    removed = true;
                }
            }
        }
        Settled {
            id: self.id,
            records,
            new_messages,
            removed,
            retry,
            delete_failed: false,
        }
    }

    fn dsn_recipient(&self, i: usize, action: Action) -> DsnRecipient {
        let default = EnvelopeRecipient::default();
        let rcpt = self.env.recipients.get(i).unwrap_or(&default);
        let st = self.state.rcpts.get(i).cloned().unwrap_or_default();
        let class = match action {
            Action::Failed if st.last_cause.as_deref() == Some(cause::EXPIRED) => 4,
            Action::Failed => 5,
            Action::Delayed => 4,
            Action::Delivered | Action::Relayed => 2,
        };
        let status = dsn::status_for(st.last_reply.as_deref(), st.last_cause.as_deref(), class);
        let explanation = match action {
            Action::Failed => match st.last_cause.as_deref() {
                Some(cause::EXPIRED) => {
                    "The message could not be delivered in time and was given up.".to_owned()
                }
                Some(cause::NULL_MX) => {
                    "The recipient's domain does not accept mail (null MX).".to_owned()
                }
                Some(cause::NO_SUCH_DOMAIN) => "The recipient's domain does not exist.".to_owned(),
                Some(cause::LOCAL_MAILBOX_UNKNOWN) => {
                    "There is no mailbox for the recipient here.".to_owned()
                }
                Some(cause::LOCAL_UNSAFE_ADDRESS) => {
                    "The recipient's address is not a valid mailbox name here.".to_owned()
                }
                _ => "The recipient's server refused the message permanently.".to_owned(),
            },
            Action::Delayed => format!(
                "Not delivered yet after {} attempt(s); the last one failed temporarily.",
                st.attempts
            ),
            Action::Delivered => "Delivered.".to_owned(),
            Action::Relayed => "Relayed to a server that does not confirm delivery.".to_owned(),
        };
        DsnRecipient {
            address: rcpt.address.clone(),
            orcpt: rcpt.orcpt.clone(),
            action,
            status,
            remote_mta: st.last_mx.clone(),
            diagnostic: st
                .last_reply
                .clone()
                .filter(|_| action != Action::Delivered),
            explanation,
            last_attempt_ms: st.updated_ms,
            will_retry_until_ms: (action == Action::Delayed).then_some(self.expires_ms),
        }
    }

    fn returned(&self) -> Returned {
        let full = self
            .env
            .params
            .ret
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case("FULL"));
        let limit = if full {
            dsn::MAX_RETURNED_FULL
        } else {
            dsn::MAX_RETURNED_HEADERS
        };
        let mut body = Vec::new();
        let read = self.spool.open_message(&self.id).and_then(|r| {
            r.take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
                .read_to_end(&mut body)
                .map_err(|e| SpoolError::Io {
                    op: postern_spool::SpoolOp::Read,
                    path: self.spool.dir().to_path_buf(),
                    source: e,
                })
        });
        if let Err(e) = read {
            tracing::warn!(queue_id = %self.id, error = %e, "delivery: cannot read the message for its DSN");
        }
        if full && body.len() <= limit {
            Returned::Full(body)
        } else {
            Returned::Headers(dsn::header_section(&body))
        }
    }

    fn queue_dsn(&self, rcpts: &[DsnRecipient], suffix: &str) -> Result<QueueId, SpoolError> {
        let unique = format!("{}{suffix}", self.unique);
        let bytes = dsn::build(&DsnInput {
            reporting_mta: &self.hostname,
            original: &self.env,
            arrival_ms: self.received_ms,
            now_ms: self.now,
            unique: &unique,
            recipients: rcpts,
            returned: self.returned(),
        });
        let mut incoming = self.spool.begin()?;
        incoming.write_all(&bytes)?;
        let env = incoming.commit(Envelope {
            queue_id: self.id,
            received_at: String::new(),
            reverse_path: String::new(),
            recipients: vec![EnvelopeRecipient {
                address: self.env.reverse_path.clone(),
                notify: None,
                orcpt: None,
            }],
            params: MailParams {
                body: Some("8BITMIME".into()),
                smtputf8: self.env.params.smtputf8,
                ..MailParams::default()
            },
            receipt: Receipt {
                listener: "dsn".into(),
                peer: String::new(),
                helo: self.hostname.clone(),
                auth_user: None,
                tls: None,
            },
            message_size: 0,
        })?;
        Ok(env.queue_id)
    }

    /// Copies the message to `badmail/<id>.eml` with `badmail/<id>.reason`.
    fn to_badmail(&self, failed: &[String]) -> std::io::Result<String> {
        use std::fmt::Write as _;
        use std::io::Write as _;
        std::fs::create_dir_all(&self.badmail_dir)?;
        let eml = self.badmail_dir.join(format!("{}.eml", self.id));
        let reason_path = self.badmail_dir.join(format!("{}.reason", self.id));
        let mut reason = format!(
            "queue id {}\nsender <> (null: this is a bounce or auto-reply)\nfailed recipients:\n",
            self.id
        );
        for (i, r) in self.state.rcpts.iter().enumerate() {
            if r.status == RcptStatus::Bounced
                && let Some(addr) = self.env.recipients.get(i)
                && failed.contains(&addr.address)
            {
                let _ = writeln!(
                    reason,
                    "  {}: {}",
                    addr.address,
                    r.last_reply
                        .as_deref()
                        .or(r.last_cause.as_deref())
                        .unwrap_or("unknown")
                );
            }
        }
        let mut body = Vec::new();
        self.spool
            .open_message(&self.id)
            .map_err(std::io::Error::other)?
            .read_to_end(&mut body)?;
        let mut f = std::fs::File::create(&eml)?;
        f.write_all(&body)?;
        f.sync_all()?;
        let mut f = std::fs::File::create(&reason_path)?;
        f.write_all(reason.as_bytes())?;
        f.sync_all()?;
        std::fs::File::open(&self.badmail_dir)?.sync_all()?;
        Ok(eml.display().to_string())
    }
}

/// One line, controls replaced, at most [`MAX_REPLY`] characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REPLY)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// `5d`, `4h`, `90m`, `30s` for messages.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) && s > 0 {
        format!("{} days", s / 86_400)
    } else if s.is_multiple_of(3600) && s > 0 {
        format!("{} hours", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{} minutes", s / 60)
    } else {
        format!("{} seconds", s.max(1))
    }
}

/// Keeps `cause` for events; used by transports for the `attempt` record.
pub fn cause_summary(c: &CauseInfo) -> String {
    format!("{}: {}", c.id, c.summary)
}
