//! The SMTP transport: for one job, find the next hop (MX records, an address
//! literal or a smart host), connect to each host and address in order until
//! one takes the transaction, apply the route's TLS level on every
//! connection, and explain every connection in an `attempt` event.
//!
//! TLS levels, per connection (ARCHITECTURE.md):
//!
//! | level | STARTTLS offered | not offered | handshake fails |
//! |---|---|---|---|
//! | `none` | not used | plaintext | — |
//! | `opportunistic` | used | plaintext | plaintext on a **new** connection, `downgraded` recorded with the cause |
//! | `opportunistic-strict` | used | plaintext | next address, then defer |
//! | `required` | used, certificate not checked | next address, then defer | next address, then defer |
//! | `verify` | used, PKIX + MX name | next address, then defer | next address, then defer |
//!
//! The certificate is always recorded (`Verify::Record`), so even an
//! opportunistic session logs the subject, SANs, fingerprint, expiry and the
//! verification verdict; `verify` refuses to send (QUIT before MAIL) when the
//! verdict is not "verified", with the catalogue cause (`tls.out.*`).
//!
//! A route to local Maildir folders (`NextHop::Maildir`) never reaches the
//! network: [`crate::maildir`] writes the files on the blocking pool, one
//! `attempt` event (route `maildir`) is emitted, and no connection is kept.
//!
//! Outcomes: 2xx after the data delivers; 4xx defers that recipient; 5xx
//! bounces it; a 4xx to MAIL (or a 4xx/5xx greeting) moves on to the next
//! host; connection, TLS and DNS errors move on and finally defer unless the
//! error is known to be permanent (NXDOMAIN, null MX). Unknown = defer.
//!
//! # Security
//! Remote replies, certificates and DNS data are untrusted: replies are kept
//! as one cleaned line; nothing from the peer is interpreted beyond the reply
//! code. A level that requires TLS never sends MAIL in plaintext: the check is
//! made on the session (`is_tls`) before the transaction, not on what we
//! meant to do. AUTH credentials are only ever sent over TLS (smtpc refuses
//! otherwise) and never logged; transcripts redact them.
//!
//! # Standards
//! RFC 5321 §5.1 (MX order, implicit MX, try every address), RFC 7505 (null
//! MX), RFC 3207 (STARTTLS), RFC 7435 (opportunistic security), RFC 8314
//! (implicit TLS), RFC 4954 (AUTH), RFC 6125 / RFC 7672 §3.2.2 (MX host name
//! as reference identity), RFC 3461 (passing NOTIFY/ORCPT on).

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use postern_dns::{DnsError, MxKind, Resolver};
use postern_smtpc::{
    AuthMechanism, ClientError, ClientSettings, OutEnvelope, OutRecipient, Reply, Session, Stage,
    TlsInfo, TransactionOutcome,
};
use postern_spool::Spool;
use postern_tls::client::{ClientTls, Roots, Verify, load_roots};
use postern_tlspolicy::mta_sts::{MtaSts, PolicyCache, PolicyFetcher};
use postern_track::{Attempt, CauseInfo, MailEvent, MailLog, PeerCert, TlsOutcome};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::cause;
use crate::maildir;
use crate::route::NextHop;
use crate::settings::{Credentials, DeliverySettings, MaildirSettings, TlsLevel};
use crate::tls_plan::{DomainPlan, HostPlan, Planner};
use crate::transport::{Job, JobFeed, JobOutcome, RcptResult, Transport, Verdict};

/// Chunk size when streaming a message from the spool.
const BODY_CHUNK: usize = 64 * 1024;

/// Errors building the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Trust anchors or TLS settings could not be loaded.
    #[error("outbound TLS ({what}): {source}")]
    Tls {
        /// Which configuration.
        what: String,
        /// The error.
        source: Box<postern_tls::TlsError>,
    },
}

/// Delivers over SMTP. See the module documentation.
pub struct SmtpTransport {
    settings: Arc<DeliverySettings>,
    spool: Spool,
    resolver: Resolver,
    client: ClientSettings,
    /// One client configuration per trust-anchor file (`None` = system roots),
    /// shared by all connections so TLS sessions are resumed.
    tls: HashMap<Option<PathBuf>, ClientTls>,
    /// DANE and MTA-STS: the level of each host.
    planner: Planner,
    log: MailLog,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport").finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Builds the transport: loads the system roots and every CA file named by
    /// a route (blocking; call at startup).
    pub fn new(
        settings: &DeliverySettings,
        spool: Spool,
        resolver: Resolver,
        log: MailLog,
    ) -> Result<Self, TransportError> {
        let mut files: Vec<Option<PathBuf>> = vec![None, settings.ca_file.clone()];
        files.extend(settings.routes.iter().map(|r| r.ca_file.clone()));
        let mut tls = HashMap::new();
        let mut https_roots = None;
        for file in files {
            if tls.contains_key(&file) {
                continue;
            }
            let roots = Roots {
                system: file.is_none(),
                ca_file: file.clone(),
            };
            let what = file
                .as_ref()
                .map_or_else(|| "system roots".to_owned(), |p| p.display().to_string());
            let store = Arc::new(load_roots(&roots).map_err(|source| TransportError::Tls {
                what: what.clone(),
                source: Box::new(source),
            })?);
            if file == settings.ca_file {
                // MTA-STS policies are fetched over HTTPS verified against the
                // same anchors `verify` uses when no route names a CA file.
                https_roots = Some(Arc::clone(&store));
            }
            let client =
                ClientTls::new(&settings.client_tls, Verify::Record, store).map_err(|source| {
                    TransportError::Tls {
                        what,
                        source: Box::new(source),
                    }
                })?;
            tls.insert(file, client);
        }
        let planner = Planner::new(
            mta_sts(settings, https_roots, &resolver),
            settings.smtp_port,
        );
        let mut client = ClientSettings::new(settings.hostname.clone());
        client.connect_timeout = settings.connect_timeout;
        client.command_timeout = settings.command_timeout;
        client.greeting_timeout = settings.command_timeout;
        Ok(Self {
            settings: Arc::new(settings.clone()),
            spool,
            resolver,
            client,
            tls,
            planner,
            log,
        })
    }

    fn client_tls(&self, job: &Job) -> Option<&ClientTls> {
        self.tls
            .get(&job.route.ca_file)
            .or_else(|| self.tls.get(&None))
    }
}

/// A host to try.
#[derive(Debug, Clone)]
struct Candidate {
    name: String,
    port: u16,
    implicit_tls: bool,
    auth: Option<Credentials>,
    /// Known addresses (address literals); `None` = resolve `name`.
    addrs: Option<Vec<std::net::IpAddr>>,
}

/// An open session that finished a transaction and may take another.
struct Conn {
    session: Session,
    facts: Facts,
}

/// What we know about one connection, for the `attempt` event and results.
#[derive(Debug, Clone, Default)]
struct Facts {
    host: String,
    ip: String,
    starttls_offered: Option<bool>,
    tls: Option<TlsInfo>,
    downgraded: bool,
    downgrade_cause: Option<CauseInfo>,
    remote_dsn: bool,
    /// The level applied to this host and why (`None`: the route's).
    policy: Option<(TlsLevel, String)>,
    /// A policy warning to record (DANE records unusable, MTA-STS testing).
    warning: Option<CauseInfo>,
}

/// Why a connection did not take the transaction.
#[derive(Debug, Clone)]
struct Failure {
    cause: CauseInfo,
    reply: Option<String>,
    /// Known to be permanent for every host (NXDOMAIN, null MX, 5xx to MAIL).
    permanent: bool,
}

impl Failure {
    /// A failure of this host or attempt only: next host, then defer.
    fn transient(cause: CauseInfo) -> Self {
        Self {
            cause,
            reply: None,
            permanent: false,
        }
    }
}

enum HostResult {
    /// The transaction happened: results per recipient.
    Done {
        results: Vec<RcptResult>,
        conn: Option<Box<Conn>>,
    },
    /// Try the next address or host.
    Next(Failure),
}

impl Transport for SmtpTransport {
    async fn run(self: Arc<Self>, job: Job, mut feed: JobFeed) {
        let mut job = job;
        let mut conn: Option<Box<Conn>> = None;
        loop {
            let (outcome, kept) = self.deliver(&job, conn.take()).await;
            if let Some(next) = feed.complete(outcome, kept.is_some()).await {
                job = next;
                conn = kept;
            } else {
                if let Some(c) = kept {
                    let _ = c.session.quit().await;
                }
                return;
            }
        }
    }
}

impl SmtpTransport {
    async fn deliver(
        &self,
        job: &Job,
        reuse: Option<Box<Conn>>,
    ) -> (JobOutcome, Option<Box<Conn>>) {
        // Local delivery: no DNS, no TLS, and never a connection to keep.
        if let NextHop::Maildir(m) = &job.route.next_hop {
            if let Some(c) = reuse {
                let _ = c.session.quit().await;
            }
            return (self.deliver_local(job, m).await, None);
        }
        // A connection kept from the previous job to this destination.
        if let Some(mut c) = reuse {
            let started = Instant::now();
            match c.session.rset().await {
                Ok(r) if r.code == 250 => {
                    match self.transact(job, &mut c.session, &mut c.facts).await {
                        HostResult::Done { results, .. } => {
                            self.emit_attempt(job, &c.facts, "", &results, None, started);
                            return (outcome(job, results), Some(c));
                        }
                        HostResult::Next(f) => {
                            self.emit_failed(job, &c.facts, &f, started);
                        }
                    }
                }
                _ => {}
            }
        }

        let (candidates, mx_authenticated) = match self.candidates(job).await {
            Ok(c) => c,
            Err(f) => {
                self.emit_failed(job, &Facts::default(), &f, Instant::now());
                return (all(job, &f, &Facts::default()), None);
            }
        };
        let domain_plan = match self.domain_plan(job).await {
            Ok(p) => p,
            Err(c) => {
                let f = Failure::transient(tls_cause(&c));
                self.emit_failed(job, &Facts::default(), &f, Instant::now());
                return (all(job, &f, &Facts::default()), None);
            }
        };
        let mut last: Option<(Failure, Facts)> = None;
        for cand in &candidates {
            let (addrs, addrs_authenticated) = match &cand.addrs {
                Some(a) => (a.clone(), false),
                None => match self.resolver.addresses(&cand.name).await {
                    Ok(a) => (a.addrs, a.authenticated),
                    Err(e) => {
                        let f = dns_failure(&cand.name, &e, true);
                        let facts = Facts {
                            host: cand.name.clone(),
                            ..Facts::default()
                        };
                        self.emit_failed(job, &facts, &f, Instant::now());
                        last = Some((f, facts));
                        continue;
                    }
                },
            };
            let plan = match self
                .planner
                .host(
                    &self.resolver,
                    &job.route,
                    &domain_plan,
                    &cand.name,
                    mx_authenticated,
                    addrs_authenticated,
                )
                .await
            {
                Ok(p) => p,
                Err(c) => {
                    // This host must not be used (DANE unusable, not in the
                    // MTA-STS policy): the next one may be.
                    let f = Failure::transient(tls_cause(&c));
                    let facts = Facts {
                        host: cand.name.clone(),
                        ..Facts::default()
                    };
                    self.emit_failed(job, &facts, &f, Instant::now());
                    last = Some((f, facts));
                    continue;
                }
            };
            for ip in addrs {
                let addr = SocketAddr::new(ip, cand.port);
                let started = Instant::now();
                let mut facts = Facts {
                    host: cand.name.clone(),
                    ip: addr.to_string(),
                    policy: Some((plan.level, plan.why.clone())),
                    warning: plan.warning.as_ref().map(tls_cause),
                    ..Facts::default()
                };
                match self
                    .try_host(job, cand, addr, &plan, &mut facts, started)
                    .await
                {
                    HostResult::Done { results, conn } => {
                        self.emit_attempt(job, &facts, "", &results, None, started);
                        return (outcome(job, results), conn);
                    }
                    HostResult::Next(f) => {
                        self.emit_failed(job, &facts, &f, started);
                        let stop = f.permanent;
                        last = Some((f, facts));
                        if stop {
                            break;
                        }
                    }
                }
            }
            if last.as_ref().is_some_and(|(f, _)| f.permanent) {
                break;
            }
        }
        let (f, facts) = last.unwrap_or_else(|| {
            (
                Failure::transient(cause::no_address(&job.route.destination, "no host to try")),
                Facts::default(),
            )
        });
        (all(job, &f, &facts), None)
    }

    /// One job into local Maildir folders, explained by one `attempt` event
    /// (`mx` = the Maildir, or `local` when the recipients have several).
    async fn deliver_local(&self, job: &Job, m: &MaildirSettings) -> JobOutcome {
        let started = Instant::now();
        let out = maildir::deliver(
            self.spool.clone(),
            self.settings.hostname.clone(),
            m.clone(),
            job.clone(),
        )
        .await;
        let facts = Facts {
            host: out.mailbox,
            ..Facts::default()
        };
        self.emit_attempt(job, &facts, "", &out.results, None, started);
        outcome(job, out.results)
    }

    /// The MTA-STS part of the plan (MX delivery only: a policy is about a
    /// recipient domain's MX hosts, not a smart host, RFC 8461 §4).
    async fn domain_plan(&self, job: &Job) -> Result<DomainPlan, postern_tls::cause::Cause> {
        match &job.route.next_hop {
            NextHop::Mx { domain } => {
                self.planner
                    .domain(&self.resolver, &job.route, domain)
                    .await
            }
            NextHop::SmartHost(_) | NextHop::Literal(_) if job.route.tls == TlsLevel::MtaSts => {
                Err(postern_tlspolicy::cause::mta_sts_not_published(
                    &job.route.destination,
                    "MTA-STS applies to a domain's MX hosts, not to a smart host or an \
                     address literal",
                ))
            }
            NextHop::SmartHost(_) | NextHop::Literal(_) | NextHop::Maildir(_) => {
                Ok(DomainPlan::default())
            }
        }
    }

    /// The hosts to try, in order, and whether the answer that named them is
    /// DNSSEC-authenticated (a smart host named in the configuration counts
    /// as authenticated: the operator named it, RFC 7672 §2.2.1 does not
    /// apply).
    async fn candidates(&self, job: &Job) -> Result<(Vec<Candidate>, bool), Failure> {
        let port = self.settings.smtp_port;
        match &job.route.next_hop {
            NextHop::SmartHost(h) => Ok((
                vec![Candidate {
                    name: h.host.clone(),
                    port: h.port,
                    implicit_tls: h.implicit_tls,
                    auth: h.auth.clone(),
                    addrs: h.host.parse().ok().map(|ip| vec![ip]),
                }],
                true,
            )),
            // `deliver` hands these jobs to `maildir` before asking.
            NextHop::Maildir(_) => Err(Failure::transient(cause::internal(
                "a Maildir route has no hosts",
            ))),
            NextHop::Literal(ip) => Ok((
                vec![Candidate {
                    name: ip.to_string(),
                    port,
                    implicit_tls: false,
                    auth: None,
                    addrs: Some(vec![*ip]),
                }],
                false,
            )),
            NextHop::Mx { domain } => {
                let mx = self
                    .resolver
                    .mx(domain)
                    .await
                    .map_err(|e| dns_failure(domain, &e, false))?;
                match mx.kind {
                    MxKind::NullMx => Err(Failure {
                        cause: cause::null_mx(domain),
                        reply: None,
                        permanent: true,
                    }),
                    MxKind::Mx | MxKind::Implicit => Ok((
                        mx.hosts
                            .into_iter()
                            .map(|h| Candidate {
                                name: h.exchange,
                                port,
                                implicit_tls: false,
                                auth: None,
                                addrs: None,
                            })
                            .collect(),
                        mx.authenticated,
                    )),
                }
            }
        }
    }

    /// One connection to one address, with the TLS level applied.
    async fn try_host(
        &self,
        job: &Job,
        cand: &Candidate,
        addr: SocketAddr,
        plan: &HostPlan,
        facts: &mut Facts,
        started: Instant,
    ) -> HostResult {
        let level = plan.level;
        let Some(tls) = self.client_tls(job) else {
            return HostResult::Next(Failure::transient(cause::internal(
                "no outbound TLS configuration",
            )));
        };
        let transcript = transcript(job);
        let mut session = if cand.implicit_tls {
            match Session::connect_tls(addr, &cand.name, tls, &self.client, Some(transcript)).await
            {
                Ok((s, _banner, info)) => {
                    facts.tls = Some(info);
                    s
                }
                Err(e) => return HostResult::Next(client_failure(&cand.name, addr, &e)),
            }
        } else {
            match Session::connect(addr, &self.client, Some(transcript)).await {
                Ok((s, _banner)) => s,
                Err(e) => return HostResult::Next(client_failure(&cand.name, addr, &e)),
            }
        };
        let info = match session.ehlo().await {
            Ok(i) => i,
            Err(e) => return HostResult::Next(client_failure(&cand.name, addr, &e)),
        };
        if !cand.implicit_tls {
            facts.starttls_offered = Some(info.starttls);
            let use_tls = match level {
                TlsLevel::None => false,
                TlsLevel::Opportunistic | TlsLevel::OpportunisticStrict => info.starttls,
                _ => {
                    if !info.starttls {
                        let _ = session.quit().await;
                        return HostResult::Next(Failure::transient(tls_cause(
                            &postern_tlspolicy::cause::starttls_not_offered(
                                &format!("{} ({addr})", cand.name),
                                &job.route.destination,
                                level,
                            ),
                        )));
                    }
                    true
                }
            };
            if use_tls {
                match session.starttls(&cand.name, tls).await {
                    Ok(ti) => {
                        facts.tls = Some(ti);
                        if let Err(e) = session.ehlo().await {
                            return HostResult::Next(client_failure(&cand.name, addr, &e));
                        }
                    }
                    Err(e) if level == TlsLevel::Opportunistic => {
                        let f = client_failure(&cand.name, addr, &e);
                        if e.stage() == Stage::StartTls
                            && matches!(e, ClientError::UnexpectedReply { .. })
                        {
                            // STARTTLS refused with a reply: the session is
                            // still a usable plaintext session.
                            facts.downgraded = true;
                            facts.downgrade_cause = Some(f.cause);
                        } else {
                            // The handshake failed: the connection is gone.
                            // RFC 7435: retry in plaintext on a new connection,
                            // and say so.
                            self.emit_failed(job, facts, &f, started);
                            drop(session);
                            let transcript = transcript_for(job);
                            session = match Session::connect(addr, &self.client, Some(transcript))
                                .await
                            {
                                Ok((s, _)) => s,
                                Err(e) => {
                                    return HostResult::Next(client_failure(&cand.name, addr, &e));
                                }
                            };
                            if let Err(e) = session.ehlo().await {
                                return HostResult::Next(client_failure(&cand.name, addr, &e));
                            }
                            facts.downgraded = true;
                            facts.downgrade_cause = Some(f.cause);
                            tracing::warn!(queue_id = %job.queue_id, host = %cand.name, %addr,
                                "delivery: TLS handshake failed; retrying in plaintext (opportunistic)");
                        }
                    }
                    Err(e) => return HostResult::Next(client_failure(&cand.name, addr, &e)),
                }
            }
        }
        // Enforce the level on what the session *is*, not on what we meant.
        if level.requires_tls() && !session.is_tls() {
            let _ = session.quit().await;
            return HostResult::Next(Failure::transient(cause::internal(
                "the session is not encrypted but the TLS level requires it",
            )));
        }
        // The certificate against the plan: PKIX + name (`verify`,
        // `mta-sts`), TLSA (`dane`), or only recorded (lower levels).
        if session.is_tls() {
            let verdict = facts.tls.as_ref().and_then(|t| t.verdict.as_ref());
            match plan.judge(&cand.name, verdict) {
                Ok(warning) => {
                    if let Some(w) = warning {
                        facts.warning = Some(tls_cause(&w));
                    }
                }
                Err(c) => {
                    let _ = session.quit().await;
                    return HostResult::Next(Failure::transient(tls_cause(&c)));
                }
            }
        } else if let Some(w) =
            plan.plaintext_warning(&format!("{} ({addr})", cand.name), &job.route.destination)
        {
            facts.warning = Some(tls_cause(&w));
        }
        if let Some(auth) = &cand.auth {
            if !session.is_tls() {
                let _ = session.quit().await;
                return HostResult::Next(Failure::transient(cause::cause(
                    cause::AUTH_UNAVAILABLE,
                    format!(
                        "{} needs AUTH but the session is not encrypted; the password is never sent in clear",
                        cand.name
                    ),
                    "use tls = \"required\" or \"verify\" (or implicit_tls) on this route, and make sure the smart host offers STARTTLS",
                    "",
                )));
            }
            let mech = if session.ehlo_info().is_some_and(|i| i.has_auth("PLAIN")) {
                AuthMechanism::Plain
            } else {
                AuthMechanism::Login
            };
            if let Err(e) = session.auth(mech, &auth.user, &auth.password).await {
                let _ = session.quit().await;
                return HostResult::Next(Failure::transient(cause::cause(
                    cause::AUTH_FAILED,
                    format!("{} refused our AUTH {}: {e}", cand.name, mech.as_str()),
                    "check the user and password of this route with the smart host's operator",
                    e.to_string(),
                )));
            }
        }
        let result = self.transact(job, &mut session, facts).await;
        result.keep(session, facts)
    }

    /// MAIL … end of data on an established session.
    async fn transact(&self, job: &Job, session: &mut Session, facts: &mut Facts) -> HostResult {
        let env = &job.envelope;
        facts.remote_dsn = session.ehlo_info().is_some_and(|i| i.dsn);
        let out = OutEnvelope {
            mail_from: env.reverse_path.clone(),
            rcpts: job
                .rcpts
                .iter()
                .filter_map(|i| env.recipients.get(*i))
                .map(|r| OutRecipient {
                    address: r.address.clone(),
                    notify: r.notify.clone(),
                    orcpt: r.orcpt.clone(),
                })
                .collect(),
            size: Some(env.message_size),
            body: env.params.body.clone(),
            smtputf8: env.params.smtputf8,
            ret: env.params.ret.clone(),
            envid: env.params.envid.clone(),
        };
        let mut body = match self.body(job) {
            Ok(b) => b,
            Err(cause) => {
                return HostResult::Next(Failure::transient(cause));
            }
        };
        let peer = facts.ip.parse().unwrap_or_else(|_| session.peer_addr());
        let outcome = match session.send(&out, &mut body).await {
            Ok(o) => o,
            Err(e) => return HostResult::Next(client_failure(&facts.host, peer, &e)),
        };
        if outcome.mail.is_transient() {
            // The server, not the recipients, is not ready: another MX may be.
            return HostResult::Next(Failure {
                cause: cause::reply_transient(&facts.host, &one_line(&outcome.mail)),
                reply: Some(one_line(&outcome.mail)),
                permanent: false,
            });
        }
        HostResult::Done {
            results: results_of(job, &outcome, facts),
            conn: None,
        }
    }

    /// Streams the message body from the spool through a blocking reader.
    fn body(&self, job: &Job) -> Result<ChannelReader, CauseInfo> {
        let reader = self
            .spool
            .open_message(&job.queue_id)
            .map_err(|e| cause::spool_read(&e.to_string()))?;
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            loop {
                let mut buf = vec![0u8; BODY_CHUNK];
                match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(buf)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        Ok(ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        })
    }

    fn emit_failed(&self, job: &Job, facts: &Facts, f: &Failure, started: Instant) {
        self.emit_attempt(job, facts, "failed", &[], Some(f), started);
    }

    fn emit_attempt(
        &self,
        job: &Job,
        facts: &Facts,
        outcome: &str,
        results: &[RcptResult],
        failure: Option<&Failure>,
        started: Instant,
    ) {
        let outcome = if outcome.is_empty() {
            summarize(results)
        } else {
            outcome.to_owned()
        };
        let reply = failure
            .and_then(|f| f.reply.clone())
            .or_else(|| results.iter().find_map(|r| r.reply.clone()));
        let cause = failure
            .map(|f| f.cause.clone())
            .or_else(|| facts.downgrade_cause.clone())
            .or_else(|| results.iter().find_map(|r| r.cause.clone()))
            .or_else(|| facts.warning.clone());
        let route = &job.route;
        let (policy, policy_reason) = facts
            .policy
            .clone()
            .unwrap_or_else(|| (route.tls, route.why.clone()));
        self.log.emit(
            job.queue_id,
            MailEvent::Attempt(Box::new(Attempt {
                rcpts: job.addresses(),
                destination: route.destination.clone(),
                route: route.kind.to_owned(),
                mx: facts.host.clone(),
                ip: facts.ip.clone(),
                policy: policy.as_str().to_owned(),
                policy_reason,
                starttls_offered: facts.starttls_offered,
                tls: facts.tls.as_ref().map(tls_outcome),
                downgraded: facts.downgraded,
                outcome,
                reply,
                cause,
                attempt: job.attempt,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })),
        );
    }
}

impl HostResult {
    /// Keeps the session for reuse after a completed transaction.
    fn keep(self, session: Session, facts: &Facts) -> HostResult {
        match self {
            HostResult::Done { results, conn: _ } => HostResult::Done {
                results,
                conn: Some(Box::new(Conn {
                    session,
                    facts: facts.clone(),
                })),
            },
            other @ HostResult::Next(_) => other,
        }
    }
}

/// Reads the message chunks sent by the blocking spool reader.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.pos < self.cur.len() {
                let n = (self.cur.len() - self.pos).min(buf.remaining());
                let start = self.pos;
                buf.put_slice(&self.cur[start..start + n]);
                self.pos += n;
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// MTA-STS discovery: the HTTPS fetcher (verified against `roots`, names
/// resolved through our resolver so static overrides apply) and the on-disk
/// cache. `Err`: why MTA-STS is unavailable (logged; routes that require it
/// defer with that reason).
fn mta_sts(
    settings: &DeliverySettings,
    roots: Option<Arc<rustls::RootCertStore>>,
    resolver: &Resolver,
) -> Result<MtaSts, String> {
    let roots = roots.ok_or_else(|| "no trust anchors for the HTTPS fetch".to_owned())?;
    let fetcher = PolicyFetcher::new(settings.mta_sts.clone(), roots, Some(resolver.clone()))
        .map_err(|e| {
            tracing::error!(error = %e, "MTA-STS: cannot build the HTTPS client");
            e.to_string()
        })?;
    let cache = settings
        .mta_sts_cache
        .as_ref()
        .and_then(|dir| match PolicyCache::open(dir) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e,
                    "MTA-STS: the policy cache is unavailable; policies are fetched every time");
                None
            }
        });
    Ok(MtaSts::new(fetcher, cache))
}

fn transcript(job: &Job) -> postern_smtpc::Transcript {
    transcript_for(job)
}

fn transcript_for(job: &Job) -> postern_smtpc::Transcript {
    let id = job.queue_id;
    Box::new(move |dir, line| {
        tracing::trace!(target: "postern::outbound", queue_id = %id, "{} {line}", dir.marker());
    })
}

fn outcome(job: &Job, results: Vec<RcptResult>) -> JobOutcome {
    JobOutcome {
        job: job.clone(),
        results,
    }
}

/// Every recipient of `job` gets the same failure.
fn all(job: &Job, f: &Failure, facts: &Facts) -> JobOutcome {
    let verdict = if f.permanent {
        Verdict::Bounced
    } else {
        Verdict::Deferred
    };
    outcome(
        job,
        job.rcpts
            .iter()
            .map(|i| RcptResult {
                rcpt: *i,
                verdict,
                reply: f.reply.clone(),
                cause: Some(f.cause.clone()),
                mx: facts.host.clone(),
                ip: facts.ip.clone(),
                tls: facts
                    .tls
                    .as_ref()
                    .map(|t| format!("{} {}", t.facts.version, t.facts.cipher)),
                remote_dsn: false,
                final_delivery: false,
            })
            .collect(),
    )
}

fn results_of(job: &Job, outcome: &TransactionOutcome, facts: &Facts) -> Vec<RcptResult> {
    job.rcpts
        .iter()
        .enumerate()
        .map(|(pos, i)| {
            let reply = outcome.rcpt_result(pos);
            let (verdict, cause) = match reply {
                Some(r) if (200..300).contains(&r.code) => (Verdict::Delivered, None),
                Some(r) if r.is_permanent() => (
                    Verdict::Bounced,
                    Some(cause::reply_permanent(&facts.host, &one_line(r))),
                ),
                Some(r) => (
                    Verdict::Deferred,
                    Some(cause::reply_transient(&facts.host, &one_line(r))),
                ),
                None => (
                    Verdict::Deferred,
                    Some(cause::internal("no reply recorded for this recipient")),
                ),
            };
            RcptResult {
                rcpt: *i,
                verdict,
                reply: reply.map(one_line),
                cause,
                mx: facts.host.clone(),
                ip: facts.ip.clone(),
                tls: facts
                    .tls
                    .as_ref()
                    .map(|t| format!("{} {}", t.facts.version, t.facts.cipher)),
                remote_dsn: verdict == Verdict::Delivered && facts.remote_dsn,
                final_delivery: false,
            }
        })
        .collect()
}

fn summarize(results: &[RcptResult]) -> String {
    let first = results.first().map(|r| r.verdict);
    if results.iter().any(|r| Some(r.verdict) != first) {
        return "partial".into();
    }
    match first {
        Some(Verdict::Delivered) => "delivered",
        Some(Verdict::Deferred) => "deferred",
        Some(Verdict::Bounced) => "bounced",
        None => "failed",
    }
    .into()
}

/// `550 5.1.1 text` on one line.
fn one_line(r: &Reply) -> String {
    let mut out = r.code.to_string();
    if let Some(e) = r.enhanced {
        out.push(' ');
        out.push_str(&e.to_string());
    }
    let text: Vec<&str> = r
        .lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    if !text.is_empty() {
        out.push(' ');
        out.push_str(&text.join(" / "));
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn tls_cause(c: &postern_tls::cause::Cause) -> CauseInfo {
    CauseInfo {
        id: c.id.to_owned(),
        summary: c.summary.clone(),
        fix: c.fix.clone(),
        detail: c.detail.clone(),
    }
}

fn tls_outcome(t: &TlsInfo) -> TlsOutcome {
    let verdict = t.verdict.as_ref();
    TlsOutcome {
        version: t.facts.version.clone(),
        cipher: t.facts.cipher.clone(),
        verified: verdict.is_some_and(postern_tls::client::PeerVerdict::is_verified),
        verification: verdict.map_or_else(
            || "no certificate".to_owned(),
            |v| {
                if v.is_verified() {
                    "ok".to_owned()
                } else {
                    v.summary()
                }
            },
        ),
        peer_cert: verdict
            .and_then(postern_tls::client::PeerVerdict::leaf)
            .map(|d| PeerCert {
                subject: d.subject,
                sans: d.sans,
                fingerprint_sha256: d.sha256,
                not_after: postern_tls::client::format_date(d.not_after),
                issuer: d.issuer,
            }),
    }
}

fn dns_failure(name: &str, e: &DnsError, host_lookup: bool) -> Failure {
    let detail = e.to_string();
    match e {
        DnsError::NxDomain { .. } | DnsError::InvalidName { .. } if !host_lookup => Failure {
            cause: cause::no_such_domain(name, &detail),
            reply: None,
            permanent: true,
        },
        DnsError::NxDomain { .. } | DnsError::NoRecords { .. } => {
            Failure::transient(cause::no_address(name, &detail))
        }
        DnsError::Bogus { .. } => Failure::transient(cause::dns_bogus(name, &detail)),
        _ => Failure::transient(cause::dns_temporary(name, &detail)),
    }
}

/// Whether an I/O error carries a TLS error (tokio-rustls wraps them).
fn wraps_tls_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// Classifies a session error for one host. Permanent only for a 5xx that
/// concerns the message (MAIL refused after a banner and EHLO went fine);
/// greeting and EHLO refusals move on to the next host and finally defer.
fn client_failure(host: &str, addr: SocketAddr, e: &ClientError) -> Failure {
    let detail = e.to_string();
    let addr_s = addr.to_string();
    let (cause, reply) = match e {
        // A TLS alert after the handshake (TLS 1.3 reports a refused client
        // certificate only at the first read, RFC 8446 §4.4.2.4): classify
        // it with the TLS catalogue, not as a socket error.
        ClientError::Io { source, .. } if wraps_tls_error(source) => (
            tls_cause(&postern_tls::client::outbound_cause(
                source,
                &[
                    postern_tls::TlsVersion::Tls12,
                    postern_tls::TlsVersion::Tls13,
                ],
                Some(host),
            )),
            None,
        ),
        ClientError::Connect { source, .. } | ClientError::Io { source, .. } => (
            cause::connection(host, &addr_s, source.kind(), &detail),
            None,
        ),
        ClientError::Timeout { .. } => (
            cause::connection(host, &addr_s, std::io::ErrorKind::TimedOut, &detail),
            None,
        ),
        ClientError::Tls { cause, .. } => (tls_cause(cause), None),
        ClientError::Body { .. } => (cause::spool_read(&detail), None),
        ClientError::UnexpectedReply { reply, stage } => {
            let line = one_line(reply);
            let c = if reply.is_permanent() {
                cause::cause(
                    cause::REPLY_PERMANENT,
                    format!("{host} refused us at {stage}: {line}"),
                    "if the refusal names our server or IP (blocklist, rDNS), fix that; the \
                     message is retried with the next host and later",
                    detail.clone(),
                )
            } else {
                cause::reply_transient(host, &line)
            };
            (c, Some(line))
        }
        ClientError::Protocol { .. } => (
            cause::cause(
                cause::PROTOCOL,
                format!("{host} broke the SMTP protocol"),
                "none on our side; retried with the next host and later; tell the peer's postmaster if it persists",
                detail.clone(),
            ),
            None,
        ),
        ClientError::NotOffered { .. } | ClientError::Insecure { .. } => (
            cause::cause(
                cause::AUTH_UNAVAILABLE,
                format!("{host}: {detail}"),
                "check the route's TLS and AUTH settings against what the server offers",
                detail.clone(),
            ),
            None,
        ),
        ClientError::Invalid { .. } => (cause::internal(&detail), None),
    };
    Failure {
        permanent: false,
        cause,
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_proto::EnhancedCode;

    #[test]
    fn one_line_reply() {
        let r = Reply::multiline(
            550,
            Some(EnhancedCode::new(5, 1, 1)),
            vec!["no such".into(), "user\r\nX".into()],
        );
        assert_eq!(one_line(&r), "550 5.1.1 no such / user  X");
    }

    #[test]
    fn summaries() {
        let r = |v| RcptResult {
            rcpt: 0,
            verdict: v,
            reply: None,
            cause: None,
            mx: String::new(),
            ip: String::new(),
            tls: None,
            remote_dsn: false,
            final_delivery: false,
        };
        assert_eq!(summarize(&[r(Verdict::Delivered)]), "delivered");
        assert_eq!(
            summarize(&[r(Verdict::Delivered), r(Verdict::Bounced)]),
            "partial"
        );
        assert_eq!(summarize(&[]), "failed");
    }
}
