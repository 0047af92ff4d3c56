//! The crate's error type. Each message says what is wrong *and* what to do.
//!
//! [`TlsError`] is what the crate's operations return; the catalogue modules
//! keep their own narrow errors ([`SuiteError`], [`GroupError`], [`CertError`])
//! so that `postern-config` can point at the exact key, and they convert into
//! [`TlsError`] with `?`.

use std::path::PathBuf;

use crate::certs::CertError;
use crate::groups::GroupError;
use crate::settings::TlsVersion;
use crate::suites::SuiteError;

/// Errors building TLS configurations or certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A cipher suite in the settings is unknown or not implemented.
    #[error(transparent)]
    Suite(#[from] SuiteError),
    /// A key-exchange group in the settings is unknown or not implemented.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A certificate or key is unusable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// `max_version` is below `min_version`.
    #[error(
        "tls.max_version (\"{}\") is lower than tls.min_version (\"{}\"); set max_version to at least min_version",
        max.as_config_str(),
        min.as_config_str()
    )]
    VersionRange {
        /// Configured minimum.
        min: TlsVersion,
        /// Configured maximum.
        max: TlsVersion,
    },
    /// A version the listener offers has no cipher suite.
    #[error(
        "the listener offers {version} (min_version \"{}\", max_version \"{}\") but no {version} cipher suite is configured (cipher_suites: {configured}); add one such as {example}, or change the version range",
        min.as_config_str(),
        max.as_config_str()
    )]
    NoSuiteForVersion {
        /// The version left without suites.
        version: TlsVersion,
        /// Configured minimum.
        min: TlsVersion,
        /// Configured maximum.
        max: TlsVersion,
        /// The configured suites (IANA names).
        configured: String,
        /// A suite that would fix it.
        example: &'static str,
    },
    /// No configured TLS 1.2 suite can be used with any loaded certificate key.
    #[error(
        "the TLS 1.2 cipher suites configured ({suites}) cannot be used with the loaded certificates ({keys} keys): ECDHE_ECDSA suites need an ECDSA or Ed25519 key, ECDHE_RSA suites an RSA key; add a matching TLS 1.2 suite or certificate, or set min_version = \"1.3\""
    )]
    NoSuiteForCertificates {
        /// The configured TLS 1.2 suites (IANA names).
        suites: String,
        /// The key types loaded.
        keys: String,
    },
    /// A version the listener offers has no usable key-exchange group.
    #[error(
        "no configured key-exchange group works with {version} (kx_groups: {configured}); pure ML-KEM groups are TLS 1.3 only — add x25519 or secp256r1"
    )]
    NoGroupForVersion {
        /// The version left without groups.
        version: TlsVersion,
        /// The configured groups.
        configured: String,
    },
    /// The listener has no certificate.
    #[error(
        "no certificates are configured for this TLS listener; add tls.certificates entries (cert_path, key_path) or let postern generate a self-signed certificate"
    )]
    NoCertificates,
    /// rustls refused the assembled configuration.
    #[error("rustls refused the {context}: {source}")]
    Rustls {
        /// Which part was refused.
        context: &'static str,
        /// rustls' error.
        source: rustls::Error,
    },
    /// A self-signed certificate needs at least one name.
    #[error("a self-signed certificate needs at least one hostname; set the server hostname")]
    NoHostnames,
    /// Generating a certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a generated certificate or key failed.
    #[error("cannot write {}: {source}; check that the directory exists and postern may write to it", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
