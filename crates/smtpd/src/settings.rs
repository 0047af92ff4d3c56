//! Plain settings for the inbound server; `postern-config` fills them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use postern_policy::RelaySettings;
use postern_policy::admission::Admission;
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

pub use postern_proto::session::{AuthMode, TlsMode, VrfyMode};

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
    /// Failed AUTH attempts per session before `421 4.7.0` and close. Default 3.
    pub max_auth_failures: usize,
    /// A whole command line must arrive within this time of the previous reply
    /// (RFC 5321 §4.5.3.2.7: 5 minutes). A deadline, not an idle timer: a
    /// client trickling one byte at a time is cut off too (like Postfix with
    /// `smtpd_per_record_deadline = yes`). Default 5 minutes.
    pub command_timeout: Duration,
    /// The DATA/BDAT deadline: a body starts with this much time, every read
    /// of N octets adds N / `min_data_rate` seconds, never beyond this value
    /// (RFC 5321 §4.5.3.2.5: 3 minutes per block; Postfix
    /// `smtpd_min_data_rate`). Default 3 minutes.
    pub data_block_timeout: Duration,
    /// Octets per second a body must keep up on average (see
    /// `data_block_timeout`); 0 makes the deadline a per-read idle timer.
    /// Default 500.
    pub min_data_rate: u64,
    /// Replies must be taken by the client within this time: a client that
    /// pipelines and stops reading is cut off. Default 1 minute.
    pub write_timeout: Duration,
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
            max_auth_failures: 3,
            command_timeout: Duration::from_mins(5),
            data_block_timeout: Duration::from_mins(3),
            min_data_rate: 500,
            write_timeout: Duration::from_mins(1),
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
    /// Expect a PROXY protocol header (HAProxy v1 or v2) before SMTP, from a
    /// load balancer in `trusted_proxies`; `None` (the default): off, the TCP
    /// peer is the client.
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// A listener behind a load balancer that sends the PROXY protocol header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocol {
    /// The load balancers' addresses. A connection from anywhere else is closed
    /// without a reply: its header could claim any client address. Never empty
    /// (`postern-config` refuses an empty list).
    pub trusted_proxies: Vec<IpNet>,
    /// The whole header must arrive within this time of the accept, else the
    /// connection is closed. Default 5 seconds.
    pub timeout: Duration,
}

impl ProxyProtocol {
    /// The default header deadline.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// True when `ip` is one of the trusted proxies. An IPv4-mapped IPv6
    /// address (a dual-stack socket's view of an IPv4 peer) matches as IPv4.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }
}

/// A user allowed to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name (compared exactly).
    pub name: String,
    /// Argon2 PHC hash string (`$argon2id$...`), as printed by `postern user hash`.
    pub password_hash: String,
    /// The envelope senders this user may use (`user@domain`, `@domain`,
    /// `*`; `postern_policy::SenderLogins`); `None`: not restricted.
    pub senders: Option<Vec<String>>,
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
    /// Sender groups, mail-flow policies and DNS lists (empty: every client
    /// gets the built-in default policy).
    pub admission: Admission,
    /// Recipient validation at RCPT, per accepted domain (`[[recipients]]`;
    /// empty: any local part of an accepted domain is accepted).
    pub recipients: Vec<crate::recipients::RecipientRule>,
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
    /// `[authentication]` and `[[dkim]]`: SPF/DKIM/ARC/DMARC on the way in,
    /// DKIM signing on the way out.
    pub authentication: AuthenticationSettings,
    /// `[filters]`, `[[dictionary]]`, `[rspamd]`, `[clamav]`, `[[milter]]`:
    /// the content policy at end of data (issue 11).
    pub content: ContentSettings,
    /// Keep each message's `Subject:` in its spool envelope (and so in the
    /// mail log, the tracking index and the console): `[tracking]
    /// subjects`. Off by default: subjects are personal data.
    pub record_subjects: bool,
}

/// A rule file: its path and the text `config check` read and parsed (the
/// server parses the text it was given, and re-reads the file when it
/// changes: `crate::content`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its text when the configuration was loaded.
    pub text: String,
}

/// A `[[notification]]` template: `{sender}`, `{recipients}`, `{subject}`,
/// `{rule}`, `{queue_id}`, `{reason}` are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The name rules use (`notify "a@b" template "NAME"`).
    pub name: String,
    /// Subject template (one line).
    pub subject: String,
    /// Body template.
    pub body: String,
    /// The From / envelope sender; default `postmaster@<hostname>`.
    pub from: Option<String>,
}

/// The content policy's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSettings {
    /// Message filters: once per message.
    pub message_rules: Option<RulesFile>,
    /// Content filters: per recipient (the message is split when recipients
    /// get different outcomes).
    pub content_rules: Option<RulesFile>,
    /// `[[dictionary]]`: name and file.
    pub dictionaries: Vec<(String, PathBuf)>,
    /// `[rspamd]` and what its failure does.
    pub rspamd: Option<(
        postern_engines::RspamdSettings,
        postern_policy::content::OnFailure,
    )>,
    /// `[clamav]` and what its failure does.
    pub clamav: Option<(
        postern_engines::ClamdSettings,
        postern_policy::content::OnFailure,
    )>,
    /// `[[milter]]`s, in order.
    pub milters: Vec<postern_milter::MilterSpec>,
    /// Per milter (same order): the SMTP stage at which it is first asked
    /// (`[[milter]] stage`; `DataEnd` by default). Before end of data the
    /// conversation is replayed up to that stage and its refusal refuses
    /// the command (a recipient at RCPT); every milter still sees the whole
    /// message at end of data.
    pub milter_stages: Vec<postern_proto::session::StageKind>,
    /// `[[notification]]` templates for the rules' `notify` action.
    pub notifications: Vec<Notification>,
    /// The configured quarantines' names (a reloaded rule file may name
    /// only these).
    pub quarantines: Vec<String>,
    /// How often a message may look for changed rule files and
    /// dictionaries (`crate::content::RELOAD_CHECK`; not a file key).
    pub reload_interval: std::time::Duration,
    /// The most the content step may take for one message
    /// (`crate::content::CONTENT_DEADLINE`; not a file key).
    pub deadline: std::time::Duration,
    /// Messages larger than this are not read for the content policy:
    /// engines and milters skip them (logged), rules see the header
    /// section only. Default: `[limits] max_message_size`.
    pub max_scan_size: u64,
    /// Per-part and total decoded text a rule can see, parts and nesting
    /// (`[filters] max_text`, ...).
    pub view: postern_content::ViewLimits,
}

impl Default for ContentSettings {
    fn default() -> Self {
        Self {
            message_rules: None,
            content_rules: None,
            dictionaries: Vec::new(),
            rspamd: None,
            clamav: None,
            milters: Vec::new(),
            milter_stages: Vec::new(),
            notifications: Vec::new(),
            quarantines: postern_spool::BUILTIN_QUARANTINES
                .iter()
                .map(|q| (*q).to_owned())
                .collect(),
            reload_interval: crate::content::RELOAD_CHECK,
            deadline: crate::content::CONTENT_DEADLINE,
            max_scan_size: 25 * 1024 * 1024,
            view: postern_content::ViewLimits::default(),
        }
    }
}

impl ContentSettings {
    /// Whether anything of the content policy is configured.
    pub fn any(&self) -> bool {
        self.message_rules.is_some()
            || self.content_rules.is_some()
            || self.rspamd.is_some()
            || self.clamav.is_some()
            || !self.milters.is_empty()
    }
}

/// `[authentication]` and `[[dkim]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationSettings {
    /// Verify inbound mail (SPF, DKIM, ARC, DMARC) where the client's
    /// mail-flow policy asks for it. Default false.
    pub verify: bool,
    /// The authserv-id of our `Authentication-Results:` (RFC 8601 §2.5);
    /// `None`: the listener's hostname.
    pub authserv_id: Option<String>,
    /// Messages larger than this are not DKIM-verified (read back whole at
    /// end of data). Default 25 MiB.
    pub max_verify_size: u64,
    /// A public-suffix list file replacing the one built in.
    pub public_suffix_list: Option<PathBuf>,
    /// Memory for messages being verified or signed, over all sessions (a
    /// session waits up to 30 s for its share, then `451 4.3.2`). Default
    /// 256 MiB.
    pub verify_memory: u64,
    /// DNS servers for the checks (`[dns] nameservers`; empty: the system's).
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Per-query DNS timeout (`[dns] timeout`).
    pub dns_timeout: std::time::Duration,
    /// Overrides and trusted ARC sealers.
    pub exceptions: postern_policy::authentication::AuthExceptions,
    /// Outbound DKIM signing.
    pub signing: postern_auth::signing::SigningSettings,
    /// ARC sealing of verified mail to the `[[route]]`s with `arc_seal =
    /// true` (RFC 8617).
    pub arc_seal: Option<ArcSealSettings>,
}

/// `[authentication] arc_domain` / `arc_selector` with the routes that seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcSealSettings {
    /// `d=` of the seals.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// The RSA key (the `[[dkim]]` entry of that domain and selector).
    pub key: PathBuf,
    /// Recipient domain patterns of the sealing routes: `example.com`,
    /// `.example.com` (subdomains), `*`.
    pub routes: Vec<String>,
}

impl ArcSealSettings {
    /// Whether mail to `domain` goes through a sealing route.
    pub fn seals_for(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.routes.iter().any(|p| {
            p == "*"
                || p.strip_prefix('.').map_or(*p == domain, |d| {
                    domain
                        .strip_suffix(d)
                        .is_some_and(|head| head.ends_with('.') && head.len() > 1)
                })
        })
    }
}

impl Default for AuthenticationSettings {
    fn default() -> Self {
        Self {
            verify: false,
            authserv_id: None,
            max_verify_size: 25 * 1024 * 1024,
            public_suffix_list: None,
            verify_memory: crate::mailauth::DEFAULT_VERIFY_MEMORY,
            nameservers: Vec::new(),
            dns_timeout: std::time::Duration::from_secs(5),
            exceptions: postern_policy::authentication::AuthExceptions::default(),
            signing: postern_auth::signing::SigningSettings {
                sign_for: postern_auth::signing::SigningSettings::default_sign_for(),
                keys: Vec::new(),
            },
            arc_seal: None,
        }
    }
}
