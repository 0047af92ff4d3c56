//! Shared by the `http_*` tests: a `QueueControl` over a real spool in a temp
//! dir (listing from disk, verbs through `offline::apply`, as a stopped
//! server would), the listener started on 127.0.0.1:0 with a real user and
//! real argon2, and a small raw HTTP/1.1 client (plain or TLS) that shows
//! every header as sent.

#![allow(clippy::unwrap_used, dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use postern_admin::http::auth::Clock;
use postern_admin::http::{Auth, HttpState, NoConsoleInfo};
use postern_admin::view::{Lifetimes, read_one, read_spool};
use postern_admin::{
    BoxFuture, HttpSettings, Poisoned, QueueControl, QueueStatus, QueuedMessage, SpoolHealth, Verb,
    VerbReport,
};
use postern_spool::{
    Envelope, EnvelopeRecipient, MailParams, QueueId, Receipt, Spool, SpoolSettings,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";

/// The queue of a stopped server: the spool on disk.
pub struct SpoolControl {
    pub settings: SpoolSettings,
    pub mail_log: PathBuf,
    pub poisoned: Mutex<Option<Poisoned>>,
    pub stopped: AtomicBool,
}

impl SpoolControl {
    fn running(&self) -> bool {
        !self.stopped.load(Ordering::SeqCst)
    }
}

impl QueueControl for SpoolControl {
    fn messages(&self, id: Option<QueueId>) -> BoxFuture<'_, Option<Vec<QueuedMessage>>> {
        let dir = self.settings.dir.clone();
        let running = self.running();
        Box::pin(async move {
            if !running {
                return None;
            }
            let l = Lifetimes::default();
            Some(match id {
                Some(id) => read_one(&dir, &id, &l).unwrap().into_iter().collect(),
                None => read_spool(&dir, &l).unwrap().messages,
            })
        })
    }

    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>> {
        Box::pin(async move {
            let all = self.messages(None).await?;
            Some(QueueStatus {
                messages: all.len(),
                ..QueueStatus::default()
            })
        })
    }

    fn apply(&self, verb: Verb) -> BoxFuture<'_, Option<VerbReport>> {
        let settings = self.settings.clone();
        let log = self.mail_log.clone();
        let running = self.running();
        Box::pin(async move {
            if !running {
                return None;
            }
            tokio::task::spawn_blocking(move || {
                postern_admin::offline::apply(&settings, Some(&log), &verb).unwrap()
            })
            .await
            .ok()
        })
    }

    fn spool_health(&self) -> BoxFuture<'_, Option<SpoolHealth>> {
        let poisoned = self.poisoned.lock().unwrap().clone();
        Box::pin(async move {
            Some(SpoolHealth {
                poisoned,
                free_bytes: None,
                min_free: 0,
            })
        })
    }
}

/// Queues a message for `rcpts` in the spool at `settings`.
pub fn commit(settings: &SpoolSettings, rcpts: &[&str]) -> QueueId {
    let (spool, _) = Spool::open(settings).unwrap();
    let mut inc = spool.begin().unwrap();
    inc.write_all(b"Subject: t\r\n\r\nhi\r\n").unwrap();
    let id = *inc.queue_id();
    inc.commit(Envelope {
        queue_id: id,
        received_at: String::new(),
        reverse_path: "a@example.com".into(),
        recipients: rcpts
            .iter()
            .map(|r| EnvelopeRecipient {
                address: (*r).into(),
                ..EnvelopeRecipient::default()
            })
            .collect(),
        params: MailParams::default(),
        receipt: Receipt::default(),
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
    id
}

/// What the server has beside the queue.
#[derive(Debug, Clone, Copy)]
pub struct Extras {
    /// A SQLite tracking store holding the queued message's `received`.
    pub tracking: bool,
    /// A metrics registry.
    pub metrics: bool,
}

impl Default for Extras {
    fn default() -> Self {
        Self {
            tracking: true,
            metrics: true,
        }
    }
}

/// A tracking store in `dir` with a `received` event for `id`.
fn tracking_store(dir: &std::path::Path, id: QueueId) -> Arc<dyn postern_trackdb::TrackStore> {
    use postern_track::{EventId, MailEvent, Received, TrackRecord};
    use postern_trackdb::{Checkpoint, LogEntry, SqliteStore, TrackStore};
    let store = SqliteStore::open(&dir.join("tracking.db")).unwrap();
    let rec = TrackRecord {
        ts: "2026-12-06T22:00:00Z".into(),
        event_id: EventId::next(&id),
        queue_id: id,
        event: MailEvent::Received(Received {
            sender: "a@example.com".into(),
            rcpts: vec!["bob@example.net".into()],
            size: 42,
            listener: "mx".into(),
            peer: "192.0.2.7".into(),
            helo: "client.example".into(),
            ..Received::default()
        }),
    };
    store
        .index(
            &[LogEntry::Mail(rec)],
            &Checkpoint {
                file_id: 1,
                offset: 1,
            },
        )
        .unwrap();
    Arc::new(store)
}

/// A running listener with one user and one queued message.
pub struct Server {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub state: HttpState,
    pub control: Arc<SpoolControl>,
    pub clock: Clock,
    pub queued: QueueId,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Plain HTTP on loopback.
    pub async fn start() -> Server {
        Self::start_with(|_| {}, None, Extras::default()).await
    }

    /// With settings changed by `f`, and TLS (server config, client config).
    pub async fn start_with(
        f: impl FnOnce(&mut HttpSettings),
        tls: Option<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)>,
        extras: Extras,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = HttpSettings::new(dir.path());
        settings.tls = tls.as_ref().map(|t| Arc::clone(&t.0));
        f(&mut settings);
        let spool = SpoolSettings::new(dir.path().join("spool"));
        let queued = commit(&spool, &["bob@example.net"]);
        let control = Arc::new(SpoolControl {
            settings: spool,
            mail_log: dir.path().join("mail.log"),
            poisoned: Mutex::new(None),
            stopped: AtomicBool::new(false),
        });
        let clock = Clock::manual();
        let auth = Auth::with_clock(&settings, clock.clone()).unwrap();
        auth.users.add(USER, PASSWORD).unwrap();
        let state = HttpState::new(
            control.clone(),
            Arc::new(NoConsoleInfo),
            Arc::new(auth),
            Arc::new(settings),
        )
        .with_mail_log(Some(dir.path().join("mail.log")))
        .with_tracking(extras.tracking.then(|| tracking_store(dir.path(), queued)))
        .with_metrics(extras.metrics.then(postern_metrics::Metrics::new));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task =
            postern_admin::http::serve_listener(listener, state.clone(), shutdown.clone()).unwrap();
        Server {
            addr,
            dir,
            state,
            control,
            clock,
            queued,
            tls: tls.map(|t| t.1),
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the listener and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// One request on a fresh connection.
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Resp {
        self.req_as(None, Some(&self.host()), method, path, headers, body)
            .await
    }

    /// One request from source address `src` (a 127/8 address; `None`: the
    /// system's choice) with `Host: host` (`None`: no Host header).
    pub async fn req_as(
        &self,
        src: Option<std::net::IpAddr>,
        host: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Resp {
        let tcp = match src {
            Some(ip) => {
                let sock = tokio::net::TcpSocket::new_v4().unwrap();
                sock.bind(SocketAddr::new(ip, 0)).unwrap();
                sock.connect(self.addr).await.unwrap()
            }
            None => tokio::net::TcpStream::connect(self.addr).await.unwrap(),
        };
        match &self.tls {
            Some(cfg) => {
                let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
                let s = tokio_rustls::TlsConnector::from(Arc::clone(cfg))
                    .connect(name, tcp)
                    .await
                    .unwrap();
                raw(s, host, method, path, headers, body).await
            }
            None => raw(tcp, host, method, path, headers, body).await,
        }
    }

    /// `host:port` as the Host header.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// GET with `headers`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.req("GET", path, headers, "").await
    }

    /// Logs in as `user`/`password` through the form; the login answer.
    pub async fn login_as(&self, user: &str, password: &str) -> Resp {
        let pre = self.get("/api/login", &[]).await;
        assert_eq!(pre.status, 200, "{}", pre.body);
        let csrf = pre.json()["csrf"].as_str().unwrap().to_owned();
        let cookie = pre.cookie_pair(self.state.auth.login_cookie()).unwrap();
        let body =
            serde_urlencoded::to_string([("user", user), ("password", password), ("csrf", &csrf)])
                .unwrap();
        self.req(
            "POST",
            "/login",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json"),
            ],
            &body,
        )
        .await
    }

    /// Logs in as the test user: (`Cookie` header value, CSRF token).
    pub async fn login(&self) -> (String, String) {
        let r = self.login_as(USER, PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let cookie = r.cookie_pair(self.state.auth.session_cookie()).unwrap();
        let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
        (cookie, csrf)
    }
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The whole `Set-Cookie` line for cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&format!("{name}=")))
    }

    /// `name=value` of a cookie set by this answer (for a `Cookie` header).
    pub fn cookie_pair(&self, name: &str) -> Option<String> {
        self.set_cookie(name)
            .map(|v| v.split(';').next().unwrap().to_owned())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Writes one request with `Connection: close` and reads the answer to EOF.
async fn raw<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if let Some(host) = host {
        let _ = write!(req, "Host: {host}\r\n");
    }
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    if !body.is_empty() || method != "GET" {
        let _ = write!(req, "Content-Length: {}\r\n", body.len());
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}
