//! `postern tls verify DOMAIN`: IronPort's `tlsverify`, done better. For
//! every MX host of a domain (or the one host named with `--mx`) and every
//! address of it: connect, banner, EHLO, is STARTTLS offered, the handshake
//! (version, suite, group), the presented chain, PKIX verification, the
//! name check against the MX host name, DANE TLSA where published (and
//! whether DNSSEC vouches for it), and the MTA-STS policy (mode, patterns,
//! whether this MX is allowed) — then whether that address passes the
//! policy level asked for.
//!
//! Each step is reported as it happens through a callback ([`Event`], one
//! line each, worded like the IronPort transcript: "Connecting to 192.0.2.10
//! on port 25.", "TLS connection established: protocol TLSv1.3, …"); the
//! whole result is a [`VerifyReport`] (serialisable for `--json`).
//!
//! **Which level is checked** ([`VerifyOptions::policy`]); without one, per
//! MX host, the strongest the domain publishes:
//! 1. `dane` when the host has DNSSEC-authenticated TLSA records and DANE
//!    can apply to it (authenticated MX and address answers, RFC 7672 §2.2);
//! 2. else `mta-sts` when the domain has an MTA-STS policy in mode
//!    `enforce` or `testing` (checked as if enforced: the point is to know
//!    whether enforcing would work);
//! 3. else `verify` (PKIX + MX host name). Delivery's own default is
//!    `opportunistic`, which accepts far less; checking `verify` answers the
//!    question operators run this for ("can I require TLS to them?"), and
//!    the report says what `opportunistic` would have done.
//!
//! The overall result passes only if every address of every host passes.
//!
//! # Security
//! Connects to the hosts DNS (or the operator) names; sends EHLO, STARTTLS
//! and QUIT, never mail. Every reply, certificate, TLSA record and policy is
//! untrusted input, parsed by `postern-smtpc`, `postern-tls` and
//! `postern-tlspolicy` with limits. The TLS client records certificates
//! instead of refusing them ([`Verify::Record`]) so a bad one can be shown;
//! nothing is trusted because it was seen.
//!
//! # Standards
//! RFC 5321 §5.1 (MX), RFC 3207 (STARTTLS), RFC 6125 (names), RFC 5280
//! (PKIX), RFC 7672 (DANE for SMTP), RFC 8461 (MTA-STS), RFC 7505 (null MX).

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use postern_dns::cause::{DnsCause, Lookup};
use postern_dns::{DnsError, MxKind, Resolver, Tlsa};
use postern_smtpc::{Advice, ClientError, ClientSettings, Direction, Session, TlsInfo, Transcript};
use postern_tls::cause::Cause;
use postern_tls::client::{CertDescription, ClientTls, ClientTlsSettings, PkixProblem, Verify};
use postern_tls::facts::TlsFacts;
use postern_tlspolicy::judge::{self, DaneEvidence, Judgement};
use postern_tlspolicy::mta_sts::{Discovery, MtaSts, PolicyFetcher, TxtOutcome};
use postern_tlspolicy::{cause as policy_cause, dane};
use rustls::RootCertStore;

pub use postern_tlspolicy::mta_sts::{FetchSettings, Mode as StsMode};
pub use postern_tlspolicy::{DaneResult, Level, ParseLevelError};

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The mail domain (the part after @).
    pub domain: String,
    /// Check this host instead of the domain's MX hosts (`--mx`).
    pub mx: Option<String>,
    /// SMTP port (25; `--mx HOST:PORT` overrides). Also the TLSA port.
    pub port: u16,
    /// The level to check; `None`: the strongest the domain publishes (see
    /// the module docs).
    pub policy: Option<Level>,
    /// Our EHLO name.
    pub helo_name: String,
    /// Connect, greeting, command and handshake timeout.
    pub timeout: Duration,
    /// Trusted roots (system store and/or a private CA) for PKIX and for
    /// the MTA-STS policy fetch.
    pub roots: Arc<RootCertStore>,
    /// MTA-STS fetch settings (the URL template is how tests reach a local
    /// HTTPS server).
    pub mta_sts: FetchSettings,
    /// Also report every SMTP line sent and received.
    pub transcript: bool,
}

impl VerifyOptions {
    /// Defaults for `domain`: port 25, automatic policy, 30 s timeouts.
    pub fn new(domain: impl Into<String>, roots: Arc<RootCertStore>) -> Self {
        Self {
            domain: domain.into(),
            mx: None,
            port: 25,
            policy: None,
            helo_name: "postern-verify".to_owned(),
            timeout: Duration::from_secs(30),
            roots,
            mta_sts: FetchSettings::default(),
            transcript: false,
        }
    }
}

/// How an event reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A step or a fact.
    Info,
    /// A check passed.
    Pass,
    /// Works, but worth fixing.
    Warn,
    /// A check failed.
    Fail,
    /// An SMTP line (`--transcript`).
    Transcript,
}

/// One step, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Kind.
    pub kind: EventKind,
    /// 0 domain, 1 MX host, 2 address (indentation).
    pub depth: u8,
    /// The line.
    pub text: String,
    /// The catalogue cause of a warning or failure.
    pub cause: Option<Cause>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for _ in 0..self.depth {
            f.write_str("  ")?;
        }
        match (&self.cause, self.kind) {
            (Some(c), EventKind::Fail | EventKind::Warn) => {
                let tag = if self.kind == EventKind::Fail {
                    "FAIL"
                } else {
                    "WARN"
                };
                write!(f, "{tag} [{}] {}. fix: {}", c.id, c.summary, c.fix)
            }
            (_, EventKind::Fail) => write!(f, "FAIL {}", self.text),
            (_, EventKind::Warn) => write!(f, "WARN {}", self.text),
            _ => f.write_str(&self.text),
        }
    }
}

/// How the MX hosts were found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MxSummary {
    /// `dns` or `--mx`.
    pub source: &'static str,
    /// MX, null MX or implicit (DNS only).
    pub kind: Option<MxKind>,
    /// DNSSEC-authenticated (always true for `--mx`: the operator named it).
    pub authenticated: bool,
    /// The lookup failure.
    pub error: Option<Cause>,
}

/// TLSA records of one host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsaSummary {
    /// `_25._tcp.host`.
    pub name: String,
    /// Presentation form (`3 1 1 ab…`).
    pub records: Vec<String>,
    /// DNSSEC-authenticated.
    pub authenticated: bool,
    /// DANE applies to this host: authenticated TLSA, MX and addresses.
    pub dane_applies: bool,
    /// Why DANE does not apply, when records exist.
    pub why_not: Option<String>,
    #[serde(skip)]
    raw: Vec<Tlsa>,
}

/// PKIX verification of one chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PkixSummary {
    /// Verified against the roots (name not included).
    pub ok: bool,
    /// Why not.
    pub problem: Option<PkixProblem>,
    /// The verifier's words.
    pub detail: Option<String>,
}

/// One address of one host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddressReport {
    /// Where we connected.
    pub addr: SocketAddr,
    /// TCP and banner succeeded.
    pub connected: bool,
    /// The 220 greeting (first line).
    pub banner: Option<String>,
    /// STARTTLS in the EHLO reply.
    pub starttls_offered: Option<bool>,
    /// What the handshake negotiated.
    pub tls: Option<TlsFacts>,
    /// The presented chain, leaf first.
    pub chain: Vec<CertDescription>,
    /// PKIX verdict.
    pub pkix: Option<PkixSummary>,
    /// The leaf covers the MX host name.
    pub name_matches: Option<bool>,
    /// DANE matching, when TLSA records apply.
    pub dane: Option<DaneResult>,
    /// Passes the host's level.
    pub passed: bool,
    /// Why not.
    pub failures: Vec<Cause>,
    /// Worth fixing, not failing.
    pub warnings: Vec<Cause>,
}

/// One MX host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostReport {
    /// Host name (or address literal).
    pub host: String,
    /// MX preference (DNS only).
    pub preference: Option<u16>,
    /// SMTP port.
    pub port: u16,
    /// The level checked.
    pub policy: Level,
    /// Why that level.
    pub policy_reason: String,
    /// The address answer was DNSSEC-authenticated.
    pub addresses_authenticated: bool,
    /// TLSA records, when published.
    pub tlsa: Option<TlsaSummary>,
    /// The MTA-STS pattern that allows this host (`None` when there is no
    /// policy or none matches).
    pub mta_sts_pattern: Option<String>,
    /// Allowed by the MTA-STS policy (`None` without a policy).
    pub mta_sts_allowed: Option<bool>,
    /// Each address.
    pub addresses: Vec<AddressReport>,
    /// Host-level failures (no address, policy unavailable, MX not
    /// allowed by MTA-STS).
    pub failures: Vec<Cause>,
    /// Host and every address pass.
    pub passed: bool,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The domain.
    pub domain: String,
    /// `--policy`, if given.
    pub requested_policy: Option<Level>,
    /// The MX lookup.
    pub mx: MxSummary,
    /// MTA-STS discovery.
    pub mta_sts: Option<Discovery>,
    /// Each host.
    pub hosts: Vec<HostReport>,
    /// Every host and address passes (and there was at least one).
    pub passed: bool,
}

/// SMTP lines collected by the transcript hook until the next event.
type Lines = Arc<Mutex<Vec<(Direction, String)>>>;

/// The event sink and the transcript buffer.
struct Out<'a> {
    sink: &'a mut dyn FnMut(&Event),
    lines: Option<Lines>,
}

impl Out<'_> {
    fn emit(&mut self, kind: EventKind, depth: u8, text: impl Into<String>) {
        self.flush();
        (self.sink)(&Event {
            kind,
            depth,
            text: text.into(),
            cause: None,
        });
    }

    fn cause(&mut self, kind: EventKind, depth: u8, cause: &Cause) {
        self.flush();
        (self.sink)(&Event {
            kind,
            depth,
            text: cause.summary.clone(),
            cause: Some(cause.clone()),
        });
    }

    fn info(&mut self, depth: u8, text: impl Into<String>) {
        self.emit(EventKind::Info, depth, text);
    }

    fn transcript(&self) -> Option<Transcript> {
        let lines = Arc::clone(self.lines.as_ref()?);
        Some(Box::new(move |dir, line: &str| {
            if let Ok(mut l) = lines.lock() {
                l.push((dir, line.to_owned()));
            }
        }))
    }

    /// Emits buffered transcript lines.
    fn flush(&mut self) {
        let Some(lines) = &self.lines else { return };
        let drained: Vec<(Direction, String)> = match lines.lock() {
            Ok(mut l) => l.drain(..).collect(),
            Err(_) => return,
        };
        for (dir, line) in drained {
            (self.sink)(&Event {
                kind: EventKind::Transcript,
                depth: 3,
                text: format!("{} {line}", dir.marker()),
                cause: None,
            });
        }
    }
}

/// Runs the verification, calling `on_event` for each step as it happens.
pub async fn verify(
    resolver: &Resolver,
    opts: &VerifyOptions,
    on_event: &mut dyn FnMut(&Event),
) -> VerifyReport {
    let mut out = Out {
        sink: on_event,
        lines: opts.transcript.then(|| Arc::new(Mutex::new(Vec::new()))),
    };
    let domain = opts.domain.trim_end_matches('.').to_ascii_lowercase();
    out.info(
        0,
        format!(
            "Verifying TLS for {domain} (policy: {}).",
            opts.policy
                .map_or_else(|| "strongest published".to_owned(), |l| l.to_string())
        ),
    );
    let mut report = VerifyReport {
        domain: domain.clone(),
        requested_policy: opts.policy,
        mx: MxSummary {
            source: if opts.mx.is_some() { "--mx" } else { "dns" },
            kind: None,
            authenticated: opts.mx.is_some(),
            error: None,
        },
        mta_sts: None,
        hosts: Vec::new(),
        passed: false,
    };

    let sts = discover_mta_sts(resolver, opts, &domain, &mut out).await;

    let hosts: Vec<(String, Option<u16>)> = if let Some(host) = &opts.mx {
        out.info(0, format!("Checking the host given: {host}."));
        vec![(host.trim_end_matches('.').to_ascii_lowercase(), None)]
    } else {
        match resolver.mx(&domain).await {
            Ok(l) => {
                report.mx.kind = Some(l.kind);
                report.mx.authenticated = l.authenticated;
                let dnssec = dnssec_word(l.authenticated);
                match l.kind {
                    MxKind::NullMx => {
                        let c = dns_cause(postern_dns::cause::null_mx(&domain));
                        out.cause(EventKind::Fail, 0, &c);
                        report.mx.error = Some(c);
                    }
                    MxKind::Implicit => out.info(
                        0,
                        format!(
                            "{domain} has no MX records: the domain itself is the mail host \
                             (implicit MX, RFC 5321 §5.1; DNSSEC: {dnssec})."
                        ),
                    ),
                    MxKind::Mx => out.info(
                        0,
                        format!(
                            "MX for {domain}: {} (DNSSEC: {dnssec}).",
                            l.hosts
                                .iter()
                                .map(|h| format!("{} {}", h.preference, h.exchange))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
                l.hosts
                    .into_iter()
                    .map(|h| (h.exchange, Some(h.preference)))
                    .collect()
            }
            Err(e) => {
                let c = dns_cause(e.cause(&domain, Lookup::Mx));
                out.cause(EventKind::Fail, 0, &c);
                report.mx.error = Some(c);
                Vec::new()
            }
        }
    };

    let ctx = Ctx::new(opts, &domain, sts.as_ref(), report.mx.authenticated);
    for (host, preference) in hosts {
        let h = verify_host(resolver, &ctx, &host, preference, &mut out).await;
        report.hosts.push(h);
    }
    report.mta_sts = sts;
    report.passed = report.mx.error.is_none()
        && !report.hosts.is_empty()
        && report.hosts.iter().all(|h| h.passed);
    let total: usize = report.hosts.iter().map(|h| h.addresses.len()).sum();
    let good: usize = report
        .hosts
        .iter()
        .flat_map(|h| &h.addresses)
        .filter(|a| a.passed)
        .count();
    let kind = if report.passed {
        EventKind::Pass
    } else {
        EventKind::Fail
    };
    out.emit(
        kind,
        0,
        format!(
            "TLS verification completed: {good} of {total} addresses pass{}; {}.",
            opts.policy
                .map_or_else(String::new, |l| format!(" policy {l}")),
            if report.passed { "PASSED" } else { "FAILED" }
        ),
    );
    report
}

fn dnssec_word(authenticated: bool) -> &'static str {
    if authenticated {
        "authenticated"
    } else {
        "not authenticated"
    }
}

/// What every host needs to know.
struct Ctx<'a> {
    opts: &'a VerifyOptions,
    domain: &'a str,
    sts: Option<&'a Discovery>,
    mx_authenticated: bool,
    tls: Result<ClientTls, String>,
    settings: ClientSettings,
}

impl<'a> Ctx<'a> {
    fn new(
        opts: &'a VerifyOptions,
        domain: &'a str,
        sts: Option<&'a Discovery>,
        mx_authenticated: bool,
    ) -> Self {
        let tls = ClientTls::new(
            &ClientTlsSettings {
                resumption: false,
                ..ClientTlsSettings::default()
            },
            Verify::Record,
            Arc::clone(&opts.roots),
        )
        .map_err(|e| e.to_string());
        let settings = ClientSettings {
            connect_timeout: opts.timeout,
            greeting_timeout: opts.timeout,
            command_timeout: opts.timeout,
            ..ClientSettings::new(opts.helo_name.clone())
        };
        Self {
            opts,
            domain,
            sts,
            mx_authenticated,
            tls,
            settings,
        }
    }
}

async fn discover_mta_sts(
    resolver: &Resolver,
    opts: &VerifyOptions,
    domain: &str,
    out: &mut Out<'_>,
) -> Option<Discovery> {
    let fetcher = match PolicyFetcher::new(
        opts.mta_sts.clone(),
        Arc::clone(&opts.roots),
        Some(resolver.clone()),
    ) {
        Ok(f) => f,
        Err(e) => {
            out.emit(EventKind::Warn, 0, format!("MTA-STS not checked: {e}"));
            return None;
        }
    };
    let d = MtaSts::new(fetcher, None)
        .discover(resolver, domain, SystemTime::now())
        .await;
    match &d.txt {
        TxtOutcome::Absent { reason } => {
            out.info(0, format!("MTA-STS: no policy published ({reason})."));
        }
        TxtOutcome::Error { detail } => out.emit(
            EventKind::Warn,
            0,
            format!("MTA-STS: the TXT lookup failed: {detail}"),
        ),
        TxtOutcome::Record { text, .. } => {
            out.info(0, format!("MTA-STS: _mta-sts.{domain} TXT \"{text}\"."));
        }
    }
    if let Some(p) = &d.policy {
        out.info(
            0,
            format!(
                "MTA-STS: policy id {} from {}: mode {}, mx {}, max_age {}.",
                p.id,
                d.url,
                p.policy.mode,
                if p.policy.mx.is_empty() {
                    "(none)".to_owned()
                } else {
                    p.policy.mx.join(", ")
                },
                p.policy.max_age
            ),
        );
        if p.policy.mode == StsMode::Testing {
            out.info(
                0,
                "MTA-STS: mode testing: senders report failures but still deliver; checked \
                 here as if enforced.",
            );
        }
        for w in &p.policy.warnings {
            out.emit(EventKind::Warn, 0, format!("MTA-STS policy: {w}"));
        }
    }
    if let Some(e) = &d.fetch_error {
        let c = policy_cause::mta_sts_fetch_failed(domain, &d.url, &e.to_string());
        let kind = if opts.policy == Some(Level::MtaSts) {
            EventKind::Fail
        } else {
            EventKind::Warn
        };
        out.cause(kind, 0, &c);
    }
    Some(d)
}

/// The level for `host` and why.
fn choose_level(ctx: &Ctx<'_>, tlsa: Option<&TlsaSummary>) -> (Level, String) {
    if let Some(l) = ctx.opts.policy {
        return (l, "requested with --policy".to_owned());
    }
    if let Some(t) = tlsa.filter(|t| t.dane_applies) {
        return (
            Level::Dane,
            format!("DNSSEC-authenticated TLSA records at {} (RFC 7672)", t.name),
        );
    }
    if let Some(p) = ctx.sts.and_then(Discovery::effective) {
        return (
            Level::MtaSts,
            format!(
                "MTA-STS policy id {} in mode {} (RFC 8461; checked as if enforced)",
                p.id, p.policy.mode
            ),
        );
    }
    (
        Level::Verify,
        "nothing published (no authenticated TLSA, no MTA-STS): checking what `verify` needs; \
         delivery's default `opportunistic` would accept less"
            .to_owned(),
    )
}

async fn verify_host(
    resolver: &Resolver,
    ctx: &Ctx<'_>,
    host: &str,
    preference: Option<u16>,
    out: &mut Out<'_>,
) -> HostReport {
    let port = ctx.opts.port;
    out.info(
        1,
        match preference {
            Some(p) => format!("MX host {host} (preference {p}), port {port}:"),
            None => format!("Host {host}, port {port}:"),
        },
    );
    let mut report = HostReport {
        host: host.to_owned(),
        preference,
        port,
        policy: Level::Verify,
        policy_reason: String::new(),
        addresses_authenticated: false,
        tlsa: None,
        mta_sts_pattern: None,
        mta_sts_allowed: None,
        addresses: Vec::new(),
        failures: Vec::new(),
        passed: false,
    };
    let addrs = match resolver.addresses(host).await {
        Ok(a) => {
            report.addresses_authenticated = a.authenticated;
            out.info(
                1,
                format!(
                    "Addresses: {} (DNSSEC: {}).",
                    a.addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    dnssec_word(a.authenticated)
                ),
            );
            a.addrs
        }
        Err(e) => {
            let c = dns_cause(e.cause(host, Lookup::Address));
            out.cause(EventKind::Fail, 1, &c);
            report.failures.push(c);
            Vec::new()
        }
    };

    // TLSA (RFC 7672 §2.2: DANE applies only when the MX and address
    // answers are authenticated too).
    report.tlsa = lookup_tlsa(resolver, ctx, host, report.addresses_authenticated, out).await;
    let (level, reason) = choose_level(ctx, report.tlsa.as_ref());
    report.policy = level;
    report.policy_reason = reason;
    out.info(1, format!("Policy: {level}: {}.", report.policy_reason));

    // Host-level requirements of the level.
    if level == Level::Dane && !report.tlsa.as_ref().is_some_and(|t| t.dane_applies) {
        let why = report
            .tlsa
            .as_ref()
            .and_then(|t| t.why_not.clone())
            .unwrap_or_else(|| format!("no TLSA records at _{port}._tcp.{host}"));
        let c = policy_cause::dane_unavailable(host, &why);
        out.cause(EventKind::Fail, 1, &c);
        report.failures.push(c);
    }
    mta_sts_host(ctx, host, level, &mut report, out);

    if addrs.is_empty() && report.failures.is_empty() {
        let c = dns_cause(
            DnsError::NoRecords {
                name: host.to_owned(),
                rtype: "A/AAAA",
            }
            .cause(host, Lookup::Address),
        );
        out.cause(EventKind::Fail, 1, &c);
        report.failures.push(c);
    }
    for ip in addrs {
        let a = verify_address(
            ctx,
            host,
            SocketAddr::new(ip, port),
            level,
            report.tlsa.as_ref(),
            out,
        )
        .await;
        report.addresses.push(a);
    }
    report.passed = report.failures.is_empty()
        && !report.addresses.is_empty()
        && report.addresses.iter().all(|a| a.passed);
    report
}

async fn lookup_tlsa(
    resolver: &Resolver,
    ctx: &Ctx<'_>,
    host: &str,
    addresses_authenticated: bool,
    out: &mut Out<'_>,
) -> Option<TlsaSummary> {
    let port = ctx.opts.port;
    if host.parse::<std::net::IpAddr>().is_ok() {
        // TLSA records hang off host names (RFC 7672 §3.2.2): nothing to look up.
        return None;
    }
    match resolver.tlsa(port, host).await {
        Ok(l) => {
            let why_not = if !l.authenticated {
                Some(format!(
                    "the TLSA records at {} are not DNSSEC-authenticated",
                    l.name
                ))
            } else if !ctx.mx_authenticated {
                Some(format!(
                    "the MX records of {} are not DNSSEC-authenticated (RFC 7672 §2.2.1)",
                    ctx.domain
                ))
            } else if !addresses_authenticated {
                Some(format!(
                    "the addresses of {host} are not DNSSEC-authenticated (RFC 7672 §2.2.2)"
                ))
            } else {
                None
            };
            let records: Vec<String> = l.records.iter().map(dane::presentation).collect();
            out.info(
                1,
                format!(
                    "DANE: TLSA at {}: {} (DNSSEC: {}).",
                    l.name,
                    records.join(", "),
                    dnssec_word(l.authenticated)
                ),
            );
            if let Some(w) = &why_not {
                out.emit(EventKind::Warn, 1, format!("DANE does not apply: {w}."));
            }
            Some(TlsaSummary {
                name: l.name,
                records,
                authenticated: l.authenticated,
                dane_applies: why_not.is_none(),
                why_not,
                raw: l.records,
            })
        }
        Err(DnsError::NxDomain { .. } | DnsError::NoRecords { .. }) => {
            out.info(1, format!("DANE: no TLSA records at _{port}._tcp.{host}."));
            None
        }
        Err(e) => {
            out.emit(
                EventKind::Warn,
                1,
                format!("DANE: the TLSA lookup failed: {e}"),
            );
            None
        }
    }
}

fn mta_sts_host(
    ctx: &Ctx<'_>,
    host: &str,
    level: Level,
    report: &mut HostReport,
    out: &mut Out<'_>,
) {
    let effective = ctx.sts.and_then(Discovery::effective);
    if let Some(p) = effective {
        let pattern = p.policy.matching_pattern(host).map(str::to_owned);
        report.mta_sts_allowed = Some(pattern.is_some());
        if let Some(pat) = &pattern {
            out.emit(
                EventKind::Pass,
                1,
                format!("MTA-STS: {host} matches the policy's mx pattern {pat}."),
            );
        }
        match judge::mta_sts_host(level, ctx.domain, host, &p.policy.mx, pattern.as_deref()) {
            Judgement::Pass => {}
            Judgement::Warn(c) => out.cause(EventKind::Warn, 1, &c),
            Judgement::Fail(c) => {
                out.cause(EventKind::Fail, 1, &c);
                report.failures.push(c);
            }
        }
        report.mta_sts_pattern = pattern;
    } else if level == Level::MtaSts {
        let c = match ctx.sts {
            Some(d) if d.fetch_error.is_some() => policy_cause::mta_sts_fetch_failed(
                ctx.domain,
                &d.url,
                &d.fetch_error
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            Some(d) if d.policy.is_some() => {
                policy_cause::mta_sts_not_published(ctx.domain, "the policy's mode is none")
            }
            Some(Discovery {
                txt: TxtOutcome::Absent { reason } | TxtOutcome::Error { detail: reason },
                ..
            }) => policy_cause::mta_sts_not_published(ctx.domain, reason),
            _ => policy_cause::mta_sts_not_published(ctx.domain, "no policy"),
        };
        out.cause(EventKind::Fail, 1, &c);
        report.failures.push(c);
    }
}

fn new_address(addr: SocketAddr) -> AddressReport {
    AddressReport {
        addr,
        connected: false,
        banner: None,
        starttls_offered: None,
        tls: None,
        chain: Vec::new(),
        pkix: None,
        name_matches: None,
        dane: None,
        passed: false,
        failures: Vec::new(),
        warnings: Vec::new(),
    }
}

async fn verify_address(
    ctx: &Ctx<'_>,
    host: &str,
    addr: SocketAddr,
    level: Level,
    tlsa: Option<&TlsaSummary>,
    out: &mut Out<'_>,
) -> AddressReport {
    let mut a = new_address(addr);
    let ip = addr.ip().to_string();
    out.info(
        2,
        format!("Connecting to {} on port {}.", addr.ip(), addr.port()),
    );
    let session = probe(ctx, host, addr, level, tlsa, &mut a, out).await;
    if let Some(s) = session {
        let _ = s.quit().await;
        out.flush();
    }
    a.passed = a.connected && a.failures.is_empty();
    if a.passed {
        out.emit(
            EventKind::Pass,
            2,
            format!("TLS connection to {ip} passes policy {level}."),
        );
    } else {
        out.emit(
            EventKind::Fail,
            2,
            format!("{ip} does not pass policy {level}."),
        );
    }
    a
}

/// Records a judgement on the address: a failure, a warning or nothing.
fn judged(a: &mut AddressReport, out: &mut Out<'_>, j: Judgement) {
    match j {
        Judgement::Pass => {}
        Judgement::Warn(c) => {
            out.cause(EventKind::Warn, 2, &c);
            a.warnings.push(c);
        }
        Judgement::Fail(c) => {
            out.cause(EventKind::Fail, 2, &c);
            a.failures.push(c);
        }
    }
}

/// The dialogue up to the verdicts; returns the session to QUIT.
async fn probe(
    ctx: &Ctx<'_>,
    host: &str,
    addr: SocketAddr,
    level: Level,
    tlsa: Option<&TlsaSummary>,
    a: &mut AddressReport,
    out: &mut Out<'_>,
) -> Option<Session> {
    let ip = addr.ip().to_string();
    // A fix never suggests the level already checked, and names the
    // recipient domain for a `[[route]]`.
    let settings = ClientSettings {
        advice: Advice::for_domain(ctx.domain, level.allows_plaintext_retry()),
        ..ctx.settings.clone()
    };
    let (mut session, banner) = match Session::connect(addr, &settings, out.transcript()).await {
        Ok(pair) => pair,
        Err(e) => {
            judged(a, out, Judgement::Fail(e.cause(&ip)));
            return None;
        }
    };
    a.connected = true;
    let first = banner.lines.first().cloned().unwrap_or_default();
    out.info(2, format!("Connected; banner: {} {first}", banner.code));
    a.banner = Some(first);
    let ehlo = match session.ehlo().await {
        Ok(e) => e,
        Err(e) => {
            judged(a, out, Judgement::Fail(e.cause(&ip)));
            return Some(session);
        }
    };
    a.starttls_offered = Some(ehlo.starttls);
    if level == Level::None {
        out.info(
            2,
            format!(
                "EHLO accepted; STARTTLS {}; policy none does not use it.",
                if ehlo.starttls {
                    "offered"
                } else {
                    "not offered"
                }
            ),
        );
        return Some(session);
    }
    if !ehlo.starttls {
        judged(a, out, judge::starttls_missing(level, &ip, ctx.domain));
        return Some(session);
    }
    out.info(2, "STARTTLS offered.");
    out.info(2, "Checking TLS connection.");
    let tls = match &ctx.tls {
        Ok(t) => t,
        Err(e) => {
            out.emit(EventKind::Fail, 2, format!("cannot set up TLS: {e}"));
            a.failures.push(Cause {
                id: postern_tls::cause::UNKNOWN,
                summary: format!("cannot set up TLS: {e}"),
                fix: "check the CA file".to_owned(),
                detail: e.clone(),
            });
            return Some(session);
        }
    };
    let info = match session.starttls(host, tls).await {
        Ok(info) => info,
        Err(e) => {
            let j = judge::handshake_failed(level, e.cause(&ip));
            if j.is_pass() {
                out.emit(
                    EventKind::Warn,
                    2,
                    format!(
                        "TLS failed at {ip}; policy {level} retries in plaintext (the downgrade \
                         is recorded)."
                    ),
                );
            }
            judged(a, out, j);
            return matches!(e, ClientError::UnexpectedReply { .. }).then_some(session);
        }
    };
    tls_checks(host, level, tlsa, &info, a, out);
    Some(session)
}

/// A `postern_dns` cause in the shared record type.
fn dns_cause(c: DnsCause) -> Cause {
    Cause {
        id: c.id,
        summary: c.summary,
        fix: c.fix.to_owned(),
        detail: c.detail,
    }
}

fn describe_cert_line(i: usize, d: &CertDescription) -> String {
    let sans = if d.sans.is_empty() {
        "no SANs".to_owned()
    } else {
        format!("SANs {}", d.sans.join(", "))
    };
    let left = if d.days_left < 0 {
        format!("expired {} days ago", -d.days_left)
    } else {
        format!("{} days left", d.days_left)
    };
    let key = if d.key_bits == 0 {
        d.key_type.clone()
    } else {
        format!("{} {} bits", d.key_type, d.key_bits)
    };
    format!(
        "Certificate {i}: {}; {sans}; issuer {}; not after {} ({left}); key {key}.",
        d.subject,
        d.issuer,
        postern_tls::client::format_date(d.not_after)
    )
}

fn tls_checks(
    host: &str,
    level: Level,
    tlsa: Option<&TlsaSummary>,
    info: &TlsInfo,
    a: &mut AddressReport,
    out: &mut Out<'_>,
) {
    let f = &info.facts;
    out.info(
        2,
        format!(
            "TLS connection established: protocol {}, cipher {}{}.",
            f.version,
            f.cipher,
            f.group
                .as_ref()
                .map(|g| format!(", group {g}"))
                .unwrap_or_default()
        ),
    );
    a.tls = Some(f.clone());
    let Some(verdict) = &info.verdict else {
        out.emit(
            EventKind::Warn,
            2,
            "no certificate verdict (handshake incomplete)",
        );
        return;
    };
    for (i, cert) in verdict.chain.iter().enumerate() {
        match postern_tls::client::describe_cert(cert) {
            Some(d) => {
                out.info(2, describe_cert_line(i, &d));
                a.chain.push(d);
            }
            None => out.emit(
                EventKind::Warn,
                2,
                format!("Certificate {i} cannot be parsed."),
            ),
        }
    }
    out.info(2, "Verifying peer certificate.");
    a.name_matches = Some(verdict.name_matches);
    if verdict.name_matches {
        out.emit(
            EventKind::Pass,
            2,
            format!("TLS certificate matches {host}."),
        );
    } else {
        let covers = a
            .chain
            .first()
            .map(|d| d.sans.join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "no names".to_owned());
        out.info(
            2,
            format!("TLS certificate does not match {host} (it covers {covers})."),
        );
    }
    a.pkix = Some(PkixSummary {
        ok: verdict.pkix.is_ok(),
        problem: verdict.pkix_problem,
        detail: verdict.pkix.as_ref().err().cloned(),
    });
    match &verdict.pkix {
        Ok(()) => out.emit(EventKind::Pass, 2, "TLS certificate verified (PKIX)."),
        Err(e) => out.info(2, format!("PKIX verification failed: {e}.")),
    }

    // DANE, wherever authenticated records exist (informative under other
    // levels, decisive under `dane`).
    let dane_records = tlsa.filter(|t| t.authenticated);
    if let Some(t) = dane_records {
        let r = dane::match_tlsa(&t.raw, &verdict.chain);
        let kind = if r.is_match() {
            EventKind::Pass
        } else {
            EventKind::Info
        };
        out.emit(kind, 2, format!("DANE: {}.", r.describe()));
        a.dane = Some(r);
    }

    // The decision is the shared table's (postern_tlspolicy::judge). Under
    // `dane` without applicable records the host already failed, saying why.
    let evidence = tlsa
        .filter(|t| t.dane_applies)
        .zip(a.dane.as_ref())
        .map(|(t, result)| DaneEvidence {
            tlsa_name: &t.name,
            result,
        });
    if level == Level::Dane && evidence.is_none() {
        return;
    }
    let j = judge::certificate(level, host, verdict, evidence);
    if j == Judgement::Pass && level == Level::Dane {
        out.emit(
            EventKind::Pass,
            2,
            format!("TLS certificate verified for {host} (DANE)."),
        );
    }
    judged(a, out, j);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn verify_event_lines() {
        let info = Event {
            kind: EventKind::Info,
            depth: 2,
            text: "Connecting to 192.0.2.10 on port 25.".into(),
            cause: None,
        };
        assert_eq!(info.to_string(), "    Connecting to 192.0.2.10 on port 25.");
        let fail = Event {
            kind: EventKind::Fail,
            depth: 0,
            text: String::new(),
            cause: Some(policy_cause::starttls_not_offered(
                "192.0.2.10",
                &["example.com".to_owned()],
                Level::Verify,
            )),
        };
        let line = fail.to_string();
        assert!(
            line.starts_with(
                "FAIL [policy.starttls_not_offered] STARTTLS command not supported at \
                 192.0.2.10. TLS was required but could not be successfully negotiated. fix: "
            ),
            "{line}"
        );
        let warn = Event {
            kind: EventKind::Warn,
            depth: 1,
            text: "DANE does not apply".into(),
            cause: None,
        };
        assert_eq!(warn.to_string(), "  WARN DANE does not apply");
    }
}
