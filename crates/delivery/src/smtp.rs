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
//! Files: this one finds the hosts and walks them (`deliver`);
//! `connection.rs` is one connection (`try_host`: connect, EHLO, the TLS
//! level, AUTH, then the transaction); `report.rs` turns what happened into
//! `attempt` events, per-recipient results and causes.
//!
//! Each connection runs in an `attempt` tracing span (`queue_id`, `mx`,
//! `ip`, `tls`), so its log lines need not repeat those fields.
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

mod connection;
mod report;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use postern_dns::cause::Lookup;
use postern_dns::{MxKind, Resolver};
use postern_smtpc::{ClientSettings, Session, TlsInfo};
use postern_spool::Spool;
use postern_tls::client::{ClientTls, Roots, Verify, load_roots};
use postern_tlspolicy::mta_sts::{MtaSts, PolicyCache, PolicyFetcher};
use postern_track::{CauseInfo, MailLog};
use tracing::Instrument as _;

use crate::cause;
use crate::maildir;
use crate::route::NextHop;
use crate::settings::{Credentials, DeliverySettings, MaildirSettings, TlsLevel};
use crate::tls_plan::{DomainPlan, Planner};
use crate::transport::{Job, JobFeed, JobOutcome, RcptResult, Transport};
use report::{all, dns_failure, outcome, tls_cause};

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
            let span = tracing::info_span!(
                "attempt",
                queue_id = %job.queue_id,
                mx = %c.facts.host,
                ip = %c.facts.ip,
                reused = true,
            );
            match c.session.rset().instrument(span.clone()).await {
                Ok(r) if r.code == 250 => {
                    match self
                        .transact(job, &mut c.session, &mut c.facts)
                        .instrument(span)
                        .await
                    {
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
                        let f = dns_failure(&cand.name, &e, Lookup::Address);
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
                // One span per attempt: every log line of this connection
                // carries the queue id, the MX host, the address and the
                // level without spelling them out.
                let span = tracing::info_span!(
                    "attempt",
                    queue_id = %job.queue_id,
                    mx = %cand.name,
                    ip = %addr,
                    tls = plan.level.as_str(),
                );
                match self
                    .try_host(job, cand, addr, &plan, &mut facts, started)
                    .instrument(span)
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
                Failure::transient(cause::no_host(&job.route.destination)),
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
                    .map_err(|e| dns_failure(domain, &e, Lookup::Mx))?;
                match mx.kind {
                    MxKind::NullMx => Err(Failure {
                        cause: cause::from_dns(postern_dns::cause::null_mx(domain)),
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
