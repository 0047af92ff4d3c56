//! `postern cert check`: is this certificate right for an SMTP server, and if
//! not, what exactly is wrong? Works on files (`--cert`/`--key`) and on what a
//! live server presents (`--remote`, through the same outbound client as
//! delivery, in record-only verification mode so a bad certificate is seen
//! rather than refused).
//!
//! Checks, one line each with PASS / WARN / FAIL:
//! key ↔ certificate match (any key type: the public keys are compared, the
//! generalised "modulus md5" check), chain order (each certificate issued and
//! signed by the next), chain completeness (does the chain reach a trusted
//! root, or is an intermediate missing?), expiry of every certificate with
//! days left, subjectAltName coverage of each hostname, weak signatures
//! (MD2/MD5/SHA-1) and weak keys (RSA below 2048 bits), and the PKIX verdict
//! against the trusted roots.
//!
//! The logic is pure ([`check_chain`]) and tested with generated chains; the
//! file and network parts only gather the chain.
//!
//! # Security
//! Reads the certificate and key files the operator names (the key only to
//! compare public keys; it never appears in output). `--remote` connects to
//! the host the operator names and parses its certificates as untrusted
//! input; it sends EHLO and STARTTLS, never mail.
//!
//! # Standards
//! RFC 5280 (§4.1.2.5 validity, §4.2.1.6 subjectAltName, §6 path
//! validation), RFC 6125 §6.4.3 (wildcards), RFC 8446 §4.4.2 (chain order),
//! RFC 9155 / RFC 6151 (SHA-1 and MD5 signatures deprecated), RFC 9325 §4.3
//! (RSA of at least 2048 bits), RFC 3207 (STARTTLS), RFC 8314 (implicit TLS).

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postern_smtpc::{ClientError, ClientSettings, Session, Transcript};
use postern_tls::certs::{self, CertError};
use postern_tls::client::{
    self as tls_client, CertDescription, ClientTls, ClientTlsSettings, PkixProblem, Verify,
};
use postern_tls::facts::TlsFacts;
use postern_tls::{CertSettings, CertWarning};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer;

/// A certificate expiring within this many days is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = certs::EXPIRY_WARNING_DAYS;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but something should be improved or may bite some peers.
    Warn,
    /// Broken for at least some peers; fix it.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Stable id: `read`, `connect`, `tls`, `key_match`, `key_file`,
    /// `chain_order`, `chain_complete`, `pkix`, `expiry`, `hostname`,
    /// `signature`, `key_strength`.
    pub id: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found, and for WARN/FAIL what to do.
    pub message: String,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// What was checked: a file path or `host:port`.
    pub target: String,
    /// The handshake, for `--remote`.
    pub tls: Option<TlsFacts>,
    /// The certificates, leaf first (as in the file or as presented).
    pub chain: Vec<CertDescription>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    fn new(target: String) -> Self {
        Self {
            target,
            tls: None,
            chain: Vec::new(),
            checks: Vec::new(),
        }
    }

    fn push(&mut self, id: &'static str, status: Status, message: impl Into<String>) {
        self.checks.push(Check {
            id,
            status,
            message: message.into(),
        });
    }

    /// Whether any check failed (the command's exit status).
    pub fn has_failures(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// Count of checks with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The report for a terminal: the chain, then one line per check.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Certificate check: {}", self.target);
        if let Some(tls) = &self.tls {
            let _ = writeln!(
                out,
                "TLS: {} {}{}",
                tls.version,
                tls.cipher,
                tls.group
                    .as_ref()
                    .map(|g| format!(" group {g}"))
                    .unwrap_or_default()
            );
        }
        if !self.chain.is_empty() {
            let _ = writeln!(out, "Chain ({} certificates):", self.chain.len());
            for (i, c) in self.chain.iter().enumerate() {
                let _ = writeln!(out, "  #{} {}", i + 1, c.subject);
                if !c.sans.is_empty() {
                    let _ = writeln!(out, "     SANs:      {}", c.sans.join(", "));
                }
                let _ = writeln!(out, "     issuer:    {}", c.issuer);
                let _ = writeln!(
                    out,
                    "     not after: {} ({})",
                    tls_client::format_date(c.not_after),
                    days_text(c.days_left)
                );
                let bits = if c.key_bits > 0 {
                    format!(" {} bits", c.key_bits)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "     key:       {}{bits}, signed with {}",
                    c.key_type, c.signature_algorithm
                );
                let _ = writeln!(out, "     SHA-256:   {}", c.sha256);
            }
        }
        let _ = writeln!(out, "Checks:");
        for c in &self.checks {
            let _ = writeln!(out, "  {:<4}  {:<14} {}", c.status, c.id, c.message);
        }
        let _ = writeln!(
            out,
            "Result: {} FAIL, {} WARN, {} PASS",
            self.count(Status::Fail),
            self.count(Status::Warn),
            self.count(Status::Pass)
        );
        out
    }
}

fn days_text(days: i64) -> String {
    if days < 0 {
        format!("expired {} days ago", -days)
    } else {
        format!("{days} days left")
    }
}

fn unix_time(now: OffsetDateTime) -> UnixTime {
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

/// Checks a certificate file (leaf first, then intermediates), optionally
/// with its key, for `hostnames`, against `roots`, at `now`.
pub fn check_local(
    cert: &Path,
    key: Option<&Path>,
    hostnames: &[String],
    roots: &RootCertStore,
    now: OffsetDateTime,
) -> Report {
    let mut report = Report::new(cert.display().to_string());
    let chain = match read_chain(cert) {
        Ok(chain) => chain,
        Err(e) => {
            report.push("read", Status::Fail, e.to_string());
            return report;
        }
    };
    if let Some(key) = key {
        key_match(&mut report, cert, key, now);
    }
    let (described, checks) = check_chain(&chain, hostnames, roots, now);
    report.chain = described;
    report.checks.extend(checks);
    report
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// Key ↔ certificate through the listener's own loader (`certs::load`), so
/// `cert check` says exactly what `serve` would. The loader checks the key
/// before the chain and the dates, so those later errors mean the key matched
/// (they are reported by the chain checks).
fn key_match(report: &mut Report, cert: &Path, key: &Path, now: OffsetDateTime) {
    let settings = CertSettings {
        cert_path: cert.to_owned(),
        key_path: key.to_owned(),
        hostnames: Vec::new(),
    };
    match certs::load(std::slice::from_ref(&settings), now) {
        Ok(loaded) => {
            let kind = loaded
                .store
                .summaries()
                .first()
                .map(|s| format!(" ({} {} bits)", s.key_type, s.key_bits))
                .unwrap_or_default();
            report.push(
                "key_match",
                Status::Pass,
                format!("the private key belongs to the certificate{kind}"),
            );
            for w in loaded.warnings {
                if let CertWarning::KeyFileReadable { .. } = w {
                    report.push("key_file", Status::Warn, w.to_string());
                }
            }
        }
        Err(
            e @ (CertError::KeyMismatch { .. }
            | CertError::UnsupportedKey { .. }
            | CertError::NoKey { .. }),
        ) => report.push("key_match", Status::Fail, e.to_string()),
        Err(e @ (CertError::Read { .. } | CertError::Pem { .. })) if matches!(&e, CertError::Read { path, .. } | CertError::Pem { path, .. } if path == key) =>
        {
            report.push("key_match", Status::Fail, e.to_string());
        }
        Err(
            CertError::ChainOrder { .. }
            | CertError::ChainSignature { .. }
            | CertError::Expired { .. }
            | CertError::NotYetValid { .. },
        ) => report.push(
            "key_match",
            Status::Pass,
            "the private key belongs to the certificate",
        ),
        Err(e) => report.push("key_match", Status::Warn, format!("not checked: {e}")),
    }
}

/// The pure checks on a chain (leaf first): descriptions and check lines.
/// `hostnames` empty: no coverage checks (a warning if the leaf has no DNS
/// names at all).
pub fn check_chain(
    chain: &[CertificateDer<'_>],
    hostnames: &[String],
    roots: &RootCertStore,
    now: OffsetDateTime,
) -> (Vec<CertDescription>, Vec<Check>) {
    let mut report = Report::new(String::new());
    let mut described = Vec::with_capacity(chain.len());
    for (i, der) in chain.iter().enumerate() {
        let Some(d) = tls_client::describe_cert_at(der, now) else {
            report.push(
                "read",
                Status::Fail,
                format!("certificate #{} cannot be parsed as X.509", i + 1),
            );
            return (described, report.checks);
        };
        described.push(d);
    }
    if described.is_empty() {
        report.push("read", Status::Fail, "no certificate");
        return (described, report.checks);
    }
    chain_order(&mut report, chain, &described);
    let verdict = tls_client::verdict_against(
        roots,
        chain,
        hostnames.first().map_or("invalid.invalid", String::as_str),
        unix_time(now),
    );
    chain_complete(&mut report, &described, &verdict);
    match &verdict.pkix {
        Ok(()) => report.push(
            "pkix",
            Status::Pass,
            "the chain verifies against the trusted roots",
        ),
        Err(e) => report.push(
            "pkix",
            Status::Warn,
            format!(
                "not verified ({e}): senders that verify (policy `verify`, MTA-STS) will refuse \
                 it; opportunistic senders still encrypt"
            ),
        ),
    }
    expiry(&mut report, &described, now);
    hostname_coverage(&mut report, chain, &described, hostnames);
    signatures(&mut report, &described);
    key_strength(&mut report, &described);
    (described, report.checks)
}

fn chain_order(report: &mut Report, chain: &[CertificateDer<'_>], described: &[CertDescription]) {
    for i in 0..described.len().saturating_sub(1) {
        let (cert, next) = (&described[i], &described[i + 1]);
        if cert.issuer != next.subject {
            report.push(
                "chain_order",
                Status::Fail,
                format!(
                    "certificate #{} ('{}') is issued by '{}', but certificate #{} is '{}'; \
                     order the file leaf first, then each issuer in turn (RFC 8446 §4.4.2)",
                    i + 1,
                    cert.subject,
                    cert.issuer,
                    i + 2,
                    next.subject
                ),
            );
            return;
        }
        let verified = match (
            X509Certificate::from_der(chain[i].as_ref()),
            X509Certificate::from_der(chain[i + 1].as_ref()),
        ) {
            (Ok((_, c)), Ok((_, n))) => c.verify_signature(Some(n.public_key())),
            _ => Ok(()),
        };
        // An algorithm x509-parser cannot verify is not evidence of a bad chain.
        if let Err(X509Error::SignatureVerificationError) = verified {
            report.push(
                "chain_order",
                Status::Fail,
                format!(
                    "the signature on certificate #{} ('{}') does not verify with the key of \
                     certificate #{} ('{}'): the intermediate does not match; download the \
                     chain again from the CA",
                    i + 1,
                    cert.subject,
                    i + 2,
                    next.subject
                ),
            );
            return;
        }
    }
    let path: Vec<String> = described
        .iter()
        .map(|d| format!("'{}'", d.subject))
        .collect();
    report.push(
        "chain_order",
        Status::Pass,
        if described.len() == 1 {
            "a single certificate".to_owned()
        } else {
            format!("in order: {}", path.join(" → "))
        },
    );
}

fn chain_complete(
    report: &mut Report,
    described: &[CertDescription],
    verdict: &tls_client::PeerVerdict,
) {
    let Some(last) = described.last() else {
        return;
    };
    let root_sent = described.len() > 1 && last.self_signed;
    match (&verdict.pkix, verdict.pkix_problem) {
        (Ok(()), _) => report.push(
            "chain_complete",
            Status::Pass,
            if root_sent {
                format!(
                    "complete, ending with the root '{}' (sending the root is unnecessary but \
                     harmless)",
                    last.subject
                )
            } else {
                format!("complete: '{}' is a trusted root", last.issuer)
            },
        ),
        (Err(_), Some(PkixProblem::Incomplete)) => report.push(
            "chain_complete",
            Status::Fail,
            format!(
                "incomplete: '{}' is issued by '{}', which is neither in the chain nor a trusted \
                 root; add the intermediate certificate(s) after the leaf (or pass the private \
                 CA with --ca)",
                last.subject, last.issuer
            ),
        ),
        (Err(_), Some(PkixProblem::SelfSigned)) => report.push(
            "chain_complete",
            Status::Warn,
            "self-signed: there is no chain; only senders that do not verify (opportunistic \
             TLS, the MTA default) accept it",
        ),
        (Err(_), Some(PkixProblem::UntrustedRoot)) => report.push(
            "chain_complete",
            Status::Warn,
            format!(
                "the chain ends in the root '{}', which is not trusted here (a private CA? pass \
                 it with --ca if you trust it)",
                last.subject
            ),
        ),
        (Err(e), _) if root_sent => report.push(
            "chain_complete",
            Status::Pass,
            format!(
                "complete up to the root '{}' (path validation failed for another reason: {e})",
                last.subject
            ),
        ),
        (Err(e), _) => report.push(
            "chain_complete",
            Status::Warn,
            format!("could not confirm that the chain reaches a trusted root: {e}"),
        ),
    }
}

fn expiry(report: &mut Report, described: &[CertDescription], now: OffsetDateTime) {
    for (i, d) in described.iter().enumerate() {
        let sent_root = i > 0 && d.self_signed;
        let until = tls_client::format_date(d.not_after);
        let days = d.days_left;
        if d.not_after < now {
            report.push(
                "expiry",
                if sent_root {
                    Status::Warn
                } else {
                    Status::Fail
                },
                if sent_root {
                    format!(
                        "the root '{}' at the end of the chain expired on {until}; remove it \
                         from the file (peers have their own roots)",
                        d.subject
                    )
                } else {
                    format!(
                        "'{}' expired on {until} ({} days ago); renew it",
                        d.subject, -days
                    )
                },
            );
        } else if d.not_before > now {
            report.push(
                "expiry",
                Status::Fail,
                format!(
                    "'{}' is not valid before {}; check the clock or wait",
                    d.subject,
                    tls_client::format_date(d.not_before)
                ),
            );
        } else if days < EXPIRY_WARNING_DAYS {
            report.push(
                "expiry",
                Status::Warn,
                format!(
                    "'{}' expires on {until} ({days} days left); renew it soon",
                    d.subject
                ),
            );
        } else {
            report.push(
                "expiry",
                Status::Pass,
                format!("'{}' valid until {until} ({days} days left)", d.subject),
            );
        }
    }
}

fn hostname_coverage(
    report: &mut Report,
    chain: &[CertificateDer<'_>],
    described: &[CertDescription],
    hostnames: &[String],
) {
    let (Some(leaf_der), Some(leaf)) = (chain.first(), described.first()) else {
        return;
    };
    let names = if leaf.sans.is_empty() {
        "no subjectAltName".to_owned()
    } else {
        leaf.sans.join(", ")
    };
    if hostnames.is_empty() {
        if leaf.sans.is_empty() {
            report.push(
                "hostname",
                Status::Warn,
                "the certificate has no subjectAltName: peers that check names accept it for \
                 no hostname (RFC 6125 ignores the CN)",
            );
        }
        return;
    }
    let parsed = rustls::server::ParsedCertificate::try_from(leaf_der).ok();
    for host in hostnames {
        let host = host.trim().trim_end_matches('.');
        let covered = match (&parsed, ServerName::try_from(host)) {
            (Some(p), Ok(name)) => rustls::client::verify_server_name(p, &name).is_ok(),
            _ => false,
        };
        if covered {
            report.push(
                "hostname",
                Status::Pass,
                format!("{host} is covered (certificate names: {names})"),
            );
        } else {
            report.push(
                "hostname",
                Status::Fail,
                format!(
                    "{host} is not covered (certificate names: {names}); peers that verify will \
                     refuse it for {host}: reissue with {host} in the subjectAltName"
                ),
            );
        }
    }
}

fn signatures(report: &mut Report, described: &[CertDescription]) {
    let mut algorithms: Vec<&str> = Vec::new();
    let mut weak = false;
    for (i, d) in described.iter().enumerate() {
        // Nobody verifies the signature of a self-signed root sent last.
        if i > 0 && d.self_signed {
            continue;
        }
        if d.weak_signature {
            weak = true;
            report.push(
                "signature",
                Status::Fail,
                format!(
                    "'{}' is signed with {} (MD5/SHA-1 signatures are refused by current \
                     verifiers, RFC 9155); have it reissued with SHA-256",
                    d.subject, d.signature_algorithm
                ),
            );
        } else if !algorithms.contains(&d.signature_algorithm.as_str()) {
            algorithms.push(&d.signature_algorithm);
        }
    }
    if !weak {
        report.push(
            "signature",
            Status::Pass,
            format!("signed with {}", algorithms.join(", ")),
        );
    }
}

fn key_strength(report: &mut Report, described: &[CertDescription]) {
    let Some(leaf) = described.first() else {
        return;
    };
    for (i, d) in described.iter().enumerate() {
        if i > 0 && d.self_signed {
            continue;
        }
        if d.key_type == "RSA" && d.key_bits < 2048 {
            report.push(
                "key_strength",
                Status::Fail,
                format!(
                    "'{}' has an RSA key of {} bits; use at least 2048 bits (RFC 9325 §4.3)",
                    d.subject, d.key_bits
                ),
            );
            return;
        }
    }
    let status = if leaf.key_bits == 0 {
        Status::Warn
    } else {
        Status::Pass
    };
    report.push(
        "key_strength",
        status,
        if leaf.key_bits == 0 {
            format!("key type {} (size unknown)", leaf.key_type)
        } else {
            format!("{} {} bits", leaf.key_type, leaf.key_bits)
        },
    );
}

/// Where and how to connect for `--remote`.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The host name: SNI and the name the certificate must cover.
    pub host: String,
    /// STARTTLS after EHLO (`--starttls smtp`); false: implicit TLS.
    pub starttls: bool,
    /// Extra names the certificate should cover (`--hostname`).
    pub hostnames: Vec<String>,
    /// Our EHLO name.
    pub helo_name: String,
    /// Connect, command and handshake timeout.
    pub timeout: Duration,
}

/// Connects to `target` with the outbound client (record-only verification
/// against `roots`), then runs [`check_chain`] on the presented chain for
/// the host name and `hostnames`.
pub async fn check_remote(
    target: &RemoteTarget,
    roots: Arc<RootCertStore>,
    transcript: Option<Transcript>,
    now: OffsetDateTime,
) -> Report {
    let mut report = Report::new(format!("{} ({})", target.host, target.addr));
    let tls = match ClientTls::new(
        &ClientTlsSettings::default(),
        Verify::Record,
        Arc::clone(&roots),
    ) {
        Ok(tls) => tls,
        Err(e) => {
            report.push("tls", Status::Fail, e.to_string());
            return report;
        }
    };
    let settings = ClientSettings {
        connect_timeout: target.timeout,
        greeting_timeout: target.timeout,
        command_timeout: target.timeout,
        ..ClientSettings::new(target.helo_name.clone())
    };
    let (session, info) = match connect(target, &tls, &settings, transcript).await {
        Ok(pair) => pair,
        Err(e) => {
            let (id, message) = match &e {
                ClientError::Tls { cause, .. } => {
                    ("tls", format!("{}; fix: {}", cause.summary, cause.fix))
                }
                ClientError::NotOffered { .. } => (
                    "tls",
                    "the server does not offer STARTTLS: mail to it travels in plaintext"
                        .to_owned(),
                ),
                other => {
                    // The session catalogue's cause, as delivery logs it.
                    let c = other.cause(&format!("{} ({})", target.host, target.addr));
                    ("connect", format!("{other}: {}; fix: {}", c.summary, c.fix))
                }
            };
            report.push(id, Status::Fail, message);
            return report;
        }
    };
    report.push(
        "tls",
        Status::Pass,
        format!(
            "{} {}{}",
            info.facts.version,
            info.facts.cipher,
            info.facts
                .group
                .as_ref()
                .map(|g| format!(" group {g}"))
                .unwrap_or_default()
        ),
    );
    report.tls = Some(info.facts.clone());
    let chain = info.verdict.map(|v| v.chain).unwrap_or_default();
    let mut hostnames = vec![target.host.clone()];
    hostnames.extend(
        target
            .hostnames
            .iter()
            .filter(|h| !h.eq_ignore_ascii_case(&target.host))
            .cloned(),
    );
    let (described, checks) = check_chain(&chain, &hostnames, &roots, now);
    report.chain = described;
    report.checks.extend(checks);
    let _ = session.quit().await;
    report
}

async fn connect(
    target: &RemoteTarget,
    tls: &ClientTls,
    settings: &ClientSettings,
    transcript: Option<Transcript>,
) -> Result<(Session, postern_smtpc::TlsInfo), ClientError> {
    if target.starttls {
        let (mut session, _banner) = Session::connect(target.addr, settings, transcript).await?;
        session.ehlo().await?;
        let info = session.starttls(&target.host, tls).await?;
        Ok((session, info))
    } else {
        let (session, _banner, info) =
            Session::connect_tls(target.addr, &target.host, tls, settings, transcript).await?;
        Ok((session, info))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Root → intermediate → leaves, generated with rcgen.
    struct Pki {
        root: CertificateDer<'static>,
        inter: CertificateDer<'static>,
        inter_pem: String,
        inter_issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    }

    fn ca_params(cn: &str) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        p
    }

    fn pki() -> Pki {
        let root_key = rcgen::KeyPair::generate().unwrap();
        let root_params = ca_params("Check Root");
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = rcgen::Issuer::new(root_params, root_key);
        let inter_key = rcgen::KeyPair::generate().unwrap();
        let inter_params = ca_params("Check Intermediate");
        let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
        Pki {
            root: root.der().clone(),
            inter: inter.der().clone(),
            inter_pem: inter.pem(),
            inter_issuer: rcgen::Issuer::new(inter_params, inter_key),
        }
    }

    struct Leaf {
        der: CertificateDer<'static>,
        pem: String,
        key_pem: String,
    }

    fn leaf(pki: &Pki, names: &[&str], days: (i64, i64)) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(
            names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let now = OffsetDateTime::now_utc();
        p.not_before = now + time::Duration::days(days.0);
        p.not_after = now + time::Duration::days(days.1);
        let cert = p.signed_by(&key, &pki.inter_issuer).unwrap();
        Leaf {
            der: cert.der().clone(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn roots(pki: &Pki) -> RootCertStore {
        let mut r = RootCertStore::empty();
        r.add(pki.root.clone()).unwrap();
        r
    }

    fn statuses(checks: &[Check], id: &str) -> Vec<Status> {
        checks
            .iter()
            .filter(|c| c.id == id)
            .map(|c| c.status)
            .collect()
    }

    fn message<'a>(checks: &'a [Check], id: &str) -> &'a str {
        checks
            .iter()
            .find(|c| c.id == id)
            .map_or("", |c| c.message.as_str())
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn good_chain_passes_everything() {
        let pki = pki();
        let l = leaf(&pki, &["mx.example.net", "*.example.net"], (-1, 200));
        let (chain, checks) = check_chain(
            &[l.der, pki.inter.clone()],
            &["mx.example.net".into(), "smtp.example.net".into()],
            &roots(&pki),
            now(),
        );
        assert_eq!(chain.len(), 2);
        assert!(
            checks.iter().all(|c| c.status == Status::Pass),
            "{checks:#?}"
        );
        assert_eq!(statuses(&checks, "hostname").len(), 2);
        assert_eq!(statuses(&checks, "expiry").len(), 2);
        assert!(message(&checks, "chain_complete").contains("'CN=Check Root' is a trusted root"));
    }

    #[test]
    fn missing_intermediate_is_a_failure() {
        let pki = pki();
        let l = leaf(&pki, &["mx.example.net"], (-1, 200));
        let (_, checks) = check_chain(&[l.der], &["mx.example.net".into()], &roots(&pki), now());
        assert_eq!(statuses(&checks, "chain_complete"), vec![Status::Fail]);
        let m = message(&checks, "chain_complete");
        assert!(m.contains("issued by 'CN=Check Intermediate'"), "{m}");
        assert!(m.contains("add the intermediate"), "{m}");
        assert_eq!(statuses(&checks, "pkix"), vec![Status::Warn]);
        assert_eq!(statuses(&checks, "chain_order"), vec![Status::Pass]);
    }

    #[test]
    fn expired_leaf_fails_with_days() {
        let pki = pki();
        let l = leaf(&pki, &["mx.example.net"], (-100, -10));
        let (chain, checks) = check_chain(
            &[l.der, pki.inter.clone()],
            &["mx.example.net".into()],
            &roots(&pki),
            now(),
        );
        assert!(chain[0].days_left < 0);
        assert_eq!(
            statuses(&checks, "expiry"),
            vec![Status::Fail, Status::Pass]
        );
        let m = message(&checks, "expiry");
        assert!(m.contains("expired on") && m.contains("days ago"), "{m}");
    }

    #[test]
    fn expiring_soon_is_a_warning() {
        let pki = pki();
        let l = leaf(&pki, &["mx.example.net"], (-100, 10));
        let (_, checks) = check_chain(
            &[l.der, pki.inter.clone()],
            &["mx.example.net".into()],
            &roots(&pki),
            now(),
        );
        assert_eq!(statuses(&checks, "expiry")[0], Status::Warn);
    }

    #[test]
    fn wrong_name_fails_per_hostname() {
        let pki = pki();
        let l = leaf(&pki, &["mail.other.example"], (-1, 200));
        let (_, checks) = check_chain(
            &[l.der, pki.inter.clone()],
            &["mx1.fabrikam.example".into(), "mail.other.example".into()],
            &roots(&pki),
            now(),
        );
        assert_eq!(
            statuses(&checks, "hostname"),
            vec![Status::Fail, Status::Pass]
        );
        assert!(message(&checks, "hostname").contains(
            "mx1.fabrikam.example is not covered (certificate names: mail.other.example)"
        ));
    }

    #[test]
    fn wrong_order_fails() {
        let pki = pki();
        let l = leaf(&pki, &["mx.example.net"], (-1, 200));
        let (_, checks) = check_chain(&[pki.inter.clone(), l.der], &[], &roots(&pki), now());
        assert_eq!(statuses(&checks, "chain_order"), vec![Status::Fail]);
    }

    #[test]
    fn self_signed_warns_and_root_in_chain_is_fine() {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::CertificateParams::new(vec!["mx.example.net".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .clone();
        let pki = pki();
        let (_, checks) = check_chain(&[der], &["mx.example.net".into()], &roots(&pki), now());
        assert_eq!(statuses(&checks, "chain_complete"), vec![Status::Warn]);
        assert!(message(&checks, "chain_complete").starts_with("self-signed"));
        assert!(
            !checks.iter().any(|c| c.status == Status::Fail),
            "{checks:#?}"
        );

        let l = leaf(&pki, &["mx.example.net"], (-1, 200));
        let (_, checks) = check_chain(
            &[l.der, pki.inter.clone(), pki.root.clone()],
            &["mx.example.net".into()],
            &roots(&pki),
            now(),
        );
        assert_eq!(statuses(&checks, "chain_complete"), vec![Status::Pass]);
        assert!(message(&checks, "chain_complete").contains("unnecessary but harmless"));
        // Two expiry lines: the root sent last is described but not judged
        // differently while valid.
        assert_eq!(statuses(&checks, "expiry").len(), 3);
    }

    #[test]
    fn weak_rsa_key_and_sha1_are_reported_from_description() {
        // rcgen cannot make SHA-1 or 1024-bit RSA certificates with aws-lc-rs;
        // exercise the rules on descriptions directly.
        let pki = pki();
        let mut d = tls_client::describe_cert(&pki.inter).unwrap();
        d.key_type = "RSA".into();
        d.key_bits = 1024;
        d.weak_signature = true;
        d.signature_algorithm = "sha1WithRSAEncryption".into();
        let mut report = Report::new(String::new());
        signatures(&mut report, std::slice::from_ref(&d));
        key_strength(&mut report, std::slice::from_ref(&d));
        assert_eq!(statuses(&report.checks, "signature"), vec![Status::Fail]);
        assert_eq!(statuses(&report.checks, "key_strength"), vec![Status::Fail]);
        assert!(message(&report.checks, "key_strength").contains("1024 bits"));
    }

    #[test]
    fn local_files_key_match_and_mismatch() {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        let l = leaf(&pki, &["mx.example.net"], (-1, 200));
        let other = leaf(&pki, &["mx.example.net"], (-1, 200));
        let cert_path = dir.path().join("mx.crt");
        std::fs::write(&cert_path, format!("{}{}", l.pem, pki.inter_pem)).unwrap();
        let key_path = dir.path().join("mx.key");
        std::fs::write(&key_path, &l.key_pem).unwrap();
        let wrong_key = dir.path().join("other.key");
        std::fs::write(&wrong_key, &other.key_pem).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for p in [&key_path, &wrong_key] {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        let hosts = vec!["mx.example.net".to_owned()];
        let r = check_local(&cert_path, Some(&key_path), &hosts, &roots(&pki), now());
        assert!(!r.has_failures(), "{}", r.to_text());
        assert_eq!(statuses(&r.checks, "key_match"), vec![Status::Pass]);
        assert_eq!(r.chain.len(), 2);
        let text = r.to_text();
        assert!(text.contains("PASS  key_match"), "{text}");
        assert!(text.contains("Result: 0 FAIL"), "{text}");

        let r = check_local(&cert_path, Some(&wrong_key), &hosts, &roots(&pki), now());
        assert!(r.has_failures());
        assert_eq!(statuses(&r.checks, "key_match"), vec![Status::Fail]);
        assert!(message(&r.checks, "key_match").contains("does not belong"));

        let r = check_local(
            &dir.path().join("missing.crt"),
            None,
            &hosts,
            &roots(&pki),
            now(),
        );
        assert_eq!(statuses(&r.checks, "read"), vec![Status::Fail]);

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["checks"][0]["status"], "fail");
    }

    /// Our server on 127.0.0.1:0 presenting `cert_pem` (as a file) with its key.
    async fn server(
        dir: &Path,
        cert_pem: &str,
        key_pem: &str,
    ) -> (postern_smtpd::Server, SocketAddr) {
        use postern_smtpd::{
            AuthMode, ListenerKind, ListenerSettings, ServerSettings, SessionLimits, TlsMode,
            TranscriptFormat, TranscriptSettings, VrfyMode,
        };
        let cert_path = dir.join("mx.crt");
        let key_path = dir.join("mx.key");
        std::fs::write(&cert_path, cert_pem).unwrap();
        std::fs::write(&key_path, key_pem).unwrap();
        let settings = ServerSettings {
            listeners: vec![ListenerSettings {
                name: "smtp".into(),
                addr: "127.0.0.1:0".parse().unwrap(),
                kind: ListenerKind::Smtp,
                hostname: "mx.example.net".into(),
                tls: TlsMode::Optional,
                auth: AuthMode::Off,
                limits: SessionLimits::default(),
                proxy_protocol: None,
            }],
            tls: postern_tls::TlsSettings {
                certificates: vec![CertSettings {
                    cert_path,
                    key_path,
                    hostnames: Vec::new(),
                }],
                ..postern_tls::TlsSettings::default()
            },
            spool: postern_spool::SpoolSettings::new(dir.join("spool")),
            relay: postern_policy::RelaySettings {
                accepted_domains: vec!["example.net".into()],
                relay_networks: Vec::new(),
            },
            users: Vec::new(),
            vrfy: VrfyMode::Ambiguous,
            max_connections: 10,
            max_connections_per_ip: 10,
            transcript: TranscriptSettings {
                path: None,
                format: TranscriptFormat::Text,
            },
            allow_insecure_auth: false,
            authentication: postern_smtpd::AuthenticationSettings::default(),
            content: postern_smtpd::ContentSettings::default(),
            record_subjects: false,
            admission: postern_policy::admission::Admission::default(),
            recipients: Vec::new(),
        };
        let loaded = certs::load(&settings.tls.certificates, now()).unwrap();
        let tls = postern_tls::server::server_config(&settings.tls, &loaded.store).unwrap();
        let (spool, _) = postern_spool::Spool::open(&settings.spool).unwrap();
        let server = postern_smtpd::Server::start(settings, Some(tls), spool, None)
            .await
            .unwrap();
        let addr = server.addr("smtp").unwrap();
        (server, addr)
    }

    fn target(addr: SocketAddr, host: &str) -> RemoteTarget {
        RemoteTarget {
            addr,
            host: host.into(),
            starttls: true,
            hostnames: Vec::new(),
            helo_name: "check.test.example".into(),
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn remote_incomplete_chain_is_seen_not_refused() {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        let l = leaf(&pki, &["mx.example.net"], (-1, 200));
        // The server sends the leaf only: the intermediate is missing.
        let (_server, addr) = server(dir.path(), &l.pem, &l.key_pem).await;
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let transcript: Transcript = Box::new(move |d, line| {
            sink.lock().unwrap().push(format!("{} {line}", d.marker()));
        });
        let r = check_remote(
            &target(addr, "mx.example.net"),
            Arc::new(roots(&pki)),
            Some(transcript),
            now(),
        )
        .await;
        assert_eq!(
            statuses(&r.checks, "tls"),
            vec![Status::Pass],
            "{}",
            r.to_text()
        );
        assert!(r.tls.as_ref().unwrap().version.starts_with("TLSv1."));
        assert_eq!(r.chain.len(), 1);
        assert_eq!(statuses(&r.checks, "chain_complete"), vec![Status::Fail]);
        assert_eq!(statuses(&r.checks, "hostname"), vec![Status::Pass]);
        assert!(r.has_failures());
        let text = r.to_text();
        assert!(text.contains("#1 CN=mx.example.net"), "{text}");
        assert!(lines.lock().unwrap().iter().any(|l| l == ">>> STARTTLS"));

        // Full chain, other name: complete, but the name fails.
        let dir2 = tempfile::tempdir().unwrap();
        let (_server2, addr2) = server(
            dir2.path(),
            &format!("{}{}", l.pem, pki.inter_pem),
            &l.key_pem,
        )
        .await;
        let r = check_remote(
            &target(addr2, "mx1.fabrikam.example"),
            Arc::new(roots(&pki)),
            None,
            now(),
        )
        .await;
        assert_eq!(
            statuses(&r.checks, "chain_complete"),
            vec![Status::Pass],
            "{}",
            r.to_text()
        );
        assert_eq!(statuses(&r.checks, "hostname"), vec![Status::Fail]);
    }

    #[tokio::test]
    async fn remote_without_starttls_fails_cleanly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.write_all(b"220 plain.example\r\n").await.unwrap();
            let mut buf = [0u8; 512];
            while let Ok(n) = sock.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let reply: &[u8] = if buf.starts_with(b"EHLO") {
                    b"250 plain.example\r\n"
                } else {
                    b"221 bye\r\n"
                };
                if sock.write_all(reply).await.is_err() {
                    break;
                }
            }
        });
        let r = check_remote(
            &target(addr, "plain.example"),
            Arc::new(RootCertStore::empty()),
            None,
            now(),
        )
        .await;
        assert_eq!(statuses(&r.checks, "tls"), vec![Status::Fail]);
        assert!(message(&r.checks, "tls").contains("does not offer STARTTLS"));
        assert!(r.chain.is_empty());
    }
}
