//! Shared helpers: a temporary spool, committing test messages, a scripted
//! transport (no sockets) and waiting for the queue to drain.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_delivery::{
    DeliveryHandle, DeliverySettings, Job, JobFeed, JobOutcome, QueueSnapshot, RcptResult,
    Transport, Verdict,
};
use postern_spool::{
    Envelope, EnvelopeRecipient, MailParams, QueueId, Receipt, Spool, SpoolSettings,
};

pub fn open_spool(dir: &std::path::Path) -> Spool {
    Spool::open(&SpoolSettings::new(dir.join("spool")))
        .unwrap()
        .0
}

pub struct Rcpt<'a> {
    pub address: &'a str,
    pub notify: Option<&'a str>,
    pub orcpt: Option<&'a str>,
}

pub fn rcpt(address: &str) -> Rcpt<'_> {
    Rcpt {
        address,
        notify: None,
        orcpt: None,
    }
}

pub const BODY: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: test message\r\nMessage-ID: <t1@example.com>\r\n\r\nHello.\r\n";

/// Commits a message and returns its id.
pub fn commit(spool: &Spool, from: &str, rcpts: &[Rcpt<'_>], params: MailParams) -> QueueId {
    let mut inc = spool.begin().unwrap();
    inc.write_all(BODY.as_bytes()).unwrap();
    let id = *inc.queue_id();
    let env = inc
        .commit(Envelope {
            queue_id: id,
            received_at: String::new(),
            reverse_path: from.into(),
            recipients: rcpts
                .iter()
                .map(|r| EnvelopeRecipient {
                    address: r.address.into(),
                    notify: r.notify.map(Into::into),
                    orcpt: r.orcpt.map(Into::into),
                })
                .collect(),
            params,
            receipt: Receipt {
                listener: "test".into(),
                peer: "127.0.0.1:1".into(),
                helo: "client.test".into(),
                auth_user: None,
                tls: None,
                ..Default::default()
            },
            message_size: 0,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        })
        .unwrap();
    env.queue_id
}

pub fn settings(dir: &std::path::Path) -> DeliverySettings {
    let mut s = DeliverySettings::new(dir);
    s.hostname = "mx.postern.test".into();
    s.mail_log = None;
    s
}

/// What the scripted transport saw for one job.
#[derive(Debug, Clone)]
pub struct Call {
    pub queue_id: QueueId,
    pub sender: String,
    pub rcpts: Vec<String>,
    pub body: Vec<u8>,
    pub at: tokio::time::Instant,
    pub attempt: u32,
    pub slot: usize,
    /// The route's key (`mx:example.net:opportunistic`).
    pub route: String,
}

/// One scripted answer for a recipient.
#[derive(Debug, Clone)]
pub struct Answer {
    pub verdict: Verdict,
    pub reply: String,
}

pub fn ok() -> Answer {
    Answer {
        verdict: Verdict::Delivered,
        reply: "250 2.0.0 queued".into(),
    }
}
pub fn temp(reply: &str) -> Answer {
    Answer {
        verdict: Verdict::Deferred,
        reply: reply.into(),
    }
}
pub fn perm(reply: &str) -> Answer {
    Answer {
        verdict: Verdict::Bounced,
        reply: reply.into(),
    }
}

/// A transport answering from a per-recipient script (default: delivered),
/// recording calls, taking `delay` per job, tracking concurrency per destination.
#[derive(Default)]
pub struct Scripted {
    pub spool: Mutex<Option<Spool>>,
    pub script: Mutex<HashMap<String, VecDeque<Answer>>>,
    pub calls: Mutex<Vec<Call>>,
    pub delay: Duration,
    pub active: Mutex<HashMap<String, usize>>,
    pub max_active: Mutex<HashMap<String, usize>>,
    pub slots: std::sync::atomic::AtomicUsize,
}

impl Scripted {
    pub fn new(spool: &Spool) -> Arc<Self> {
        Arc::new(Self {
            spool: Mutex::new(Some(spool.clone())),
            ..Self::default()
        })
    }

    pub fn with_delay(spool: &Spool, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            spool: Mutex::new(Some(spool.clone())),
            delay,
            ..Self::default()
        })
    }

    pub fn answer(&self, rcpt: &str, answers: Vec<Answer>) {
        self.script
            .lock()
            .unwrap()
            .insert(rcpt.into(), answers.into());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn calls_for(&self, rcpt: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.rcpts.iter().any(|r| r == rcpt))
            .collect()
    }

    fn deliver(&self, job: &Job, slot: usize) -> JobOutcome {
        let spool = self.spool.lock().unwrap().clone().unwrap();
        let mut body = Vec::new();
        spool
            .open_message(&job.queue_id)
            .unwrap()
            .read_to_end(&mut body)
            .unwrap();
        self.calls.lock().unwrap().push(Call {
            queue_id: job.queue_id,
            sender: job.envelope.reverse_path.clone(),
            rcpts: job.addresses(),
            body,
            at: tokio::time::Instant::now(),
            attempt: job.attempt,
            slot,
            route: job.route.key.to_string(),
        });
        let mut script = self.script.lock().unwrap();
        let results = job
            .rcpts
            .iter()
            .map(|i| {
                let addr = &job.envelope.recipients[*i].address;
                let a = script
                    .get_mut(addr)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or_else(ok);
                RcptResult {
                    rcpt: *i,
                    verdict: a.verdict,
                    reply: Some(a.reply),
                    cause: None,
                    mx: "mx.dest.test".into(),
                    ip: "192.0.2.1:25".into(),
                    tls: None,
                    remote_dsn: false,
                    final_delivery: false,
                }
            })
            .collect();
        JobOutcome {
            job: job.clone(),
            results,
        }
    }
}

impl Transport for Scripted {
    async fn run(self: Arc<Self>, job: Job, mut feed: JobFeed) {
        let slot = self.slots.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dest = job.route.key.to_string();
        let mut job = job;
        loop {
            {
                let mut a = self.active.lock().unwrap();
                let n = a.entry(dest.clone()).or_default();
                *n += 1;
                let mut m = self.max_active.lock().unwrap();
                let mx = m.entry(dest.clone()).or_default();
                *mx = (*mx).max(*n);
            }
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let outcome = self.deliver(&job, slot);
            *self.active.lock().unwrap().get_mut(&dest).unwrap() -= 1;
            match feed.complete(outcome, true).await {
                Some(next) => job = next,
                None => return,
            }
        }
    }
}

/// Polls the scheduler until `pred` holds (paused or real time).
pub async fn wait_for(
    h: &DeliveryHandle,
    what: &str,
    mut pred: impl FnMut(&QueueSnapshot) -> bool,
) -> QueueSnapshot {
    for _ in 0..200_000 {
        let s = h.snapshot().await.unwrap();
        if pred(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {:?}", h.snapshot().await);
}

/// Waits until the queue is empty.
pub async fn drained(h: &DeliveryHandle) {
    wait_for(h, "an empty queue", |s| s.messages == 0).await;
}

/// Polls `cond` until it holds (at most a minute). For outcomes that follow
/// the queue draining, such as a DSN: the original can be removed before the
/// DSN it caused has been loaded, so "the queue is empty" alone is not it.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_mins(1), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}
