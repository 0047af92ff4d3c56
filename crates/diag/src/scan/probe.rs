//! Running a scan: connections (bounded by a semaphore, each with the STARTTLS
//! preamble when asked), one ClientHello per connection, and the enumeration
//! logic — versions, suites in server order, order enforcement, groups — that
//! turns answers into a [`ScanReport`].
//!
//! # Security
//! Talks only to the one resolved address; at most `max_connections` open at
//! once; every read and write has a deadline. The one completed handshake
//! (rustls, to read a TLS 1.3 certificate) accepts any certificate on purpose
//! and sends nothing but close_notify over it.
//!
//! # Standards
//! RFC 8446 §4.1.1 (server selection, HelloRetryRequest), RFC 5246 §7.4.1.3.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use postern_tls::{groups, suites};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::chain::{self, Chain};
use super::grade::{self, suite_findings, suite_flags};
use super::hello::{self, HelloSpec};
use super::wire::{FlightParser, Reply, ServerFlight};
use super::{
    AcceptedSuite, GroupEntry, GroupsResult, ProtocolResult, ProtocolVersion, ScanError,
    ScanOptions, ScanProgress, ScanReport, ScanTarget, StartTls, smtp,
};

/// Steps reported to the progress callback: connect, five versions, groups, chain.
const STEPS: u32 = 8;

/// Groups offered in TLS ≤ 1.2 hellos (ECDHE curves; RFC 8422 §5.1.1).
const LEGACY_GROUPS: &[u16] = &[0x001d, 0x0017, 0x0018, 0x0019, 0x001e];

/// Groups offered in the TLS 1.3 suite probes (a common client's list; only
/// x25519 carries a key share, so a server preferring another answers with a
/// HelloRetryRequest, which names the suite all the same).
const TLS13_OFFER: &[u16] = &[
    0x001d, 0x0017, 0x11ec, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101, 0x0102,
];

/// Every group of the catalogue, in the order offered when enumerating
/// TLS 1.3 groups: hybrid post-quantum, then classic EC, then pure ML-KEM,
/// then finite-field.
const TLS13_GROUP_CANDIDATES: &[u16] = &[
    0x11ec, 0x11eb, 0x11ed, 0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0202, 0x0201, 0x0200, 0x0100,
    0x0101, 0x0102, 0x0103, 0x0104,
];

/// Suites a scanner can be answered with: every catalogue suite but the
/// signalling values and PSK/SRP (those need a shared secret).
fn candidates(v: ProtocolVersion) -> Vec<u16> {
    let mut list: Vec<&'static postern_tls::SuiteInfo> = suites::all()
        .iter()
        .filter(|s| v.allows(s))
        .filter(|s| s.kx != "none" && !s.kx.contains("PSK") && s.kx != "SRP")
        .collect();
    // Strongest first, so a server that follows the client's order shows a
    // sensible order too: no findings, then by the worst finding; forward
    // secrecy, AEAD, key bits.
    list.sort_by_key(|s| {
        let worst = suite_findings(s, None, None)
            .iter()
            .map(|f| f.cap)
            .max()
            .unwrap_or(grade::Grade::APlus);
        (
            worst,
            !s.is_forward_secret(),
            !s.aead,
            std::cmp::Reverse(s.bits),
            s.cipher.contains("CHACHA"),
            s.auth != "ECDSA",
            s.id,
        )
    });
    list.into_iter().map(|s| s.id).collect()
}

/// Results of one version's enumeration.
struct VersionScan {
    result: ProtocolResult,
    /// (seen with, DER chain) of distinct leaf certificates.
    chains: Vec<(String, Vec<Vec<u8>>)>,
}

struct Prober<'a> {
    addr: SocketAddr,
    target: &'a ScanTarget,
    opts: &'a ScanOptions,
    permits: Semaphore,
    connections: AtomicU32,
    done: AtomicU32,
    notes: Mutex<Vec<String>>,
    progress: &'a (dyn Fn(ScanProgress) + Sync),
    provider: Arc<CryptoProvider>,
    x25519_share: Vec<u8>,
}

pub(super) async fn run(
    target: &ScanTarget,
    opts: &ScanOptions,
    progress: &(dyn Fn(ScanProgress) + Sync),
) -> Result<ScanReport, ScanError> {
    let started = OffsetDateTime::now_utc();
    let addr = resolve(target).await?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let x25519_share = x25519_public_key(&provider);
    let p = Prober {
        addr,
        target,
        opts,
        permits: Semaphore::new(opts.max_connections.max(1)),
        connections: AtomicU32::new(0),
        done: AtomicU32::new(0),
        notes: Mutex::new(Vec::new()),
        progress,
        provider,
        x25519_share,
    };
    p.report(&format!("connecting to {addr}"));
    let banner = p.preflight().await?;
    p.step_done("connected");

    let (ssl3, tls10, tls11, tls12, tls13) = tokio::join!(
        p.legacy(ProtocolVersion::Ssl3),
        p.legacy(ProtocolVersion::Tls10),
        p.legacy(ProtocolVersion::Tls11),
        p.legacy(ProtocolVersion::Tls12),
        p.tls13(),
    );
    let scans = [ssl3, tls10, tls11, tls12, tls13];

    // Groups: TLS 1.3 by HelloRetryRequest; the newest older version with an
    // ECDHE suite by its ServerKeyExchange.
    let tls13_suites: Vec<u16> = scans[4].result.suites.iter().map(|s| s.id).collect();
    let legacy_ecdhe = scans[..4].iter().rev().find_map(|s| {
        let ids: Vec<u16> = s
            .result
            .suites
            .iter()
            .filter(|a| a.kx == "ECDHE")
            .map(|a| a.id)
            .collect();
        (!ids.is_empty()).then_some((s.result.version, ids))
    });
    let (g13, g12) = tokio::join!(
        async {
            if tls13_suites.is_empty() {
                None
            } else {
                Some(p.groups(ProtocolVersion::Tls13, &tls13_suites).await)
            }
        },
        async {
            match &legacy_ecdhe {
                Some((v, ids)) => Some(p.groups(*v, ids).await),
                None => None,
            }
        },
    );
    p.step_done("groups");

    // Chains: the cleartext ones from TLS ≤ 1.2, newest version first, then the
    // TLS 1.3 one through rustls.
    let mut raw_chains: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for s in scans.iter().rev() {
        for (seen, c) in &s.chains {
            push_chain(&mut raw_chains, seen.clone(), c.clone());
        }
    }
    if scans[4].result.accepted {
        match p.rustls_chain().await {
            Ok((seen, c)) => push_chain(&mut raw_chains, seen, c),
            Err(e) => p.note(format!(
                "could not complete a TLS 1.3 handshake to read the certificate: {e}"
            )),
        }
    }
    p.step_done("certificate chain");
    let now = OffsetDateTime::now_utc();
    let chains: Vec<Chain> = raw_chains
        .into_iter()
        .map(|(seen_with, ders)| Chain {
            seen_with,
            certs: ders.iter().map(|d| chain::summarize(d, now)).collect(),
        })
        .collect();

    let protocols: Vec<ProtocolResult> = scans.into_iter().map(|s| s.result).collect();
    let (grade, reasons) = grade::grade(&protocols, &chains);
    let mut notes = p.notes.lock().map(|n| n.clone()).unwrap_or_default();
    for c in &chains {
        if let Some(leaf) = c.certs.first()
            && !leaf.unparsed
            && leaf.days_left < 0
        {
            notes.push(format!(
                "certificate {} expired {} days ago (not graded here; see `postern tls verify`)",
                leaf.subject, -leaf.days_left
            ));
        }
    }
    Ok(ScanReport {
        host: target.host.clone(),
        address: addr.to_string(),
        port: target.port,
        starttls: target.starttls,
        banner,
        protocols,
        groups: g13.into_iter().chain(g12).collect(),
        chains,
        grade,
        reasons,
        notes,
        connections: p.connections.load(Ordering::Relaxed),
        scanned_at: started.format(&Rfc3339).unwrap_or_default(),
    })
}

fn push_chain(list: &mut Vec<(String, Vec<Vec<u8>>)>, seen: String, chain: Vec<Vec<u8>>) {
    if chain.is_empty() || list.iter().any(|(_, c)| c.first() == chain.first()) {
        return;
    }
    list.push((seen, chain));
}

async fn resolve(target: &ScanTarget) -> Result<SocketAddr, ScanError> {
    let err = |detail: String| ScanError::Resolve {
        host: target.host.clone(),
        detail,
    };
    let mut addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| err(e.to_string()))?;
    addrs.next().ok_or_else(|| err("no address".into()))
}

fn x25519_public_key(provider: &CryptoProvider) -> Vec<u8> {
    provider
        .kx_groups
        .iter()
        .find(|g| u16::from(g.name()) == 0x001d)
        .and_then(|g| g.start().ok())
        .map_or_else(
            // Any 32 bytes are a syntactically valid X25519 share; 9 is the
            // base point's u-coordinate (RFC 7748 §4.1).
            || {
                let mut k = vec![0u8; 32];
                k[0] = 9;
                k
            },
            |kx| kx.pub_key().to_vec(),
        )
}

impl Prober<'_> {
    fn report(&self, message: &str) {
        (self.progress)(ScanProgress {
            done: self.done.load(Ordering::Relaxed),
            total: STEPS,
            connections: self.connections.load(Ordering::Relaxed),
            message: message.to_owned(),
        });
    }

    fn step_done(&self, what: &str) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.report(&format!("{what}: done"));
    }

    fn note(&self, note: String) {
        if let Ok(mut n) = self.notes.lock()
            && !n.contains(&note)
        {
            n.push(note);
        }
    }

    fn random32(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        if self.provider.secure_random.fill(&mut r).is_err() {
            // Not secret: only uniqueness towards the server matters.
            let t = OffsetDateTime::now_utc()
                .unix_timestamp_nanos()
                .to_be_bytes();
            r[..16].copy_from_slice(&t);
        }
        r
    }

    /// TCP connect and, with STARTTLS, the SMTP preamble. Returns the stream,
    /// bytes already read past the `220`, and the banner.
    async fn open(&self) -> Result<(TcpStream, Vec<u8>, Option<String>), ScanError> {
        if !self.opts.delay.is_zero() {
            tokio::time::sleep(self.opts.delay).await;
        }
        let mut stream = tokio::time::timeout(self.opts.timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| ScanError::Timeout { stage: "connect" })?
            .map_err(|e| ScanError::Connect {
                addr: self.addr.to_string(),
                detail: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        self.connections.fetch_add(1, Ordering::Relaxed);
        match self.target.starttls {
            StartTls::None => Ok((stream, Vec::new(), None)),
            StartTls::Smtp => {
                let (banner, rest) =
                    smtp::starttls(&mut stream, &self.opts.ehlo_name, self.opts.timeout).await?;
                Ok((stream, rest, Some(banner)))
            }
        }
    }

    async fn preflight(&self) -> Result<Option<String>, ScanError> {
        let _permit = self.permits.acquire().await;
        let (mut stream, _, banner) = self.open().await?;
        let _ = tokio::time::timeout(self.opts.timeout, stream.shutdown()).await;
        Ok(banner)
    }

    /// One ClientHello on a fresh connection; one retry after a connection-level
    /// failure (servers that limit connection rates).
    async fn ask(&self, spec: &HelloSpec) -> Result<Reply, ScanError> {
        match self.ask_once(spec).await {
            Err(e) if !matches!(e, ScanError::Wire(_)) => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                self.ask_once(spec).await
            }
            other => other,
        }
    }

    async fn ask_once(&self, spec: &HelloSpec) -> Result<Reply, ScanError> {
        let _permit = self.permits.acquire().await;
        let (mut stream, rest, _) = self.open().await?;
        let bytes = hello::build(spec, &self.random32(), &self.random32());
        tokio::time::timeout(self.opts.timeout, stream.write_all(&bytes))
            .await
            .map_err(|_| ScanError::Timeout {
                stage: "ClientHello",
            })?
            .map_err(|e| ScanError::Io {
                stage: "ClientHello",
                detail: e.to_string(),
            })?;
        let mut parser = FlightParser::new(spec.version == ProtocolVersion::Tls13);
        let reply = match parser.push(&rest)? {
            Some(r) => r,
            None => read_flight(&mut stream, &mut parser, self.opts.timeout).await?,
        };
        // Close without finishing: a TCP FIN, nothing more. (With TLS ≤ 1.2
        // the server now waits for our ClientKeyExchange.)
        let _ =
            tokio::time::timeout(std::time::Duration::from_millis(500), stream.shutdown()).await;
        self.report(&format!(
            "{}: {} suite(s) offered",
            spec.version,
            spec.suites.len()
        ));
        Ok(reply)
    }

    fn spec(&self, version: ProtocolVersion, suites: Vec<u16>, groups: Vec<u16>) -> HelloSpec {
        let key_shares = if version == ProtocolVersion::Tls13 {
            vec![(0x001d, self.x25519_share.clone())]
        } else {
            Vec::new()
        };
        HelloSpec {
            version,
            suites,
            groups,
            key_shares,
            sni: self.target.sni.clone(),
        }
    }

    async fn legacy(&self, v: ProtocolVersion) -> VersionScan {
        let spec = |suites| self.spec(v, suites, LEGACY_GROUPS.to_vec());
        let out = self.enumerate(v, candidates(v), &spec).await;
        self.step_done(v.name());
        out
    }

    async fn tls13(&self) -> VersionScan {
        let v = ProtocolVersion::Tls13;
        let spec = |suites| self.spec(v, suites, TLS13_OFFER.to_vec());
        let out = self.enumerate(v, candidates(v), &spec).await;
        self.step_done(v.name());
        out
    }

    /// Offer all candidates, record the server's choice, remove it, repeat.
    async fn enumerate(
        &self,
        v: ProtocolVersion,
        candidates: Vec<u16>,
        spec: &(dyn Fn(Vec<u16>) -> HelloSpec + Sync),
    ) -> VersionScan {
        let mut remaining = candidates;
        let mut accepted: Vec<AcceptedSuite> = Vec::new();
        let mut chains: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut note = None;
        while !remaining.is_empty() {
            let reply = self.ask(&spec(remaining.clone())).await;
            match reply {
                Ok(Reply::Hello(f)) => {
                    if f.version != v.wire() {
                        note = Some(if accepted.is_empty() {
                            format!(
                                "refused: the server answered with {}",
                                version_name(f.version)
                            )
                        } else {
                            format!(
                                "the server switched to {} when offered the remaining suites",
                                version_name(f.version)
                            )
                        });
                        break;
                    }
                    if !remaining.contains(&f.suite) {
                        note = Some(format!(
                            "the server chose {} (0x{:04x}), which was not offered; enumeration stopped",
                            suites::display_name(f.suite),
                            f.suite
                        ));
                        break;
                    }
                    let suite = accepted_suite(&f, v);
                    if !f.certs.is_empty() {
                        let seen = format!("{v} {}", suite.display_name());
                        push_chain(&mut chains, seen, f.certs.clone());
                    }
                    remaining.retain(|s| *s != f.suite);
                    accepted.push(suite);
                }
                Ok(Reply::Alert(a)) => {
                    if accepted.is_empty() {
                        note = Some(format!("refused: {} alert", alert_name(a)));
                    }
                    break;
                }
                Ok(Reply::Closed) => {
                    if accepted.is_empty() {
                        note = Some("refused: the server closed the connection".into());
                    }
                    break;
                }
                Ok(Reply::Timeout) => {
                    note = Some(format!(
                        "no answer within {} s",
                        self.opts.timeout.as_secs_f32()
                    ));
                    break;
                }
                Err(e) => {
                    note = Some(format!("probe failed: {e}"));
                    self.note(format!("{v}: probe failed: {e}"));
                    break;
                }
            }
        }
        let ids: Vec<u16> = accepted.iter().map(|s| s.id).collect();
        let server_order_enforced = self.order_enforced(v, &ids, spec, |f| Some(f.suite)).await;
        VersionScan {
            result: ProtocolResult {
                version: v,
                accepted: !accepted.is_empty(),
                suites: accepted,
                server_order_enforced,
                note,
            },
            chains,
        }
    }

    /// Offers `found` reversed: does the server still choose `found[0]`?
    async fn order_enforced(
        &self,
        v: ProtocolVersion,
        found: &[u16],
        spec: impl Fn(Vec<u16>) -> HelloSpec,
        pick: impl Fn(&ServerFlight) -> Option<u16>,
    ) -> Option<bool> {
        if found.len() < 2 {
            return None;
        }
        let reversed: Vec<u16> = found.iter().rev().copied().collect();
        match self.ask(&spec(reversed)).await {
            Ok(Reply::Hello(f)) if f.version == v.wire() => {
                pick(&f).map(|chosen| Some(chosen) == found.first().copied())
            }
            _ => None,
        }
    }

    /// Key-exchange groups for `v`, offering `suite_ids` (accepted ones).
    async fn groups(&self, v: ProtocolVersion, suite_ids: &[u16]) -> GroupsResult {
        let tls13 = v == ProtocolVersion::Tls13;
        let spec = |groups: Vec<u16>| HelloSpec {
            version: v,
            suites: suite_ids.to_vec(),
            groups,
            // Empty key_share: the server must name its group in a
            // HelloRetryRequest (RFC 8446 §4.1.4).
            key_shares: Vec::new(),
            sni: self.target.sni.clone(),
        };
        let mut remaining: Vec<u16> = if tls13 {
            TLS13_GROUP_CANDIDATES.to_vec()
        } else {
            LEGACY_GROUPS.to_vec()
        };
        let mut found: Vec<u16> = Vec::new();
        while !remaining.is_empty() {
            match self.ask(&spec(remaining.clone())).await {
                Ok(Reply::Hello(f)) if f.version == v.wire() => match f.group {
                    Some(g) if remaining.contains(&g) => {
                        found.push(g);
                        remaining.retain(|x| *x != g);
                    }
                    _ => break,
                },
                _ => break,
            }
        }
        let server_order_enforced = self.order_enforced(v, &found, spec, |f| f.group).await;
        GroupsResult {
            version: v,
            groups: found
                .into_iter()
                .map(|id| GroupEntry {
                    id,
                    name: groups::display_name(id),
                })
                .collect(),
            server_order_enforced,
        }
    }

    /// A real handshake (rustls, TLS 1.3 or 1.2) to read the certificate chain,
    /// which TLS 1.3 encrypts. Any certificate is accepted: this reports, it
    /// does not trust.
    async fn rustls_chain(&self) -> Result<(String, Vec<Vec<u8>>), String> {
        let verifier = Arc::new(CaptureVerifier {
            chain: Mutex::new(Vec::new()),
            schemes: self
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        });
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        let name = match &self.target.sni {
            Some(n) => ServerName::try_from(n.clone()).map_err(|e| e.to_string())?,
            None => ServerName::IpAddress(self.addr.ip().into()),
        };
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        let _permit = self.permits.acquire().await;
        let (mut stream, rest, _) = self.open().await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + self.opts.timeout;
        let mut pending = rest;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            while conn.wants_write() {
                let mut out = Vec::new();
                conn.write_tls(&mut out).map_err(|e| e.to_string())?;
                tokio::time::timeout_at(deadline, stream.write_all(&out))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
            }
            if !conn.is_handshaking() {
                break;
            }
            if pending.is_empty() {
                let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the server closed the connection".into());
                }
                pending.extend_from_slice(&buf[..n]);
            }
            let mut rd: &[u8] = &pending;
            let used = conn.read_tls(&mut rd).map_err(|e| e.to_string())?;
            pending.drain(..used);
            conn.process_new_packets().map_err(|e| e.to_string())?;
        }
        let seen = format!(
            "{} {}",
            conn.protocol_version()
                .and_then(|v| ProtocolVersion::from_wire(u16::from(v)))
                .map_or("TLS", ProtocolVersion::name),
            conn.negotiated_cipher_suite()
                .map_or_else(String::new, |s| suites::display_name(u16::from(s.suite())))
        );
        conn.send_close_notify();
        let mut out = Vec::new();
        if conn.write_tls(&mut out).is_ok() {
            let _ = tokio::time::timeout_at(deadline, stream.write_all(&out)).await;
        }
        let _ = tokio::time::timeout_at(deadline, stream.shutdown()).await;
        let chain = verifier.chain.lock().map(|c| c.clone()).unwrap_or_default();
        Ok((seen, chain))
    }
}

async fn read_flight(
    stream: &mut TcpStream,
    parser: &mut FlightParser,
    timeout: std::time::Duration,
) -> Result<Reply, ScanError> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Ok(parser.partial().map_or(Reply::Timeout, Reply::Hello)),
            // A reset is how many servers refuse an old protocol.
            Ok(Err(_) | Ok(0)) => return Ok(parser.eof()),
            Ok(Ok(n)) => {
                if let Some(r) = parser.push(&buf[..n])? {
                    return Ok(r);
                }
            }
        }
    }
}

/// The suite as reported, with the key exchange the server really used.
fn accepted_suite(flight: &ServerFlight, version: ProtocolVersion) -> AcceptedSuite {
    let info = suites::by_id(flight.suite);
    let kx = info.map_or("unknown", |entry| entry.kx);
    let leaf_bits = flight
        .certs
        .first()
        .map(|der| chain::summarize(der, OffsetDateTime::now_utc()).key_bits)
        .filter(|bits| *bits > 0);
    let (kx_detail, kx_bits, group) =
        if version == ProtocolVersion::Tls13 || kx.starts_with("ECDHE") {
            if flight.explicit_curve {
                ("ECDH explicit curve".to_owned(), None, None)
            } else {
                match flight.group {
                    Some(group) => {
                        let (detail, bits) = group_detail(group);
                        (detail, bits, Some(group))
                    }
                    None => ("ECDH".to_owned(), None, None),
                }
            }
        } else if kx.starts_with("DHE") {
            match flight.dh_bits {
                Some(bits) => (format!("DH {bits}"), Some(bits), None),
                None => ("DH".to_owned(), None, None),
            }
        } else if kx == "RSA" {
            match leaf_bits {
                Some(bits) => (format!("RSA {bits}"), Some(bits), None),
                None => ("RSA".to_owned(), None, None),
            }
        } else if kx == "ECDH" {
            ("ECDH static (certificate key)".to_owned(), None, None)
        } else {
            (kx.to_owned(), None, None)
        };
    let (flags, iana, openssl, auth, cipher, bits, mac) = match info {
        Some(entry) => {
            let dh = kx_detail.starts_with("DH ").then_some(kx_bits).flatten();
            let ec = kx_detail.starts_with("ECDH ").then_some(kx_bits).flatten();
            let findings = suite_findings(entry, dh, ec);
            (
                suite_flags(entry, &findings),
                entry.iana.to_owned(),
                entry.openssl.map(str::to_owned),
                entry.auth.to_owned(),
                entry.cipher.to_owned(),
                entry.bits,
                entry.mac.to_owned(),
            )
        }
        None => (
            grade::SuiteFlags::default(),
            suites::display_name(flight.suite),
            None,
            "unknown".into(),
            "unknown".into(),
            0,
            "unknown".into(),
        ),
    };
    AcceptedSuite {
        id: flight.suite,
        hex: format!("0x{:04x}", flight.suite),
        iana,
        openssl,
        kx: kx.to_owned(),
        auth,
        cipher,
        bits,
        mac,
        kx_detail,
        kx_bits,
        group,
        flags,
    }
}

/// `ECDH x25519` (253), `DH 2048 (ffdhe2048)` (2048), `X25519MLKEM768`.
fn group_detail(g: u16) -> (String, Option<u32>) {
    let name = groups::display_name(g);
    if (0x0100..=0x0104).contains(&g) {
        let bits = match g {
            0x0100 => 2048,
            0x0101 => 3072,
            0x0102 => 4096,
            0x0103 => 6144,
            _ => 8192,
        };
        return (format!("DH {bits} ({name})"), Some(bits));
    }
    if groups::by_id(g).is_some_and(|i| i.post_quantum) {
        return (name, None);
    }
    let bits = match g {
        0x001e => Some(448),
        _ => tls_parser::NamedGroup(g).key_bits().map(u32::from),
    };
    (format!("ECDH {name}"), bits)
}

fn version_name(v: u16) -> String {
    ProtocolVersion::from_wire(v).map_or_else(|| format!("version 0x{v:04x}"), |p| p.name().into())
}

fn alert_name(code: u8) -> String {
    let name = match code {
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        47 => "illegal_parameter",
        50 => "decode_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        _ => return format!("alert {code}"),
    };
    format!("{name} ({code})")
}

/// Records the chain; accepts everything (the scanner reports, `tls verify` judges).
#[derive(Debug)]
struct CaptureVerifier {
    chain: Mutex<Vec<Vec<u8>>>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for CaptureVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut c) = self.chain.lock() {
            *c = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|d| d.as_ref().to_vec())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn candidates_fit_the_version() {
        let ssl3 = candidates(ProtocolVersion::Ssl3);
        assert!(ssl3.contains(&0x0005) && ssl3.contains(&0x000a));
        assert!(!ssl3.contains(&0xc02f), "GCM is TLS 1.2 only");
        let t12 = candidates(ProtocolVersion::Tls12);
        assert!(t12.contains(&0xc02f) && t12.contains(&0x0035));
        assert!(!t12.contains(&0x1301) && !t12.contains(&0x00ff));
        assert!(
            !t12.iter()
                .any(|id| suites::by_id(*id).unwrap().kx.contains("PSK"))
        );
        // Strong first, broken last.
        let first = suites::by_id(t12[0]).unwrap();
        assert!(first.aead && first.is_forward_secret(), "{first}");
        let last = suites::by_id(*t12.last().unwrap()).unwrap();
        assert!(!suite_findings(last, None, None).is_empty(), "{last}");
        assert_eq!(
            candidates(ProtocolVersion::Tls13),
            vec![0x1302, 0x1303, 0x1301, 0x1304, 0x1305]
        );
        // The ClientHello stays far below the 16 KiB record limit.
        assert!(t12.len() < 400);
    }

    #[test]
    fn group_details() {
        assert_eq!(group_detail(0x001d), ("ECDH x25519".into(), Some(253)));
        assert_eq!(group_detail(0x0017), ("ECDH secp256r1".into(), Some(256)));
        assert_eq!(
            group_detail(0x0100),
            ("DH 2048 (ffdhe2048)".into(), Some(2048))
        );
        assert_eq!(group_detail(0x11ec), ("X25519MLKEM768".into(), None));
    }
}
