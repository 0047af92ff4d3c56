//! What a TLS handshake negotiated ([`TlsFacts`], for the tracking DB, the
//! transcript and the `Received:` header) and what a client offered
//! ([`ClientHelloSummary`], for explaining failures).
//!
//! # Security
//! [`ClientHelloSummary`] copies peer-controlled data (SNI, offered lists). The
//! SNI has been validated as a DNS name by rustls; the lists are numbers. Length
//! is bounded by the ClientHello itself (≤ 64 KiB).
//!
//! # Standards
//! RFC 8446 §4.1.2 (ClientHello), RFC 6066 §3 (SNI), RFC 3848 and RFC 5321
//! §4.4 (`with ESMTPS` in `Received:`), RFC 8314 §4.3 (recording TLS use).

use rustls::ServerConnection;
use rustls::server::ClientHello;

use crate::settings::TlsVersion;
use crate::{groups, suites};

/// The outcome of a completed handshake.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TlsFacts {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// IANA name of the cipher suite, e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// Key-exchange group, e.g. `X25519MLKEM768`; `None` when unknown (resumed
    /// TLS 1.2 sessions do no key exchange).
    pub group: Option<String>,
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// The session was resumed (no full handshake).
    pub resumed: bool,
}

impl TlsFacts {
    /// The facts of a connection whose handshake is complete; `None` while it is
    /// still handshaking.
    pub fn from_connection(conn: &ServerConnection) -> Option<TlsFacts> {
        if conn.is_handshaking() {
            return None;
        }
        let version = match conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        };
        let cipher = suites::display_name(u16::from(conn.negotiated_cipher_suite()?.suite()));
        let group = conn
            .negotiated_key_exchange_group()
            .map(|g| groups::display_name(u16::from(g.name())));
        Some(TlsFacts {
            version,
            cipher,
            group,
            sni: conn.server_name().map(str::to_owned),
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        })
    }

    /// The clause for the `Received:` header, e.g. `TLS1.3 TLS_AES_256_GCM_SHA384`
    /// as in `with ESMTPS (TLS1.3 TLS_AES_256_GCM_SHA384)`.
    pub fn received_clause(&self) -> String {
        let version = self.version.replacen("TLSv", "TLS", 1);
        format!("{version} {}", self.cipher)
    }
}

/// What a client offered in its ClientHello, captured before the handshake
/// proceeds (smtpd reads it through `tokio_rustls::LazyConfigAcceptor`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq, Default)]
pub struct ClientHelloSummary {
    /// The SNI, if sent.
    pub sni: Option<String>,
    /// Offered cipher suite ids, in the client's order (GREASE included).
    pub cipher_suites: Vec<u16>,
    /// Versions whose cipher suites the client offered: a *hint* only. rustls
    /// does not expose the supported_versions extension; a TLS 1.3 client must
    /// offer a TLS 1.3 suite (RFC 8446 §4.1.2), but some clients (rustls among
    /// them) offer TLS 1.3 suites even with TLS 1.3 disabled. Failure
    /// classification relies on the rustls error instead when it can.
    pub suite_versions: Vec<TlsVersion>,
    /// Offered key-exchange groups (supported_groups), empty when absent.
    pub groups: Vec<u16>,
    /// Offered signature schemes (signature_algorithms).
    pub signature_schemes: Vec<u16>,
    /// ALPN protocols, if any (lossy UTF-8).
    pub alpn: Vec<String>,
}

impl ClientHelloSummary {
    /// Copies what matters out of a rustls `ClientHello`.
    pub fn from_client_hello(ch: &ClientHello<'_>) -> Self {
        let cipher_suites: Vec<u16> = ch.cipher_suites().iter().map(|s| u16::from(*s)).collect();
        Self {
            sni: ch.server_name().map(str::to_owned),
            suite_versions: infer_versions(&cipher_suites),
            cipher_suites,
            groups: ch
                .named_groups()
                .map(|g| g.iter().map(|n| u16::from(*n)).collect())
                .unwrap_or_default(),
            signature_schemes: ch
                .signature_schemes()
                .iter()
                .map(|s| u16::from(*s))
                .collect(),
            alpn: ch
                .alpn()
                .map(|it| {
                    it.map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether the client offered a TLS 1.3 cipher suite (a TLS 1.3 client must).
    pub fn has_tls13_suites(&self) -> bool {
        self.suite_versions.contains(&TlsVersion::Tls13)
    }

    /// Offered suites by IANA name, GREASE and signalling values left out.
    pub fn suite_names(&self) -> Vec<String> {
        self.cipher_suites
            .iter()
            .filter(|id| !suites::is_grease(**id) && !matches!(**id, 0x00ff | 0x5600))
            .map(|id| suites::display_name(*id))
            .collect()
    }

    /// Offered groups by name, GREASE left out.
    pub fn group_names(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|id| !suites::is_grease(**id))
            .map(|id| groups::display_name(*id))
            .collect()
    }
}

fn infer_versions(cipher_suites: &[u16]) -> Vec<TlsVersion> {
    let real = cipher_suites
        .iter()
        .filter(|id| !suites::is_grease(**id) && !matches!(**id, 0x00ff | 0x5600));
    let mut tls12 = false;
    let mut tls13 = false;
    for id in real {
        if id >> 8 == 0x13 {
            tls13 = true;
        } else {
            tls12 = true;
        }
    }
    let mut out = Vec::new();
    if tls12 {
        out.push(TlsVersion::Tls12);
    }
    if tls13 {
        out.push(TlsVersion::Tls13);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn received_clause_format() {
        let f = TlsFacts {
            version: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            group: Some("X25519MLKEM768".into()),
            sni: None,
            resumed: false,
        };
        assert_eq!(f.received_clause(), "TLS1.3 TLS_AES_256_GCM_SHA384");
    }

    #[test]
    fn versions_from_suites() {
        assert_eq!(
            infer_versions(&[0x1301, 0xc02f, 0x00ff]),
            vec![TlsVersion::Tls12, TlsVersion::Tls13]
        );
        assert_eq!(infer_versions(&[0x0a0a, 0x1302]), vec![TlsVersion::Tls13]);
        assert_eq!(infer_versions(&[0xc030, 0x002f]), vec![TlsVersion::Tls12]);
    }
}
