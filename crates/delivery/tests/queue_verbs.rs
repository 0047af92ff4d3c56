//! The operator's verbs on a running scheduler (`postern queue hold|release|
//! delete|retry|flush`), with a scripted transport (no sockets) and paused
//! tokio time. Postfix's `postsuper -h/-H/-d` and `postqueue -i/-s` are the
//! models: held mail is not attempted (and survives a restart), deleted mail
//! is removed without a DSN (RFC 3464 reports are for delivery outcomes, not
//! for an operator's decision), a flush retries one domain only.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use postern_delivery::{DeliverySettings, TokioClock, VerbOutcome, start};
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

/// Long retry steps, so a retry that happens is the verb's doing.
fn slow_retries(dir: &std::path::Path) -> DeliverySettings {
    let mut s = settings(dir);
    s.retry_schedule = vec![Duration::from_hours(1)];
    s.delay_warning = None;
    s
}

fn one(spool: &Spool, to: &[&str]) -> QueueId {
    let rcpts: Vec<Rcpt<'_>> = to.iter().map(|a| rcpt(a)).collect();
    commit(spool, "alice@example.com", &rcpts, MailParams::default())
}

/// Sleeps `d` of (paused) tokio time in small steps, so the scheduler runs.
async fn idle(d: Duration) {
    let step = Duration::from_secs(30);
    let mut left = d;
    while !left.is_zero() {
        let s = left.min(step);
        tokio::time::sleep(s).await;
        left -= s;
    }
}

#[tokio::test(start_paused = true)]
async fn hold_stops_attempts_and_release_resumes_them() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer("bob@example.net", vec![temp("451 4.7.1 greylisted")]);
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    let id = one(&spool, &["bob@example.net"]);
    h.notify(id);
    wait_for(&h, "the first deferral", |s| s.deferred == 1).await;
    assert_eq!(h.release(id).await.unwrap().outcome, VerbOutcome::NotHeld);

    let r = h.hold(id).await.unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    assert_eq!((r.messages, r.rcpts, r.in_flight), (1, 1, 0));
    assert_eq!(r.error, None);
    assert_eq!(h.hold(id).await.unwrap().outcome, VerbOutcome::AlreadyHeld);
    assert_eq!(h.retry_one(id).await, VerbOutcome::Held);
    let s = h.snapshot().await.unwrap();
    assert_eq!((s.held_messages, s.held, s.deferred), (1, 1, 0));
    // The retry was due after 5 minutes: a held message is not attempted, not
    // even when the whole queue is retried.
    idle(Duration::from_hours(1)).await;
    h.retry_now(None);
    idle(Duration::from_mins(1)).await;
    assert_eq!(t.calls_for("bob@example.net").len(), 1);
    let view = h.messages(Some(id)).await.unwrap();
    assert!(view[0].state.is_held());
    // The hold is on disk.
    let st = StateStore::new(spool.dir()).load(&id, 1).unwrap().unwrap();
    assert!(st.is_held());

    let r = h.release(id).await.unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    drained(&h).await;
    assert_eq!(t.calls_for("bob@example.net").len(), 2);
    assert_eq!(
        mem.names(&id),
        ["queued", "deferred", "held", "released", "delivered"]
    );
    let MailEvent::Held(a) = &mem.for_queue_id(&id)[2] else {
        panic!()
    };
    assert_eq!(a.rcpts, ["bob@example.net"]);
    assert_eq!(a.via, "admin");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_hold_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t1 = Scripted::new(&spool);
    t1.answer("bob@example.net", vec![temp("421 4.3.2 busy")]);
    let (h, _mem) = run(slow_retries(dir.path()), &spool, Arc::clone(&t1));
    let id = one(&spool, &["bob@example.net", "carol@example.org"]);
    h.notify(id);
    wait_for(&h, "the deferral", |s| s.deferred == 1 && s.in_flight == 0).await;
    assert_eq!(h.hold(id).await.unwrap().outcome, VerbOutcome::Done);
    h.shutdown(Duration::from_secs(5)).await;

    // A new process on the same spool, long after the retry was due.
    drop(t1);
    drop(spool);
    idle(Duration::from_hours(3)).await;
    let spool = open_spool(dir.path());
    let t2 = Scripted::new(&spool);
    let (h, mem) = run(slow_retries(dir.path()), &spool, Arc::clone(&t2));
    wait_for(&h, "the recovered message", |s| s.messages == 1).await;
    idle(Duration::from_hours(2)).await;
    assert!(t2.calls().is_empty(), "held across the restart");
    let s = h.snapshot().await.unwrap();
    assert_eq!((s.held_messages, s.held), (1, 1));
    assert_eq!(h.release(id).await.unwrap().outcome, VerbOutcome::Done);
    drained(&h).await;
    assert_eq!(t2.calls_for("bob@example.net").len(), 1);
    assert!(
        t2.calls_for("carol@example.org").is_empty(),
        "delivered before"
    );
    assert_eq!(mem.names(&id), ["queued", "released", "delivered"]);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_hold_during_an_attempt_takes_effect_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::with_delay(&spool, Duration::from_secs(10));
    t.answer("bob@example.net", vec![temp("451 4.3.0 later")]);
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    let id = one(&spool, &["bob@example.net"]);
    h.notify(id);
    wait_for(&h, "the attempt", |s| s.in_flight == 1).await;
    let r = h.hold(id).await.unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    assert_eq!((r.rcpts, r.in_flight), (0, 1));
    // The attempt ends and is recorded; nothing follows.
    wait_for(&h, "the held deferral", |s| s.in_flight == 0 && s.held == 1).await;
    idle(Duration::from_hours(1)).await;
    assert_eq!(t.calls().len(), 1);
    assert_eq!(mem.names(&id), ["queued", "held", "deferred"]);
    let st = StateStore::new(spool.dir()).load(&id, 1).unwrap().unwrap();
    assert!(st.is_held());
    assert_eq!(st.rcpts[0].status, RcptStatus::Deferred);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn delete_of_a_deferred_message_removes_it_without_a_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer("bob@example.net", vec![temp("451 4.3.0 later")]);
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    let id = one(&spool, &["bob@example.net", "carol@example.org"]);
    h.notify(id);
    wait_for(&h, "the deferral", |s| s.deferred == 1 && s.in_flight == 0).await;
    let state = StateStore::new(spool.dir()).path(&id);
    assert!(state.exists());

    let r = h.delete(id).await.unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    assert_eq!((r.messages, r.rcpts), (1, 1));
    // Gone at once: message file and state.
    assert!(spool.list().unwrap().is_empty());
    assert!(!state.exists());
    assert_eq!(h.snapshot().await.unwrap().messages, 0);
    assert_eq!(h.delete(id).await.unwrap().outcome, VerbOutcome::NotFound);
    assert_eq!(h.hold(id).await.unwrap().outcome, VerbOutcome::NotFound);
    idle(Duration::from_hours(1)).await;
    assert_eq!(t.calls_for("bob@example.net").len(), 1, "no retry");
    assert!(t.calls().iter().all(|c| !c.sender.is_empty()), "no DSN");
    assert_eq!(
        mem.names(&id),
        ["queued", "deferred", "delivered", "deleted"]
    );
    let MailEvent::Deleted(a) = mem.for_queue_id(&id).pop().unwrap() else {
        panic!()
    };
    assert_eq!(a.rcpts, ["bob@example.net"]);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn delete_during_an_attempt_records_the_attempt_then_removes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::with_delay(&spool, Duration::from_secs(10));
    t.answer("bob@example.net", vec![perm("550 5.1.1 no such user")]);
    let (h, mem) = run(settings(dir.path()), &spool, Arc::clone(&t));
    let id = one(&spool, &["bob@example.net"]);
    h.notify(id);
    wait_for(&h, "the attempt", |s| s.in_flight == 1).await;
    let r = h.delete(id).await.unwrap();
    assert_eq!(r.outcome, VerbOutcome::Pending);
    assert_eq!(r.in_flight, 1);
    assert_eq!(h.release(id).await.unwrap().outcome, VerbOutcome::Deleting);
    assert_eq!(h.retry_one(id).await, VerbOutcome::Deleting);
    drained(&h).await;
    // The bounce is recorded and logged, but no DSN goes out for a deleted
    // message.
    assert_eq!(mem.names(&id), ["queued", "bounced", "deleted"]);
    assert_eq!(t.calls().len(), 1, "no DSN");
    assert!(spool.list().unwrap().is_empty());
    let MailEvent::Deleted(a) = mem.for_queue_id(&id).pop().unwrap() else {
        panic!()
    };
    assert_eq!(a.in_flight, 1);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn delete_withdraws_a_job_waiting_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::with_delay(&spool, Duration::from_secs(10));
    let mut s = settings(dir.path());
    s.max_connections = 1;
    let (h, mem) = run(s, &spool, Arc::clone(&t));
    let first = one(&spool, &["a@busy.example"]);
    h.notify(first);
    wait_for(&h, "the first attempt", |s| s.in_flight == 1).await;
    // Committed now, so the startup scan cannot have loaded it with the first.
    let second = one(&spool, &["b@busy.example"]);
    h.notify(second);
    wait_for(&h, "the waiting job", |s| s.waiting_jobs == 1).await;
    let r = h.delete(second).await.unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    drained(&h).await;
    assert!(t.calls_for("b@busy.example").is_empty(), "never attempted");
    assert_eq!(mem.names(&second), ["queued", "deleted"]);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn flush_retries_one_domain_and_retry_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    for a in ["a@flush.example", "b@other.example", "c@third.example"] {
        t.answer(a, vec![temp("451 4.3.0 later")]);
    }
    let (h, _mem) = run(slow_retries(dir.path()), &spool, Arc::clone(&t));
    let m1 = one(&spool, &["a@flush.example", "b@other.example"]);
    let m2 = one(&spool, &["c@third.example"]);
    h.notify(m1);
    h.notify(m2);
    wait_for(&h, "three deferrals", |s| {
        s.deferred == 3 && s.in_flight == 0
    })
    .await;

    // The domain compares without regard to case; subdomains are not it.
    let r = h.flush("FLUSH.example").await.unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    assert_eq!((r.messages, r.rcpts), (1, 1));
    wait_for(&h, "the flushed delivery", |s| s.deferred == 2).await;
    let a = t.calls_for("a@flush.example");
    assert_eq!(a.len(), 2);
    assert!(
        a[1].at - a[0].at < Duration::from_mins(5),
        "retried at once"
    );
    assert_eq!(
        t.calls_for("b@other.example").len(),
        1,
        "other domain waits"
    );
    let r = h.flush("nowhere.example").await.unwrap();
    assert_eq!((r.outcome, r.messages, r.rcpts), (VerbOutcome::Done, 0, 0));

    assert_eq!(h.retry_one(m2).await, VerbOutcome::Done);
    wait_for(&h, "the retried message", |s| s.deferred == 1).await;
    assert_eq!(t.calls_for("c@third.example").len(), 2);
    assert_eq!(t.calls_for("b@other.example").len(), 1);
    assert_eq!(
        h.retry_one(QueueId::generate()).await,
        VerbOutcome::NotFound
    );

    // Retry everything.
    let r = h
        .control(postern_delivery::Verb::Retry(None))
        .await
        .unwrap();
    assert_eq!((r.messages, r.rcpts), (1, 1));
    drained(&h).await;
    assert_eq!(t.calls_for("b@other.example").len(), 2);
    h.shutdown(Duration::from_secs(5)).await;
}

/// `retry ID` as the CLI sends it.
trait RetryOne {
    async fn retry_one(&self, id: QueueId) -> VerbOutcome;
}

impl RetryOne for postern_delivery::DeliveryHandle {
    async fn retry_one(&self, id: QueueId) -> VerbOutcome {
        self.control(postern_delivery::Verb::Retry(Some(id)))
            .await
            .unwrap()
            .outcome
    }
}

/// Commits a message accepted into a quarantine (`name`; `None`: the
/// default one), as the content policy or a DMARC quarantine does.
fn quarantined(spool: &Spool, to: &str, name: Option<&str>) -> QueueId {
    let mut inc = spool.begin().unwrap();
    inc.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
    let env = postern_spool::Envelope {
        queue_id: *inc.queue_id(),
        received_at: String::new(),
        reverse_path: "ceo@spoofed.example".into(),
        recipients: vec![postern_spool::EnvelopeRecipient {
            address: to.into(),
            notify: None,
            orcpt: None,
        }],
        params: MailParams::default(),
        receipt: postern_spool::Receipt::default(),
        message_size: 0,
        added_headers: String::new(),
        hold: Some("DMARC fail for spoofed.example (p=quarantine)".into()),
        quarantine: name.map(str::to_owned),
        require_tls: false,
        content: Vec::new(),
        bounce: None,
        message_id: None,
        subject: None,
    };
    inc.commit(env).unwrap().queue_id
}

/// The quarantine endpoints' verbs (`VerbContext::quarantined_only`) act
/// only on quarantined mail, checked in the same scheduler step: a message
/// released meanwhile is refused, not deleted. Who asked is recorded in the
/// mail log's `released` / `deleted` events.
#[tokio::test(start_paused = true)]
async fn quarantine_verbs_refuse_ordinary_mail_and_record_who_asked() {
    use postern_delivery::{Verb, VerbContext};
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer("bob@example.net", vec![temp("451 4.3.0 later")]);
    t.answer("carol@example.org", vec![temp("451 4.3.0 later")]);
    let (h, mem) = run(slow_retries(dir.path()), &spool, Arc::clone(&t));
    let ordinary = one(&spool, &["bob@example.net"]);
    let q = quarantined(&spool, "carol@example.org", None);
    h.notify(ordinary);
    h.notify(q);
    wait_for(&h, "loaded", |s| s.messages == 2 && s.in_flight == 0).await;
    let c = h.controller();
    let as_quarantine = |by: &str| VerbContext {
        by: by.into(),
        quarantined_only: true,
    };
    let alice = "alice (192.0.2.5)";
    // Ordinary mail: refused, untouched.
    for v in [Verb::Delete(ordinary), Verb::Release(ordinary)] {
        let r = c.control_with(v, as_quarantine(alice)).await.unwrap();
        assert_eq!(r.outcome, VerbOutcome::NotQuarantined);
    }
    assert_eq!(h.snapshot().await.unwrap().messages, 2);
    // The quarantined one is released, and alice is named.
    let r = c
        .control_with(Verb::Release(q), as_quarantine(alice))
        .await
        .unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    let released = mem.for_queue_id(&q).into_iter().find_map(|e| match e {
        MailEvent::Released(a) => Some(a),
        _ => None,
    });
    let a = released.unwrap();
    assert_eq!((a.via.as_str(), a.by.as_str()), ("admin", alice));
    // A second admin's "delete from quarantine", racing the release: refused.
    let r = c
        .control_with(Verb::Delete(q), as_quarantine("bob (192.0.2.6)"))
        .await
        .unwrap();
    assert_eq!(r.outcome, VerbOutcome::NotQuarantined);
    wait_for(&h, "carol attempted", |s| {
        s.deferred == 2 && s.in_flight == 0
    })
    .await;
    // The queue's own delete names who asked too.
    let r = c
        .control_with(
            Verb::Delete(ordinary),
            VerbContext {
                by: "token:ops (192.0.2.9)".into(),
                quarantined_only: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, VerbOutcome::Done);
    let MailEvent::Deleted(d) = mem.for_queue_id(&ordinary).pop().unwrap() else {
        panic!("{:?}", mem.names(&ordinary))
    };
    assert_eq!(d.by, "token:ops (192.0.2.9)");
    // Without a context (the CLI on the socket): no name.
    assert_eq!(h.delete(q).await.unwrap().outcome, VerbOutcome::Done);
    let MailEvent::Deleted(d) = mem.for_queue_id(&q).pop().unwrap() else {
        panic!()
    };
    assert!(d.by.is_empty());
    h.shutdown(Duration::from_secs(5)).await;
}

/// A message accepted held (a DMARC quarantine, `Envelope::hold`) is not
/// attempted; released, it is delivered; never released, at the end of its
/// quarantine's retention it is removed without a DSN (`deleted`, via
/// `quarantine-expiry`) — or, from a quarantine whose `on_expiry` is
/// `release`, delivered (`released`, via `quarantine-expiry`).
#[tokio::test(start_paused = true)]
async fn quarantined_messages_wait_for_a_release_or_expire_silently() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer("bob@example.net", vec![ok()]);
    t.answer("dave@example.com", vec![ok()]);
    let mut s = slow_retries(dir.path());
    s.max_lifetime = Duration::from_hours(1);
    let policy = postern_spool::QuarantineSpec {
        retention: Duration::from_hours(2),
        on_expiry: postern_spool::OnExpiry::Delete,
        description: String::new(),
    };
    s.quarantines.insert("policy", policy.clone());
    s.quarantines.insert(
        "review",
        postern_spool::QuarantineSpec {
            on_expiry: postern_spool::OnExpiry::Release,
            ..policy
        },
    );
    let (h, mem) = run(s, &spool, Arc::clone(&t));
    let quarantined = |to: &str, name: Option<&str>| quarantined(&spool, to, name);
    let released = quarantined("bob@example.net", None);
    let expired = quarantined("carol@example.org", Some("policy"));
    let let_go = quarantined("dave@example.com", Some("review"));
    h.notify(released);
    h.notify(expired);
    h.notify(let_go);
    wait_for(&h, "all loaded held", |s| s.held_messages == 3).await;
    // Longer than max_lifetime: time in a quarantine is not delivery time.
    idle(Duration::from_mins(90)).await;
    assert!(t.calls().is_empty(), "nothing attempted while held");

    assert_eq!(
        h.release(released).await.unwrap().outcome,
        VerbOutcome::Done
    );
    wait_for(&h, "the released one delivered", |s| s.messages == 1).await;
    assert_eq!(t.calls_for("bob@example.net").len(), 1);

    idle(Duration::from_hours(2)).await;
    wait_for(&h, "the others expired", |s| s.messages == 0).await;
    assert_eq!(
        t.calls_for("dave@example.com").len(),
        1,
        "released at expiry and delivered"
    );
    let names = mem.names(&let_go);
    assert!(names.contains(&"released"), "{names:?}");
    assert!(
        t.calls_for("carol@example.org").is_empty(),
        "never attempted"
    );
    assert!(t.calls().iter().all(|c| !c.sender.is_empty()), "no DSN");
    let MailEvent::Deleted(a) = mem.for_queue_id(&expired).pop().unwrap() else {
        panic!("{:?}", mem.names(&expired))
    };
    assert_eq!(a.via, "quarantine-expiry");
    h.shutdown(Duration::from_secs(5)).await;
}

/// A copy queued with `Envelope::bounce` (a content filter refused these
/// recipients of a split message) is never attempted: each recipient bounces
/// with the rule's reply and the sender gets one failure DSN.
#[tokio::test(start_paused = true)]
async fn a_copy_to_bounce_is_bounced_without_an_attempt_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let t = Scripted::new(&spool);
    t.answer("sender@example.org", vec![ok()]);
    let (h, mem) = run(slow_retries(dir.path()), &spool, Arc::clone(&t));
    let mut inc = spool.begin().unwrap();
    inc.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
    let env = postern_spool::Envelope {
        queue_id: *inc.queue_id(),
        received_at: String::new(),
        reverse_path: "sender@example.org".into(),
        recipients: vec![postern_spool::EnvelopeRecipient {
            address: "ceo@example.net".into(),
            notify: None,
            orcpt: None,
        }],
        params: MailParams::default(),
        receipt: postern_spool::Receipt::default(),
        message_size: 0,
        added_headers: String::new(),
        hold: None,
        quarantine: None,
        require_tls: false,
        content: Vec::new(),
        bounce: Some("550 5.7.1 Executables are not accepted".into()),
        message_id: None,
        subject: None,
    };
    let id = inc.commit(env).unwrap().queue_id;
    h.notify(id);
    wait_for(&h, "bounced and gone; the DSN delivered", |s| {
        s.messages == 0
    })
    .await;
    assert!(t.calls_for("ceo@example.net").is_empty(), "never attempted");
    let dsn = t.calls_for("sender@example.org");
    assert_eq!(dsn.len(), 1, "one failure DSN");
    assert!(dsn[0].sender.is_empty(), "from <>");
    let names = mem.names(&id);
    assert!(names.contains(&"bounced"), "{names:?}");
    assert!(names.contains(&"dsn_sent"), "{names:?}");
    h.shutdown(Duration::from_secs(5)).await;
}
