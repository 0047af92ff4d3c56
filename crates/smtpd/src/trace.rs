//! `postern trace`: the live decision chain for a client, without mail.
//!
//! The sender-group classification is shown step by step (PTR, FCrDNS, each
//! DNS list answer, every group and why it matched or not), then a whole
//! session runs through the **real** session driver over an in-memory pipe —
//! greeting, EHLO, MAIL, each RCPT, QUIT — so every reply is exactly what
//! the client would get, and the transcript's decision lines (the rule, the
//! group, the policy) come with it. No message is sent (the script stops
//! before DATA) and no counter changes: the counter store is wrapped in a
//! dry run that turns every write into a read (`hit` answers `peek + n`,
//! `set` stores nothing).
//!
//! # Security
//! Read-only by construction: the wrapper cannot write, the spool is a
//! throw-away directory, nothing reaches the network but DNS queries.
//!
//! # Standards
//! RFC 5321 (the dialogue), RFC 5782, RFC 8601 §2.7.3.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use postern_counters::{BoxFuture, CounterError, CounterStore};
use postern_dns::Resolver;
use postern_policy::admission::{ClientFacts, Lookup};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::counting::Counters;
use crate::server::Shared;
use crate::session::{Context, Session};
use crate::settings::ServerSettings;
use crate::transcript::Transcript;

/// What to trace.
#[derive(Debug, Clone)]
pub struct TraceInput {
    /// The client address.
    pub ip: IpAddr,
    /// The listener it connects to (default: the first).
    pub listener: Option<String>,
    /// EHLO argument.
    pub helo: String,
    /// MAIL FROM (`None`: stop after EHLO; `""`: the null sender).
    pub from: Option<String>,
    /// RCPT TO, each.
    pub rcpts: Vec<String>,
    /// Pretend the session is encrypted (as after STARTTLS).
    pub tls: bool,
}

/// One DNS list's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListLine {
    /// The zone.
    pub zone: String,
    /// `127.0.0.2`, `not listed`, or the failure.
    pub answer: String,
    /// The `[[dns_list]]` weight, if configured.
    pub weight: Option<i32>,
}

/// One line of the dialogue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DialogueLine {
    /// `C` (client), `S` (server) or `*` (a decision from the transcript).
    pub dir: String,
    /// The text.
    pub text: String,
}

/// The whole trace; `--json` prints it as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceReport {
    /// The client.
    pub ip: IpAddr,
    /// The listener.
    pub listener: String,
    /// PTR names, `none`, or the failure; `not needed` when no group asked.
    pub ptr: String,
    /// `pass`, `fail`, the failure, or `not needed`.
    pub fcrdns: String,
    /// Each DNS list's answer (empty when no group needed them).
    pub dns_lists: Vec<ListLine>,
    /// The `dnsbl-score`, when the lists were asked.
    pub score: Option<i32>,
    /// Every group tried, with why it matched or not.
    pub groups: Vec<String>,
    /// The group that decided (`None`: the built-in default).
    pub group: Option<String>,
    /// The policy and its action.
    pub policy: String,
    /// The action (`accept`, `reject`, …).
    pub action: String,
    /// The counter store the limits read (`memory` or `redis`).
    pub counters: String,
    /// Where the trace ran: `server` (the running server's live counters)
    /// or `offline` (this process).
    #[serde(default)]
    pub source: String,
    /// The session as it would run.
    pub dialogue: Vec<DialogueLine>,
}

/// Turns a store into a read-only dry run. Writes go to a session-local
/// overlay (never to the store), so the trace's second RCPT sees the first
/// one's count, as the live session does.
struct DryRun {
    store: Arc<dyn CounterStore>,
    hits: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    values: std::sync::Mutex<std::collections::HashMap<String, Overlay>>,
}

/// A value the trace wrote (in its overlay only).
#[derive(Clone, Copy)]
enum Overlay {
    Set(u64),
    Deleted,
}

impl DryRun {
    fn new(store: Arc<dyn CounterStore>) -> Self {
        Self {
            store,
            hits: std::sync::Mutex::default(),
            values: std::sync::Mutex::default(),
        }
    }
    fn added(&self, key: &str) -> u64 {
        self.hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .copied()
            .unwrap_or(0)
    }
    /// The overlay's value, else the store's.
    async fn read(&self, key: &str) -> Result<Option<u64>, CounterError> {
        let local = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .copied();
        match local {
            Some(Overlay::Set(v)) => Ok(Some(v)),
            Some(Overlay::Deleted) => Ok(None),
            None => self.store.get(key).await,
        }
    }
    fn put(&self, key: &str, v: Option<u64>) {
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_owned(), v.map_or(Overlay::Deleted, Overlay::Set));
    }
}

impl CounterStore for DryRun {
    fn hit<'a>(
        &'a self,
        key: &'a str,
        n: u64,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>> {
        Box::pin(async move {
            let c = self.store.peek(key, window).await?;
            let added = {
                let mut h = self
                    .hits
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let e = h.entry(key.to_owned()).or_insert(0);
                *e += n;
                *e
            };
            Ok(c + added)
        })
    }
    fn peek<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>> {
        Box::pin(async move { Ok(self.store.peek(key, window).await? + self.added(key)) })
    }
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, CounterError>> {
        Box::pin(async move {
            let existing = self.read(key).await?;
            if existing.is_none() {
                self.put(key, Some(value));
            }
            Ok(existing)
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(async move {
            self.put(key, Some(value));
            Ok(())
        })
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, CounterError>> {
        Box::pin(self.read(key))
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(async move {
            self.put(key, None);
            Ok(())
        })
    }
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
}

/// Why a trace could not run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// No such listener.
    #[error("no listener is called {0:?}; listeners: {1}")]
    NoListener(String, String),
    /// The throw-away spool or transcript could not be created.
    #[error("creating a scratch directory for the trace: {0}")]
    Scratch(#[from] std::io::Error),
    /// The scratch spool would not open.
    #[error("opening the scratch spool: {0}")]
    Spool(#[from] postern_spool::SpoolError),
    /// A HELO name, sender or recipient holds CR, LF or another control
    /// character (it would inject commands into the dry session).
    #[error("{0:?} holds a control character; give one name or address per option")]
    BadInput(String),
}

fn lookup_text(l: &Lookup<Vec<String>>) -> String {
    match l {
        Lookup::NotAsked => "not needed".into(),
        Lookup::Failed(why) => format!("lookup failed: {why}"),
        Lookup::Done(names) if names.is_empty() => "none".into(),
        Lookup::Done(names) => names.join(", "),
    }
}

/// The trace of a running server (see [`crate::Server::tracer`]).
#[derive(Clone)]
pub struct Tracer {
    pub(crate) shared: Arc<arc_swap::ArcSwap<Shared>>,
    pub(crate) resolver: Option<Resolver>,
    pub(crate) store: Arc<dyn CounterStore>,
}

impl Tracer {
    /// Traces with the configuration in force now and the live counters.
    pub async fn trace(&self, input: TraceInput) -> Result<TraceReport, TraceError> {
        let shared = self.shared.load_full();
        trace(
            shared.settings.clone(),
            shared.tls.clone(),
            self.resolver.clone(),
            Arc::clone(&self.store),
            input,
        )
        .await
        .map(|mut r| {
            r.source = "server".into();
            r
        })
    }
}

/// Runs the trace. `tls`: the server's TLS configuration, if loaded (so EHLO
/// offers STARTTLS as it would); `counters`: the store the server uses
/// (Redis shares the live counts; a fresh memory store starts at zero).
pub async fn trace(
    settings: ServerSettings,
    tls: Option<Arc<rustls::ServerConfig>>,
    resolver: Option<Resolver>,
    counters: Arc<dyn CounterStore>,
    input: TraceInput,
) -> Result<TraceReport, TraceError> {
    let values = std::iter::once(&input.helo)
        .chain(input.from.iter())
        .chain(input.rcpts.iter());
    for v in values {
        if v.chars().any(char::is_control) {
            return Err(TraceError::BadInput(v.clone()));
        }
    }
    let mut listener = match &input.listener {
        None => settings.listeners.first().cloned(),
        Some(name) => settings.listeners.iter().find(|l| l.name == *name).cloned(),
    }
    .ok_or_else(|| {
        TraceError::NoListener(
            input.listener.clone().unwrap_or_default(),
            settings
                .listeners
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;

    // Implicit TLS (port 465): the handshake is assumed, not run.
    let mut input = input;
    if listener.kind == crate::settings::ListenerKind::Submissions {
        listener.kind = crate::settings::ListenerKind::Submission;
        input.tls = true;
    }

    // The classification, step by step (the session below asks the same
    // questions; the resolver's cache answers them the second time).
    let mut facts = ClientFacts::new(input.ip, listener.name.clone());
    facts.tls = input.tls;
    let class = crate::gateway::classify(&settings.admission, &mut facts, resolver.as_ref()).await;
    let policy = settings.admission.policy(&class).clone();
    let weights = |zone: &str| {
        settings
            .admission
            .lists
            .iter()
            .find(|l| l.zone == zone)
            .map(|l| l.weight)
    };
    let dns_lists = match &facts.lists {
        Lookup::Done(answers) => answers
            .iter()
            .map(|a| ListLine {
                zone: a.zone.clone(),
                answer: match &a.result {
                    Ok(codes) if codes.is_empty() => "not listed".into(),
                    Ok(codes) => codes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(why) => format!("lookup failed: {why}"),
                },
                weight: weights(&a.zone),
            })
            .collect(),
        _ => Vec::new(),
    };
    let fcrdns = match &facts.fcrdns {
        Lookup::NotAsked => "not needed".into(),
        Lookup::Failed(why) => format!("lookup failed: {why}"),
        Lookup::Done(true) => "pass".into(),
        Lookup::Done(false) => "fail".into(),
    };
    let groups = class.steps.iter().map(ToString::to_string).collect();

    // The session, through the real driver.
    let scratch = tempfile::tempdir()?;
    let mut spool_settings = settings.spool.clone();
    spool_settings.dir = scratch.path().join("spool");
    let (spool, _) = postern_spool::Spool::open(&spool_settings)?;
    let transcript_path = scratch.path().join("transcript.log");
    let transcript = Transcript::open(&transcript_path, crate::settings::TranscriptFormat::Text)?;
    let shared = Arc::new(Shared::for_trace(settings, tls));
    let ctx = Context {
        shared,
        listener: listener.clone(),
        spool,
        transcript: Some(transcript.clone()),
        on_queued: None,
        shutdown: CancellationToken::new(),
        resolver,
        counters: Counters::new(Arc::new(DryRun::new(Arc::clone(&counters)))),
        mail_log: None,
        dmarc_reports: None,
        ip_sessions: 1,
        // `postern trace --ip` names the client itself: no load balancer.
        proxy: None,
    };
    let (client, server) = tokio::io::duplex(64 * 1024);
    let id: Arc<str> = Arc::from("TRACE");
    let peer = SocketAddr::new(input.ip, 0);
    let tls_info = input.tls.then(|| postern_proto::session::TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "(assumed by --tls)".into(),
    });
    let session = Session::new_for_trace(Arc::clone(&id), ctx, server, peer, tls_info);
    let task = tokio::spawn(session.run());
    let (read, mut write) = tokio::io::split(client);
    let mut read = BufReader::new(read);
    let mut script: Vec<String> = vec![format!("EHLO {}", input.helo)];
    if let Some(from) = &input.from {
        script.push(format!("MAIL FROM:<{from}>"));
        script.extend(input.rcpts.iter().map(|r| format!("RCPT TO:<{r}>")));
    }
    script.push("QUIT".into());
    let mut script = script.into_iter();
    'session: loop {
        // One reply, all its lines; then the next command.
        loop {
            let mut line = String::new();
            match tokio::time::timeout(Duration::from_mins(1), read.read_line(&mut line)).await {
                Ok(Ok(0) | Err(_)) | Err(_) => break 'session,
                Ok(Ok(_)) => {}
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        let Some(cmd) = script.next() else { break };
        if write
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    drop(write);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    let t = transcript.clone();
    let _ = tokio::task::spawn_blocking(move || t.flush()).await;
    // The transcript holds the dialogue and the decisions in their order.
    let log = std::fs::read_to_string(&transcript_path).unwrap_or_default();
    let dialogue = log
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, ' ');
            let (_, _, dir, text) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            let dir = match dir {
                "<<<" => "C",
                ">>>" => "S",
                _ => "*",
            }
            .to_owned();
            Some(DialogueLine {
                dir,
                text: text.to_owned(),
            })
        })
        .filter(|d| !(d.dir == "*" && d.text.starts_with("connect from")))
        .collect();
    Ok(TraceReport {
        ip: input.ip,
        listener: listener.name,
        ptr: lookup_text(&facts.ptr),
        fcrdns,
        dns_lists,
        score: class.score,
        groups,
        group: class.group.clone(),
        policy: policy.name.clone(),
        action: policy.action.as_str().to_owned(),
        counters: counters.backend().to_owned(),
        source: "offline".into(),
        dialogue,
    })
}
