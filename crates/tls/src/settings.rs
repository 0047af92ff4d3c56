//! Plain settings for the TLS crate; `postern-config` fills them from postern.toml.

use std::path::PathBuf;

/// A TLS protocol version we can negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

/// One certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSettings {
    /// PEM file: leaf certificate first, then intermediates in order.
    pub cert_path: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// Names this certificate answers for by SNI. Empty: take them from the
    /// certificate's subjectAltName DNS entries.
    pub hostnames: Vec<String>,
}

/// Server-side TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Lowest version offered. Default TLS 1.2.
    pub min_version: TlsVersion,
    /// Highest version offered. Default TLS 1.3.
    pub max_version: TlsVersion,
    /// Cipher suites by IANA id, in the server's order of preference. Empty: the
    /// built-in order. Every id must be one rustls implements (checked by
    /// `postern-config` through the suite catalogue).
    pub cipher_suites: Vec<u16>,
    /// Key-exchange groups by IANA NamedGroup id, in preference order. Empty: the
    /// built-in order (X25519MLKEM768, X25519, P-256, P-384).
    pub kx_groups: Vec<u16>,
    /// Certificates. The first one is the default, answered to clients that send
    /// no SNI or an SNI no certificate covers.
    pub certificates: Vec<CertSettings>,
    /// Issue TLS 1.3 session tickets / TLS 1.2 stateless resumption. Default true.
    pub session_tickets: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            kx_groups: Vec::new(),
            certificates: Vec::new(),
            session_tickets: true,
        }
    }
}
