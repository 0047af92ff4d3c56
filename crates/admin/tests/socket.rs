//! The admin socket as the CLI meets it: a real Unix socket, real HTTP/1.1
//! (the crate's hyper client, and raw bytes for malformed requests), behind a
//! small in-memory `QueueControl` (the seam the binary fills with delivery's
//! handle). Covers the socket's access control (mode 0600), stale and live
//! socket files at start, id validation, the body limit, and the verbs'
//! HTTP statuses.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)]

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_admin::{
    AdminClient, AdminError, AdminSettings, BoxFuture, ClientError, ListBody, QueueControl,
    QueueStatus, QueuedMessage, ShowBody, State, Verb, VerbOutcome, VerbReport,
};
use postern_spool::{
    Envelope, EnvelopeRecipient, MailParams, MessageState, QueueId, RcptStatus, Receipt,
    StateRecord,
};
use postern_track::{MailEvent, MailLog, Queued};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A queue of fixed messages; verbs are recorded and answered from a script.
#[derive(Default)]
struct Fake {
    messages: Vec<QueuedMessage>,
    verbs: Mutex<Vec<Verb>>,
}

impl QueueControl for Fake {
    fn messages(&self, id: Option<QueueId>) -> BoxFuture<'_, Option<Vec<QueuedMessage>>> {
        let v = self
            .messages
            .iter()
            .filter(|m| id.is_none_or(|id| m.envelope.queue_id == id))
            .cloned()
            .collect();
        Box::pin(async move { Some(v) })
    }

    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>> {
        Box::pin(async move {
            Some(QueueStatus {
                messages: self.messages.len(),
                ..QueueStatus::default()
            })
        })
    }

    fn apply(&self, verb: Verb) -> BoxFuture<'_, Option<VerbReport>> {
        self.verbs.lock().unwrap().push(verb.clone());
        let known = |id: &QueueId| self.messages.iter().any(|m| m.envelope.queue_id == *id);
        let report = match &verb {
            Verb::Hold(id) if known(id) => {
                VerbReport::new(&verb, VerbOutcome::Done, (1, 1, 0), None)
            }
            Verb::Delete(id) if known(id) => {
                VerbReport::new(&verb, VerbOutcome::Pending, (1, 0, 1), None)
            }
            Verb::Retry(Some(id)) if known(id) => VerbReport::outcome(&verb, VerbOutcome::Held),
            Verb::Flush(_) | Verb::Retry(None) => {
                VerbReport::new(&verb, VerbOutcome::Done, (2, 3, 0), None)
            }
            _ => VerbReport::outcome(&verb, VerbOutcome::NotFound),
        };
        Box::pin(async move { Some(report) })
    }
}

fn message(rcpt: &str, deferred: bool) -> QueuedMessage {
    let id = QueueId::generate();
    let env = Envelope {
        queue_id: id,
        received_at: "2026-01-01T00:00:00Z".into(),
        reverse_path: "alice@example.com".into(),
        recipients: vec![EnvelopeRecipient {
            address: rcpt.into(),
            ..EnvelopeRecipient::default()
        }],
        params: MailParams::default(),
        receipt: Receipt::default(),
        message_size: 42,
        added_headers: String::new(),
        hold: None,
        quarantine: None,
        require_tls: false,
        content: Vec::new(),
        bounce: None,
        message_id: None,
        subject: None,
    };
    let mut state = MessageState::new(1);
    if deferred {
        state.apply(&StateRecord::Rcpt {
            rcpt: 0,
            status: RcptStatus::Deferred,
            attempts: 2,
            next_attempt_ms: Some(1_900_000_000_000),
            reply: None,
            cause: Some("net.connect_refused".into()),
            mx: Some("127.0.0.1".into()),
            at_ms: 1,
        });
    }
    QueuedMessage {
        envelope: Arc::new(env),
        state,
        in_flight: vec![false],
        deleting: false,
        expires_ms: None,
        quarantine_until_ms: None,
    }
}

#[tokio::test]
async fn serves_the_api_on_a_private_socket() {
    let dir = tempfile::tempdir().unwrap();
    let settings = AdminSettings::new(dir.path());
    let deferred = message("bob@example.com", true);
    let pending = message("carol@example.org", false);
    let (did, pid) = (deferred.envelope.queue_id, pending.envelope.queue_id);
    let fake = Arc::new(Fake {
        messages: vec![deferred, pending],
        ..Fake::default()
    });
    let log_path = dir.path().join("mail.log");
    let log = MailLog::open(&log_path).unwrap();
    log.emit(did, MailEvent::Queued(Queued::default()));
    log.flush();
    let server = postern_admin::start(&settings, fake.clone(), Some(log_path))
        .await
        .unwrap();
    let md = std::fs::symlink_metadata(&settings.socket).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(md.permissions().mode() & 0o777, 0o600, "owner only");

    let c = AdminClient::new(&settings.socket);
    let (st, s): (u16, QueueStatus) = c.json("GET", "/v1/status").await.unwrap();
    assert_eq!((st, s.messages), (200, 2));
    let (st, l): (u16, ListBody) = c.json("GET", "/v1/queue").await.unwrap();
    assert_eq!((st, l.messages.len()), (200, 2));
    let (_, l): (u16, ListBody) = c
        .json(
            "GET",
            "/v1/queue?state=deferred&domain=EXAMPLE.com&older_than=1h",
        )
        .await
        .unwrap();
    assert_eq!(l.messages.len(), 1);
    assert_eq!(l.messages[0].queue_id, did);
    assert_eq!(l.messages[0].state, State::Deferred);
    let (st, _) = c.request("GET", "/v1/queue?state=frozen").await.unwrap();
    assert_eq!(st, 400);
    let (st, _) = c
        .request("GET", "/v1/queue?older_than=2weeks")
        .await
        .unwrap();
    assert_eq!(st, 400);

    let (st, show): (u16, ShowBody) = c.json("GET", &format!("/v1/queue/{did}")).await.unwrap();
    assert_eq!(st, 200);
    assert!(show.message.envelope.is_some());
    assert_eq!(
        show.message.recipients[0].last_cause.as_deref(),
        Some("net.connect_refused")
    );
    assert_eq!(show.events.len(), 1, "the mail log's events");
    let (st, _) = c
        .request("GET", &format!("/v1/queue/{}", QueueId::generate()))
        .await
        .unwrap();
    assert_eq!(st, 404);
    // Ids are validated: nothing but a queue id reaches the queue.
    for bad in ["..%2F..%2Fetc%2Fpasswd", "short", "0H5W1N4Y8M2Q3R7T9!"] {
        let (st, _) = c
            .request("POST", &format!("/v1/queue/{bad}/hold"))
            .await
            .unwrap();
        assert_eq!(st, 400, "{bad}");
    }
    let (st, _) = c.request("POST", "/v1/queue/flush/a%2Fb").await.unwrap();
    assert_eq!(st, 400);

    let (st, r): (u16, VerbReport) = c
        .json("POST", &format!("/v1/queue/{did}/hold"))
        .await
        .unwrap();
    assert_eq!((st, r.outcome), (200, VerbOutcome::Done));
    assert_eq!(r.text, format!("held {did} (1 recipient)"));
    let (st, r): (u16, VerbReport) = c.json("DELETE", &format!("/v1/queue/{pid}")).await.unwrap();
    assert_eq!((st, r.outcome), (202, VerbOutcome::Pending));
    let (st, r): (u16, VerbReport) = c
        .json("POST", &format!("/v1/queue/{did}/retry"))
        .await
        .unwrap();
    assert_eq!((st, r.outcome), (409, VerbOutcome::Held));
    let (st, r): (u16, VerbReport) = c
        .json(
            "POST",
            &format!("/v1/queue/{}/release", QueueId::generate()),
        )
        .await
        .unwrap();
    assert_eq!((st, r.outcome), (404, VerbOutcome::NotFound));
    let (st, r): (u16, VerbReport) = c.json("POST", "/v1/queue/retry").await.unwrap();
    assert_eq!((st, r.target.as_str()), (200, "all"));
    let (st, r): (u16, VerbReport) = c.json("POST", "/v1/queue/flush/example.com").await.unwrap();
    assert_eq!((st, r.target.as_str()), (200, "example.com"));
    let verbs = fake.verbs.lock().unwrap().clone();
    assert_eq!(verbs.len(), 6);
    assert_eq!(
        verbs[..3],
        [Verb::Hold(did), Verb::Delete(pid), Verb::Retry(Some(did))]
    );
    assert!(matches!(verbs[3], Verb::Release(_)));
    assert_eq!(
        verbs[4..],
        [Verb::Retry(None), Verb::Flush("example.com".into())]
    );
    let (st, _) = c.request("GET", "/v2/anything").await.unwrap();
    assert_eq!(st, 404);
    let (st, _) = c
        .request("GET", &format!("/v1/queue/{did}/hold"))
        .await
        .unwrap();
    assert_eq!(st, 405, "verbs are POST");

    // Bodies are limited (the API takes none).
    let mut raw = tokio::net::UnixStream::connect(&settings.socket)
        .await
        .unwrap();
    let body = vec![b'x'; postern_admin::server::MAX_BODY + 1];
    raw.write_all(
        format!(
            "POST /v1/queue/{did}/hold HTTP/1.1\r\nHost: l\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let _ = raw.write_all(&body).await;
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(fake.verbs.lock().unwrap().len(), 6, "not applied");

    server.shutdown(Duration::from_secs(5)).await;
    assert!(!settings.socket.exists(), "removed at shutdown");
    assert!(matches!(
        c.request("GET", "/v1/status").await,
        Err(ClientError::NotRunning(_))
    ));
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = AdminSettings::new(dir.path());
    // A crash leaves the socket file behind: nobody listens on it.
    drop(std::os::unix::net::UnixListener::bind(&settings.socket).unwrap());
    assert!(settings.socket.exists());
    let first = postern_admin::start(&settings, Arc::new(Fake::default()), None)
        .await
        .unwrap();
    let c = AdminClient::new(&settings.socket);
    assert_eq!(c.request("GET", "/v1/status").await.unwrap().0, 200);
    // A second server on the same socket fails clearly and leaves the first alone.
    let err = postern_admin::start(&settings, Arc::new(Fake::default()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::InUse(_)), "{err}");
    assert!(err.to_string().contains("another server"), "{err}");
    assert_eq!(c.request("GET", "/v1/status").await.unwrap().0, 200);
    first.shutdown(Duration::from_secs(5)).await;

    // Something that is not a socket is never removed.
    std::fs::write(&settings.socket, b"precious").unwrap();
    let err = postern_admin::start(&settings, Arc::new(Fake::default()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read(&settings.socket).unwrap(), b"precious");

    // A path too long for a socket address is explained.
    let long = AdminSettings {
        enabled: true,
        socket: dir.path().join("d".repeat(120)).join("admin.sock"),
    };
    let err = postern_admin::start(&long, Arc::new(Fake::default()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::PathTooLong(..)), "{err}");
}

/// A queue that reports a real spool's health and rechecks it (the binary does
/// the same over the running spool).
struct WithSpool {
    spool: postern_spool::Spool,
}

impl QueueControl for WithSpool {
    fn messages(&self, _id: Option<QueueId>) -> BoxFuture<'_, Option<Vec<QueuedMessage>>> {
        Box::pin(async { Some(Vec::new()) })
    }

    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>> {
        Box::pin(async { Some(QueueStatus::default()) })
    }

    fn apply(&self, verb: Verb) -> BoxFuture<'_, Option<VerbReport>> {
        Box::pin(async move { Some(VerbReport::outcome(&verb, VerbOutcome::NotFound)) })
    }

    fn spool_health(&self) -> BoxFuture<'_, Option<postern_admin::SpoolHealth>> {
        let h = postern_admin::SpoolHealth::of(&self.spool);
        Box::pin(async move { Some(h) })
    }

    fn recheck(&self) -> BoxFuture<'_, Option<postern_admin::RecheckReport>> {
        let r = postern_admin::RecheckReport::of(self.spool.recheck());
        Box::pin(async move { Some(r) })
    }
}

#[tokio::test]
async fn a_poisoned_spool_shows_in_status_and_list_and_recheck_clears_it() {
    use postern_spool::{FaultFs, SpoolOp, SpoolSettings, StdFs};
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(StdFs);
    let (spool, _) = postern_spool::Spool::open_with_fs(
        &SpoolSettings::new(dir.path().join("spool")),
        Arc::new(fs.clone()),
    )
    .unwrap();
    fs.fail_from(SpoolOp::SyncFile, 1, libc::EIO);
    let mut inc = spool.begin().unwrap();
    inc.write_all(b"Subject: x\r\n\r\nx\r\n").unwrap();
    let env = (*message("bob@example.com", false).envelope).clone();
    inc.commit(env).unwrap_err();
    assert!(spool.is_poisoned());

    let settings = AdminSettings::new(dir.path());
    let server = postern_admin::start(
        &settings,
        Arc::new(WithSpool {
            spool: spool.clone(),
        }),
        None,
    )
    .await
    .unwrap();
    let client = AdminClient::new(&settings.socket);
    let (code, st): (u16, QueueStatus) = client.json("GET", "/v1/status").await.unwrap();
    assert_eq!(code, 200);
    let health = st.spool.expect("the spool's health");
    let p = health.poisoned.clone().expect("poisoned");
    assert_eq!(p.op, "fsync file");
    assert!(health.warnings()[0].contains("postern spool recheck"));
    let (_, list): (u16, ListBody) = client.json("GET", "/v1/queue").await.unwrap();
    assert!(list.spool.unwrap().poisoned.is_some());

    // The disk still fails: 500, still poisoned.
    let (code, r): (u16, postern_admin::RecheckReport) =
        client.json("POST", "/v1/spool/recheck").await.unwrap();
    assert_eq!(code, 500);
    assert!(!r.ok);
    assert!(r.text.starts_with("spool recheck failed"), "{}", r.text);
    assert!(spool.is_poisoned());

    fs.clear_faults();
    let (code, r): (u16, postern_admin::RecheckReport) =
        client.json("POST", "/v1/spool/recheck").await.unwrap();
    assert_eq!(code, 200, "{}", r.text);
    assert!(r.ok && r.was_poisoned, "{r:?}");
    assert!(!spool.is_poisoned());
    let (_, st): (u16, QueueStatus) = client.json("GET", "/v1/status").await.unwrap();
    assert!(st.spool.unwrap().poisoned.is_none());
    server.shutdown(Duration::from_secs(5)).await;
}

/// A queue with one message the scheduler cannot read.
struct Broken {
    id: QueueId,
}

impl QueueControl for Broken {
    fn messages(&self, _id: Option<QueueId>) -> BoxFuture<'_, Option<Vec<QueuedMessage>>> {
        Box::pin(async { Some(Vec::new()) })
    }

    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>> {
        Box::pin(async {
            Some(QueueStatus {
                unloadable: 1,
                ..QueueStatus::default()
            })
        })
    }

    fn apply(&self, verb: Verb) -> BoxFuture<'_, Option<VerbReport>> {
        Box::pin(async move { Some(VerbReport::outcome(&verb, VerbOutcome::NotFound)) })
    }

    fn unreadable(&self) -> BoxFuture<'_, Option<Vec<postern_admin::Unreadable>>> {
        let u = postern_admin::Unreadable {
            name: self.id.to_string(),
            error: "spool I/O error: open …: Input/output error (os error 5)".into(),
            attempts: Some(3),
            next_attempt: Some("2026-12-06T13:00:40Z".into()),
        };
        Box::pin(async move { Some(vec![u]) })
    }
}

#[tokio::test]
async fn a_message_that_cannot_be_read_is_listed_and_shown_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let settings = AdminSettings::new(dir.path());
    let id = QueueId::generate();
    let server = postern_admin::start(&settings, Arc::new(Broken { id }), None)
        .await
        .unwrap();
    let client = AdminClient::new(&settings.socket);
    let (code, list): (u16, ListBody) = client.json("GET", "/v1/queue").await.unwrap();
    assert_eq!(code, 200);
    assert!(list.messages.is_empty());
    assert_eq!(list.unreadable.len(), 1);
    assert_eq!(list.unreadable[0].name, id.to_string());
    assert_eq!(list.unreadable[0].attempts, Some(3));
    let (code, v): (u16, serde_json::Value) = client
        .json("GET", &format!("/v1/queue/{id}"))
        .await
        .unwrap();
    assert_eq!(code, 409);
    let text = v["error"].as_str().unwrap();
    assert!(text.contains("cannot be read: spool I/O error"), "{text}");
    assert!(
        text.contains(&format!("postern queue delete {id}")),
        "{text}"
    );
    let other = QueueId::generate();
    let (code, _): (u16, serde_json::Value) = client
        .json("GET", &format!("/v1/queue/{other}"))
        .await
        .unwrap();
    assert_eq!(code, 404);
    server.shutdown(Duration::from_secs(5)).await;
}
