//! The certificate store: loads each configured chain and key, checks them the
//! way a careful administrator would (key belongs to the leaf, chain in order and
//! signed, dates), and answers "which certificate for this client?" through an
//! SNI resolver with a default certificate.
//!
//! It does not verify chains against a trust store: an SMTP server's certificate
//! may be self-signed or from a private CA, and remote MTAs decide trust. It also
//! does not reload; the binary builds a new store (and config) and swaps it.
//!
//! # Security
//! Reads the certificate and key files named by the operator (trusted input, but
//! parsed defensively: a bad file is an error naming the file, never a panic).
//! Private keys never appear in errors or logs. The resolver runs on untrusted
//! ClientHello data (SNI, signature schemes) and only compares strings.
//!
//! # Standards
//! RFC 5280 (X.509: §4.1.2.5 validity, §4.2.1.6 subjectAltName, §6 path order),
//! RFC 6125 §6.4.3 (one-label wildcards), RFC 6066 §3 (SNI), RFC 8446 §4.4.2
//! (chain order: "each following certificate SHOULD directly certify the one
//! immediately preceding it"), RFC 5246 §7.4.2.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::crypto::aws_lc_rs::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::settings::CertSettings;

/// A certificate expiring within this many days is reported as a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Why certificates could not be loaded or do not fit.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("cannot read {}: {source}; check the path and that postern may read it", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("{} is not valid PEM ({detail}); expected -----BEGIN CERTIFICATE----- / -----BEGIN PRIVATE KEY----- blocks", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        detail: String,
    },
    /// The certificate file holds no certificate.
    #[error("{} contains no CERTIFICATE block; put the server certificate first, then the intermediates", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("{} contains no private key (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A certificate could not be parsed as X.509.
    #[error("certificate #{index} in {} cannot be parsed as X.509: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Position in the file, 1-based.
        index: usize,
        /// Parser message.
        detail: String,
    },
    /// The key is of a type rustls cannot sign with.
    #[error("the private key in {} cannot be used ({detail}); use RSA (2048+ bits), ECDSA P-256/P-384 or Ed25519", path.display())]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// rustls' message.
        detail: String,
    },
    /// The key does not belong to the leaf certificate.
    #[error("the private key in {} does not belong to the certificate in {} (their public keys differ); pair each certificate file with its own key file", key_path.display(), cert_path.display())]
    KeyMismatch {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
    },
    /// The chain is not leaf-first, each certificate followed by its issuer.
    #[error("{}: certificate #{index} ('{subject}') is issued by '{issuer}', but certificate #{next} is '{next_subject}'; order the file leaf first, then each issuer in turn (RFC 8446 §4.4.2)", path.display(), next = index + 1)]
    ChainOrder {
        /// The certificate file.
        path: PathBuf,
        /// Position of the certificate whose issuer does not follow, 1-based.
        index: usize,
        /// Its subject.
        subject: String,
        /// Its issuer.
        issuer: String,
        /// Subject of the certificate that follows it.
        next_subject: String,
    },
    /// A certificate's signature does not verify with the next one's key.
    #[error("{}: the signature on certificate #{index} ('{subject}') does not verify with the key of certificate #{next} ('{next_subject}'); the intermediate does not match — download the chain again from the CA", path.display(), next = index + 1)]
    ChainSignature {
        /// The certificate file.
        path: PathBuf,
        /// Position of the certificate, 1-based.
        index: usize,
        /// Its subject.
        subject: String,
        /// Subject of the certificate that should have signed it.
        next_subject: String,
    },
    /// A certificate has expired.
    #[error("{}: certificate #{index} ('{subject}') expired on {}; renew it", path.display(), fmt_date(*not_after))]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// Position in the chain, 1-based.
        index: usize,
        /// Its subject.
        subject: String,
        /// When it expired.
        not_after: OffsetDateTime,
    },
    /// A certificate is not valid yet.
    #[error("{}: certificate #{index} ('{subject}') is not valid before {}; check the system clock, or wait until then", path.display(), fmt_date(*not_before))]
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// Position in the chain, 1-based.
        index: usize,
        /// Its subject.
        subject: String,
        /// Start of validity.
        not_before: OffsetDateTime,
    },
    /// No loaded certificate covers a hostname.
    #[error("No certificates were found matching the Subject '{hostname}' (certificates loaded cover: {})", if covered.is_empty() { "nothing".to_owned() } else { covered.join(", ") })]
    NoMatch {
        /// The hostname asked for.
        hostname: String,
        /// Every name the loaded certificates cover.
        covered: Vec<String>,
    },
}

/// Something worth telling the operator that does not stop the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertWarning {
    /// A certificate in a chain expires soon.
    ExpiresSoon {
        /// The certificate file.
        path: PathBuf,
        /// Subject of the expiring certificate.
        subject: String,
        /// When it expires.
        not_after: OffsetDateTime,
        /// Whole days left.
        days_left: i64,
    },
    /// The self-signed root sent at the end of a chain has expired; clients that
    /// build paths with it may fail (cf. the AddTrust root expiry of May 2020).
    ExpiredRootInChain {
        /// The certificate file.
        path: PathBuf,
        /// Subject of the root.
        subject: String,
    },
    /// A hostname configured for a certificate is not among its names.
    HostnameNotInCertificate {
        /// The certificate file.
        path: PathBuf,
        /// The configured hostname.
        hostname: String,
    },
    /// The leaf has no subjectAltName DNS names and no hostnames are configured.
    NoNames {
        /// The certificate file.
        path: PathBuf,
    },
    /// An RSA key shorter than 2048 bits.
    WeakKey {
        /// The certificate file.
        path: PathBuf,
        /// Key size.
        bits: u32,
    },
    /// The key file can be read by group or others.
    KeyFileReadable {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for CertWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpiresSoon {
                path,
                subject,
                not_after,
                days_left,
            } => write!(
                f,
                "{}: certificate '{subject}' expires in {days_left} days ({}); renew it before then",
                path.display(),
                fmt_date(*not_after)
            ),
            Self::ExpiredRootInChain { path, subject } => write!(
                f,
                "{}: the root certificate '{subject}' at the end of the chain has expired; remove it from the file (clients have their own roots)",
                path.display()
            ),
            Self::HostnameNotInCertificate { path, hostname } => write!(
                f,
                "{}: hostname '{hostname}' is configured for this certificate but is not in its subjectAltName; clients that check names will reject it",
                path.display()
            ),
            Self::NoNames { path } => write!(
                f,
                "{}: the certificate has no subjectAltName DNS names and no hostnames are configured; it can only serve as the default certificate",
                path.display()
            ),
            Self::WeakKey { path, bits } => write!(
                f,
                "{}: RSA key of {bits} bits; use at least 2048 bits (RFC 9325 §4.3)",
                path.display()
            ),
            Self::KeyFileReadable { path, mode } => write!(
                f,
                "{}: private key file has mode {mode:04o}; make it readable by postern only (chmod 600)",
                path.display()
            ),
        }
    }
}

/// What a loaded certificate is, for logs and `postern cert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The certificate file.
    pub cert_path: PathBuf,
    /// The key file.
    pub key_path: PathBuf,
    /// Leaf subject DN.
    pub subject: String,
    /// subjectAltName DNS names and IP addresses.
    pub sans: Vec<String>,
    /// Leaf issuer DN.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whole days from load time to `not_after`.
    pub days_left: i64,
    /// `RSA`, `ECDSA P-256`, `ECDSA P-384`, `Ed25519`, or the algorithm OID.
    pub key_type: String,
    /// Key size in bits.
    pub key_bits: u32,
    /// Issuer equals subject.
    pub self_signed: bool,
    /// Certificates in the file (leaf included).
    pub chain_len: usize,
    /// Names this certificate answers by SNI.
    pub hostnames: Vec<String>,
    /// Answered to clients without a matching SNI.
    pub is_default: bool,
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] issuer '{}', {} {} bits, expires {} ({} days){}",
            self.subject,
            self.sans.join(", "),
            self.issuer,
            self.key_type,
            self.key_bits,
            fmt_date(self.not_after),
            self.days_left,
            if self.is_default { ", default" } else { "" }
        )
    }
}

/// The result of [`load`]: a store plus warnings to log.
#[derive(Debug, Clone)]
pub struct LoadedCerts {
    /// The certificates.
    pub store: CertStore,
    /// Non-fatal findings, one log line each.
    pub warnings: Vec<CertWarning>,
}

/// All loaded certificates; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct CertStore {
    entries: Arc<[Entry]>,
}

#[derive(Debug)]
struct Entry {
    key: Arc<CertifiedKey>,
    /// Lower-case names answered by SNI: configured hostnames, else SAN DNS names.
    sni_names: Vec<String>,
    /// Lower-case names covered: SAN DNS names and configured hostnames.
    covered: Vec<String>,
    summary: CertSummary,
}

/// Loads every chain and key in `settings` (the first is the default) and checks
/// them at `now`:
/// - the key matches the leaf (SubjectPublicKeyInfo comparison, any key type);
/// - the chain is in order: each certificate's issuer is the next one's subject,
///   and its signature verifies with the next one's key (when x509-parser can
///   verify that algorithm);
/// - no certificate is expired or not yet valid (errors); one expiring within
///   [`EXPIRY_WARNING_DAYS`] is a warning.
pub fn load(settings: &[CertSettings], now: OffsetDateTime) -> Result<LoadedCerts, CertError> {
    let mut entries = Vec::with_capacity(settings.len());
    let mut warnings = Vec::new();
    for (i, cs) in settings.iter().enumerate() {
        entries.push(load_one(cs, i == 0, now, &mut warnings)?);
    }
    Ok(LoadedCerts {
        store: CertStore {
            entries: entries.into(),
        },
        warnings,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_owned(),
        source,
    })
}

fn load_one(
    cs: &CertSettings,
    is_default: bool,
    now: OffsetDateTime,
    warnings: &mut Vec<CertWarning>,
) -> Result<Entry, CertError> {
    let cert_path = &cs.cert_path;
    let key_path = &cs.key_path;
    let pem_err = |path: &Path, e: &dyn fmt::Display| CertError::Pem {
        path: path.to_owned(),
        detail: e.to_string(),
    };

    let cert_pem = read(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert_path, &e))?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate {
            path: cert_path.clone(),
        });
    }

    let key_pem = read(key_path)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(CertError::NoKey {
                path: key_path.clone(),
            });
        }
        Err(e) => return Err(pem_err(key_path, &e)),
    };
    check_key_file_mode(key_path, warnings);
    let signing_key = any_supported_type(&key).map_err(|e| CertError::UnsupportedKey {
        path: key_path.clone(),
        detail: e.to_string(),
    })?;

    let parsed = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            X509Certificate::from_der(der.as_ref())
                .map(|(_, c)| c)
                .map_err(|e| CertError::Parse {
                    path: cert_path.clone(),
                    index: i + 1,
                    detail: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(leaf) = parsed.first() else {
        // `chain` is non-empty (checked above) and `parsed` has one entry per element.
        return Err(CertError::NoCertificate {
            path: cert_path.clone(),
        });
    };

    // Key ↔ leaf: compare SubjectPublicKeyInfo DER (what rustls' keys_match does).
    match signing_key.public_key() {
        Some(spki) if spki.as_ref() == leaf.public_key().raw => {}
        Some(_) => {
            return Err(CertError::KeyMismatch {
                cert_path: cert_path.clone(),
                key_path: key_path.clone(),
            });
        }
        None => tracing::warn!(
            key = %key_path.display(),
            "cannot derive the public key of this key type; key/certificate match not checked"
        ),
    }

    check_chain(cert_path, &parsed)?;
    check_dates(cert_path, &parsed, now, warnings)?;

    let (sans, dns) = subject_alt_names(leaf);
    let configured: Vec<String> = cs.hostnames.iter().map(|h| normalize(h)).collect();
    for h in &configured {
        if !dns.iter().any(|p| name_matches(p, h)) {
            warnings.push(CertWarning::HostnameNotInCertificate {
                path: cert_path.clone(),
                hostname: h.clone(),
            });
        }
    }
    let sni_names = if configured.is_empty() {
        dns.clone()
    } else {
        configured.clone()
    };
    if sni_names.is_empty() {
        warnings.push(CertWarning::NoNames {
            path: cert_path.clone(),
        });
    }
    let mut covered = dns;
    for h in configured {
        if !covered.contains(&h) {
            covered.push(h);
        }
    }

    let (key_type, key_bits) = key_description(leaf);
    if key_type == "RSA" && key_bits < 2048 {
        warnings.push(CertWarning::WeakKey {
            path: cert_path.clone(),
            bits: key_bits,
        });
    }
    let not_after = leaf.validity().not_after.to_datetime();
    let summary = CertSummary {
        cert_path: cert_path.clone(),
        key_path: key_path.clone(),
        subject: leaf.subject().to_string(),
        sans,
        issuer: leaf.issuer().to_string(),
        serial: leaf.raw_serial_as_string(),
        not_before: leaf.validity().not_before.to_datetime(),
        not_after,
        days_left: (not_after - now).whole_days(),
        key_type,
        key_bits,
        self_signed: leaf.subject().as_raw() == leaf.issuer().as_raw(),
        chain_len: chain.len(),
        hostnames: sni_names.clone(),
        is_default,
    };
    Ok(Entry {
        key: Arc::new(CertifiedKey::new(chain, signing_key)),
        sni_names,
        covered,
        summary,
    })
}

#[cfg(unix)]
fn check_key_file_mode(path: &Path, warnings: &mut Vec<CertWarning>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(CertWarning::KeyFileReadable {
                path: path.to_owned(),
                mode,
            });
        }
    }
}

#[cfg(not(unix))]
fn check_key_file_mode(_path: &Path, _warnings: &mut Vec<CertWarning>) {}

fn check_chain(path: &Path, chain: &[X509Certificate<'_>]) -> Result<(), CertError> {
    for (i, pair) in chain.windows(2).enumerate() {
        let [cert, next] = pair else { continue };
        let issuer_matches = cert.issuer().as_raw() == next.subject().as_raw()
            || cert
                .issuer()
                .to_string()
                .eq_ignore_ascii_case(&next.subject().to_string());
        if !issuer_matches {
            return Err(CertError::ChainOrder {
                path: path.to_owned(),
                index: i + 1,
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                next_subject: next.subject().to_string(),
            });
        }
        // An algorithm x509-parser cannot verify is not evidence of a bad chain.
        if let Err(X509Error::SignatureVerificationError) =
            cert.verify_signature(Some(next.public_key()))
        {
            return Err(CertError::ChainSignature {
                path: path.to_owned(),
                index: i + 1,
                subject: cert.subject().to_string(),
                next_subject: next.subject().to_string(),
            });
        }
    }
    Ok(())
}

fn check_dates(
    path: &Path,
    chain: &[X509Certificate<'_>],
    now: OffsetDateTime,
    warnings: &mut Vec<CertWarning>,
) -> Result<(), CertError> {
    for (i, cert) in chain.iter().enumerate() {
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        let subject = cert.subject().to_string();
        let is_sent_root = i > 0 && cert.subject().as_raw() == cert.issuer().as_raw();
        if not_after < now {
            if is_sent_root {
                warnings.push(CertWarning::ExpiredRootInChain {
                    path: path.to_owned(),
                    subject,
                });
                continue;
            }
            return Err(CertError::Expired {
                path: path.to_owned(),
                index: i + 1,
                subject,
                not_after,
            });
        }
        if not_before > now {
            return Err(CertError::NotYetValid {
                path: path.to_owned(),
                index: i + 1,
                subject,
                not_before,
            });
        }
        let days_left = (not_after - now).whole_days();
        if days_left < EXPIRY_WARNING_DAYS {
            warnings.push(CertWarning::ExpiresSoon {
                path: path.to_owned(),
                subject,
                not_after,
                days_left,
            });
        }
    }
    Ok(())
}

/// (all SANs for display, normalized DNS names for matching)
fn subject_alt_names(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let mut all = Vec::new();
    let mut dns = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    all.push((*d).to_owned());
                    dns.push(normalize(d));
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        all.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    (all, dns)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

pub(crate) fn key_description(cert: &X509Certificate<'_>) -> (String, u32) {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == oid_registry::OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => significant_bits(rsa.modulus),
            _ => 0,
        };
        return ("RSA".to_owned(), bits);
    }
    if *alg == oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let (name, bits) = match curve {
            Some(c) if c == oid_registry::OID_EC_P256 => ("ECDSA P-256", 256),
            Some(c) if c == oid_registry::OID_NIST_EC_P384 => ("ECDSA P-384", 384),
            Some(c) if c == oid_registry::OID_NIST_EC_P521 => ("ECDSA P-521", 521),
            _ => ("ECDSA", 0),
        };
        return (name.to_owned(), bits);
    }
    if *alg == oid_registry::OID_SIG_ED25519 {
        return ("Ed25519".to_owned(), 256);
    }
    (alg.to_id_string(), 0)
}

fn significant_bits(be: &[u8]) -> u32 {
    let Some(pos) = be.iter().position(|b| *b != 0) else {
        return 0;
    };
    let rest = &be[pos..];
    let bytes = u32::try_from(rest.len()).unwrap_or(u32::MAX / 8);
    // `rest` starts with a non-zero byte (found by `position` above).
    bytes * 8 - rest.first().map_or(0, |b| b.leading_zeros())
}

/// Lower case, no trailing dot.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `pattern` is a normalized DNS name, possibly `*.example.com` (one label,
/// RFC 6125 §6.4.3); `host` is normalized.
fn name_matches(pattern: &str, host: &str) -> bool {
    if let Some(base) = pattern.strip_prefix("*.") {
        return match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && !label.contains('*') && rest == base,
            None => false,
        };
    }
    pattern == host
}

impl CertStore {
    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No certificates loaded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any certificate covers `hostname`: a subjectAltName DNS name (exact,
    /// or a one-label wildcard) or a configured hostname.
    pub fn covers(&self, hostname: &str) -> bool {
        let host = normalize(hostname);
        self.entries
            .iter()
            .any(|e| e.covered.iter().any(|p| name_matches(p, &host)))
    }

    /// Every name the certificates cover, in load order, without duplicates.
    pub fn covered_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in self.entries.iter().flat_map(|e| e.covered.iter()) {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }

    /// `Ok` when a certificate covers `hostname`, else the error operators know
    /// from other MTAs: "No certificates were found matching the Subject
    /// 'smtp.yourcorp.com' (certificates loaded cover: a, b)".
    pub fn check_hostname(&self, hostname: &str) -> Result<(), CertError> {
        if self.covers(hostname) {
            Ok(())
        } else {
            Err(CertError::NoMatch {
                hostname: hostname.to_owned(),
                covered: self.covered_names(),
            })
        }
    }

    /// The SNI resolver for a rustls `ServerConfig`: an exact SNI match, then a
    /// wildcard match, then the default (first) certificate; clients without SNI
    /// get the default. Among these, the first whose key the client can verify
    /// (RSA vs ECDSA vs Ed25519, from its signature_algorithms) wins — so with an
    /// RSA and an ECDSA certificate for one name, each client gets the one it can
    /// use.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        Arc::new(SniResolver {
            store: self.clone(),
        })
    }

    /// One summary per certificate, in load order.
    pub fn summaries(&self) -> Vec<CertSummary> {
        self.entries.iter().map(|e| e.summary.clone()).collect()
    }

    /// The signature algorithms of the loaded keys (for suite compatibility checks).
    pub(crate) fn key_algorithms(&self) -> Vec<rustls::SignatureAlgorithm> {
        self.entries.iter().map(|e| e.key.key.algorithm()).collect()
    }

    /// Candidates in order of name fit (exact SNI, wildcard SNI, then every
    /// certificate in load order — the first being the default); the first one
    /// whose key the client can verify wins, else the best name fit. A client
    /// that cannot verify the named certificate's key type would fail anyway; the
    /// default of a type it can verify still serves opportunistic peers that do
    /// not check names.
    fn choose(&self, sni: Option<&str>, schemes: &[SignatureScheme]) -> Option<&Entry> {
        let mut candidates: Vec<&Entry> = Vec::with_capacity(self.entries.len() * 2);
        if let Some(sni) = sni {
            let host = normalize(sni);
            candidates.extend(self.entries.iter().filter(|e| e.sni_names.contains(&host)));
            candidates.extend(self.entries.iter().filter(|e| {
                e.sni_names
                    .iter()
                    .any(|n| n.starts_with("*.") && name_matches(n, &host))
            }));
        }
        candidates.extend(self.entries.iter());
        candidates
            .iter()
            .copied()
            .find(|e| e.key.key.choose_scheme(schemes).is_some())
            .or_else(|| candidates.first().copied())
    }
}

#[derive(Debug)]
struct SniResolver {
    store: CertStore,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = client_hello.server_name();
        let entry = self.store.choose(sni, client_hello.signature_schemes())?;
        tracing::trace!(
            sni = sni.unwrap_or("-"),
            cert = %entry.summary.cert_path.display(),
            "certificate chosen"
        );
        Some(Arc::clone(&entry.key))
    }
}

/// `2026-12-01 12:00:00 UTC`.
pub(crate) fn fmt_date(t: OffsetDateTime) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("*.example.com", "mx.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", ".example.com"));
        assert!(name_matches("mx.example.com", "mx.example.com"));
        assert!(!name_matches("mx.example.com", "mx2.example.com"));
        assert_eq!(normalize(" MX.Example.COM. "), "mx.example.com");
    }

    #[test]
    fn bit_counting() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(significant_bits(&[0x01, 0xff]), 9);
        assert_eq!(significant_bits(&[0, 0]), 0);
    }

    #[test]
    fn no_match_text() {
        let e = CertError::NoMatch {
            hostname: "smtp.yourcorp.com".into(),
            covered: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "No certificates were found matching the Subject 'smtp.yourcorp.com' (certificates loaded cover: a, b)"
        );
    }
}
