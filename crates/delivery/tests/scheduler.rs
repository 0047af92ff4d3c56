//! Scheduler behaviour with a scripted transport (no sockets) and paused tokio
//! time: retries and backoff (RFC 5321 §4.5.4.1), bounces and DSNs (RFC 3461,
//! RFC 3464), expiry, delay warnings, the null sender (RFC 5321 §4.5.5),
//! per-destination concurrency, connection reuse, and restarts.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use postern_delivery::{DeliverySettings, TokioClock, start};
use postern_spool::{MailParams, QueueId, RcptStatus, Spool, StateStore};
use postern_track::{MailEvent, MailLog, MemoryLog};

fn run(
    settings: DeliverySettings,
    spool: &Spool,
    transport: Arc<Scripted>,
) -> (postern_delivery::DeliveryHandle, MemoryLog) {
    let (log, mem) = MailLog::memory();
    let h = start(
        settings,
        spool.clone(),
        transport,
        log,
        Arc::new(TokioClock::new()),
    );
    (h, mem)
}

fn state_path(spool: &Spool, id: &QueueId) -> std::path::PathBuf {
    StateStore::new(spool.dir()).path(id)
}

/// Parses a DSN and returns (content-type of part 1, delivery-status text,
/// content-type of part 2, subject).
fn dsn_parts(body: &[u8]) -> (String, String, String, String) {
    let msg = MessageParser::default().parse(body).expect("DSN parses");
    let ct = msg.content_type().expect("content type");
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("report"));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    // RFC 3464 §2: exactly three parts: human text, delivery-status, original.
    assert_eq!(msg.parts.len(), 4, "root + 3 parts");
    let part = |i: usize| &msg.parts[i];
    let ctype = |i: usize| {
        let c = part(i).content_type().unwrap();
        format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))
    };
    assert_eq!(ctype(1), "text/plain");
    assert_eq!(ctype(2), "message/delivery-status");
    let status = String::from_utf8_lossy(part(2).contents()).into_owned();
    (
        ctype(1),
        status,
        ctype(3),
        msg.subject().unwrap_or("").to_owned(),
    )
}

#[tokio::test(start_paused = true)]
async fn four_xx_then_two_xx_is_retried_on_schedule_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer(
        "bob@example.net",
        vec![temp("451 4.7.1 greylisted, try again later"), ok()],
    );
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    let id = commit(
        &spool,
        "alice@example.com",
        &[rcpt("bob@example.net")],
        MailParams::default(),
    );
    h.notify(id);
    // After the first attempt the deferral is on disk (lazily).
    wait_for(&h, "the first deferral", |s| s.deferred == 1).await;
    assert!(state_path(&spool, &id).exists());
    drained(&h).await;
    let calls = t.calls_for("bob@example.net");
    assert_eq!(calls.len(), 2);
    let gap = calls[1].at - calls[0].at;
    assert!(
        gap >= Duration::from_mins(5) && gap < Duration::from_mins(6),
        "first retry after 5 minutes, got {gap:?}"
    );
    assert_eq!(calls[1].attempt, 2);
    assert_eq!(mem.names(&id), ["queued", "deferred", "delivered"]);
    let MailEvent::Deferred(d) = &mem.for_queue_id(&id)[1] else {
        panic!()
    };
    assert_eq!(d.status, "4.7.1");
    assert!(d.next_attempt.is_some());
    // Removed with its state; nothing else queued (no DSN for a delivery).
    assert!(spool.list().unwrap().is_empty());
    assert!(!state_path(&spool, &id).exists());
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn backoff_follows_the_configured_schedule_then_repeats_the_last_step() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    let mut answers: Vec<Answer> = (0..5).map(|_| temp("421 4.3.2 busy")).collect();
    answers.push(ok());
    t.answer("bob@example.net", answers);
    let mut s = settings(dir.path());
    s.retry_schedule = vec![Duration::from_mins(1), Duration::from_mins(3)];
    let (h, _mem) = run(s, &spool, Arc::clone(&t));
    let id = commit(
        &spool,
        "alice@example.com",
        &[rcpt("bob@example.net")],
        MailParams::default(),
    );
    h.notify(id);
    drained(&h).await;
    let calls = t.calls_for("bob@example.net");
    let gaps: Vec<u64> = calls
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs() / 60)
        .collect();
    assert_eq!(gaps, [1, 3, 3, 3, 3]);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn one_5xx_of_three_bounces_that_recipient_with_an_rfc3464_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer(
        "b@example.net",
        vec![perm("550 5.1.1 <b@example.net>: no such user")],
    );
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    let id = commit(
        &spool,
        "alice@example.com",
        &[
            rcpt("a@example.net"),
            Rcpt {
                address: "b@example.net",
                notify: None,
                orcpt: Some("rfc822;B+2BOriginal@example.net"),
            },
            rcpt("c@example.net"),
        ],
        MailParams {
            envid: Some("ENV+2B42".into()),
            ..MailParams::default()
        },
    );
    h.notify(id);
    drained(&h).await;
    // The original went out once, to three recipients in one job.
    let calls = t.calls();
    let original: Vec<_> = calls.iter().filter(|c| c.queue_id == id).collect();
    assert_eq!(original.len(), 1);
    assert_eq!(original[0].rcpts.len(), 3);
    // The DSN went to the sender, from the null path.
    let dsn: Vec<_> = calls.iter().filter(|c| c.queue_id != id).collect();
    assert_eq!(dsn.len(), 1, "{calls:#?}");
    assert_eq!(dsn[0].sender, "");
    assert_eq!(dsn[0].rcpts, ["alice@example.com"]);
    let (_, status, returned, subject) = dsn_parts(&dsn[0].body);
    assert_eq!(subject, "Undelivered Mail Returned to Sender");
    assert!(
        status.contains("Reporting-MTA: dns; mx.postern.test"),
        "{status}"
    );
    assert!(status.contains("Original-Envelope-Id: ENV+42"), "{status}");
    assert!(
        status.contains("Original-Recipient: rfc822;B+Original@example.net"),
        "{status}"
    );
    assert!(
        status.contains("Final-Recipient: rfc822; b@example.net"),
        "{status}"
    );
    assert!(status.contains("Action: failed"), "{status}");
    assert!(status.contains("Status: 5.1.1"), "{status}");
    assert!(status.contains("Remote-MTA: dns; mx.dest.test"), "{status}");
    assert!(
        status.contains("Diagnostic-Code: smtp; 550 5.1.1 <b@example.net>: no such user"),
        "{status}"
    );
    // Only the failed recipient is reported.
    assert!(!status.contains("a@example.net") && !status.contains("c@example.net"));
    // RET absent: headers only.
    assert_eq!(returned, "text/rfc822-headers");
    let text = String::from_utf8_lossy(&dsn[0].body);
    assert!(text.contains("Subject: test message"));
    assert!(
        !text.contains("Hello."),
        "the body is not returned without RET=FULL"
    );
    assert!(text.contains("Auto-Submitted: auto-replied"));
    let names = mem.names(&id);
    assert_eq!(
        names,
        ["queued", "delivered", "bounced", "delivered", "dsn_sent"],
        "{names:?}"
    );
    assert!(spool.list().unwrap().is_empty());
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn ret_full_returns_the_whole_message_and_notify_never_suppresses() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer("b@example.net", vec![perm("554 5.7.1 rejected")]);
    t.answer("n@example.net", vec![perm("554 5.7.1 rejected")]);
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    let full = commit(
        &spool,
        "alice@example.com",
        &[rcpt("b@example.net")],
        MailParams {
            ret: Some("FULL".into()),
            ..MailParams::default()
        },
    );
    let never = commit(
        &spool,
        "alice@example.com",
        &[Rcpt {
            address: "n@example.net",
            notify: Some("NEVER"),
            orcpt: None,
        }],
        MailParams::default(),
    );
    h.notify(full);
    h.notify(never);
    drained(&h).await;
    let dsns: Vec<_> = t
        .calls()
        .into_iter()
        .filter(|c| c.sender.is_empty())
        .collect();
    assert_eq!(dsns.len(), 1);
    let (_, status, returned, _) = dsn_parts(&dsns[0].body);
    assert!(status.contains("b@example.net"));
    assert_eq!(returned, "message/rfc822");
    assert!(String::from_utf8_lossy(&dsns[0].body).contains("Hello."));
    let ev = mem.for_queue_id(&never);
    let MailEvent::DsnSent(s) = ev.last().unwrap() else {
        panic!("{ev:?}")
    };
    assert_eq!(s.suppressed.as_deref(), Some("NOTIFY excludes FAILURE"));
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn notify_success_gets_a_relayed_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    let (h, _mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    wait_for(&h, "the scheduler", |_| true).await;
    let id = commit(
        &spool,
        "alice@example.com",
        &[Rcpt {
            address: "s@example.net",
            notify: Some("SUCCESS,FAILURE"),
            orcpt: None,
        }],
        MailParams::default(),
    );
    h.notify(id);
    // The DSN itself, not only an empty queue: the original can be removed
    // before its DSN is loaded.
    eventually("the success DSN", || {
        t.calls().iter().any(|c| c.sender.is_empty())
    })
    .await;
    drained(&h).await;
    let dsns: Vec<_> = t
        .calls()
        .into_iter()
        .filter(|c| c.sender.is_empty())
        .collect();
    assert_eq!(dsns.len(), 1);
    let (_, status, _, subject) = dsn_parts(&dsns[0].body);
    assert!(status.contains("Action: relayed"), "{status}");
    assert!(status.contains("Status: 2.0.0"), "{status}");
    assert_eq!(subject, "Successful Mail Delivery Report");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn delay_warning_once_then_expiry_bounces_with_4_4_7() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer(
        "slow@example.net",
        (0..100).map(|_| temp("451 4.4.1 try later")).collect(),
    );
    let mut s = settings(dir.path());
    s.retry_schedule = vec![Duration::from_mins(10)];
    s.delay_warning = Some(Duration::from_mins(30));
    s.max_lifetime = Duration::from_hours(2);
    let (h, mem) = run(s, &spool, Arc::clone(&t));
    let id = commit(
        &spool,
        "alice@example.com",
        &[rcpt("slow@example.net")],
        MailParams::default(),
    );
    h.notify(id);
    drained(&h).await;
    let attempts = t.calls_for("slow@example.net");
    // 0, 10, …, 120 minutes. Whether one more attempt lands exactly on the
    // lifetime edge depends on sub-second skew between the spool's wall-clock
    // receipt time and this test's paused clock (seen on a loaded CI machine),
    // so the edge is allowed either way; the retry spacing, the single delay
    // notice and the 4.4.7 expiry below are what this test pins down.
    assert!((13..=14).contains(&attempts.len()), "{}", attempts.len());
    let dsns: Vec<_> = t
        .calls()
        .into_iter()
        .filter(|c| c.sender.is_empty())
        .collect();
    assert_eq!(dsns.len(), 2, "one delay warning, one failure");
    let (_, delay_status, _, delay_subject) = dsn_parts(&dsns[0].body);
    assert_eq!(delay_subject, "Delayed Mail (still being retried)");
    assert!(delay_status.contains("Action: delayed"), "{delay_status}");
    assert!(delay_status.contains("Will-Retry-Until:"), "{delay_status}");
    assert!(
        String::from_utf8_lossy(&dsns[0].body)
            .contains("Delivery to the following recipients has been delayed")
    );
    let (_, fail_status, _, _) = dsn_parts(&dsns[1].body);
    assert!(fail_status.contains("Action: failed"), "{fail_status}");
    assert!(fail_status.contains("Status: 4.4.7"), "{fail_status}");
    assert!(fail_status.contains("Diagnostic-Code: smtp; 451 4.4.1 try later"));
    let names = mem.names(&id);
    assert_eq!(names.iter().filter(|n| **n == "dsn_sent").count(), 2);
    assert!(names.contains(&"expired"));
    let bounced = mem
        .for_queue_id(&id)
        .into_iter()
        .find_map(|e| match e {
            MailEvent::Bounced(b) => Some(b),
            _ => None,
        })
        .unwrap();
    assert_eq!(bounced.cause.unwrap().id, "delivery.expired");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_bounce_goes_to_badmail_and_is_never_bounced() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer("gone@example.net", vec![perm("550 5.1.1 gone")]);
    let s = settings(dir.path());
    let badmail = s.badmail_dir.clone();
    let (h, mem) = run(s, &spool, Arc::clone(&t));
    let id = commit(
        &spool,
        "",
        &[rcpt("gone@example.net")],
        MailParams::default(),
    );
    h.notify(id);
    drained(&h).await;
    assert_eq!(t.calls().len(), 1, "no DSN for the null sender");
    let eml = badmail.join(format!("{id}.eml"));
    let reason = std::fs::read_to_string(badmail.join(format!("{id}.reason"))).unwrap();
    assert_eq!(std::fs::read(eml).unwrap(), BODY.as_bytes());
    assert!(
        reason.contains("gone@example.net: 550 5.1.1 gone"),
        "{reason}"
    );
    let names = mem.names(&id);
    assert_eq!(names, ["queued", "bounced", "badmail", "dsn_sent"]);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn per_destination_limit_and_connection_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::with_delay(&spool, Duration::from_secs(1));
    let mut s = settings(dir.path());
    s.max_connections_per_destination = 3;
    s.max_connections = 4;
    let (h, _mem) = run(s, &spool, Arc::clone(&t));
    let mut ids = Vec::new();
    for i in 0..30 {
        let a = format!("u{i}@busy.example");
        let b = format!("u{i}@other.example");
        ids.push(commit(
            &spool,
            "alice@example.com",
            &[rcpt(&a), rcpt(&b)],
            MailParams::default(),
        ));
    }
    for id in &ids {
        h.notify(*id);
    }
    drained(&h).await;
    let max = t.max_active.lock().unwrap().clone();
    assert_eq!(max.len(), 2);
    for (dest, n) in &max {
        assert!(*n <= 3, "{dest}: {n} concurrent connections");
    }
    assert!(max.values().sum::<usize>() <= 4 + 2, "{max:?}");
    assert_eq!(t.calls().len(), 60);
    let slots = t.slots.load(std::sync::atomic::Ordering::SeqCst);
    assert!(slots <= 10, "60 jobs over {slots} connections: reuse works");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn restart_mid_schedule_loses_nothing_and_never_delivers_twice() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t1 = Scripted::new(&spool);
    t1.answer("later@example.net", vec![temp("451 4.3.0 not now")]);
    t1.answer("bounce@example.net", vec![perm("550 5.1.1 no")]);
    let (h, mem1) = run(settings(dir.path()), &spool, Arc::clone(&t1));
    let id = commit(
        &spool,
        "alice@example.com",
        &[
            rcpt("now@example.net"),
            rcpt("later@example.net"),
            rcpt("bounce@example.net"),
        ],
        MailParams::default(),
    );
    h.notify(id);
    // First pass done: one delivered, one deferred, one bounced + DSN queued.
    wait_for(&h, "the deferral and the DSN", |s| {
        s.deferred == 1 && s.in_flight == 0 && s.messages == 1
    })
    .await;
    h.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        mem1.names(&id).iter().filter(|n| **n == "dsn_sent").count(),
        1
    );
    let st = StateStore::new(spool.dir()).load(&id, 3).unwrap().unwrap();
    assert_eq!(st.rcpts[0].status, RcptStatus::Delivered);
    assert_eq!(st.rcpts[1].status, RcptStatus::Deferred);
    assert_eq!(st.rcpts[2].status, RcptStatus::Bounced);
    assert!(st.rcpts[2].reported);
    let first_dsns = t1.calls().iter().filter(|c| c.sender.is_empty()).count();

    // Restart: a new process, the same spool directory.
    drop(t1);
    drop(spool);
    let spool = open_spool(dir.path());
    let t2 = Scripted::new(&spool);
    let (h, mem2) = run(settings(dir.path()), &spool, Arc::clone(&t2));
    drained(&h).await;
    assert!(
        t2.calls_for("now@example.net").is_empty(),
        "delivered before the restart"
    );
    assert!(
        t2.calls_for("bounce@example.net").is_empty(),
        "bounced before the restart"
    );
    assert_eq!(t2.calls_for("later@example.net").len(), 1);
    let dsns_after = t2.calls().iter().filter(|c| c.sender.is_empty()).count();
    assert_eq!(first_dsns + dsns_after, 1, "the DSN is not sent twice");
    assert_eq!(mem2.names(&id), ["queued", "delivered"]);
    assert!(spool.list().unwrap().is_empty());
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn recovery_loads_the_spool_and_removes_orphaned_state() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let id = commit(
        &spool,
        "alice@example.com",
        &[rcpt("bob@example.net")],
        MailParams::default(),
    );
    let orphan = QueueId::generate();
    let states = StateStore::new(spool.dir());
    std::fs::write(states.path(&orphan), b"{\"v\":1,\"rec\":\"rcpt\"}\n").unwrap();
    let t = Scripted::new(&spool);
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    drained(&h).await;
    assert_eq!(t.calls_for("bob@example.net").len(), 1);
    assert!(!states.path(&orphan).exists());
    let ev = mem.for_queue_id(&id);
    let MailEvent::Queued(q) = &ev[0] else {
        panic!()
    };
    assert_eq!(q.origin, "recovery");
    h.shutdown(Duration::from_secs(5)).await;
}

/// A transport that gives up without a result (a bug, a panic): the recipient
/// is deferred, not lost and not bounced.
struct Broken;

impl postern_delivery::Transport for Broken {
    async fn run(self: Arc<Self>, _job: postern_delivery::Job, feed: postern_delivery::JobFeed) {
        drop(feed);
    }
}

#[tokio::test(start_paused = true)]
async fn a_transport_without_a_result_defers() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let (log, mem) = MailLog::memory();
    let h = start(
        settings(dir.path()),
        spool.clone(),
        Arc::new(Broken),
        log,
        Arc::new(TokioClock::new()),
    );
    let id = commit(
        &spool,
        "alice@example.com",
        &[rcpt("bob@example.net")],
        MailParams::default(),
    );
    h.notify(id);
    wait_for(&h, "a deferral", |s| s.deferred == 1).await;
    let ev = mem.for_queue_id(&id);
    let MailEvent::Deferred(d) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(d.cause.as_ref().unwrap().id, "delivery.internal");
    h.shutdown(Duration::from_secs(5)).await;
}

/// A running scheduler over a spool whose file operations can be made to
/// fail, with one committed (not yet announced) message for bob@example.net.
struct Flaky {
    fs: postern_spool::FaultFs<postern_spool::StdFs>,
    spool: Spool,
    t: Arc<Scripted>,
    h: postern_delivery::DeliveryHandle,
    mem: MemoryLog,
    id: QueueId,
}

impl Flaky {
    async fn start(dir: &std::path::Path) -> Self {
        use postern_spool::{FaultFs, SpoolSettings, StdFs};
        let fs = FaultFs::new(StdFs);
        let (spool, _) =
            Spool::open_with_fs(&SpoolSettings::new(dir.join("spool")), Arc::new(fs.clone()))
                .unwrap();
        let t = Scripted::new(&spool);
        let (h, mem) = run(settings(dir), &spool, Arc::clone(&t));
        // The startup scan is over once the scheduler answers.
        wait_for(&h, "the scheduler", |_| true).await;
        let id = commit(
            &spool,
            "alice@example.com",
            &[rcpt("bob@example.net")],
            MailParams::default(),
        );
        Self {
            fs,
            spool,
            t,
            h,
            mem,
            id,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_message_that_cannot_be_loaded_is_retried_and_listed_not_forgotten() {
    use postern_spool::SpoolOp;
    let dir = tempfile::tempdir().unwrap();
    let Flaky {
        fs,
        spool: _spool,
        t,
        h,
        mem,
        id,
    } = Flaky::start(dir.path()).await;
    // The next two reads of the message file fail (a flaky disk).
    fs.fail_nth(SpoolOp::Open, 1, libc::EIO);
    fs.fail_nth(SpoolOp::Open, 1, libc::EIO);
    h.notify(id);
    let s = wait_for(&h, "a failed load", |s| s.unloadable == 1).await;
    assert_eq!(s.messages, 0);
    let f = h.load_failures().await.unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].queue_id, id);
    assert_eq!(f[0].attempts, 1);
    assert!(f[0].error.contains("Input/output error"), "{}", f[0].error);
    assert!(t.calls().is_empty());
    // The quarantine verbs do not touch it: not loaded, so not known to be
    // in a quarantine (the queue's own delete would remove it).
    let as_quarantine = postern_delivery::VerbContext {
        by: "alice (192.0.2.5)".into(),
        quarantined_only: true,
    };
    let r = h
        .controller()
        .control_with(postern_delivery::Verb::Delete(id), as_quarantine)
        .await
        .unwrap();
    assert_eq!(r.outcome, postern_delivery::VerbOutcome::NotQuarantined);
    assert_eq!(h.load_failures().await.unwrap().len(), 1);

    // The first retry (after 10 s) fails too; the second (20 s later) loads it.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let f = h.load_failures().await.unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].attempts, 2, "retried once, with backoff");
    wait_for(&h, "the third load", |s| s.unloadable == 0).await;
    drained(&h).await;
    assert!(h.load_failures().await.unwrap().is_empty());
    assert_eq!(t.calls_for("bob@example.net").len(), 1);
    assert_eq!(mem.names(&id), ["queued", "delivered"]);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_retry_loads_an_unloadable_message_at_once() {
    use postern_spool::SpoolOp;
    let dir = tempfile::tempdir().unwrap();
    let Flaky {
        fs,
        spool,
        t,
        h,
        id,
        ..
    } = Flaky::start(dir.path()).await;
    fs.fail_nth(SpoolOp::Open, 1, libc::EIO);
    h.notify(id);
    wait_for(&h, "a failed load", |s| s.unloadable == 1).await;
    let r = h
        .control(postern_delivery::Verb::Retry(Some(id)))
        .await
        .unwrap();
    assert_eq!(
        (r.outcome, r.messages),
        (postern_delivery::VerbOutcome::Done, 1)
    );
    // Well before the 10 s backoff.
    wait_for(&h, "the load", |s| s.unloadable == 0).await;
    drained(&h).await;
    assert_eq!(t.calls_for("bob@example.net").len(), 1);

    // One that the operator gives up on: deleted without being loaded.
    let broken = commit(
        &spool,
        "alice@example.com",
        &[rcpt("carol@example.net")],
        MailParams::default(),
    );
    fs.fail_nth(SpoolOp::Open, 1, libc::EIO);
    h.notify(broken);
    wait_for(&h, "a failed load", |s| s.unloadable == 1).await;
    let r = h.delete(broken).await.unwrap();
    assert_eq!(r.outcome, postern_delivery::VerbOutcome::Done);
    assert_eq!(h.snapshot().await.unwrap().unloadable, 0);
    assert!(spool.envelope(&broken).is_err(), "the file is gone");
    tokio::time::sleep(Duration::from_mins(1)).await;
    assert!(t.calls_for("carol@example.net").is_empty(), "never retried");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn jobs_waiting_for_a_connection_slot_are_not_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::with_delay(&spool, Duration::from_mins(1));
    let mut s = settings(dir.path());
    s.max_connections = 1;
    // A restart's backlog: three messages to three destinations, one slot.
    let ids: Vec<QueueId> = ["a.example", "b.example", "c.example"]
        .iter()
        .map(|d| {
            let to = format!("bob@{d}");
            commit(
                &spool,
                "alice@example.com",
                &[rcpt(&to)],
                MailParams::default(),
            )
        })
        .collect();
    let (h, _mem) = run(s, &spool, Arc::clone(&t));
    let snap = wait_for(&h, "one attempt under way", |s| s.connections == 1).await;
    assert_eq!(snap.waiting_jobs, 2);
    assert_eq!((snap.in_flight, snap.pending), (1, 2), "{snap:?}");
    let views = h.messages(None).await.unwrap();
    assert_eq!(views.len(), 3);
    let busy = views.iter().filter(|v| v.in_flight[0]).count();
    assert_eq!(busy, 1, "only the attempt under way is in flight");
    drained(&h).await;
    assert_eq!(t.calls().len(), ids.len());
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_takes_the_new_routes_and_transport_for_the_next_attempt() {
    use postern_delivery::{DomainPattern, RouteSettings, RouteTarget, SmartHost};
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let old = Scripted::new(&spool);
    old.answer("bob@example.net", vec![temp("451 4.3.0 later")]);
    let (h, _mem) = run(settings(dir.path()), &spool, Arc::clone(&old));
    let id = commit(
        &spool,
        "alice@example.com",
        &[rcpt("bob@example.net")],
        MailParams::default(),
    );
    h.notify(id);
    wait_for(&h, "the deferral", |s| s.deferred == 1 && s.in_flight == 0).await;
    assert_eq!(old.calls()[0].route, "mx:example.net:opportunistic");

    // The operator adds a smart-host route for example.net and reloads.
    let mut s = settings(dir.path());
    s.routes = vec![RouteSettings {
        domains: vec![DomainPattern::parse("example.net").unwrap()],
        target: RouteTarget::SmartHost(SmartHost {
            host: "relay.test".into(),
            port: 587,
            implicit_tls: false,
            auth: None,
        }),
        tls: None,
        ca_file: None,
        origin: "route[0]".into(),
    }];
    let new = Scripted::new(&spool);
    h.reload(s, Arc::clone(&new));
    h.retry_now(Some(id));
    drained(&h).await;
    assert_eq!(old.calls().len(), 1, "the old transport is not used again");
    let calls = new.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].route, "smarthost:relay.test:587:opportunistic");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_reroutes_jobs_waiting_for_a_slot_and_lets_the_attempt_under_way_finish() {
    use postern_delivery::{DomainPattern, RouteSettings, RouteTarget, SmartHost};
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let old = Scripted::with_delay(&spool, Duration::from_mins(1));
    let mut s = settings(dir.path());
    s.max_connections = 1;
    let (h, _mem) = run(s.clone(), &spool, Arc::clone(&old));
    wait_for(&h, "the scheduler", |_| true).await;
    let first = commit(
        &spool,
        "a@example.com",
        &[rcpt("x@a.example")],
        MailParams::default(),
    );
    let second = commit(
        &spool,
        "a@example.com",
        &[rcpt("y@b.example")],
        MailParams::default(),
    );
    h.notify(first);
    wait_for(&h, "the first attempt", |s| s.connections == 1).await;
    h.notify(second);
    wait_for(&h, "the second job waiting", |s| s.waiting_jobs == 1).await;

    s.routes = vec![RouteSettings {
        domains: vec![DomainPattern::parse("b.example").unwrap()],
        target: RouteTarget::SmartHost(SmartHost {
            host: "relay.test".into(),
            port: 25,
            implicit_tls: false,
            auth: None,
        }),
        tls: None,
        ca_file: None,
        origin: "route[0]".into(),
    }];
    let new = Scripted::new(&spool);
    h.reload(s, Arc::clone(&new));
    drained(&h).await;
    let old_calls = old.calls();
    assert_eq!(old_calls.len(), 1, "{old_calls:?}");
    assert_eq!(
        old_calls[0].queue_id, first,
        "the attempt under way finished"
    );
    let new_calls = new.calls();
    assert_eq!(new_calls.len(), 1);
    assert_eq!(new_calls[0].queue_id, second);
    assert_eq!(
        new_calls[0].route, "smarthost:relay.test:25:opportunistic",
        "routed again under the new routes"
    );
    h.shutdown(Duration::from_secs(5)).await;
}
