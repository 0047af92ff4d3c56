//! Plain settings for the inbound server; `postern-config` fills them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use postern_policy::RelaySettings;
use postern_proto::Limits;
use postern_spool::SpoolSettings;
use postern_tls::TlsSettings;

/// What a listener is for; decides defaults and the implicit-TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// MTA-to-MTA relay, usually port 25.
    Smtp,
    /// Message submission with STARTTLS (RFC 6409), usually port 587.
    Submission,
    /// Message submission over implicit TLS (RFC 8314), usually port 465.
    Submissions,
}

/// When TLS is used on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS is not offered.
    Off,
    /// STARTTLS is offered; plaintext mail is accepted.
    Optional,
    /// STARTTLS is offered and MAIL/AUTH before it get `530 5.7.0`. For
    /// `submissions` listeners this means the implicit handshake.
    Required,
}

/// Whether SMTP AUTH is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// AUTH is not offered.
    Off,
    /// AUTH is offered after TLS; unauthenticated sessions may still send to
    /// accepted domains (or relay from relay networks).
    Offered,
    /// AUTH is offered after TLS and MAIL without it gets `530 5.7.0`.
    Required,
}

/// How VRFY is answered. EXPN is always `502`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrfyMode {
    /// `252 2.5.0` (cannot verify, will accept and attempt delivery; RFC 5321 §3.5.3).
    Ambiguous,
    /// `502 5.5.1` command not implemented.
    Disabled,
}

/// Per-session limits; every one is a DoS defence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLimits {
    /// Line and path limits (RFC 5321 §4.5.3.1).
    pub proto: Limits,
    /// Largest message accepted, advertised in SIZE (RFC 1870). Default 25 MiB.
    pub max_message_size: u64,
    /// Recipients per transaction (RFC 5321 §4.5.3.1.8 requires at least 100). Default 100.
    pub max_recipients: usize,
    /// Error replies per session before `421` and close. Default 10.
    pub max_errors: usize,
    /// Wait for a command (RFC 5321 §4.5.3.2.7: 5 minutes).
    pub command_timeout: Duration,
    /// Wait for each DATA block (RFC 5321 §4.5.3.2.5 client side is 3 minutes; server side
    /// we use the same). Default 3 minutes.
    pub data_block_timeout: Duration,
    /// Wait for the TLS handshake. Default 30 seconds.
    pub tls_handshake_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            proto: Limits::default(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            command_timeout: Duration::from_mins(5),
            data_block_timeout: Duration::from_mins(3),
            tls_handshake_timeout: Duration::from_secs(30),
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSettings {
    /// Name used in logs (e.g. `smtp`, `submission`).
    pub name: String,
    /// Address to bind.
    pub addr: SocketAddr,
    /// Listener kind.
    pub kind: ListenerKind,
    /// Our name in the banner, EHLO reply and `Received:` header.
    pub hostname: String,
    /// TLS mode.
    pub tls: TlsMode,
    /// AUTH mode.
    pub auth: AuthMode,
    /// Session limits.
    pub limits: SessionLimits,
}

/// A user allowed to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name (compared exactly).
    pub name: String,
    /// Argon2 PHC hash string (`$argon2id$...`), as printed by `postern user hash`.
    pub password_hash: String,
}

/// Format of the session transcript log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptFormat {
    /// `<session id> <<< line` / `>>> line`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where and how session transcripts are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptSettings {
    /// File to append to; `None` disables transcripts.
    pub path: Option<PathBuf>,
    /// Format.
    pub format: TranscriptFormat,
}

/// Everything the inbound server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Listeners.
    pub listeners: Vec<ListenerSettings>,
    /// Server-side TLS.
    pub tls: TlsSettings,
    /// Spool.
    pub spool: SpoolSettings,
    /// Accepted domains and relay networks.
    pub relay: RelaySettings,
    /// AUTH users.
    pub users: Vec<User>,
    /// VRFY answer.
    pub vrfy: VrfyMode,
    /// Concurrent sessions over all listeners. Default 1000.
    pub max_connections: usize,
    /// Concurrent sessions from one IP address. Default 20.
    pub max_connections_per_ip: usize,
    /// Transcript log.
    pub transcript: TranscriptSettings,
    /// Offer AUTH on listeners without TLS (`[danger] allow_insecure_auth`). Default
    /// false: AUTH is only ever offered after STARTTLS or on implicit TLS.
    pub allow_insecure_auth: bool,
}
