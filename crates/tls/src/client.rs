//! Client-side TLS for outbound SMTP (delivery, `postern send`, `cert check
//! --remote`, `tls verify`): rustls `ClientConfig`s built from
//! [`ClientTlsSettings`], two ways of judging the server's certificate, the
//! verdict on the chain a server presented, and descriptions of its
//! certificates (the outbound failure causes live in
//! [`crate::cause::outbound`]).
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
//!   [`crate::cause::classify_outbound`] can say "self-signed", "missing
//!   intermediate" or which names the certificate covers.
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
//!
//! Files: this one builds the configuration ([`ClientTls`]); `verdict.rs`
//! judges a presented chain ([`PeerVerdict`]) and holds the two verifiers;
//! `describe.rs` describes certificates and handshakes for people.

mod describe;
mod verdict;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::aws_lc_rs;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use time::OffsetDateTime;

use crate::certs::{self, CertError};
use crate::error::TlsError;
use crate::settings::{CertSettings, TlsVersion};
use crate::{groups, suites};

use verdict::{PkixVerifier, RecordingVerifier, verdict_with};

// The outbound cause ids, also under their old path.
pub use crate::cause::outbound::{
    CERT_EXPIRED, CERT_INVALID, CERT_NAME_MISMATCH, CERT_NOT_YET_VALID, CERT_SELF_SIGNED,
    CERT_UNTRUSTED, CHAIN_INCOMPLETE, CLIENT_CERTIFICATE_REJECTED, OUTBOUND_IDS, PEER_ALERT,
};
pub use describe::{CertDescription, client_facts, describe_cert, describe_cert_at, format_date};
pub use verdict::{PeerVerdict, PkixProblem, PkixRefusal, verdict_against};

/// Sessions remembered for resumption (per server name; rustls' default).
const RESUMPTION_CACHE: usize = 256;

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

fn dedup(ids: Vec<u16>) -> Vec<u16> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
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
