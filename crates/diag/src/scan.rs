//! The graded TLS scanner (`postern tls scan`): which protocol versions a
//! server accepts, every accepted cipher suite per version in the server's
//! order, whether it enforces that order, its key-exchange groups and
//! certificate chain, and a grade A+…F with reasons (`docs/scan-grading.md`).
//!
//! How: one hand-built ClientHello per question (`hello`), the answer read
//! with tls-parser (`wire`) — no handshake is ever completed except one rustls
//! handshake to see a TLS 1.3-only server's (encrypted) certificate. The
//! server's order comes from re-offering what is left: offer every candidate,
//! the server picks s1; offer all but s1, it picks s2; … until it refuses.
//! Whether it enforces its order: offer the accepted list reversed and see if
//! it still picks s1. Groups likewise (TLS 1.3: HelloRetryRequest with an
//! empty key_share; TLS ≤ 1.2: the curve of the ECDHE ServerKeyExchange).
//! With `--starttls smtp` every connection first runs banner / EHLO /
//! STARTTLS / 220 (`smtp`).
//!
//! Not here: SSLv2, PSK/SRP suites (they need a shared secret), GOST; trust
//! and name checks of the chain (that is `tls verify`).
//!
//! # Security
//! Connects only to the one address the operator names (first resolved
//! address), with at most [`ScanOptions::max_connections`] connections open at
//! once, each bounded by [`ScanOptions::timeout`]. Everything read is untrusted
//! and bounded (`wire`, `smtp`). Sends no mail and no credentials.
//!
//! # Standards
//! RFC 8446, RFC 5246, RFC 4346, RFC 2246, RFC 6101 (protocols); RFC 3207
//! (STARTTLS); RFC 9325 (BCP 195) and RFC 8996 for the grading.

mod chain;
mod grade;
mod hello;
mod probe;
pub mod progress;
mod render;
mod smtp;
#[cfg(test)]
mod testbytes;
mod wire;

use std::fmt;
use std::time::Duration;

use postern_tls::SuiteInfo;
use serde::{Serialize, Serializer};

pub use chain::{Chain, ChainCert};
pub use grade::{Grade, GradeReason, SuiteFinding, SuiteFlags, suite_findings, suite_flags};
pub use hello::{HelloSpec, build as build_client_hello};
pub use render::render_text;
pub use wire::{FlightParser, Reply as ProbeReply, ServerFlight, WireError};

/// A protocol version the scanner probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// SSL 3.0 (RFC 6101).
    Ssl3,
    /// TLS 1.0 (RFC 2246).
    Tls10,
    /// TLS 1.1 (RFC 4346).
    Tls11,
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl ProtocolVersion {
    /// Every version, oldest first.
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::Ssl3,
        ProtocolVersion::Tls10,
        ProtocolVersion::Tls11,
        ProtocolVersion::Tls12,
        ProtocolVersion::Tls13,
    ];

    /// The wire value (0x0300 … 0x0304).
    pub fn wire(self) -> u16 {
        match self {
            ProtocolVersion::Ssl3 => 0x0300,
            ProtocolVersion::Tls10 => 0x0301,
            ProtocolVersion::Tls11 => 0x0302,
            ProtocolVersion::Tls12 => 0x0303,
            ProtocolVersion::Tls13 => 0x0304,
        }
    }

    /// From a wire value.
    pub fn from_wire(v: u16) -> Option<ProtocolVersion> {
        Self::ALL.into_iter().find(|p| p.wire() == v)
    }

    /// `SSLv3`, `TLS 1.0`, … `TLS 1.3`.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolVersion::Ssl3 => "SSLv3",
            ProtocolVersion::Tls10 => "TLS 1.0",
            ProtocolVersion::Tls11 => "TLS 1.1",
            ProtocolVersion::Tls12 => "TLS 1.2",
            ProtocolVersion::Tls13 => "TLS 1.3",
        }
    }

    /// Whether a suite of the catalogue may be negotiated in this version
    /// (its defining protocol is not newer; TLS 1.3 suites only in TLS 1.3).
    pub fn allows(self, info: &SuiteInfo) -> bool {
        if self == ProtocolVersion::Tls13 || info.tls13 {
            return self == ProtocolVersion::Tls13 && info.tls13;
        }
        let defined = match info.protocol {
            "SSLv3" => ProtocolVersion::Ssl3,
            "TLSv1.0" | "TLSv1" => ProtocolVersion::Tls10,
            "TLSv1.1" => ProtocolVersion::Tls11,
            _ => ProtocolVersion::Tls12,
        };
        defined <= self
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Whether to run an SMTP STARTTLS dialogue before each ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Banner, `EHLO`, `STARTTLS`, `220`, then TLS (RFC 3207; ports 25, 587).
    Smtp,
    /// TLS from the first byte (port 465, or any TLS service).
    None,
}

/// What to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanTarget {
    /// Host name or IP address literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Plaintext preamble.
    pub starttls: StartTls,
    /// server_name to send; by default the host when it is a name (never an
    /// IP literal, RFC 6066 §3).
    pub sni: Option<String>,
}

impl ScanTarget {
    /// `HOST`, `HOST:PORT`, `[v6]`, `[v6]:PORT`, or a bare IPv6 address.
    /// Port default 25. `starttls` default: none for port 465, SMTP otherwise.
    pub fn parse(spec: &str, starttls: Option<StartTls>) -> Result<ScanTarget, ScanError> {
        let bad = |why: &str| ScanError::Target {
            target: spec.to_owned(),
            why: why.to_owned(),
        };
        let spec_t = spec.trim();
        let (host, port) = if let Some(rest) = spec_t.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("unexpected text after ']'")),
            };
            (h.to_owned(), port)
        } else if spec_t.matches(':').count() > 1 {
            (spec_t.to_owned(), None)
        } else if let Some((h, p)) = spec_t.split_once(':') {
            (h.to_owned(), Some(p))
        } else {
            (spec_t.to_owned(), None)
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host.parse::<std::net::IpAddr>().is_err()
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(bad("not a host name or IP address"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("port must be 1-65535"))?,
            None => 25,
        };
        let starttls = starttls.unwrap_or(if port == 465 {
            StartTls::None
        } else {
            StartTls::Smtp
        });
        let sni = host
            .parse::<std::net::IpAddr>()
            .is_err()
            .then(|| host.trim_end_matches('.').to_ascii_lowercase());
        Ok(ScanTarget {
            host,
            port,
            starttls,
            sni,
        })
    }
}

/// How to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Most connections open at once to the target. Default 4.
    pub max_connections: usize,
    /// Limit for connect, each SMTP reply and each TLS answer. Default 10 s.
    pub timeout: Duration,
    /// Pause before each new connection (for servers that rate-limit). Default 0.
    pub delay: Duration,
    /// Name sent in `EHLO`. Default `postern-scan`.
    pub ehlo_name: String,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            timeout: Duration::from_secs(10),
            delay: Duration::ZERO,
            ehlo_name: "postern-scan".into(),
        }
    }
}

/// Progress of a running scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanProgress {
    /// Scan steps finished.
    pub done: u32,
    /// Scan steps in all.
    pub total: u32,
    /// Connections made so far.
    pub connections: u32,
    /// What is happening.
    pub message: String,
}

/// One accepted cipher suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedSuite {
    /// IANA id.
    pub id: u16,
    /// `0x009f`.
    pub hex: String,
    /// IANA name.
    pub iana: String,
    /// OpenSSL name, when OpenSSL has one.
    pub openssl: Option<String>,
    /// Key exchange (`ECDHE`, `DHE`, `RSA`, …; `any` for TLS 1.3).
    pub kx: String,
    /// Authentication (`RSA`, `ECDSA`, `anon`, …; `any` for TLS 1.3).
    pub auth: String,
    /// Bulk cipher and mode.
    pub cipher: String,
    /// Cipher key bits.
    pub bits: u16,
    /// Record MAC (`AEAD`, `SHA1`, …).
    pub mac: String,
    /// The key exchange the server used: `ECDH x25519`, `DH 2048`,
    /// `X25519MLKEM768`, `RSA 2048`.
    pub kx_detail: String,
    /// Its size in bits when known (DH prime, curve, RSA key).
    pub kx_bits: Option<u32>,
    /// The key-exchange group, when one was named (TLS 1.3 or ECDHE).
    pub group: Option<u16>,
    /// Forward secrecy, AEAD, WEAK, INSECURE and why.
    pub flags: SuiteFlags,
}

impl AcceptedSuite {
    /// The catalogue entry.
    pub fn info(&self) -> Option<&'static SuiteInfo> {
        postern_tls::suites::by_id(self.id)
    }

    /// OpenSSL name if any, else the IANA name.
    pub fn display_name(&self) -> &str {
        self.openssl.as_deref().unwrap_or(&self.iana)
    }

    /// DH prime bits (DHE, or a TLS 1.3 ffdhe group).
    pub fn dh_bits(&self) -> Option<u32> {
        self.kx_detail
            .starts_with("DH ")
            .then_some(self.kx_bits)
            .flatten()
    }

    /// Curve bits (ECDHE, or a TLS 1.3 EC group).
    pub fn ec_bits(&self) -> Option<u32> {
        self.kx_detail
            .starts_with("ECDH ")
            .then_some(self.kx_bits)
            .flatten()
    }
}

/// The result for one protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolResult {
    /// The version.
    pub version: ProtocolVersion,
    /// The server negotiated it.
    pub accepted: bool,
    /// Accepted suites, in the server's order (for a server that follows the
    /// client's order: in the order offered, strongest first).
    pub suites: Vec<AcceptedSuite>,
    /// `Some(true)`: offered the list reversed, the server still chose its
    /// first; `Some(false)`: it chose the client's first; `None`: fewer than
    /// two suites, nothing to tell.
    pub server_order_enforced: Option<bool>,
    /// How the server refused, or anything odd it did.
    pub note: Option<String>,
}

/// One key-exchange group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupEntry {
    /// IANA NamedGroup id.
    pub id: u16,
    /// Catalogue name (`x25519`, `X25519MLKEM768`, …).
    pub name: String,
}

/// The groups accepted with one protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupsResult {
    /// The version probed (TLS 1.3, or the newest older version with ECDHE).
    pub version: ProtocolVersion,
    /// Accepted groups, in the server's order (as for suites).
    pub groups: Vec<GroupEntry>,
    /// As for suites.
    pub server_order_enforced: Option<bool>,
}

/// Everything the scan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// The host as given.
    pub host: String,
    /// The address scanned (`ip:port`).
    pub address: String,
    /// The port.
    pub port: u16,
    /// Plaintext preamble used.
    pub starttls: StartTls,
    /// The SMTP banner's first line (with STARTTLS).
    pub banner: Option<String>,
    /// SSLv3 … TLS 1.3, oldest first.
    pub protocols: Vec<ProtocolResult>,
    /// Key-exchange groups per version probed.
    pub groups: Vec<GroupsResult>,
    /// Distinct certificate chains presented.
    pub chains: Vec<Chain>,
    /// The grade.
    pub grade: Grade,
    /// Every rule that capped it, worst first.
    pub reasons: Vec<GradeReason>,
    /// Observations that do not change the grade.
    pub notes: Vec<String>,
    /// Connections made.
    pub connections: u32,
    /// Start of the scan (RFC 3339, UTC).
    pub scanned_at: String,
}

impl ScanReport {
    /// The result for one version.
    pub fn protocol(&self, v: ProtocolVersion) -> Option<&ProtocolResult> {
        self.protocols.iter().find(|p| p.version == v)
    }

    /// Accepted suite ids of one version, in the reported order.
    pub fn suite_ids(&self, v: ProtocolVersion) -> Vec<u16> {
        self.protocol(v)
            .map(|p| p.suites.iter().map(|s| s.id).collect())
            .unwrap_or_default()
    }
}

/// Why a scan could not run at all (a refused probe is a finding, not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The target argument is malformed.
    #[error("invalid target '{target}': {why} (use HOST[:PORT], e.g. mx.example.com:25)")]
    Target {
        /// As given.
        target: String,
        /// What is wrong.
        why: String,
    },
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {detail}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        detail: String,
    },
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {detail}")]
    Connect {
        /// The address.
        addr: String,
        /// The OS error.
        detail: String,
    },
    /// No answer in time.
    #[error("timed out waiting for the server ({stage})")]
    Timeout {
        /// Where.
        stage: &'static str,
    },
    /// An I/O error on an open connection.
    #[error("connection error during {stage}: {detail}")]
    Io {
        /// Where.
        stage: &'static str,
        /// The OS error.
        detail: String,
    },
    /// The SMTP server sent something that is not a valid reply.
    #[error("SMTP {stage}: {detail}")]
    Smtp {
        /// Where.
        stage: &'static str,
        /// What.
        detail: String,
    },
    /// The SMTP server refused a step.
    #[error("SMTP {stage} refused: {reply}")]
    Refused {
        /// Where.
        stage: &'static str,
        /// The reply.
        reply: String,
    },
    /// EHLO did not list STARTTLS.
    #[error(
        "the server does not offer STARTTLS (EHLO reply: {ehlo}); scan port 465 with --starttls none \
         if it speaks TLS from the start"
    )]
    NoStartTls {
        /// The EHLO reply.
        ehlo: String,
    },
    /// The answer to a ClientHello was not TLS.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Scans `target`. `progress` is called as steps and connections complete.
pub async fn scan(
    target: &ScanTarget,
    opts: &ScanOptions,
    progress: &(dyn Fn(ScanProgress) + Sync),
) -> Result<ScanReport, ScanError> {
    // Boxed: the joined probes make a large future.
    Box::pin(probe::run(target, opts, progress)).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = ScanTarget::parse("MX.Example.com", None).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.starttls),
            ("MX.Example.com", 25, StartTls::Smtp)
        );
        assert_eq!(t.sni.as_deref(), Some("mx.example.com"));
        let t = ScanTarget::parse("mx.example.com:465", None).unwrap();
        assert_eq!((t.port, t.starttls), (465, StartTls::None));
        let t = ScanTarget::parse("192.0.2.1:587", Some(StartTls::Smtp)).unwrap();
        assert_eq!((t.port, t.sni), (587, None));
        let t = ScanTarget::parse("[2001:db8::1]:2525", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 2525));
        let t = ScanTarget::parse("::1", None).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.sni), ("::1", 25, None));
        for bad in [
            "", ":25", "mx:0", "mx:99999", "mx:x", "m x", "[::1", "[::1]x", "a/b",
        ] {
            assert!(
                matches!(ScanTarget::parse(bad, None), Err(ScanError::Target { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn versions_and_suites() {
        let by = |id| postern_tls::suites::by_id(id).unwrap();
        assert!(ProtocolVersion::Ssl3.allows(by(0x0005)));
        assert!(!ProtocolVersion::Tls11.allows(by(0xc02f)));
        assert!(ProtocolVersion::Tls12.allows(by(0xc02f)));
        assert!(!ProtocolVersion::Tls12.allows(by(0x1301)));
        assert!(ProtocolVersion::Tls13.allows(by(0x1301)));
        assert!(!ProtocolVersion::Tls13.allows(by(0xc02f)));
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::from_wire(v.wire()), Some(v));
        }
        assert_eq!(
            serde_json::to_string(&ProtocolVersion::Tls10).unwrap(),
            "\"TLS 1.0\""
        );
    }
}
