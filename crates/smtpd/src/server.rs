//! The inbound server: binds the listeners, admits connections, runs one task
//! per session, reloads settings atomically and shuts down gracefully.
//!
//! # Security
//! Connection admission (global and per-IP limits) happens before a session
//! allocates anything beyond the socket. On a PROXY-protocol listener
//! (`proxy.rs`) a peer outside `trusted_proxies` is closed at once, and
//! admission counts the client the header names, once the header is read. A panic inside one session task ends
//! that session only (tokio isolates task panics); it is logged as a bug.
//!
//! # Standards
//! RFC 5321 §3.8 / §4.2.4 (`421` when refusing service); HAProxy "The PROXY
//! protocol" §2.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use postern_policy::Policy;
use postern_proto::ProxyHeader;
use postern_proto::proxy::cause as proxy_cause;
use postern_spool::Spool;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::admission::{Admission, Refusal};
use crate::auth::UserDb;
use crate::gateway::Services;
use crate::proxy::{self, Prefixed, ReadError};
use crate::replies;
use crate::session::{Context, Session};
use crate::settings::{ListenerKind, ListenerSettings, ProxyProtocol, ServerSettings, TlsMode};
use crate::transcript::Transcript;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum SmtpdError {
    /// A listener could not bind.
    #[error("listener {name}: cannot bind {addr}: {source}")]
    Bind {
        /// Listener name.
        name: String,
        /// Address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A listener needs TLS but no TLS configuration was given.
    #[error("listener {name}: TLS is {mode} but no TLS configuration (certificate) is loaded")]
    NoTls {
        /// Listener name.
        name: String,
        /// What the listener asks for.
        mode: &'static str,
    },
    /// Mail authentication could not be set up (resolver, public-suffix
    /// list, a DKIM key).
    #[error(transparent)]
    MailAuth(#[from] crate::mailauth::MailAuthError),
    /// The content policy could not be set up (a rule file, a dictionary).
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
}

/// What sessions read from the server; swapped as a whole on reload, so a
/// session sees one consistent configuration from accept to close.
pub struct Shared {
    pub(crate) settings: ServerSettings,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) policy: Policy,
    pub(crate) users: Arc<UserDb>,
    /// Recipient validation (tables read at start and on each reload).
    pub(crate) recipients: crate::recipients::Recipients,
    /// Verification and signing (`[authentication]`, `[[dkim]]`).
    pub(crate) mail_auth: crate::mailauth::MailAuth,
    /// Filters, dictionaries, rspamd, clamd, milters (issue 11).
    pub(crate) content: Arc<crate::content::Content>,
}

impl Shared {
    pub(crate) fn new(
        settings: ServerSettings,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, SmtpdError> {
        for l in &settings.listeners {
            let needs = l.kind == ListenerKind::Submissions || l.tls != TlsMode::Off;
            if needs && tls.is_none() {
                return Err(SmtpdError::NoTls {
                    name: l.name.clone(),
                    mode: if l.kind == ListenerKind::Submissions {
                        "implicit"
                    } else {
                        "enabled"
                    },
                });
            }
        }
        let mail_auth = crate::mailauth::MailAuth::new(&settings.authentication)?;
        let content = Arc::new(crate::content::Content::new(&settings.content)?);
        Ok(Self {
            mail_auth,
            content,
            policy: Policy::new(&settings.relay).with_senders(sender_logins(&settings.users)),
            users: Arc::new(UserDb::new(&settings.users)),
            recipients: crate::recipients::Recipients::new(&settings.relay, &settings.recipients),
            settings,
            tls,
        })
    }
}

/// The users' sender lists (`[[user]] senders`), for the MAIL check.
fn sender_logins(users: &[crate::settings::User]) -> postern_policy::SenderLogins {
    postern_policy::SenderLogins::new(
        users
            .iter()
            .filter_map(|u| u.senders.clone().map(|s| (u.name.clone(), s))),
    )
}

impl Shared {
    /// For `postern trace`: without a TLS configuration, listeners that
    /// would offer STARTTLS simply do not (the trace says so).
    pub(crate) fn for_trace(
        settings: ServerSettings,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        Self {
            // A trace decides on the session, not on a message's content.
            mail_auth: crate::mailauth::MailAuth::default(),
            content: Arc::new(crate::content::Content::default()),
            policy: Policy::new(&settings.relay).with_senders(sender_logins(&settings.users)),
            users: Arc::new(UserDb::new(&settings.users)),
            // Tables and Maildir folders are read; no call-ahead is made.
            recipients: crate::recipients::Recipients::for_trace(
                &settings.relay,
                &settings.recipients,
            ),
            settings,
            tls,
        }
    }
}

/// What the smtpd knows about a message the moment it is durable: enough for
/// the delivery scheduler's doorbell and the `received` tracking event.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Accepted<'a> {
    /// The message's queue id (also `envelope.queue_id`).
    pub queue_id: postern_spool::QueueId,
    /// The envelope as committed: sender, recipients with their DSN
    /// parameters, size, and the receipt (listener name, peer `ip:port`,
    /// HELO, AUTH user, TLS version, cipher, group and SNI).
    pub envelope: &'a postern_spool::Envelope,
    /// The session id, as in the operator log and the transcript.
    pub session: &'a str,
}

/// Called for every message once it is durable (after the commit, before the
/// `250` is sent): the delivery scheduler's doorbell and the source of the
/// `received` event. Must not block.
pub type QueuedHook = Arc<dyn Fn(&Accepted<'_>) + Send + Sync>;

/// A running server.
pub struct Server {
    shared: Arc<ArcSwap<Shared>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    addrs: Vec<(String, SocketAddr)>,
    services: Arc<Services>,
    counters: crate::counting::Counters,
}

impl Server {
    /// Binds every listener and starts accepting. Port 0 binds an ephemeral port
    /// (see [`Server::local_addrs`]).
    pub async fn start(
        settings: ServerSettings,
        tls: Option<Arc<rustls::ServerConfig>>,
        spool: Spool,
        transcript: Option<Transcript>,
    ) -> Result<Self, SmtpdError> {
        Self::start_with_hook(settings, tls, spool, transcript, None).await
    }

    /// [`Server::start`] with a hook told about every queued message.
    pub async fn start_with_hook(
        settings: ServerSettings,
        tls: Option<Arc<rustls::ServerConfig>>,
        spool: Spool,
        transcript: Option<Transcript>,
        on_queued: Option<QueuedHook>,
    ) -> Result<Self, SmtpdError> {
        Self::start_with(
            settings,
            tls,
            spool,
            transcript,
            on_queued,
            Services::default(),
        )
        .await
    }

    /// [`Server::start_with_hook`] with the services sender groups use (the
    /// DNS resolver).
    pub async fn start_with(
        settings: ServerSettings,
        tls: Option<Arc<rustls::ServerConfig>>,
        spool: Spool,
        transcript: Option<Transcript>,
        on_queued: Option<QueuedHook>,
        services: Services,
    ) -> Result<Self, SmtpdError> {
        if settings.admission.needs_dns() && services.resolver.is_none() {
            tracing::warn!(
                "sender groups match on DNS facts but no resolver is set up; \
                those matchers will match nothing"
            );
        }
        let counters = services.counters.clone().map_or_else(
            crate::counting::Counters::default,
            crate::counting::Counters::new,
        );
        tracing::debug!(backend = counters.store().backend(), "counter store");
        let services = Arc::new(services);
        let mut bound = Vec::new();
        for l in &settings.listeners {
            let sock = TcpListener::bind(l.addr)
                .await
                .map_err(|source| SmtpdError::Bind {
                    name: l.name.clone(),
                    addr: l.addr,
                    source,
                })?;
            let addr = sock.local_addr().map_err(|source| SmtpdError::Bind {
                name: l.name.clone(),
                addr: l.addr,
                source,
            })?;
            bound.push((l.name.clone(), addr, sock));
        }
        let admission = Admission::new(settings.max_connections, settings.max_connections_per_ip);
        let shared = Arc::new(ArcSwap::from_pointee(Shared::new(settings, tls)?));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut addrs = Vec::new();
        for (name, addr, sock) in bound {
            tracing::info!(listener = %name, %addr, "listening");
            addrs.push((name.clone(), addr));
            let acceptor = Acceptor {
                name,
                shared: Arc::clone(&shared),
                admission: Arc::clone(&admission),
                spool: spool.clone(),
                transcript: transcript.clone(),
                on_queued: on_queued.clone(),
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
                services: Arc::clone(&services),
                counters: counters.clone(),
            };
            tracker.spawn(acceptor.run(sock));
        }
        Ok(Self {
            shared,
            shutdown,
            tracker,
            addrs,
            services,
            counters,
        })
    }

    /// `postern trace` inside the running server: the current configuration,
    /// the server's resolver and its live counters (read only).
    pub fn tracer(&self) -> crate::trace::Tracer {
        crate::trace::Tracer {
            shared: Arc::clone(&self.shared),
            resolver: self.services.resolver.clone(),
            store: self.counters.shared_store(),
        }
    }

    /// The bound address of each listener, by name.
    pub fn local_addrs(&self) -> &[(String, SocketAddr)] {
        &self.addrs
    }

    /// The bound address of the listener called `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Applies new settings and TLS configuration to new sessions; live sessions
    /// keep the configuration they started with. Listener addresses are fixed at
    /// start (a change is logged and needs a restart).
    pub fn reload(
        &self,
        settings: ServerSettings,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<(), SmtpdError> {
        let old = self.shared.load();
        for l in &settings.listeners {
            match old.settings.listeners.iter().find(|o| o.name == l.name) {
                Some(o) if o.addr != l.addr => {
                    tracing::warn!(listener = %l.name, old = %o.addr, new = %l.addr,
                    "listener address changed; restart to apply");
                }
                None => tracing::warn!(listener = %l.name, "new listener; restart to apply"),
                _ => {}
            }
        }
        let mut new = Shared::new(settings, tls)?;
        // Call-ahead answers outlive a reload that keeps their entry.
        new.recipients.keep_caches(&old.recipients);
        self.shared.store(Arc::new(new));
        Ok(())
    }

    /// Stops accepting, tells idle sessions `421`, lets sessions in DATA finish
    /// (up to `grace`), then returns.
    pub async fn shutdown(self, grace: Duration) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over with sessions still running");
        }
    }
}

/// One listener's accept loop (cloned into the task that reads a PROXY header).
#[derive(Clone)]
struct Acceptor {
    name: String,
    shared: Arc<ArcSwap<Shared>>,
    admission: Arc<Admission>,
    spool: Spool,
    transcript: Option<Transcript>,
    on_queued: Option<QueuedHook>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    services: Arc<Services>,
    counters: crate::counting::Counters,
}

impl Acceptor {
    async fn run(self, sock: TcpListener) {
        let mut backoff = Duration::from_millis(5);
        loop {
            let accepted = tokio::select! {
                () = self.shutdown.cancelled() => return,
                r = sock.accept() => r,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => {
                    backoff = Duration::from_millis(5);
                    x
                }
                Err(e) => {
                    // EMFILE/ENFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = %self.name, error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let shared = self.shared.load_full();
            let Some(listener) = shared
                .settings
                .listeners
                .iter()
                .find(|l| l.name == self.name)
                .cloned()
            else {
                continue;
            };
            let Some(pp) = listener.proxy_protocol.clone() else {
                self.launch(
                    Prefixed::new(Bytes::new(), tcp),
                    peer,
                    None,
                    shared,
                    listener,
                );
                continue;
            };
            // PROXY protocol spec §2: a header is believed only from a known
            // proxy, and a receiver never answers before a valid one.
            if !pp.trusts(peer.ip()) {
                let c = proxy_cause::untrusted(peer);
                tracing::info!(listener = %self.name, %peer, cause = c.id, fix = c.fix, "{}", c.summary);
                drop(tcp);
                continue;
            }
            // The header is read in the session's own task: a slow proxy
            // connection never holds up the accept loop.
            let this = self.clone();
            self.tracker.spawn(async move {
                this.after_header(tcp, peer, &pp, shared, listener).await;
            });
        }
    }

    /// Reads the PROXY header from a trusted proxy (within its deadline),
    /// then launches the session with the client address it names.
    async fn after_header(
        &self,
        mut tcp: TcpStream,
        proxy: SocketAddr,
        pp: &ProxyProtocol,
        shared: Arc<Shared>,
        listener: ListenerSettings,
    ) {
        let read = tokio::select! {
            () = self.shutdown.cancelled() => return,
            r = tokio::time::timeout(pp.timeout, proxy::read_header(&mut tcp)) => r,
        };
        let cause = match read {
            Ok(Ok((header, rest))) => {
                let client = if let ProxyHeader::Done { source, .. } = header {
                    source
                } else {
                    // LOCAL (a health check) and UNKNOWN: the proxy speaks
                    // for itself (spec §2.1, §2.2).
                    tracing::debug!(listener = %self.name, %proxy, ?header,
                        "PROXY header without a client address: the proxy is the peer");
                    proxy
                };
                self.launch(
                    Prefixed::new(rest, tcp),
                    client,
                    Some(proxy),
                    shared,
                    listener,
                );
                return;
            }
            Err(_elapsed) => proxy_cause::timeout(proxy, pp.timeout),
            Ok(Err(ReadError::Proxy(e))) => e.cause(proxy),
            Ok(Err(ReadError::Closed { octets: 0 })) => {
                // A TCP health check: connect, close. Not worth a log line each time.
                tracing::debug!(listener = %self.name, %proxy, "proxy closed before sending anything");
                return;
            }
            Ok(Err(ReadError::Closed { .. } | ReadError::Io(_))) => proxy_cause::closed(proxy),
        };
        tracing::info!(listener = %self.name, peer = %proxy, cause = cause.id, fix = cause.fix,
            "{}; closed without a reply", cause.summary);
    }

    /// Admits a session from `peer` (the client: the TCP peer, or the PROXY
    /// header's source when `via` names the proxy) and runs it, or refuses.
    fn launch(
        &self,
        conn: Prefixed<TcpStream>,
        peer: SocketAddr,
        via: Option<SocketAddr>,
        shared: Arc<Shared>,
        listener: ListenerSettings,
    ) {
        // A dual-stack socket (or a PROXY TCP6 header) shows an IPv4 client
        // as ::ffff:a.b.c.d: one client, one key for the per-IP limits, the
        // logs and the Received: header.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        match self.admission.admit(peer.ip()) {
            Ok(ticket) => {
                let ctx = Context {
                    shared,
                    listener,
                    spool: self.spool.clone(),
                    transcript: self.transcript.clone(),
                    on_queued: self.on_queued.clone(),
                    shutdown: self.shutdown.clone(),
                    resolver: self.services.resolver.clone(),
                    counters: self.counters.clone(),
                    mail_log: self.services.mail_log.clone(),
                    dmarc_reports: self.services.dmarc_reports.clone(),
                    ip_sessions: ticket.sessions_from_ip(),
                    proxy: via,
                };
                let id = session_id();
                // One span per session: every log line inside carries the
                // session id, the peer (the real client) and the listener,
                // and the load balancer's address behind a PROXY header.
                let span = tracing::info_span!("session", id = %id, %peer, listener = %self.name,
                    proxy = via.map(tracing::field::display));
                // Counted open until the task ends (metrics observer).
                let conn_guard = ctx.mail_log.as_ref().map(|l| l.connection(&self.name));
                self.tracker.spawn(
                    async move {
                        let _ticket = ticket;
                        let _conn_guard = conn_guard;
                        Session::new(id, ctx, conn, peer).run().await;
                    }
                    .instrument(span),
                );
            }
            Err(refusal) => {
                tracing::info!(listener = %self.name, %peer, ?refusal, "connection refused: limit reached");
                self.tracker.spawn(refuse(conn, &listener, refusal));
            }
        }
    }
}

/// Answers `421` and closes (RFC 5321 §3.8).
fn refuse<S>(
    mut conn: S,
    listener: &ListenerSettings,
    refusal: Refusal,
) -> impl Future<Output = ()> + use<S>
where
    S: AsyncWrite + Unpin + Send + 'static,
{
    let implicit_tls = listener.kind == ListenerKind::Submissions;
    async move {
        if !implicit_tls {
            let reply = match refusal {
                Refusal::Global => replies::too_many_connections(),
                Refusal::PerIp => replies::too_many_connections_from_ip(),
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.write_all(&reply.to_bytes()))
                .await;
        }
        let _ = conn.shutdown().await;
    }
}

/// A short random session id for logs and transcripts (12 base32 characters).
fn session_id() -> Arc<str> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut n: u64 = rand::random();
    let mut s = String::with_capacity(12);
    for _ in 0..12 {
        s.push(char::from(ALPHABET[(n & 31) as usize]));
        n >>= 5;
    }
    Arc::from(s)
}
