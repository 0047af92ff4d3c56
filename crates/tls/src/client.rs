//! Client-side TLS for outbound SMTP (delivery, `postern send`, `cert check
//! --remote`, `tls verify`): rustls `ClientConfig`s built from
//! [`ClientTlsSettings`], two ways of judging the server's certificate, the
//! verdict on the chain a server presented, descriptions of its certificates,
//! and the outbound side of the failure-cause catalogue.
//!
//! Verification modes ([`Verify`]):
//! - [`Verify::Record`] accepts any certificate chain and lets the caller ask
//!   for the PKIX verdict afterwards ([`ClientTls::peer_verdict`]). This is
//!   what opportunistic delivery (RFC 7435: an unverified encrypted channel
//!   beats plaintext), `cert check --remote` and `tls verify` need: they must
//!   complete the handshake to *see* a bad certificate. The handshake
//!   signature (CertificateVerify / ServerKeyExchange) is still checked with
//!   the presented key, so the peer proves it holds the key of the chain we
//!   record.
//! - [`Verify::Pkix`] refuses the handshake unless the chain leads to a trusted
//!   root and the leaf covers the hostname (rustls' webpki verifier). The
//!   refusal carries our verdict on the chain ([`PkixRefusal`]), so
//!   [`outbound_cause`] can say "self-signed", "missing intermediate" or
//!   which names the certificate covers.
//!
//! The verdict is computed from the chain rustls keeps on the connection
//! (`peer_certificates`, also set on resumed sessions), not stored by the
//! verifier: one `ClientConfig` is shared by every connection of a settings
//! set (so session resumption works), and per-connection state in a shared
//! verifier would race.
//!
//! # Security
//! Decides whether outbound mail is sent over TLS we can prove. Record mode
//! never *refuses* a certificate; policy (delivery's TLS levels) decides what
//! to do with the verdict, and a level that requires verification uses
//! [`Verify::Pkix`]. Only TLS 1.2 and 1.3 with AEAD suites are ever offered.
//! Certificates from the peer are parsed as untrusted input (x509-parser,
//! webpki); nothing here panics on a malformed certificate. Reads root and
//! client-certificate files named by the operator; private keys never appear
//! in errors.
//!
//! # Standards
//! RFC 8446 / RFC 5246 (TLS), RFC 6066 §3 (SNI: the MX hostname), RFC 5280
//! (path validation), RFC 6125 (name matching), RFC 7435 (opportunistic
//! security), RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 7672 §3.2.2
//! (MX hostname as reference identity), RFC 8996 (TLS 1.0/1.1 deprecated).

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::aws_lc_rs;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::ParsedCertificate;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    PeerIncompatible, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::cause::{self, Cause};
use crate::certs::{self, CertError};
use crate::error::TlsError;
use crate::facts::TlsFacts;
use crate::settings::{CertSettings, TlsVersion};
use crate::{groups, suites};

/// Sessions remembered for resumption (per server name; rustls' default).
const RESUMPTION_CACHE: usize = 256;

/// The peer closed the connection during our handshake, before any alert.
pub const PEER_CLOSED_AFTER_CLIENT_HELLO: &str = "tls.out.peer_closed_after_client_hello";
/// The peer aborted the handshake with an alert we have no better id for.
pub const PEER_ALERT: &str = "tls.out.peer_alert";
/// The peer refused the client certificate we presented.
pub const CLIENT_CERTIFICATE_REJECTED: &str = "tls.out.client_certificate_rejected";
/// The certificate does not cover the name we connected to (the MX name).
pub const CERT_NAME_MISMATCH: &str = "tls.out.cert_name_mismatch";
/// The chain ends in a certificate issued by a CA that was neither sent nor trusted.
pub const CHAIN_INCOMPLETE: &str = "tls.out.chain_incomplete";
/// The server certificate is self-signed.
pub const CERT_SELF_SIGNED: &str = "tls.out.cert_self_signed";
/// The chain ends in a root we do not trust.
pub const CERT_UNTRUSTED: &str = "tls.out.cert_untrusted";
/// A certificate of the chain has expired.
pub const CERT_EXPIRED: &str = "tls.out.cert_expired";
/// A certificate of the chain is not valid yet.
pub const CERT_NOT_YET_VALID: &str = "tls.out.cert_not_yet_valid";
/// Any other certificate problem (bad signature, encoding, purpose, revoked).
pub const CERT_INVALID: &str = "tls.out.cert_invalid";

/// Every outbound-only cause id (the shared ids of [`crate::cause`] are
/// reused where they fit: no shared version / cipher / group, not TLS,
/// timeout, protocol error, I/O error, unknown).
pub const OUTBOUND_IDS: &[&str] = &[
    PEER_CLOSED_AFTER_CLIENT_HELLO,
    PEER_ALERT,
    CLIENT_CERTIFICATE_REJECTED,
    CERT_NAME_MISMATCH,
    CHAIN_INCOMPLETE,
    CERT_SELF_SIGNED,
    CERT_UNTRUSTED,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    CERT_INVALID,
];

/// Outbound TLS settings (one set per destination policy). Defaults mirror
/// the listener's: TLS 1.2–1.3, built-in suite and group order, resumption on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// Lowest version offered. Default TLS 1.2.
    pub min_version: TlsVersion,
    /// Highest version offered. Default TLS 1.3.
    pub max_version: TlsVersion,
    /// Cipher suites by IANA id, in our order of preference. Empty: built-in.
    pub cipher_suites: Vec<u16>,
    /// Key-exchange groups by IANA id, in preference order. Empty: built-in
    /// (X25519MLKEM768, X25519, P-256, P-384).
    pub kx_groups: Vec<u16>,
    /// A client certificate to present when the server asks for one.
    pub client_cert: Option<CertSettings>,
    /// Resume sessions (TLS 1.3 tickets, TLS 1.2 ids/tickets). Default true.
    pub resumption: bool,
}

impl Default for ClientTlsSettings {
    fn default() -> Self {
        Self {
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            kx_groups: Vec::new(),
            client_cert: None,
            resumption: true,
        }
    }
}

/// Where trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The operating system's store (rustls-native-certs). Default true.
    pub system: bool,
    /// A PEM file of extra CA certificates (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            system: true,
            ca_file: None,
        }
    }
}

/// Loads the roots. Unreadable system certificates are skipped with a log
/// line (one bad file in /etc/ssl must not stop delivery); an unreadable or
/// empty CA file is an error naming the file.
pub fn load_roots(roots: &Roots) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    if roots.system {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "skipping an unreadable system CA certificate");
        }
        let (added, ignored) = store.add_parsable_certificates(found.certs);
        if ignored > 0 {
            tracing::warn!(ignored, "skipped system CA certificates webpki cannot use");
        }
        if added == 0 {
            tracing::warn!(
                "no system CA certificates found; PKIX verification will fail (install ca-certificates or set a CA file)"
            );
        }
    }
    if let Some(path) = &roots.ca_file {
        for der in read_pem_certs(path)? {
            store.add(der).map_err(|e| {
                TlsError::Cert(CertError::Parse {
                    path: path.clone(),
                    index: 1,
                    detail: e.to_string(),
                })
            })?;
        }
    }
    Ok(store)
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_owned(),
        }
        .into());
    }
    Ok(certs)
}

/// How the server's certificate is judged during the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Accept any chain; record the verdict (see the module docs).
    Record,
    /// Refuse unless the chain verifies against the roots and covers the name.
    Pkix,
}

/// One client configuration with its verification mode and roots. Cheap to
/// clone; keep one per settings so TLS sessions are resumed across
/// connections.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    roots: Arc<RootCertStore>,
    verify: Verify,
    algorithms: WebPkiSupportedAlgorithms,
    versions: Vec<TlsVersion>,
}

/// What we think of the chain a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerVerdict {
    /// The chain as sent, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKIX path validation against our roots (RFC 5280 §6), without the name
    /// check: `Err` says why it failed.
    pub pkix: Result<(), String>,
    /// The PKIX failure, classified; `None` when `pkix` is `Ok`.
    pub pkix_problem: Option<PkixProblem>,
    /// Whether the leaf covers `hostname` (RFC 6125).
    pub name_matches: bool,
    /// The name we checked: the MX hostname (or the host the operator named).
    pub hostname: String,
}

/// Why a chain did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkixProblem {
    /// The server sent no certificate.
    NoCertificate,
    /// A single self-signed certificate.
    SelfSigned,
    /// The chain ends in a self-signed root we do not trust.
    UntrustedRoot,
    /// The last certificate sent is issued by a CA that was not sent and is
    /// not a trusted root: a missing intermediate (or a private CA).
    Incomplete,
    /// A certificate has expired.
    Expired,
    /// A certificate is not valid yet.
    NotYetValid,
    /// Anything else (bad signature, encoding, usage, unsupported algorithm).
    Other,
}

impl PeerVerdict {
    /// PKIX passed and the name matches.
    pub fn is_verified(&self) -> bool {
        self.pkix.is_ok() && self.name_matches
    }

    /// `yes`, or `no (reason)` as in `verified: no (self-signed)`.
    pub fn summary(&self) -> String {
        if self.is_verified() {
            return "yes".to_owned();
        }
        let mut reasons = Vec::new();
        if let Some(p) = self.pkix_problem {
            reasons.push(
                match p {
                    PkixProblem::NoCertificate => "no certificate",
                    PkixProblem::SelfSigned => "self-signed",
                    PkixProblem::UntrustedRoot => "untrusted root",
                    PkixProblem::Incomplete => "chain incomplete or unknown CA",
                    PkixProblem::Expired => "expired",
                    PkixProblem::NotYetValid => "not yet valid",
                    PkixProblem::Other => "invalid",
                }
                .to_owned(),
            );
        }
        if !self.name_matches {
            reasons.push(format!("name mismatch for {}", self.hostname));
        }
        format!("no ({})", reasons.join(", "))
    }

    /// The leaf, described; `None` when there is none or it cannot be parsed.
    pub fn leaf(&self) -> Option<CertDescription> {
        self.chain.first().and_then(|c| describe_cert(c))
    }

    /// The catalogue cause for an unverified chain (`None` when verified):
    /// what an operator needs to fix it, or to tell the peer.
    pub fn cause(&self) -> Option<Cause> {
        if self.is_verified() {
            return None;
        }
        let described: Vec<CertDescription> =
            self.chain.iter().filter_map(|c| describe_cert(c)).collect();
        let detail = self.pkix.as_ref().err().cloned().unwrap_or_default();
        let host = &self.hostname;
        let check = format!("run `postern cert check --remote {host}` to see the chain");
        let cause = |id, summary: String, fix: String| Cause {
            id,
            summary,
            fix,
            detail: detail.clone(),
        };
        let leaf_subject = described
            .first()
            .map_or("?".to_owned(), |d| d.subject.clone());
        match self.pkix_problem {
            Some(PkixProblem::SelfSigned) => {
                return Some(cause(
                    CERT_SELF_SIGNED,
                    format!("the certificate of {host} is self-signed ('{leaf_subject}')"),
                    format!(
                        "opportunistic delivery still encrypts; to verify, the peer needs a \
                         CA-issued certificate for {host} (or publish DANE TLSA); {check}"
                    ),
                ));
            }
            Some(PkixProblem::Incomplete) => {
                let last = described.last();
                return Some(cause(
                    CHAIN_INCOMPLETE,
                    format!(
                        "chain incomplete: '{}' is issued by '{}', which {host} did not send and \
                         we do not trust (missing intermediate, or a private CA)",
                        last.map_or("?", |d| d.subject.as_str()),
                        last.map_or("?", |d| d.issuer.as_str()),
                    ),
                    format!(
                        "the peer must send the intermediate certificate(s) after its own; if it \
                         is a private CA, add it to the CA file for this route; {check}"
                    ),
                ));
            }
            Some(PkixProblem::UntrustedRoot) => {
                return Some(cause(
                    CERT_UNTRUSTED,
                    format!(
                        "the chain of {host} ends in a root we do not trust ('{}')",
                        described.last().map_or("?", |d| d.subject.as_str())
                    ),
                    format!("add that CA to the CA file for this route if you trust it; {check}"),
                ));
            }
            Some(PkixProblem::Expired) => {
                let expired = described.iter().find(|d| d.days_left < 0);
                return Some(cause(
                    CERT_EXPIRED,
                    format!(
                        "certificate expired: '{}' expired {} days ago",
                        expired.map_or(leaf_subject.as_str(), |d| d.subject.as_str()),
                        expired.map_or(0, |d| -d.days_left)
                    ),
                    format!("the peer must renew its certificate; {check}"),
                ));
            }
            Some(PkixProblem::NotYetValid) => {
                return Some(cause(
                    CERT_NOT_YET_VALID,
                    format!("the certificate of {host} is not valid yet"),
                    "check our clock (NTP) and the peer's certificate dates".to_owned(),
                ));
            }
            Some(PkixProblem::NoCertificate | PkixProblem::Other) => {
                return Some(cause(
                    CERT_INVALID,
                    format!("the certificate of {host} does not verify: {detail}"),
                    check,
                ));
            }
            None => {}
        }
        let names = described
            .first()
            .map(|d| d.sans.join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("'{leaf_subject}' (no subjectAltName)"));
        Some(cause(
            CERT_NAME_MISMATCH,
            format!("certificate name mismatch: cert is for {names}, MX is {host}"),
            format!(
                "the peer needs a certificate whose subjectAltName covers {host}; until then \
                 only unverified TLS works for it; {check}"
            ),
        ))
    }
}

impl ClientTls {
    /// Builds the configuration: versions between min and max, suites and
    /// groups in settings order (built-in when empty), the verifier for
    /// `verify` over `roots`, the client certificate if any (loaded and
    /// checked like a listener's), and resumption per the settings.
    pub fn new(
        settings: &ClientTlsSettings,
        verify: Verify,
        roots: Arc<RootCertStore>,
    ) -> Result<Self, TlsError> {
        let (min, max) = (settings.min_version, settings.max_version);
        if max < min {
            return Err(TlsError::VersionRange { min, max });
        }
        let versions: Vec<TlsVersion> = TlsVersion::ALL
            .into_iter()
            .filter(|v| (min..=max).contains(v))
            .collect();

        let suite_ids = dedup(if settings.cipher_suites.is_empty() {
            suites::default_order()
        } else {
            settings.cipher_suites.clone()
        });
        let mut cipher_suites = Vec::new();
        for id in &suite_ids {
            if let Some(s) = suites::usable_id(*id)?.to_rustls() {
                cipher_suites.push(s);
            }
        }
        for &version in &versions {
            let has = cipher_suites
                .iter()
                .any(|s| TlsVersion::from_rustls(s.version().version) == Some(version));
            if !has {
                return Err(TlsError::NoSuiteForVersion {
                    version,
                    min,
                    max,
                    configured: suite_ids
                        .iter()
                        .map(|id| suites::display_name(*id))
                        .collect::<Vec<_>>()
                        .join(", "),
                    example: match version {
                        TlsVersion::Tls12 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                        TlsVersion::Tls13 => "TLS_AES_256_GCM_SHA384",
                    },
                });
            }
        }
        cipher_suites.retain(|s| {
            TlsVersion::from_rustls(s.version().version).is_some_and(|v| versions.contains(&v))
        });

        let group_ids = dedup(if settings.kx_groups.is_empty() {
            groups::default_order()
        } else {
            settings.kx_groups.clone()
        });
        let mut kx_groups = Vec::new();
        for id in &group_ids {
            if let Some(g) = groups::lookup(&format!("0x{id:04x}"))?.to_rustls() {
                kx_groups.push(g);
            }
        }
        for &version in &versions {
            let wire = version.to_rustls().version;
            if !kx_groups.iter().any(|g| g.usable_for_version(wire)) {
                return Err(TlsError::NoGroupForVersion {
                    version,
                    configured: group_ids
                        .iter()
                        .map(|id| groups::display_name(*id))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }

        let provider = Arc::new(CryptoProvider {
            cipher_suites,
            kx_groups,
            ..aws_lc_rs::default_provider()
        });
        let algorithms = provider.signature_verification_algorithms;
        let rustls_versions: Vec<&'static rustls::SupportedProtocolVersion> =
            versions.iter().map(|v| v.to_rustls()).collect();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&rustls_versions)
            .map_err(|source| TlsError::Rustls {
                context: "outbound protocol versions, cipher suites and groups",
                source,
            })?;
        let builder = match verify {
            Verify::Record => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(RecordingVerifier { algorithms })),
            Verify::Pkix => {
                let inner =
                    WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), provider)
                        .build()
                        .map_err(|e| TlsError::Rustls {
                            context: "certificate verifier (are any trusted roots installed? \
                                      install ca-certificates or set a CA file)",
                            source: rustls::Error::General(e.to_string()),
                        })?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(PkixVerifier {
                        inner,
                        roots: Arc::clone(&roots),
                        algorithms,
                    }))
            }
        };
        let mut config = match &settings.client_cert {
            None => builder.with_no_client_auth(),
            Some(cs) => {
                // Same checks as a listener's certificate (key matches, chain
                // order, dates), with the same operator-facing errors.
                certs::load(std::slice::from_ref(cs), OffsetDateTime::now_utc())?;
                let chain = read_pem_certs(&cs.cert_path)?;
                let key_pem = std::fs::read(&cs.key_path).map_err(|source| CertError::Read {
                    path: cs.key_path.clone(),
                    source,
                })?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| CertError::Pem {
                    path: cs.key_path.clone(),
                    detail: e.to_string(),
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|source| TlsError::Rustls {
                        context: "client certificate",
                        source,
                    })?
            }
        };
        config.resumption = if settings.resumption {
            Resumption::in_memory_sessions(RESUMPTION_CACHE)
        } else {
            Resumption::disabled()
        };
        Ok(Self {
            config: Arc::new(config),
            roots,
            verify,
            algorithms,
            versions,
        })
    }

    /// The rustls configuration (shared by every connection).
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The verification mode.
    pub fn verify_mode(&self) -> Verify {
        self.verify
    }

    /// The versions we offer, oldest first (for failure causes).
    pub fn offered_versions(&self) -> &[TlsVersion] {
        &self.versions
    }

    /// The verdict on the chain a completed connection presented; `None` while
    /// handshaking.
    pub fn peer_verdict(&self, conn: &ClientConnection, hostname: &str) -> Option<PeerVerdict> {
        if conn.is_handshaking() {
            return None;
        }
        let chain = conn.peer_certificates().unwrap_or_default();
        Some(self.verdict(chain, hostname, UnixTime::now()))
    }

    /// The verdict on `chain` (leaf first) for `hostname` at `now`.
    pub fn verdict(
        &self,
        chain: &[CertificateDer<'_>],
        hostname: &str,
        now: UnixTime,
    ) -> PeerVerdict {
        verdict_with(&self.roots, self.algorithms, chain, hostname, now)
    }
}

/// The verdict on `chain` against `roots` with the default algorithms (for
/// callers without a [`ClientTls`], e.g. checking a certificate file).
pub fn verdict_against(
    roots: &RootCertStore,
    chain: &[CertificateDer<'_>],
    hostname: &str,
    now: UnixTime,
) -> PeerVerdict {
    let algorithms = aws_lc_rs::default_provider().signature_verification_algorithms;
    verdict_with(roots, algorithms, chain, hostname, now)
}

fn verdict_with(
    roots: &RootCertStore,
    algorithms: WebPkiSupportedAlgorithms,
    chain: &[CertificateDer<'_>],
    hostname: &str,
    now: UnixTime,
) -> PeerVerdict {
    let owned: Vec<CertificateDer<'static>> =
        chain.iter().map(|c| c.clone().into_owned()).collect();
    let name = ServerName::try_from(hostname.trim_end_matches('.')).ok();
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return PeerVerdict {
            chain: owned,
            pkix: Err("the server sent no certificate".to_owned()),
            pkix_problem: Some(PkixProblem::NoCertificate),
            name_matches: false,
            hostname: hostname.to_owned(),
        };
    };
    let parsed = ParsedCertificate::try_from(leaf_der);
    let name_matches = match (&parsed, &name) {
        (Ok(p), Some(n)) => rustls::client::verify_server_name(p, n).is_ok(),
        _ => false,
    };
    let pkix = parsed.and_then(|p| {
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &p,
            roots,
            intermediates,
            now,
            algorithms.all,
        )
    });
    let pkix_problem = pkix.as_ref().err().map(|e| classify_pkix(e, chain));
    PeerVerdict {
        chain: owned,
        // When the chain's shape already explains the refusal, say that rather
        // than the incidental error webpki met on its way (e.g. a signature
        // error while trying a same-named candidate for a self-signed leaf).
        pkix: pkix.map_err(|e| match pkix_problem {
            Some(PkixProblem::SelfSigned) => {
                "self-signed: no trusted CA issued this certificate".to_owned()
            }
            Some(PkixProblem::UntrustedRoot) => {
                "the chain ends in a root that is not trusted".to_owned()
            }
            _ => describe_pkix_error(&e),
        }),
        pkix_problem,
        name_matches,
        hostname: hostname.to_owned(),
    }
}

fn classify_pkix(err: &rustls::Error, chain: &[CertificateDer<'_>]) -> PkixProblem {
    use CertificateError as C;
    let rustls::Error::InvalidCertificate(ce) = err else {
        return PkixProblem::Other;
    };
    match ce {
        C::Expired | C::ExpiredContext { .. } => return PkixProblem::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => return PkixProblem::NotYetValid,
        _ => {}
    }
    // A chain ending in a self-signed certificate that is not one of our
    // roots is "self-signed" / "untrusted root", whatever webpki met while
    // trying other candidates (a same-named local certificate such as a
    // snakeoil one can turn UnknownIssuer into a signature error).
    let last_self_signed = chain
        .last()
        .and_then(|c| describe_cert(c))
        .is_some_and(|d| d.self_signed);
    match (chain.len(), last_self_signed, ce) {
        (1, true, _) => PkixProblem::SelfSigned,
        (_, true, _) => PkixProblem::UntrustedRoot,
        (_, false, C::UnknownIssuer) => PkixProblem::Incomplete,
        _ => PkixProblem::Other,
    }
}

fn describe_pkix_error(err: &rustls::Error) -> String {
    use CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(ce) => match ce {
            C::UnknownIssuer => "unknown issuer: the chain does not lead to a trusted root".into(),
            C::Expired | C::ExpiredContext { .. } => {
                "a certificate in the chain has expired".into()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "a certificate in the chain is not valid yet".into()
            }
            C::BadSignature => "a signature in the chain does not verify".into(),
            C::BadEncoding => "a certificate cannot be parsed".into(),
            C::Revoked => "a certificate is revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "the certificate is not for TLS servers (extended key usage)".into()
            }
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "a signature in the chain uses an unsupported algorithm or does not fit the \
                 issuer's key"
                    .into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the certificate does not cover the name".into()
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// Accepts any chain; checks handshake signatures with the presented key.
#[derive(Debug)]
struct RecordingVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Record mode: the verdict is computed after the handshake from the
        // chain the connection keeps (ClientTls::peer_verdict); policy decides.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a [`Verify::Pkix`] handshake refused the certificate: rustls' own
/// error plus our verdict on the chain, carried inside the handshake error
/// (`CertificateError::Other`) so [`outbound_cause`] can name the problem
/// (self-signed, missing intermediate, which names the certificate covers)
/// without any per-connection state in the shared verifier. The peer gets
/// a `bad_certificate` alert.
#[derive(Debug)]
pub struct PkixRefusal {
    /// The verdict on the presented chain.
    pub verdict: PeerVerdict,
    /// What webpki said.
    pub error: CertificateError,
}

impl fmt::Display for PkixRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = describe_pkix_error(&rustls::Error::InvalidCertificate(self.error.clone()));
        write!(f, "{text} (verified: {})", self.verdict.summary())
    }
}

impl StdError for PkixRefusal {}

/// rustls' webpki verifier, refusing with a [`PkixRefusal`].
#[derive(Debug)]
struct PkixVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PkixVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(error)) => {
                let mut chain = Vec::with_capacity(1 + intermediates.len());
                chain.push(end_entity.clone());
                chain.extend(intermediates.iter().cloned());
                let verdict = verdict_with(
                    &self.roots,
                    self.algorithms,
                    &chain,
                    &server_name.to_str(),
                    now,
                );
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(PkixRefusal { verdict, error })),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The facts of a completed client handshake; `sni` is the name we sent
/// (`None` for an IP address). `None` while handshaking.
pub fn client_facts(conn: &ClientConnection, sni: Option<&str>) -> Option<TlsFacts> {
    if conn.is_handshaking() {
        return None;
    }
    let version = match conn.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    };
    Some(TlsFacts {
        version,
        cipher: suites::display_name(u16::from(conn.negotiated_cipher_suite()?.suite())),
        group: conn
            .negotiated_key_exchange_group()
            .map(|g| groups::display_name(u16::from(g.name()))),
        sni: sni.map(str::to_owned),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
    })
}

/// One certificate, for people: what `cert check` and `tls verify` print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertDescription {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// subjectAltName DNS names and IP addresses.
    pub sans: Vec<String>,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity.
    #[serde(serialize_with = "rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(serialize_with = "rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days from now to `not_after` (negative once expired).
    pub days_left: i64,
    /// `RSA`, `ECDSA P-256`, `ECDSA P-384`, `Ed25519`, or the algorithm OID.
    pub key_type: String,
    /// Key size in bits (0 when unknown).
    pub key_bits: u32,
    /// Signature algorithm, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    /// The signature uses MD2, MD5 or SHA-1 (refused by current verifiers).
    pub weak_signature: bool,
    /// Issuer equals subject.
    pub self_signed: bool,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// SHA-256 fingerprint of the DER, `AB:CD:…`.
    pub sha256: String,
}

fn rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string());
    s.serialize_str(&text)
}

/// Describes one DER certificate at the current time; `None` if it cannot be
/// parsed as X.509.
pub fn describe_cert(der: &CertificateDer<'_>) -> Option<CertDescription> {
    describe_cert_at(der, OffsetDateTime::now_utc())
}

/// [`describe_cert`] with `days_left` counted from `now`.
pub fn describe_cert_at(der: &CertificateDer<'_>, now: OffsetDateTime) -> Option<CertDescription> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    let (key_type, key_bits) = crate::certs::key_description(&cert);
    let (signature_algorithm, weak_signature) =
        signature_name(&cert.signature_algorithm.algorithm.to_id_string());
    Some(CertDescription {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans: subject_alt_names(&cert),
        serial: cert.raw_serial_as_string(),
        not_before,
        not_after,
        days_left: (not_after - now).whole_days(),
        key_type,
        key_bits,
        signature_algorithm,
        weak_signature,
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        is_ca: cert.is_ca(),
        sha256: fingerprint(der.as_ref()),
    })
}

/// `2026-12-01 12:00:00 UTC`.
pub fn format_date(t: OffsetDateTime) -> String {
    certs::fmt_date(t)
}

fn fingerprint(der: &[u8]) -> String {
    // The provider's SHA-256 (no extra crypto dependency): every TLS 1.3 suite
    // carries its hash; TLS13_AES_128_GCM_SHA256's is SHA-256.
    let Some(suite) = aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13() else {
        return String::new();
    };
    let digest = suite.common.hash_provider.hash(der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn subject_alt_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => out.push((*d).to_owned()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => {
                        if let Ok(a) = <[u8; 4]>::try_from(*bytes) {
                            out.push(std::net::IpAddr::from(a).to_string());
                        }
                    }
                    16 => {
                        if let Ok(a) = <[u8; 16]>::try_from(*bytes) {
                            out.push(std::net::IpAddr::from(a).to_string());
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    out
}

/// (name, weak) for a signature algorithm OID (RFC 8017 / RFC 5758 / RFC
/// 8410 names). MD2, MD5 and SHA-1 are weak (RFC 6151, RFC 9155).
fn signature_name(oid: &str) -> (String, bool) {
    let (name, weak) = match oid {
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", true),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", true),
        "1.2.840.113549.1.1.5" => ("sha1WithRSAEncryption", true),
        "1.2.840.113549.1.1.10" => ("RSASSA-PSS", false),
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", false),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", false),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", false),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", true),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", false),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", false),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", false),
        "1.2.840.10040.4.3" => ("dsa-with-SHA1", true),
        "1.3.101.112" => ("Ed25519", false),
        "1.3.101.113" => ("Ed448", false),
        other => return (other.to_owned(), false),
    };
    (name.to_owned(), weak)
}

fn dedup(ids: Vec<u16>) -> Vec<u16> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `TLS 1.2–1.3`, `TLS 1.3 only`.
fn describe_offer(offered: &[TlsVersion]) -> String {
    match offered {
        [] => "no TLS version".to_owned(),
        [one] => format!("{one} only"),
        [first, .., last] => format!("{first}–{}", last.as_config_str()),
    }
}

/// Classifies an outbound handshake failure: `err` is what the handshake
/// returned (a `rustls::Error`, an `io::Error` possibly wrapping one as
/// tokio-rustls does, or a tokio timeout), `offered` the versions we offered,
/// `domain` the destination for the fix text (`route <domain> with …`).
///
/// Certificate problems only reach here in [`Verify::Pkix`] mode; in
/// [`Verify::Record`] mode see [`PeerVerdict::cause`].
pub fn outbound_cause(
    err: &(dyn StdError + 'static),
    offered: &[TlsVersion],
    domain: Option<&str>,
) -> Cause {
    let detail = err.to_string();
    let (tls, io_kind) = find_errors(err);
    let dest = domain.unwrap_or("this destination");
    let ours = describe_offer(offered);
    if let Some(tls) = tls {
        return from_rustls(tls, &ours, offered, dest, detail);
    }
    match io_kind {
        Some(
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => peer_closed(&ours, offered, dest, detail),
        Some(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => timeout(detail),
        Some(_) => mk(
            cause::IO_ERROR,
            format!("the connection failed during the TLS handshake: {detail}"),
            "a network problem between us and the peer; nothing to change in TLS settings; \
             delivery retries later"
                .to_owned(),
            detail,
        ),
        None if detail == "deadline has elapsed" => timeout(detail),
        None => mk(
            cause::UNKNOWN,
            format!("the TLS handshake failed: {detail}"),
            "look at the detail; if it repeats, report it with the transcript".to_owned(),
            detail,
        ),
    }
}

fn mk(id: &'static str, summary: String, fix: String, detail: String) -> Cause {
    Cause {
        id,
        summary,
        fix,
        detail,
    }
}

fn timeout(detail: String) -> Cause {
    mk(
        cause::TIMEOUT,
        "the TLS handshake with the peer did not complete in time".to_owned(),
        "a slow or stalled peer or a middlebox dropping large packets (MTU); delivery retries \
         later"
            .to_owned(),
        detail,
    )
}

fn peer_closed(ours: &str, offered: &[TlsVersion], dest: &str, detail: String) -> Cause {
    let likely = if offered == [TlsVersion::Tls13] {
        "the peer most likely does not support TLS 1.3 (or only TLS 1.0/1.1)"
    } else {
        "the peer most likely supports only TLS 1.0/1.1"
    };
    let extra = if offered == [TlsVersion::Tls13] {
        format!("allow TLS 1.2 for {dest} (min_version = \"1.2\"), ")
    } else {
        String::new()
    };
    mk(
        PEER_CLOSED_AFTER_CLIENT_HELLO,
        format!(
            "peer closed the connection during the handshake after our ClientHello offering \
             {ours}: {likely}"
        ),
        format!(
            "options: {extra}route {dest} with `opportunistic` (plaintext retry) or ask them to \
             upgrade; `postern tls scan` shows what the peer accepts"
        ),
        detail,
    )
}

fn from_rustls(
    err: &rustls::Error,
    ours: &str,
    offered: &[TlsVersion],
    dest: &str,
    detail: String,
) -> Cause {
    use rustls::Error as E;
    let scan = "`postern tls scan HOST` shows what the peer accepts";
    match err {
        E::AlertReceived(alert) => {
            let name = alert_name(*alert);
            match alert {
                AlertDescription::ProtocolVersion => mk(
                    cause::NO_SHARED_VERSION,
                    format!(
                        "the peer refused our offer of {ours} (alert {name}): it most likely \
                         supports only older versions"
                    ),
                    format!(
                        "options: route {dest} with `opportunistic` (plaintext retry) or ask \
                         them to upgrade (TLS 1.0/1.1 are deprecated, RFC 8996); {scan}"
                    ),
                    detail,
                ),
                AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => mk(
                    cause::NO_SHARED_CIPHER,
                    format!(
                        "the peer aborted the handshake with alert {name}: it accepts none of \
                         the cipher suites or groups we offered ({ours})"
                    ),
                    format!(
                        "{scan}; if it only has suites rustls cannot speak (CBC, static RSA), \
                         route {dest} with `opportunistic` (plaintext retry) or ask them to \
                         upgrade; if it lacks one of our groups, add x25519 or secp256r1 to \
                         kx_groups"
                    ),
                    detail,
                ),
                AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateRequired
                | AlertDescription::AccessDenied => mk(
                    CLIENT_CERTIFICATE_REJECTED,
                    format!("the peer refused our client certificate (alert {name})"),
                    "check the client certificate configured for this route (CA the peer \
                     trusts, not expired), or remove it if the peer does not need one"
                        .to_owned(),
                    detail,
                ),
                _ => mk(
                    PEER_ALERT,
                    format!("the peer aborted the handshake with alert {name}"),
                    format!("the alert names the peer's complaint; {scan}"),
                    detail,
                ),
            }
        }
        E::PeerIncompatible(p) => match p {
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled => {
                let fix = if offered == [TlsVersion::Tls13] {
                    format!(
                        "allow TLS 1.2 for {dest} (min_version = \"1.2\"), or route it with \
                         `opportunistic` (plaintext retry)"
                    )
                } else {
                    format!(
                        "options: route {dest} with `opportunistic` (plaintext retry) or ask \
                         them to upgrade"
                    )
                };
                mk(
                    cause::NO_SHARED_VERSION,
                    format!("the peer chose a TLS version we do not offer (we offer {ours})"),
                    fix,
                    detail,
                )
            }
            PeerIncompatible::NoKxGroupsInCommon
            | PeerIncompatible::NamedGroupsExtensionRequired
            | PeerIncompatible::KeyShareExtensionRequired => mk(
                cause::NO_SHARED_GROUP,
                "no key-exchange group in common with the peer".to_owned(),
                format!("add x25519 and secp256r1 to the outbound kx_groups; {scan}"),
                detail,
            ),
            PeerIncompatible::NoCipherSuitesInCommon => mk(
                cause::NO_SHARED_CIPHER,
                format!("no cipher suite in common with the peer (we offer {ours})"),
                format!("{scan}; route {dest} with `opportunistic` if it only has legacy suites"),
                detail,
            ),
            other => mk(
                cause::PROTOCOL_ERROR,
                format!("the peer's TLS is incompatible with ours ({other:?})"),
                format!("none on our side; {scan}"),
                detail,
            ),
        },
        E::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
            | rustls::InvalidMessage::UnknownProtocolVersion,
        ) => mk(
            cause::NOT_TLS,
            "the peer did not answer our ClientHello with TLS (plaintext after its 220 to \
             STARTTLS, or a non-TLS port)"
                .to_owned(),
            format!("check the port and mode (implicit TLS on 465, STARTTLS on 25/587); {scan}"),
            detail,
        ),
        E::InvalidCertificate(ce) => certificate_cause(ce, dest, detail),
        E::InvalidMessage(_)
        | E::PeerMisbehaved(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::DecryptError => mk(
            cause::PROTOCOL_ERROR,
            format!("the peer broke the TLS protocol: {err}"),
            "none on our side; the peer's TLS stack is broken or something in the path rewrites \
             traffic"
                .to_owned(),
            detail,
        ),
        _ => mk(
            cause::UNKNOWN,
            format!("the TLS handshake failed: {err}"),
            "look at the detail; if it repeats, report it with the transcript".to_owned(),
            detail,
        ),
    }
}

fn certificate_cause(ce: &CertificateError, dest: &str, detail: String) -> Cause {
    use CertificateError as C;
    if let C::Other(other) = ce
        && let Some(refusal) =
            (&*other.0 as &(dyn StdError + 'static)).downcast_ref::<PkixRefusal>()
        && let Some(mut cause) = refusal.verdict.cause()
    {
        cause.detail = detail;
        return cause;
    }
    let check = "run `postern cert check --remote HOST` to see the chain";
    match ce {
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let (expected, presented) = match ce {
                C::NotValidForNameContext {
                    expected,
                    presented,
                } => (expected.to_str().into_owned(), presented.join(", ")),
                _ => ("the MX name".to_owned(), "other names".to_owned()),
            };
            mk(
                CERT_NAME_MISMATCH,
                format!("certificate name mismatch: cert is for {presented}, MX is {expected}"),
                format!(
                    "the peer needs a certificate covering {expected}; or lower the policy for \
                     {dest} from `verify` to `required` (encrypted, unverified)"
                ),
                detail,
            )
        }
        C::UnknownIssuer => mk(
            CERT_UNTRUSTED,
            "the certificate is not issued by a CA we trust: self-signed, a private CA, or a \
             missing intermediate"
                .to_owned(),
            format!(
                "{check}; add a private CA to the CA file for {dest}, or lower its policy to \
                 `required`"
            ),
            detail,
        ),
        C::Expired | C::ExpiredContext { .. } => mk(
            CERT_EXPIRED,
            "the peer's certificate has expired".to_owned(),
            format!("the peer must renew it; {check}"),
            detail,
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => mk(
            CERT_NOT_YET_VALID,
            "the peer's certificate is not valid yet".to_owned(),
            "check our clock (NTP) and the peer's certificate dates".to_owned(),
            detail,
        ),
        _ => mk(
            CERT_INVALID,
            format!("the peer's certificate does not verify ({ce:?})"),
            check.to_owned(),
            detail,
        ),
    }
}

/// RFC 8446 spelling of an alert, e.g. `handshake_failure`.
fn alert_name(alert: AlertDescription) -> String {
    let camel = format!("{alert:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.replace("_c_a", "_ca")
}

/// The first rustls error and the first io error kind in the chain.
fn find_errors<'a>(
    err: &'a (dyn StdError + 'static),
) -> (Option<&'a rustls::Error>, Option<io::ErrorKind>) {
    let mut io_kind = None;
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return (Some(tls), io_kind);
        }
        if let Some(ioe) = e.downcast_ref::<io::Error>() {
            io_kind.get_or_insert(ioe.kind());
            if let Some(inner) = ioe.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return (Some(tls), io_kind);
                }
                cur = Some(inner);
                continue;
            }
        }
        cur = e.source();
    }
    (None, io_kind)
}

impl fmt::Display for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verify::Record => "record",
            Verify::Pkix => "pkix",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn outbound_ids_are_unique_and_namespaced() {
        let mut ids = OUTBOUND_IDS.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), OUTBOUND_IDS.len());
        assert!(OUTBOUND_IDS.iter().all(|id| id.starts_with("tls.out.")));
        assert!(OUTBOUND_IDS.iter().all(|id| !cause::ALL.contains(id)));
    }

    #[test]
    fn peer_closed_wording() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let c = outbound_cause(&eof, &TlsVersion::ALL, Some("fabrikam.com"));
        assert_eq!(c.id, PEER_CLOSED_AFTER_CLIENT_HELLO);
        assert_eq!(
            c.summary,
            "peer closed the connection during the handshake after our ClientHello offering \
             TLS 1.2–1.3: the peer most likely supports only TLS 1.0/1.1"
        );
        assert!(
            c.fix
                .starts_with("options: route fabrikam.com with `opportunistic` (plaintext retry) or ask them to upgrade"),
            "{c}"
        );
        let c13 = outbound_cause(&eof, &[TlsVersion::Tls13], None);
        assert!(c13.summary.contains("TLS 1.3 only"), "{c13}");
        assert!(c13.fix.contains("min_version = \"1.2\""), "{c13}");
    }

    #[test]
    fn classification_table() {
        let ours = TlsVersion::ALL;
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let cases: Vec<(Box<dyn StdError>, &str)> = vec![
            (
                Box::new(wrap(rustls::Error::AlertReceived(
                    AlertDescription::ProtocolVersion,
                ))),
                cause::NO_SHARED_VERSION,
            ),
            (
                Box::new(wrap(rustls::Error::AlertReceived(
                    AlertDescription::HandshakeFailure,
                ))),
                cause::NO_SHARED_CIPHER,
            ),
            (
                Box::new(rustls::Error::AlertReceived(
                    AlertDescription::CertificateRequired,
                )),
                CLIENT_CERTIFICATE_REJECTED,
            ),
            (
                Box::new(rustls::Error::AlertReceived(
                    AlertDescription::InternalError,
                )),
                PEER_ALERT,
            ),
            (
                Box::new(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType,
                )),
                cause::NOT_TLS,
            ),
            (
                Box::new(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                )),
                CERT_UNTRUSTED,
            ),
            (
                Box::new(rustls::Error::InvalidCertificate(CertificateError::Expired)),
                CERT_EXPIRED,
            ),
            (
                Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
                PEER_CLOSED_AFTER_CLIENT_HELLO,
            ),
            (
                Box::new(io::Error::from(io::ErrorKind::TimedOut)),
                cause::TIMEOUT,
            ),
            (
                Box::new(io::Error::from(io::ErrorKind::PermissionDenied)),
                cause::IO_ERROR,
            ),
            (
                Box::new(rustls::Error::PeerIncompatible(
                    PeerIncompatible::ServerDoesNotSupportTls12Or13,
                )),
                cause::NO_SHARED_VERSION,
            ),
        ];
        for (err, id) in cases {
            let c = outbound_cause(err.as_ref(), &ours, Some("example.net"));
            assert_eq!(c.id, id, "{err}: {c}");
            assert!(!c.fix.is_empty());
        }
    }

    #[test]
    fn name_mismatch_names_both() {
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("mx1.fabrikam.com").unwrap(),
            presented: vec!["mail.other.example".into()],
        });
        let c = outbound_cause(&err, &TlsVersion::ALL, Some("fabrikam.com"));
        assert_eq!(c.id, CERT_NAME_MISMATCH);
        assert_eq!(
            c.summary,
            "certificate name mismatch: cert is for mail.other.example, MX is mx1.fabrikam.com"
        );
    }

    #[test]
    fn offer_description() {
        assert_eq!(describe_offer(&TlsVersion::ALL), "TLS 1.2–1.3");
        assert_eq!(describe_offer(&[TlsVersion::Tls13]), "TLS 1.3 only");
    }

    #[test]
    fn signature_names() {
        assert_eq!(
            signature_name("1.2.840.113549.1.1.5"),
            ("sha1WithRSAEncryption".to_owned(), true)
        );
        assert_eq!(
            signature_name("1.2.840.10045.4.3.2"),
            ("ecdsa-with-SHA256".to_owned(), false)
        );
        assert_eq!(signature_name("1.2.3"), ("1.2.3".to_owned(), false));
    }

    #[test]
    fn settings_errors() {
        let roots = Arc::new(RootCertStore::empty());
        let bad = ClientTlsSettings {
            min_version: TlsVersion::Tls13,
            max_version: TlsVersion::Tls12,
            ..ClientTlsSettings::default()
        };
        assert!(matches!(
            ClientTls::new(&bad, Verify::Record, Arc::clone(&roots)),
            Err(TlsError::VersionRange { .. })
        ));
        let tls13_only_suites = ClientTlsSettings {
            cipher_suites: vec![0x1302],
            ..ClientTlsSettings::default()
        };
        assert!(matches!(
            ClientTls::new(&tls13_only_suites, Verify::Record, Arc::clone(&roots)),
            Err(TlsError::NoSuiteForVersion {
                version: TlsVersion::Tls12,
                ..
            })
        ));
        // Pkix needs at least one root.
        assert!(matches!(
            ClientTls::new(&ClientTlsSettings::default(), Verify::Pkix, roots),
            Err(TlsError::Rustls { .. })
        ));
    }

    // (chain, hostname, PKIX problem, name matches, cause id)
    type Case<'a> = (
        Vec<CertificateDer<'static>>,
        &'a str,
        Option<PkixProblem>,
        bool,
        Option<&'a str>,
    );

    /// CA → intermediate → leaf, built with rcgen.
    struct Pki {
        root: CertificateDer<'static>,
        inter: CertificateDer<'static>,
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
        let root_params = ca_params("Test Root");
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = rcgen::Issuer::new(root_params, root_key);
        let inter_key = rcgen::KeyPair::generate().unwrap();
        let inter_params = ca_params("Test Intermediate");
        let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
        Pki {
            root: root.der().clone(),
            inter: inter.der().clone(),
            inter_issuer: rcgen::Issuer::new(inter_params, inter_key),
        }
    }

    fn leaf(
        issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
        name: &str,
        days: (i64, i64),
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        let now = OffsetDateTime::now_utc();
        p.not_before = now + time::Duration::days(days.0);
        p.not_after = now + time::Duration::days(days.1);
        p.signed_by(&key, issuer).unwrap().der().clone()
    }

    fn roots(root: &CertificateDer<'static>) -> RootCertStore {
        let mut r = RootCertStore::empty();
        r.add(root.clone()).unwrap();
        r
    }

    #[test]
    fn verdict_table() {
        let pki = pki();
        let roots = roots(&pki.root);
        let good = leaf(&pki.inter_issuer, "mx.example.net", (-1, 90));
        let expired = leaf(&pki.inter_issuer, "mx.example.net", (-30, -2));
        let self_key = rcgen::KeyPair::generate().unwrap();
        let self_signed = rcgen::CertificateParams::new(vec!["mx.example.net".to_owned()])
            .unwrap()
            .self_signed(&self_key)
            .unwrap()
            .der()
            .clone();
        let now = UnixTime::now();
        let cases: Vec<Case<'_>> = vec![
            (
                vec![good.clone(), pki.inter.clone()],
                "mx.example.net",
                None,
                true,
                None,
            ),
            (
                vec![good.clone(), pki.inter.clone(), pki.root.clone()],
                "MX.example.net.",
                None,
                true,
                None,
            ),
            (
                vec![good.clone(), pki.inter.clone()],
                "mx1.other.org",
                None,
                false,
                Some(CERT_NAME_MISMATCH),
            ),
            (
                vec![good.clone()],
                "mx.example.net",
                Some(PkixProblem::Incomplete),
                true,
                Some(CHAIN_INCOMPLETE),
            ),
            (
                vec![expired, pki.inter.clone()],
                "mx.example.net",
                Some(PkixProblem::Expired),
                true,
                Some(CERT_EXPIRED),
            ),
            (
                vec![self_signed],
                "mx.example.net",
                Some(PkixProblem::SelfSigned),
                true,
                Some(CERT_SELF_SIGNED),
            ),
        ];
        for (i, (chain, host, problem, name_ok, cause_id)) in cases.into_iter().enumerate() {
            let v = verdict_against(&roots, &chain, host, now);
            assert_eq!(v.pkix_problem, problem, "case {i}: {v:?}");
            assert_eq!(v.pkix.is_ok(), problem.is_none(), "case {i}");
            assert_eq!(v.name_matches, name_ok, "case {i}");
            assert_eq!(v.cause().map(|c| c.id), cause_id, "case {i}");
            assert_eq!(v.chain.len(), chain.len());
        }
        // Untrusted root: the whole chain sent, but we trust another root.
        let other = pki_roots_other();
        let v = verdict_against(
            &other,
            &[good.clone(), pki.inter.clone(), pki.root.clone()],
            "mx.example.net",
            now,
        );
        assert_eq!(v.pkix_problem, Some(PkixProblem::UntrustedRoot), "{v:?}");
        assert_eq!(v.summary(), "no (untrusted root)");
        let c = v.cause().unwrap();
        assert_eq!(c.id, CERT_UNTRUSTED);
        assert!(c.summary.contains("Test Root"), "{c}");
        // The name-mismatch text names both sides.
        let v = verdict_against(&roots, &[good, pki.inter], "mx1.other.org", now);
        assert_eq!(
            v.cause().unwrap().summary,
            "certificate name mismatch: cert is for mx.example.net, MX is mx1.other.org"
        );
    }

    fn pki_roots_other() -> RootCertStore {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = ca_params("Other Root").self_signed(&key).unwrap();
        roots(other.der())
    }

    #[test]
    fn describes_certificates() {
        let pki = pki();
        let d = describe_cert(&pki.inter).unwrap();
        assert_eq!(d.subject, "CN=Test Intermediate");
        assert_eq!(d.issuer, "CN=Test Root");
        assert!(d.is_ca && !d.self_signed);
        assert_eq!(d.key_type, "ECDSA P-256");
        assert_eq!(d.signature_algorithm, "ecdsa-with-SHA256");
        assert!(!d.weak_signature);
        assert_eq!(d.sha256.len(), 32 * 3 - 1);
        let r = describe_cert(&pki.root).unwrap();
        assert!(r.self_signed);
        assert!(describe_cert(&CertificateDer::from(vec![1, 2, 3])).is_none());
        let json = serde_json_like(&d);
        assert!(json.contains("not_after"), "{json}");
    }

    fn serde_json_like(d: &CertDescription) -> String {
        // No serde_json in this crate: the Debug output is enough to see the field.
        format!("{d:?}")
    }

    #[test]
    fn record_mode_builds_without_roots() {
        let tls = ClientTls::new(
            &ClientTlsSettings::default(),
            Verify::Record,
            Arc::new(RootCertStore::empty()),
        )
        .unwrap();
        assert_eq!(tls.offered_versions(), &TlsVersion::ALL);
        assert_eq!(tls.verify_mode(), Verify::Record);
        let v = tls.verdict(&[], "mx.example", UnixTime::now());
        assert_eq!(v.pkix_problem, Some(PkixProblem::NoCertificate));
        assert_eq!(
            v.summary(),
            "no (no certificate, name mismatch for mx.example)"
        );
    }
}
