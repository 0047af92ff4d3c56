//! The query and result types of the tracking store (the shared API of
//! issue 12: the CLI, the admin JSON API and the web console use them; JSON
//! is their serde form).

use serde::{Deserialize, Serialize};

/// Where the indexer stopped in the mail log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Identity of the mail-log file (inode, with the device in the high
    /// bits): a different value means the log was rotated.
    pub file_id: u64,
    /// Bytes of that file already indexed (always at a line boundary).
    pub offset: u64,
}

/// The fingerprint of a mail-log file that survives renaming and
/// compression (logrotate's `compress`: `mail.log.1.gz` is a new inode): the
/// CRC-32 of its first `len` bytes, taken when the indexer first commits a
/// checkpoint in it (`len` = up to 4 KiB, always at least its first line, and
/// every line of the mail log carries a unique event id and its time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHead {
    /// Bytes fingerprinted (1 ..= 4096).
    pub len: u32,
    /// CRC-32 (IEEE) of those bytes.
    pub crc32: u32,
}

/// A search. Every filter set must match; `Default` finds everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Exact address (case-insensitive), or `@domain` / `domain` (the domain
    /// and its subdomains).
    pub sender: Option<String>,
    /// Same forms as `sender`.
    pub recipient: Option<String>,
    /// From this time (inclusive).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start: Option<time::OffsetDateTime>,
    /// Up to this time (exclusive).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub end: Option<time::OffsetDateTime>,
    /// Stable event names; empty = all.
    #[serde(default)]
    pub events: Vec<String>,
    /// The queue id.
    pub queue_id: Option<String>,
    /// The Message-ID, with or without angle brackets.
    pub message_id: Option<String>,
    /// Substring of the subject, case-insensitive.
    pub subject: Option<String>,
    /// Client or server IP: exact, or a CIDR prefix (`192.0.2.0/24`).
    pub ip: Option<String>,
    /// `TLSv1.2`, `TLSv1.3`, … or `none` (plaintext).
    pub tls_version: Option<String>,
    /// At most this many rows; 0 = 100; capped at 10 000.
    #[serde(default)]
    pub limit: usize,
}

/// One indexed event, flattened for tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// RFC 3339 time.
    pub ts: String,
    /// Unique event id.
    pub event_id: String,
    /// Stable event name.
    pub event: String,
    /// None for session events (nothing was queued).
    pub queue_id: Option<String>,
    /// The SMTP session (session events).
    pub session: Option<String>,
    /// The `Message-ID:` value.
    pub message_id: Option<String>,
    /// The subject (only when recorded).
    pub subject: Option<String>,
    /// The reverse path (`""` = null sender).
    pub sender: Option<String>,
    /// The recipients the event concerns.
    pub recipients: Vec<String>,
    /// The SMTP client's IP.
    pub client_ip: Option<String>,
    /// The client's forward-confirmed name, or its HELO.
    pub client_name: Option<String>,
    /// Outbound: the IP connected to.
    pub server_ip: Option<String>,
    /// Outbound: the MX host.
    pub server_name: Option<String>,
    /// The listener (inbound).
    pub listener: Option<String>,
    /// Message size in octets.
    pub size: Option<u64>,
    /// RFC 3463 status.
    pub status: Option<String>,
    /// The reply that decided it, one line.
    pub reply: Option<String>,
    /// TLS version (`none` = plaintext where known).
    pub tls_version: Option<String>,
    /// TLS cipher suite.
    pub tls_cipher: Option<String>,
    /// One line: cause id, rule, group/policy, quarantine, DSN kind …
    pub detail: String,
}

/// Everything about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageLife {
    /// The queue id.
    pub queue_id: String,
    /// The `Message-ID:` value.
    pub message_id: Option<String>,
    /// The subject (only when recorded).
    pub subject: Option<String>,
    /// The reverse path.
    pub sender: Option<String>,
    /// Every recipient.
    pub recipients: Vec<String>,
    /// Every event of the message, in order.
    pub records: Vec<postern_track::TrackRecord>,
    /// Queue ids of its DSNs (and the original, for a DSN), and other
    /// queue ids with the same Message-ID.
    pub related: Vec<String>,
    /// `delivered`, `bounced`, `deferred`, `quarantined`, `partial`, `queued`, …
    pub outcome: String,
}

/// Transport-security evidence of one message (`postern track evidence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The queue id.
    pub queue_id: String,
    /// The `Message-ID:` value.
    pub message_id: Option<String>,
    /// How it came in (absent for DSNs and pickup).
    pub inbound: Option<InboundHop>,
    /// Every delivery attempt.
    pub outbound: Vec<OutboundHop>,
}

/// The inbound hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundHop {
    /// When it was received.
    pub ts: String,
    /// The client's IP.
    pub client_ip: String,
    /// The client's forward-confirmed name.
    pub client_name: Option<String>,
    /// HELO name.
    pub helo: String,
    /// Listener.
    pub listener: String,
    /// AUTH user.
    pub auth_user: Option<String>,
    /// None = plaintext.
    pub tls: Option<TlsEvidence>,
}

/// One outbound attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundHop {
    /// When the attempt ended.
    pub ts: String,
    /// Attempt number (1 = first).
    pub attempt: u32,
    /// The destination (domain, or `host:port`).
    pub destination: String,
    /// `mx`, `implicit_mx`, `smarthost`, `relayhost`.
    pub route: String,
    /// The host connected to.
    pub mx: String,
    /// `ip:port` connected to.
    pub ip: String,
    /// TLS policy level.
    pub policy: String,
    /// Why that level applied.
    pub policy_reason: String,
    /// The server offered STARTTLS.
    pub starttls_offered: Option<bool>,
    /// What TLS negotiated; None = plaintext.
    pub tls: Option<TlsEvidence>,
    /// `pkix`, `dane`, `mta-sts`, `none`.
    pub verification: String,
    /// The peer was authenticated as the policy requires.
    pub verified: bool,
    /// The verification result in words.
    pub verification_result: String,
    /// Plaintext retry after a failed handshake.
    pub downgraded: bool,
    /// `delivered`, `deferred`, `bounced`, `partial`, `failed`.
    pub outcome: String,
    /// The reply that decided it.
    pub reply: Option<String>,
    /// The classified cause and its fix.
    pub cause: Option<postern_track::CauseInfo>,
}

/// What TLS negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsEvidence {
    /// `TLSv1.3`, …
    pub version: String,
    /// IANA cipher suite name.
    pub cipher: String,
    /// Key exchange group.
    pub group: Option<String>,
    /// Server name indication.
    pub sni: Option<String>,
    /// The peer certificate (outbound).
    pub cert: Option<postern_track::PeerCert>,
}

/// Which way mail went.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Clients sending to us.
    Inbound,
    /// Servers we deliver to.
    #[default]
    Outbound,
}

impl Direction {
    /// `inbound` / `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A posture query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostureQuery {
    /// One direction, or both.
    pub direction: Option<Direction>,
    /// From this day on.
    #[serde(with = "time::serde::rfc3339")]
    pub since: time::OffsetDateTime,
    /// At most this many peers; 0 = all.
    #[serde(default)]
    pub limit: usize,
}

/// The TLS posture of one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerPosture {
    /// Which way.
    pub direction: Direction,
    /// Outbound destination domain, or inbound client name / HELO domain.
    pub peer: String,
    /// IPs seen.
    pub ips: Vec<String>,
    /// Version → count (`none` = plaintext).
    pub tls_versions: Vec<(String, u64)>,
    /// Cipher → count.
    pub ciphers: Vec<(String, u64)>,
    /// Offered (outbound) / used (inbound) STARTTLS; None when unknown.
    pub starttls: Option<bool>,
    /// Certificates that verified.
    pub verified: u64,
    /// Certificates that did not.
    pub unverified: u64,
    /// Connections under DANE.
    pub dane: u64,
    /// Connections under MTA-STS.
    pub mta_sts: u64,
    /// Plaintext retries after a failed handshake.
    pub plaintext_retries: u64,
    /// Messages (inbound) / attempts (outbound).
    pub messages: u64,
    /// Last seen, RFC 3339.
    pub last_seen: String,
    /// What would break under a stricter policy.
    pub risks: Vec<String>,
}

/// Dashboard figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Minute (RFC 3339) → messages received.
    pub per_minute_in: Vec<(String, u64)>,
    /// Minute → recipients delivered.
    pub per_minute_out: Vec<(String, u64)>,
    /// Inbound TLS version mix (`none` = plaintext).
    pub tls_in: Vec<(String, u64)>,
    /// Outbound TLS version mix.
    pub tls_out: Vec<(String, u64)>,
    /// Cause id → count (deferred, bounced, failed attempts).
    pub top_causes: Vec<(String, u64)>,
    /// Event name → count.
    pub events: Vec<(String, u64)>,
}
