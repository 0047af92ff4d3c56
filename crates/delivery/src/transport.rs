//! The seam between the scheduler and the wire: a [`Job`] (some recipients of
//! one message, one destination) goes in, one [`RcptResult`] per recipient comes
//! out. The SMTP implementation is [`crate::smtp::SmtpTransport`]; tests use
//! scripted ones.
//!
//! A transport runs one *connection slot*: it delivers its first job, then asks
//! the [`JobFeed`] for the next job to the same destination while its
//! connection is still good (connection reuse), and reports each outcome
//! through the feed. The scheduler counts the slot against the
//! per-destination and global limits until the transport returns.
//!
//! # Security
//! Results carry remote replies (untrusted); the scheduler stores and logs them
//! only.

use std::future::Future;
use std::sync::Arc;

use postern_spool::{Envelope, QueueId};
use postern_track::CauseInfo;
use tokio::sync::{mpsc, oneshot};

use crate::cause;
use crate::route::Route;

/// Recipients of one message for one destination.
#[derive(Debug, Clone)]
pub struct Job {
    /// The message.
    pub queue_id: QueueId,
    /// Its envelope.
    pub envelope: Arc<Envelope>,
    /// Indexes into `envelope.recipients`.
    pub rcpts: Vec<usize>,
    /// Attempt number of this try (1 = first).
    pub attempt: u32,
    /// Where and how.
    pub route: Arc<Route>,
}

impl Job {
    /// The addresses of this job's recipients.
    pub fn addresses(&self) -> Vec<String> {
        self.rcpts
            .iter()
            .filter_map(|i| self.envelope.recipients.get(*i))
            .map(|r| r.address.clone())
            .collect()
    }

    /// The recipient domains of this job, lower-cased, each once (what a
    /// `[[route]]` matches; fix texts name them).
    pub fn recipient_domains(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in self.addresses() {
            if let Some((_, d)) = a.rsplit_once('@') {
                let d = d.to_ascii_lowercase();
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx after end of data.
    Delivered,
    /// Temporary failure: retry.
    Deferred,
    /// Permanent failure: bounce.
    Bounced,
}

/// The result for one recipient of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptResult {
    /// Index into the envelope's recipients.
    pub rcpt: usize,
    /// What happened.
    pub verdict: Verdict,
    /// The deciding reply, one line (`550 5.1.1 no such user`).
    pub reply: Option<String>,
    /// Why (failures); `None` for deliveries.
    pub cause: Option<CauseInfo>,
    /// Host that answered, or the last one tried.
    pub mx: String,
    /// `ip:port` that answered.
    pub ip: String,
    /// TLS version and cipher of the session (`TLSv1.3 TLS_AES_256_GCM_SHA384`).
    pub tls: Option<String>,
    /// The next hop offered DSN and got our NOTIFY/ORCPT: success notices are
    /// its job now (RFC 3461 §5.2.2.1), not ours.
    pub remote_dsn: bool,
    /// Delivered into a mailbox here (Maildir), not handed to another
    /// server: a success DSN says `delivered`, not `relayed` (RFC 3464
    /// §2.3.3).
    pub final_delivery: bool,
}

impl RcptResult {
    /// A deferral with `cause` and nothing else known.
    pub fn deferred(rcpt: usize, cause: CauseInfo) -> Self {
        Self {
            rcpt,
            verdict: Verdict::Deferred,
            reply: None,
            cause: Some(cause),
            mx: String::new(),
            ip: String::new(),
            tls: None,
            remote_dsn: false,
            final_delivery: false,
        }
    }
}

/// The results of one job.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The job.
    pub job: Job,
    /// One result per recipient of the job (missing ones count as deferred).
    pub results: Vec<RcptResult>,
}

/// Delivers jobs. Implementations must return a result for every recipient and
/// must treat unknown errors as deferrals (tenet 1).
pub trait Transport: Send + Sync + 'static {
    /// Runs one connection slot: deliver `job`, report through `feed`, and
    /// continue with the jobs `feed` hands out while the connection is reusable.
    fn run(self: Arc<Self>, job: Job, feed: JobFeed) -> impl Future<Output = ()> + Send;
}

/// Messages from connection slots to the scheduler.
pub(crate) struct Completion {
    pub(crate) dest: Arc<str>,
    pub(crate) outcome: JobOutcome,
    /// `Some`: the connection can take another job; answer on it.
    pub(crate) next: Option<oneshot::Sender<Option<Job>>>,
    /// The configuration generation the slot was started under (a slot of an
    /// earlier one gets no more jobs after a reload).
    pub(crate) generation: u64,
}

/// A connection slot's line to the scheduler.
pub struct JobFeed {
    tx: mpsc::UnboundedSender<crate::scheduler::Event>,
    dest: Arc<str>,
    /// The job being worked on, if its outcome has not been reported.
    current: Option<Job>,
    /// Jobs done on this slot.
    served: usize,
    max: usize,
    generation: u64,
}

impl JobFeed {
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<crate::scheduler::Event>,
        dest: Arc<str>,
        first: &Job,
        max: usize,
        generation: u64,
    ) -> Self {
        Self {
            tx,
            dest,
            current: Some(first.clone()),
            served: 0,
            max: max.max(1),
            generation,
        }
    }

    /// Reports `outcome`. When `reusable` (the connection is still good) and
    /// another job for this destination is waiting, returns it; `None` means
    /// close the connection and return.
    pub async fn complete(&mut self, outcome: JobOutcome, reusable: bool) -> Option<Job> {
        self.current = None;
        self.served += 1;
        let want = reusable && self.served < self.max;
        let (next_tx, next_rx) = if want {
            let (t, r) = oneshot::channel();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let sent = self
            .tx
            .send(crate::scheduler::Event::Done(Box::new(Completion {
                dest: Arc::clone(&self.dest),
                outcome,
                next: next_tx,
                generation: self.generation,
            })));
        if sent.is_err() {
            return None;
        }
        let job = next_rx?.await.ok().flatten()?;
        self.current = Some(job.clone());
        Some(job)
    }

    /// Jobs completed on this slot so far.
    pub fn served(&self) -> usize {
        self.served
    }
}

impl Drop for JobFeed {
    fn drop(&mut self) {
        // The transport ended (or panicked) without reporting its job: the
        // recipients are deferred, never lost and never left "in flight".
        if let Some(job) = self.current.take() {
            let detail = "the delivery task ended without a result";
            let results = job
                .rcpts
                .iter()
                .map(|i| RcptResult::deferred(*i, cause::internal(detail)))
                .collect();
            let _ = self
                .tx
                .send(crate::scheduler::Event::Done(Box::new(Completion {
                    dest: Arc::clone(&self.dest),
                    outcome: JobOutcome { job, results },
                    next: None,
                    generation: self.generation,
                })));
        }
    }
}
