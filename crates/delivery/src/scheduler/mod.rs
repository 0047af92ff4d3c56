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
//! Everything blocking (spool reads, state appends, DSN commits, removals with
//! something to report) runs in `spawn_blocking` and reports back as an
//! [`Event`]; the removal of a message with nothing left to report (the common
//! case) is handed to the spool's committer (`Spool::remove_then`), which
//! reports the same way. The scheduler task itself never waits on the disk or
//! the network. No operation scans the queue:
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
//!   kept to one fsync (on the fast path plus at most the spool's
//!   `removal_window`: the removal shares the next commit's directory fsync,
//!   `Spool::remove_then`).
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
use std::sync::Arc;
use std::time::Duration;

use postern_spool::{
    Envelope, MessageState, OnExpiry, QueueId, RcptStatus, Spool, SpoolError, StateRecord,
    StateStore,
};
use postern_track::{CauseInfo, MailLog};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::control::{LoadFailure, MessageView, Verb, VerbContext, VerbOutcome, VerbReport};
use crate::route::{Route, Router, domain_of};
use crate::settings::DeliverySettings;
use crate::transport::{Completion, Job, JobFeed, Transport};

mod load;
mod msg;
mod outcome;
mod reload;
mod settle;
mod verbs;

use msg::Msg;
pub(crate) use reload::Reload;
use settle::SettleJob;

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
    /// Recipients being attempted now (not those waiting for a slot).
    pub in_flight: usize,
    /// Open connection slots.
    pub connections: usize,
    /// Messages in the due-time heap.
    pub scheduled: usize,
    /// Jobs waiting for a connection slot (their recipients count as pending
    /// or deferred, not in flight).
    pub waiting_jobs: usize,
    /// Messages in the spool that could not be loaded (retried with backoff).
    pub unloadable: usize,
}

/// Everything the scheduler task reacts to.
pub(crate) enum Event {
    Notify(QueueId, Origin),
    /// A message just committed, with its envelope: nothing to read back.
    Committed(Box<Envelope>, Origin),
    Loaded(Box<Loaded>),
    Done(Box<Completion>),
    Persisted(QueueId),
    Settled(Box<Settled>),
    /// An operator's command; the report goes to the sender, if any.
    Control(Verb, VerbContext, Option<oneshot::Sender<VerbReport>>),
    /// The messages in the queue (one, with `Some`).
    Inspect(Option<QueueId>, oneshot::Sender<Vec<MessageView>>),
    Snapshot(oneshot::Sender<QueueSnapshot>),
    LoadFailures(oneshot::Sender<Vec<LoadFailure>>),
    /// `SIGHUP`: new settings and transport for the jobs started from now on.
    Reload(Box<Reload>),
}

pub(crate) struct Loaded {
    id: QueueId,
    origin: Origin,
    result: Result<(Envelope, Option<MessageState>), SpoolError>,
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
    /// Messages whose load failed: retried with backoff (`load.rs`).
    unloadable: HashMap<QueueId, load::Unloadable>,
    due: crate::due::DueQueue,
    dests: HashMap<Arc<str>, Dest>,
    active_total: usize,
    blocked: VecDeque<Arc<str>>,
    tracker: TaskTracker,
    dsn_counter: u64,
    /// Bumped by every reload: connection slots started before it finish their
    /// job and close (they run under the old transport).
    generation: u64,
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
            unloadable: HashMap::new(),
            due: crate::due::DueQueue::new(),
            dests: HashMap::new(),
            active_total: 0,
            blocked: VecDeque::new(),
            tracker,
            dsn_counter: 0,
            generation: 0,
        }
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
                    Some(Event::LoadFailures(tx)) => { let _ = tx.send(self.load_failures()); }
                    Some(Event::Control(_, _, reply)) => Reply(reply).send(VerbReport {
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
            Event::Committed(env, origin) => self.on_committed(*env, origin),
            Event::Loaded(l) => self.on_loaded(*l),
            Event::Done(c) => self.on_done(*c),
            Event::Persisted(id) => {
                if let Some(m) = self.msgs.get_mut(&id) {
                    m.persisting = m.persisting.saturating_sub(1);
                }
                self.settle(id);
            }
            Event::Settled(s) => self.on_settled(&s),
            Event::Control(verb, cx, reply) => self.control(verb, &cx, Reply(reply)),
            Event::Inspect(which, tx) => {
                let waiting = self.waiting_rcpts();
                let view = |(id, m): (&QueueId, &Msg)| m.view(waiting.get(id));
                let views = match which {
                    Some(id) => self.msgs.get_key_value(&id).map(view).into_iter().collect(),
                    None => self.msgs.iter().map(view).collect(),
                };
                let _ = tx.send(views);
            }
            Event::LoadFailures(tx) => {
                let _ = tx.send(self.load_failures());
            }
            Event::Reload(r) => self.reload(*r),
            Event::Snapshot(tx) => {
                let _ = tx.send(self.snapshot());
            }
        }
    }

    /// Recipients of jobs waiting for a connection slot, per message: they
    /// are not being attempted yet (a restart's backlog, a destination at its
    /// connection limit), so views show them as pending or deferred.
    fn waiting_rcpts(&self) -> HashMap<QueueId, Vec<usize>> {
        let mut out: HashMap<QueueId, Vec<usize>> = HashMap::new();
        for job in self.dests.values().flat_map(|d| &d.pending) {
            out.entry(job.queue_id)
                .or_default()
                .extend(job.rcpts.iter().copied());
        }
        out
    }

    fn snapshot(&self) -> QueueSnapshot {
        let mut s = QueueSnapshot {
            messages: self.msgs.len(),
            connections: self.active_total,
            scheduled: self.due.len(),
            waiting_jobs: self.dests.values().map(|d| d.pending.len()).sum(),
            unloadable: self.unloadable.len(),
            ..QueueSnapshot::default()
        };
        let waiting = self.waiting_rcpts();
        for (id, m) in &self.msgs {
            let held = m.state.is_held();
            if held {
                s.held_messages += 1;
            }
            let w = waiting.get(id);
            for (i, (r, busy)) in m.state.rcpts.iter().zip(&m.busy).enumerate() {
                let busy = *busy && !w.is_some_and(|w| w.contains(&i));
                match (busy, held, r.status) {
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

    fn dispatch_due(&mut self, now: u64) {
        while let Some(id) = self.due.pop_due(now) {
            self.dispatch_message(id, now);
        }
    }

    fn dispatch_message(&mut self, id: QueueId, now: u64) {
        let Some(m) = self.msgs.get_mut(&id) else {
            // A message whose load failed: its retry is due.
            if let Some(origin) = self.unloadable.get(&id).map(|u| u.origin) {
                self.load(id, origin);
            }
            return;
        };
        if m.is_quarantined() && !m.deleting && !m.settling {
            let until = m.quarantine_until_ms.unwrap_or(m.expires_ms);
            if now < until {
                self.due.schedule(id, until);
                return;
            }
            let name = m.env.quarantine_name().unwrap_or_default().to_owned();
            match self.settings.quarantines.get(&name).on_expiry {
                OnExpiry::Delete => {
                    // Never released: removed without a DSN (its sender may
                    // be forged; a bounce would be backscatter).
                    tracing::info!(queue_id = %id, quarantine = %name, reason = ?m.env.hold,
                        "quarantine: retention ended unreleased; deleted without a DSN");
                    m.delete_via = "quarantine-expiry";
                    self.delete(id, "", Reply(None));
                }
                OnExpiry::Release => {
                    tracing::info!(queue_id = %id, quarantine = %name,
                        "quarantine: retention ended; released into delivery");
                    self.hold(id, false, "quarantine-expiry", "", Reply(None));
                }
            }
            return;
        }
        if m.settling || m.deleting || m.state.is_held() {
            return;
        }
        if let Some(reply) = m.env.bounce.clone() {
            self.bounce_unattempted(id, &reply);
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
            let mut route = self.router.route(domain_of(&rcpt.address));
            if m.env.require_tls {
                route = route.requiring_tls();
            }
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

    /// `Envelope::bounce`: every open recipient bounced with `reply`, no
    /// attempt made; the outcome path records it and sends the DSNs.
    fn bounce_unattempted(&mut self, id: QueueId, reply: &str) {
        let Some(m) = self.msgs.get_mut(&id) else {
            return;
        };
        let rcpts: Vec<usize> = (0..m.state.rcpts.len())
            .filter(|&i| !m.state.rcpts[i].status.is_final() && !m.busy[i])
            .collect();
        if rcpts.is_empty() {
            return;
        }
        for &i in &rcpts {
            m.busy[i] = true;
        }
        m.jobs_out += 1;
        let results = rcpts
            .iter()
            .map(|&i| crate::transport::RcptResult {
                rcpt: i,
                verdict: crate::transport::Verdict::Bounced,
                reply: Some(reply.to_owned()),
                cause: Some(crate::cause::content_bounce(reply)),
                mx: String::new(),
                ip: String::new(),
                tls: None,
                remote_dsn: false,
                final_delivery: false,
            })
            .collect();
        let job = Job {
            queue_id: id,
            envelope: Arc::clone(&m.env),
            rcpts,
            attempt: 1,
            route: Arc::new(self.router.route("")),
        };
        self.apply_outcome(crate::transport::JobOutcome { job, results }, true);
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
                self.generation,
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
            // A slot from before a reload takes no new job.
            let next = self
                .dests
                .get_mut(&c.dest)
                .filter(|_| c.generation == self.generation)
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
