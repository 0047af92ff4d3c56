//! Plain settings for the TLS crate; `postern-config` fills them from postern.toml.

use std::path::PathBuf;

/// A TLS protocol version we can negotiate. Serialized as `"1.2"` / `"1.3"`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 (RFC 8446).
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    /// Both versions, oldest first.
    pub const ALL: [TlsVersion; 2] = [TlsVersion::Tls12, TlsVersion::Tls13];

    /// The config spelling: `"1.2"` or `"1.3"`.
    pub fn as_config_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }

    /// The rustls protocol version.
    pub fn to_rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }

    /// From a negotiated rustls version; `None` for anything but 1.2 and 1.3.
    pub fn from_rustls(v: rustls::ProtocolVersion) -> Option<TlsVersion> {
        match v {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

/// `TLS 1.2` / `TLS 1.3`.
impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS {}", self.as_config_str())
    }
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
