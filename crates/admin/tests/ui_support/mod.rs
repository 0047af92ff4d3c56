//! Shared by the web console tests (`ui_pages.rs`, `ui_browser.rs`): a real
//! spool in a temp dir with a [`QueueControl`] over it (the stopped-server
//! path: `view::read_spool` and `offline::apply`), a real [`SqliteStore`]
//! filled from real event constructors, the console on `127.0.0.1:0` with a
//! real user, and a small cookie-keeping HTTP/1.1 client.

#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use postern_admin::http::{CertExpiry, ConsoleInfo, HttpState};
use postern_admin::view::{Lifetimes, read_spool};
use postern_admin::{
    BoxFuture, HttpSettings, Poisoned, QueueControl, QueueStatus, QueuedMessage, SpoolHealth,
    Unreadable, Verb, VerbOutcome, VerbReport,
};
use postern_spool::{
    ContentDecision, Envelope, EnvelopeRecipient, QueueId, Receipt, ReceiptTls, Spool,
    SpoolSettings,
};
use postern_track::{
    Attempt, CauseInfo, MailEvent, PeerCert, RcptOutcome, Received, TlsOutcome, TrackRecord,
};
use postern_trackdb::{Checkpoint, LogEntry, SqliteStore, TrackStore};
use tokio_util::sync::CancellationToken;

/// The subject an attacker chose.
pub const HOSTILE: &str = "<script>alert('owned')</script>";
/// Text chosen to hide or reorder what the operator reads: RLO (U+202E),
/// LRI (U+2066), PDI (U+2069), BEL, ESC (a terminal colour) and NUL
/// (CVE-2021-42574, "Trojan Source"). Lower case: peer names are lowered.
pub const BIDI: &str = "inv\u{202E}fdp.exe\u{2066}x\u{2069}\u{7}\u{1b}[31m\0end";
/// [`BIDI`] as a page shows it: each of those characters a U+FFFD.
pub const BIDI_SHOWN: &str = "inv\u{FFFD}fdp.exe\u{FFFD}x\u{FFFD}\u{FFFD}\u{FFFD}[31m\u{FFFD}end";
pub const USER: &str = "admin";
pub const PASSWORD: &str = "correct horse battery staple";

/// The queue over a spool directory, as for a stopped server.
pub struct SpoolControl {
    pub settings: SpoolSettings,
    pub mail_log: PathBuf,
    /// Answer like a queue that has stopped (every call `None`).
    pub stopped: AtomicBool,
    /// Report the spool poisoned.
    pub poisoned: AtomicBool,
}

impl SpoolControl {
    fn read(&self) -> (Vec<QueuedMessage>, Vec<Unreadable>) {
        let c = read_spool(&self.settings.dir, &Lifetimes::default()).unwrap();
        (c.messages, c.unreadable)
    }
}

impl QueueControl for SpoolControl {
    fn messages(&self, id: Option<QueueId>) -> BoxFuture<'_, Option<Vec<QueuedMessage>>> {
        if self.stopped.load(Ordering::SeqCst) {
            return Box::pin(async { None });
        }
        let (all, _) = self.read();
        let v = all
            .into_iter()
            .filter(|m| id.is_none_or(|id| m.envelope.queue_id == id))
            .collect();
        Box::pin(async move { Some(v) })
    }

    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>> {
        let (all, bad) = self.read();
        Box::pin(async move {
            Some(QueueStatus {
                messages: all.len(),
                unloadable: bad.len(),
                ..QueueStatus::default()
            })
        })
    }

    fn apply(&self, verb: Verb) -> BoxFuture<'_, Option<VerbReport>> {
        let r = postern_admin::offline::apply(&self.settings, Some(&self.mail_log), &verb)
            .unwrap_or_else(|e| {
                VerbReport::new(&verb, VerbOutcome::Failed, (0, 0, 0), Some(e.to_string()))
            });
        Box::pin(async move { Some(r) })
    }

    fn spool_health(&self) -> BoxFuture<'_, Option<SpoolHealth>> {
        let poisoned = self.poisoned.load(Ordering::SeqCst).then(|| Poisoned {
            op: "fsync file".into(),
            path: "/var/spool/postern/msg/X".into(),
            error: "Input/output error (os error 5)".into(),
            since: "2026-12-06T23:00:00Z".into(),
        });
        Box::pin(async move {
            Some(SpoolHealth {
                poisoned,
                free_bytes: None,
                min_free: 0,
            })
        })
    }

    fn unreadable(&self) -> BoxFuture<'_, Option<Vec<Unreadable>>> {
        let (_, bad) = self.read();
        Box::pin(async move { Some(bad) })
    }

    /// As the binary does it: the start of the message through
    /// `view::header_preview`.
    fn header_preview(&self, queue_id: QueueId) -> BoxFuture<'_, Option<Vec<(String, String)>>> {
        use std::io::Read as _;
        let preview = Spool::open(&self.settings).ok().and_then(|(spool, _)| {
            let msg = spool.open_message(&queue_id).ok()?;
            let mut buf = Vec::new();
            let max = postern_admin::view::HEADER_PREVIEW_MAX as u64;
            msg.take(max).read_to_end(&mut buf).ok()?;
            Some(postern_admin::view::header_preview(&buf))
        });
        Box::pin(async move { preview })
    }
}

/// What the console shows about the server.
pub struct TestConsole {
    pub quarantine: bool,
}

impl ConsoleInfo for TestConsole {
    fn config_text(&self) -> String {
        "[server]\nhostname = \"mx.example.com\"\n# <b>not bold</b>\n".to_owned()
    }
    fn warnings(&self) -> Vec<String> {
        vec!["[admin] has no user yet <i>x</i>".to_owned()]
    }
    fn certificates(&self) -> Vec<CertExpiry> {
        vec![
            CertExpiry {
                name: "mx.example.com".into(),
                not_after: "2026-12-10T00:00:00Z".into(),
                days_left: 3,
            },
            CertExpiry {
                name: "submission.example.com".into(),
                not_after: "2027-06-01T00:00:00Z".into(),
                days_left: 176,
            },
        ]
    }
    fn quarantine_enabled(&self) -> bool {
        self.quarantine
    }
    fn alerts(&self) -> Vec<String> {
        vec!["tracking is 3 MiB behind the mail log".to_owned()]
    }
}

/// The messages put in the spool.
pub struct Seeded {
    /// An ordinary queued message to bob@example.org, with the hostile subject.
    pub queued: QueueId,
    /// A message in the `spam` quarantine.
    pub quarantined: QueueId,
    /// A delivered message (tracking only, not in the spool).
    pub delivered: QueueId,
}

fn envelope(rcpt: &str) -> Envelope {
    Envelope {
        queue_id: QueueId::generate(),
        received_at: String::new(),
        reverse_path: "alice@example.com".into(),
        recipients: vec![EnvelopeRecipient {
            address: rcpt.into(),
            ..EnvelopeRecipient::default()
        }],
        params: postern_spool::MailParams::default(),
        receipt: Receipt {
            listener: "mx".into(),
            peer: "192.0.2.10:40000".into(),
            helo: "<b>helo</b>.example.com".into(),
            tls: Some(ReceiptTls {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                group: Some("X25519MLKEM768".into()),
                sni: Some("mx.example.com".into()),
            }),
            ..Receipt::default()
        },
        message_size: 0,
        added_headers: "Received: from <b>helo</b>.example.com\r\n".into(),
        hold: None,
        quarantine: None,
        require_tls: false,
        content: Vec::new(),
        bounce: None,
        message_id: Some("<m1@example.com>".into()),
        subject: Some(HOSTILE.into()),
    }
}

/// Puts two messages in a spool at `dir` (one queued, one quarantined).
pub fn seed_spool(dir: &std::path::Path) -> (SpoolSettings, QueueId, QueueId) {
    let settings = SpoolSettings::new(dir);
    let (spool, _) = Spool::open(&settings).unwrap();
    let mut inc = spool.begin().unwrap();
    inc.write_all(b"Subject: x\r\n\r\nhello\r\n").unwrap();
    let queued = inc.commit(envelope("bob@example.org")).unwrap().queue_id;
    let mut q = envelope("carol@example.org");
    q.hold = Some("spam suspect (score 9.1)".into());
    q.quarantine = Some("spam".into());
    q.content = vec![ContentDecision {
        by: "rspamd".into(),
        verdict: "spam suspect (score 9.10 of 15.00) <img src=x>".into(),
        action: "quarantine \"spam\"".into(),
    }];
    let mut inc = spool.begin().unwrap();
    inc.write_all(b"Subject: spam\r\n\r\nbuy\r\n").unwrap();
    let quarantined = inc.commit(q).unwrap().queue_id;
    drop(spool);
    (settings, queued, quarantined)
}

fn received(id: QueueId, rcpt: &str) -> TrackRecord {
    TrackRecord::new(
        id,
        MailEvent::Received(Received {
            sender: "alice@example.com".into(),
            rcpts: vec![rcpt.into()],
            size: 321,
            listener: "mx".into(),
            peer: "192.0.2.10:40000".into(),
            helo: "client.example.com".into(),
            tls: Some("TLSv1.3".into()),
            message_id: Some("<m2@example.com>".into()),
            subject: Some(HOSTILE.into()),
            client_name: Some("client.example.com".into()),
            tls_params: Some(ReceiptTls {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                group: Some("X25519MLKEM768".into()),
                sni: Some("mx.example.com".into()),
            }),
            ..Received::default()
        }),
    )
}

/// A tracking store with a delivered message (received, a plaintext retry
/// that failed, then a verified TLS 1.3 delivery) and the queued one's receipt.
pub fn seed_tracking(path: &std::path::Path, queued: QueueId) -> (Arc<dyn TrackStore>, QueueId) {
    let store = SqliteStore::open(path).unwrap();
    let id = QueueId::generate();
    let cert = PeerCert {
        subject: "CN=mx.example.org".into(),
        sans: vec!["mx.example.org".into(), "<b>alt</b>.example.org".into()],
        fingerprint_sha256: "ab".repeat(32),
        not_after: "2027-03-01T00:00:00Z".into(),
        issuer: "CN=Test CA".into(),
    };
    let first = MailEvent::Attempt(Box::new(Attempt {
        rcpts: vec!["dave@example.org".into()],
        destination: "example.org".into(),
        route: "mx".into(),
        mx: "mx.example.org".into(),
        ip: "198.51.100.7:25".into(),
        policy: "opportunistic".into(),
        policy_reason: "default".into(),
        starttls_offered: Some(true),
        tls: None,
        downgraded: false,
        outcome: "deferred".into(),
        reply: Some("451 4.7.0 <script>x</script> try later".into()),
        cause: Some(CauseInfo {
            id: "tls.handshake_failed".into(),
            summary: "the TLS handshake failed".into(),
            fix: "check the peer's certificate".into(),
            detail: String::new(),
        }),
        attempt: 1,
        duration_ms: 40,
    }));
    let second = MailEvent::Attempt(Box::new(Attempt {
        rcpts: vec!["dave@example.org".into()],
        destination: "example.org".into(),
        route: "mx".into(),
        mx: "mx.example.org".into(),
        ip: "198.51.100.7:25".into(),
        policy: "verify".into(),
        policy_reason: "route[1] domain example.org".into(),
        starttls_offered: Some(true),
        tls: Some(TlsOutcome {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_128_GCM_SHA256".into(),
            group: Some("secp256r1".into()),
            verified: true,
            verification: "ok".into(),
            peer_cert: Some(cert),
        }),
        downgraded: false,
        outcome: "delivered".into(),
        reply: Some("250 2.0.0 ok".into()),
        cause: None,
        attempt: 2,
        duration_ms: 80,
    }));
    let delivered = MailEvent::Delivered(RcptOutcome {
        rcpt: "dave@example.org".into(),
        mx: "mx.example.org".into(),
        ip: "198.51.100.7:25".into(),
        reply: Some("250 2.0.0 ok".into()),
        status: "2.0.0".into(),
        tls: Some("TLSv1.3".into()),
        attempts: 2,
        ..RcptOutcome::default()
    });
    let batch: Vec<LogEntry> = vec![
        received(id, "dave@example.org"),
        TrackRecord::new(id, first),
        TrackRecord::new(id, second),
        TrackRecord::new(id, delivered),
        received(queued, "bob@example.org"),
    ]
    .into_iter()
    .map(LogEntry::Mail)
    .collect();
    store
        .index(
            &batch,
            &Checkpoint {
                file_id: 1,
                offset: 100,
            },
        )
        .unwrap();
    (Arc::new(store), id)
}

/// A console on 127.0.0.1:0 over a seeded spool and tracking store.
pub struct Console {
    pub addr: SocketAddr,
    pub control: Arc<SpoolControl>,
    pub seeded: Seeded,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(quarantine: bool, tracking: bool) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let (spool, queued, quarantined) = seed_spool(&dir.path().join("spool"));
    let (store, delivered) = seed_tracking(&dir.path().join("tracking.db"), queued);
    let mut settings = HttpSettings::new(dir.path());
    settings.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let settings = Arc::new(settings);
    let auth = Arc::new(postern_admin::http::Auth::new(&settings).unwrap());
    auth.users.add(USER, PASSWORD).unwrap();
    let control = Arc::new(SpoolControl {
        settings: spool,
        mail_log: dir.path().join("mail.log"),
        stopped: AtomicBool::new(false),
        poisoned: AtomicBool::new(false),
    });
    let state = HttpState::new(
        control.clone(),
        Arc::new(TestConsole { quarantine }),
        auth,
        settings,
    )
    .with_tracking(tracking.then_some(store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    postern_admin::http::serve_listener(listener, state, shutdown.clone()).unwrap();
    Console {
        addr,
        control,
        seeded: Seeded {
            queued,
            quarantined,
            delivered,
        },
        dir,
        shutdown,
    }
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser-like client: keeps cookies, asks for HTML.
pub struct Client {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Answer {
        self.request_with(method, path, form, &[]).await
    }

    /// A request with extra header fields.
    pub async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("accept", "text/html,application/xhtml+xml");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if !self.cookies.is_empty() {
            let c = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header("cookie", c);
        }
        let body = match form {
            Some(f) => {
                req = req.header("content-type", "application/x-www-form-urlencoded");
                serde_urlencoded::to_string(f).unwrap()
            }
            None => String::new(),
        };
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || v.to_ascii_lowercase().contains("max-age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.request("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.request("POST", path, Some(form)).await
    }

    /// Logs in through the login page; returns the session's CSRF token.
    pub async fn login(&mut self) -> String {
        let page = self.get("/login").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let token = hidden(&page.body, "csrf").expect("the login form's token");
        let r = self
            .post(
                "/login",
                &[("user", USER), ("password", PASSWORD), ("csrf", &token)],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location(), "/");
        let home = self.get("/").await;
        assert_eq!(home.status, 200, "{}", home.body);
        hidden(&home.body, "csrf").expect("the session's token in the page")
    }
}

/// The value of the first hidden field `name` in `html`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// What [`seed_hostile`] added.
pub struct Hostile {
    /// Queued, from and to [`BIDI`] addresses, [`BIDI`] everywhere.
    pub queued: QueueId,
    /// In the `spam` quarantine, with a [`BIDI`] verdict and headers.
    pub quarantined: QueueId,
    /// Tracked only: received, filtered, an attempt to a [`BIDI`]
    /// destination answered with a [`BIDI`] reply, bounced.
    pub tracked: QueueId,
}

fn hostile_envelope() -> Envelope {
    let mut e = envelope(&format!("{BIDI}@example.org"));
    e.reverse_path = format!("{BIDI}@example.com");
    e.subject = Some(BIDI.to_owned());
    e.message_id = Some(format!("<{BIDI}@example.com>"));
    BIDI.clone_into(&mut e.receipt.helo);
    e.receipt.client_name = Some(BIDI.to_owned());
    e.added_headers = format!("Received: from {BIDI}\r\n");
    e
}

/// Adds mail whose every text field carries [`BIDI`] to the console's
/// spool and tracking store (a second connection to the same SQLite file).
pub fn seed_hostile(c: &Console) -> Hostile {
    let settings = SpoolSettings::new(c.dir.path().join("spool"));
    let (spool, _) = Spool::open(&settings).unwrap();
    let data = format!("Subject: {BIDI}\r\nFrom: {BIDI} <a@example.com>\r\n\r\nhi\r\n");
    let mut inc = spool.begin().unwrap();
    inc.write_all(data.as_bytes()).unwrap();
    let queued = inc.commit(hostile_envelope()).unwrap().queue_id;
    let mut q = hostile_envelope();
    q.hold = Some(BIDI.to_owned());
    q.quarantine = Some("spam".into());
    q.content = vec![ContentDecision {
        by: BIDI.to_owned(),
        verdict: BIDI.to_owned(),
        action: "quarantine \"spam\"".into(),
    }];
    let mut inc = spool.begin().unwrap();
    inc.write_all(data.as_bytes()).unwrap();
    let quarantined = inc.commit(q).unwrap().queue_id;
    drop(spool);

    let store = SqliteStore::open(&c.dir.path().join("tracking.db")).unwrap();
    let tracked = QueueId::generate();
    let rcpt = format!("{BIDI}@example.org");
    let mut received = received(tracked, &rcpt);
    if let MailEvent::Received(r) = &mut received.event {
        r.sender = format!("{BIDI}@example.com");
        BIDI.clone_into(&mut r.helo);
        r.client_name = Some(BIDI.to_owned());
        r.subject = Some(BIDI.to_owned());
        r.message_id = Some(format!("<{BIDI}@example.com>"));
    }
    let cause = CauseInfo {
        id: "smtp.rejected".into(),
        summary: BIDI.to_owned(),
        fix: BIDI.to_owned(),
        detail: BIDI.to_owned(),
    };
    let events = vec![
        received,
        TrackRecord::new(
            tracked,
            MailEvent::Filtered(postern_track::Filtered {
                decisions: vec![ContentDecision {
                    by: BIDI.to_owned(),
                    verdict: BIDI.to_owned(),
                    action: BIDI.to_owned(),
                }],
                require_tls: false,
            }),
        ),
        TrackRecord::new(
            tracked,
            MailEvent::Attempt(Box::new(Attempt {
                rcpts: vec![rcpt.clone()],
                destination: format!("{BIDI}.example.org"),
                route: "mx".into(),
                mx: format!("mx.{BIDI}.example.org"),
                ip: "198.51.100.9:25".into(),
                policy: "opportunistic".into(),
                policy_reason: BIDI.to_owned(),
                starttls_offered: Some(false),
                tls: None,
                downgraded: false,
                outcome: "bounced".into(),
                reply: Some(format!("550 5.7.1 {BIDI}")),
                cause: Some(cause.clone()),
                attempt: 1,
                duration_ms: 10,
            })),
        ),
        TrackRecord::new(
            tracked,
            MailEvent::Bounced(RcptOutcome {
                rcpt,
                mx: format!("mx.{BIDI}.example.org"),
                ip: "198.51.100.9:25".into(),
                reply: Some(format!("550 5.7.1 {BIDI}")),
                status: "5.7.1".into(),
                cause: Some(cause),
                attempts: 1,
                ..RcptOutcome::default()
            }),
        ),
    ];
    let mut batch: Vec<LogEntry> = events.into_iter().map(LogEntry::Mail).collect();
    batch.push(LogEntry::Session(postern_track::SessionRecord::new(
        "ZX1JSBCKZ2AW",
        1,
        postern_track::SessionEvent::Rejected(postern_track::SmtpDecision {
            client: "198.51.100.66".into(),
            listener: "mx".into(),
            stage: "rcpt".into(),
            rule: BIDI.to_owned(),
            group: Some(BIDI.to_owned()),
            policy: Some(BIDI.to_owned()),
            reply: format!("550 5.7.1 {BIDI}"),
            sender: Some(format!("{BIDI}@example.com")),
            recipient: Some(format!("{BIDI}@example.org")),
        }),
    )));
    store
        .index(
            &batch,
            &Checkpoint {
                file_id: 1,
                offset: 200,
            },
        )
        .unwrap();
    Hostile {
        queued,
        quarantined,
        tracked,
    }
}
