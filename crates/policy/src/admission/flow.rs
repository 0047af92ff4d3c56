//! Mail-flow policies: what happens to a client once its sender group is
//! known (Cisco ESA's Host Access Table behaviour, Postfix's `smtpd_*_restrictions`
//! and rate limits in one place), and the reply of every limit.
//!
//! # Security
//! Every limit is a resource or abuse defence with its own reply code, so a
//! client (and the admin reading its bounce) learns which one it hit. Limits
//! answer with `4xx` (try later) except the ones a retry cannot fix.
//!
//! # Standards
//! RFC 5321 §3.8 and §4.2.5 (`421`), §4.5.3.1.10 (`452` too many recipients),
//! RFC 3463 (X.4.5 / X.5.3 / X.7.0 / X.7.1 / X.7.25), RFC 7372 §3.3 (X.7.25
//! reverse DNS validation failed), RFC 1870 (SIZE).

use std::net::IpAddr;
use std::time::Duration;

use postern_proto::session::{AuthMode, TlsMode};
use postern_proto::{EnhancedCode, Reply};

/// What a policy does with the client (ESA "behaviour").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowAction {
    /// Accept mail for the accepted domains (relay rules apply).
    Accept,
    /// Accept and relay to any domain (like a relay network).
    Relay,
    /// Refuse with a `5xx`, at connect or at each RCPT ([`RejectAt`]).
    Reject,
    /// Refuse with a `4xx` (`421` at connect, or at each RCPT).
    TempFail,
    /// Close the TCP connection without a greeting.
    TcpRefuse,
    /// Go on with the next sender group.
    Continue,
}

impl FlowAction {
    /// The name in the configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowAction::Accept => "accept",
            FlowAction::Relay => "relay",
            FlowAction::Reject => "reject",
            FlowAction::TempFail => "tempfail",
            FlowAction::TcpRefuse => "tcp-refuse",
            FlowAction::Continue => "continue",
        }
    }

    /// Every action, for "what is allowed" messages.
    pub const ALL: &'static [&'static str] = &[
        "accept",
        "relay",
        "reject",
        "tempfail",
        "tcp-refuse",
        "continue",
    ];

    /// Parses a configuration value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accept" => FlowAction::Accept,
            "relay" => FlowAction::Relay,
            "reject" => FlowAction::Reject,
            "tempfail" => FlowAction::TempFail,
            "tcp-refuse" => FlowAction::TcpRefuse,
            "continue" => FlowAction::Continue,
            _ => return None,
        })
    }
}

/// When a `reject` / `tempfail` policy answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectAt {
    /// In place of the greeting (RFC 5321 §3.1: `554`, then `503` to all but QUIT).
    Connect,
    /// At each RCPT, so the client's log shows who it tried to reach (ESA
    /// "delayed rejection", Postfix `smtpd_delay_reject`).
    Rcpt,
}

/// One `[[mail_flow_policy]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // independent switches of the configuration, one key each
pub struct MailFlowPolicy {
    /// Its name (ESA style: `ACCEPTED`, `BLOCKED`, `THROTTLED`, `RELAYED`).
    pub name: String,
    /// The behaviour.
    pub action: FlowAction,
    /// For `reject` / `tempfail`: when.
    pub reject_at: RejectAt,
    /// For `reject` / `tempfail`: the reply (default `554 5.7.1` / `421 4.7.0`
    /// at connect, `550 5.7.1` / `450 4.7.1` at RCPT).
    pub reply: Option<Reply>,
    /// Text after `220 hostname ESMTP` in the greeting.
    pub banner: Option<String>,
    /// Overrides the listener's TLS mode.
    pub tls: Option<TlsMode>,
    /// Overrides the listener's AUTH mode.
    pub auth: Option<AuthMode>,
    /// Refuse clients without a PTR record (`554 5.7.25` at connect; `421
    /// 4.7.25` when the lookup fails).
    pub require_ptr: bool,
    /// Messages in one session; then `421 4.7.0` at MAIL.
    pub max_messages_per_session: Option<u64>,
    /// Recipients per message; then `452 4.5.3` at RCPT.
    pub max_recipients_per_message: Option<usize>,
    /// Largest message (advertised in SIZE); then `552 5.3.4`.
    pub max_message_size: Option<u64>,
    /// Sessions open at once from one address; then `421 4.7.0` at connect.
    pub max_concurrent_connections_per_ip: Option<u64>,
    /// New sessions per minute from one address; then `421 4.7.0` at connect.
    pub max_connections_per_minute_per_ip: Option<u64>,
    /// Accepted recipients per hour from one address, over all listeners
    /// (and nodes, with a shared counter store); then `452 4.5.3` at RCPT.
    pub max_recipients_per_hour_per_ip: Option<u64>,
    /// Messages per hour per envelope sender; then `450 4.7.1` at MAIL.
    pub max_messages_per_hour_per_sender: Option<u64>,
    /// Senders (`user@domain`, `@domain`) exempt from the sender rate.
    pub sender_rate_exceptions: Vec<String>,
    /// Invalid recipients per hour per address before directory-harvest
    /// prevention refuses every RCPT (DHAP).
    pub max_invalid_recipients_per_hour: Option<u64>,
    /// Close the connection when the DHAP budget is spent.
    pub dhap_drop: bool,
    /// Once the DHAP budget is spent, answer every RCPT `451 4.7.1` (try
    /// later) instead of `550 5.1.1`: a legitimate sender with many stale
    /// addresses does not bounce its valid recipients; a harvester still
    /// learns nothing (every recipient gets the same answer).
    pub dhap_temporary: bool,
    /// Greylist this policy's clients.
    pub greylist: bool,
    /// Never banned for failed AUTH (monitoring, proxies, partners).
    pub exempt_from_bans: bool,
    /// Which message-authentication checks run (wired by the
    /// mail-authentication work).
    pub verify: AuthChecks,
    /// What SPF / DMARC failures do (issue 10).
    pub auth_actions: crate::authentication::AuthActions,
    /// Spam / virus scanning, milters, filters and what their verdicts do
    /// (issue 11).
    pub content: crate::content::ContentActions,
}

/// SPF / DKIM / DMARC on or off for a policy (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // three independent switches, named as in the ESA
pub struct AuthChecks {
    /// SPF (RFC 7208).
    pub spf: bool,
    /// DKIM verification (RFC 6376).
    pub dkim: bool,
    /// DMARC (RFC 7489).
    pub dmarc: bool,
}

impl Default for AuthChecks {
    fn default() -> Self {
        Self {
            spf: true,
            dkim: true,
            dmarc: true,
        }
    }
}

impl MailFlowPolicy {
    /// A policy with `action` and no limits.
    pub fn new(name: impl Into<String>, action: FlowAction) -> Self {
        Self {
            name: name.into(),
            action,
            reject_at: RejectAt::Connect,
            reply: None,
            banner: None,
            tls: None,
            auth: None,
            require_ptr: false,
            max_messages_per_session: None,
            max_recipients_per_message: None,
            max_message_size: None,
            max_concurrent_connections_per_ip: None,
            max_connections_per_minute_per_ip: None,
            max_recipients_per_hour_per_ip: None,
            max_messages_per_hour_per_sender: None,
            sender_rate_exceptions: Vec::new(),
            max_invalid_recipients_per_hour: None,
            dhap_drop: false,
            dhap_temporary: false,
            greylist: false,
            exempt_from_bans: false,
            verify: AuthChecks::default(),
            auth_actions: crate::authentication::AuthActions::default(),
            content: crate::content::ContentActions::default(),
        }
    }

    /// The built-in policy when no sender group matches (or none is
    /// configured): accept under the relay rules, no limits.
    pub fn default_accept() -> Self {
        Self::new("DEFAULT", FlowAction::Accept)
    }

    /// The reply of a `reject`/`tempfail` policy at `at` for `ip`.
    pub fn refusal(&self, at: RejectAt, ip: IpAddr) -> Reply {
        if let Some(r) = &self.reply {
            return r.clone();
        }
        let temp = self.action == FlowAction::TempFail;
        match (temp, at) {
            (false, RejectAt::Connect) => Reply::new(
                554,
                Some(EnhancedCode::new(5, 7, 1)),
                format!("Access denied for [{ip}]"),
            ),
            (false, RejectAt::Rcpt) => Reply::new(
                550,
                Some(EnhancedCode::new(5, 7, 1)),
                format!("Access denied for [{ip}]"),
            ),
            (true, RejectAt::Connect) => Reply::new(
                421,
                Some(EnhancedCode::new(4, 7, 0)),
                format!("Mail from [{ip}] is not accepted now, try again later"),
            ),
            (true, RejectAt::Rcpt) => Reply::new(
                450,
                Some(EnhancedCode::new(4, 7, 1)),
                format!("Mail from [{ip}] is not accepted now, try again later"),
            ),
        }
    }

    /// True when `sender` (an address) is in the sender-rate exception list.
    pub fn sender_exempt(&self, sender: &str) -> bool {
        let sender = sender.to_ascii_lowercase();
        self.sender_rate_exceptions.iter().any(|e| {
            let e = e.to_ascii_lowercase();
            if e.starts_with('@') {
                sender.ends_with(&e)
            } else {
                sender == e
            }
        })
    }
}

/// `[greylist]`: the triplet (client network, sender, recipient) must come
/// back after `delay` and within `retry_window`; then it passes for
/// `pass_lifetime`, and a network with `auto_allow_after` passes is not
/// greylisted any more (postgrey's auto-whitelisting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreylistSettings {
    /// Minimum wait before a retry passes. Default 5 minutes.
    pub delay: Duration,
    /// How long a first attempt is remembered. Default 24 hours.
    pub retry_window: Duration,
    /// How long a passed triplet (and an auto-allowed network) passes.
    /// Default 36 days.
    pub pass_lifetime: Duration,
    /// Passed triplets after which the client network is no longer
    /// greylisted; 0: never. Default 5.
    pub auto_allow_after: u64,
}

impl Default for GreylistSettings {
    fn default() -> Self {
        Self {
            delay: Duration::from_mins(5),
            retry_window: Duration::from_hours(24),
            pass_lifetime: Duration::from_hours(36 * 24),
            auto_allow_after: 5,
        }
    }
}

/// `[auth_ban]`: failed AUTH attempts per client network and per login
/// within `window`; past either limit, a ban of `ban` (the network: `421` at
/// connect; the login: `454 4.7.0` to AUTH whatever the password). Relay
/// networks and groups whose policy has `exempt_from_bans` are never banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthBanSettings {
    /// Off: count nothing, ban nobody. Default on.
    pub enabled: bool,
    /// Failures from one network (IPv4 address, IPv6 /64). Default 20.
    pub max_failures_per_ip: u64,
    /// Failures for one login name. Default 10.
    pub max_failures_per_login: u64,
    /// The counting window. Default 15 minutes.
    pub window: Duration,
    /// How long a ban lasts. Default 15 minutes.
    pub ban: Duration,
}

impl Default for AuthBanSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failures_per_ip: 20,
            max_failures_per_login: 10,
            window: Duration::from_mins(15),
            ban: Duration::from_mins(15),
        }
    }
}

/// Greylisting's decision for one triplet, from what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greylisted {
    /// Let it through (allowed before, or the delay has passed now).
    Pass,
    /// Defer: try again in this long.
    Defer(Duration),
}

/// First seen at `first_seen` (unix seconds), now `now`: pass or defer.
pub fn greylist_decision(g: &GreylistSettings, first_seen: u64, now: u64) -> Greylisted {
    let waited = Duration::from_secs(now.saturating_sub(first_seen));
    if waited >= g.delay {
        Greylisted::Pass
    } else {
        Greylisted::Defer(g.delay.saturating_sub(waited))
    }
}

/// The reply of each limit (one table: the admin's bounce names the limit).
pub mod replies {
    use super::{Duration, EnhancedCode, IpAddr, Reply};

    /// `max_concurrent_connections_per_ip` (Postfix `smtpd_client_connection_count_limit`).
    pub fn too_many_connections(ip: IpAddr) -> Reply {
        Reply::new(
            421,
            Some(EnhancedCode::new(4, 7, 0)),
            format!("Too many connections from [{ip}], try again later"),
        )
    }

    /// `max_connections_per_minute_per_ip` (Postfix `smtpd_client_connection_rate_limit`).
    pub fn connection_rate(ip: IpAddr) -> Reply {
        Reply::new(
            421,
            Some(EnhancedCode::new(4, 7, 0)),
            format!("Too many connections per minute from [{ip}], try again later"),
        )
    }

    /// `max_messages_per_session` (ESA "max messages per connection").
    pub fn messages_per_session() -> Reply {
        Reply::new(
            421,
            Some(EnhancedCode::new(4, 7, 0)),
            "Too many messages in this session, reconnect to send more",
        )
    }

    /// `max_recipients_per_hour_per_ip` (ESA "max recipients per hour").
    pub fn recipient_rate(ip: IpAddr) -> Reply {
        Reply::new(
            452,
            Some(EnhancedCode::new(4, 5, 3)),
            format!("Too many recipients this hour from [{ip}], try again later"),
        )
    }

    /// `max_messages_per_hour_per_sender` (Postfix `smtpd_client_message_rate_limit`).
    pub fn sender_rate(sender: &str) -> Reply {
        Reply::new(
            450,
            Some(EnhancedCode::new(4, 7, 1)),
            format!("Too much mail from <{sender}> this hour, try again later"),
        )
    }

    /// `require_ptr` (Postfix `reject_unknown_reverse_client_hostname`), in
    /// place of the greeting (RFC 5321 §3.1: `554`).
    pub fn no_ptr(ip: IpAddr) -> Reply {
        Reply::new(
            554,
            Some(EnhancedCode::new(5, 7, 25)),
            format!("Client host [{ip}] has no PTR record (RFC 7372 reverse DNS required)"),
        )
    }

    /// `require_ptr` when the PTR lookup failed: a DNS fault is never a `5xx`
    /// (`421` and close, RFC 5321 §3.8).
    pub fn ptr_unavailable(ip: IpAddr) -> Reply {
        Reply::new(
            421,
            Some(EnhancedCode::new(4, 7, 25)),
            format!("Client host [{ip}]: reverse DNS lookup failed, try again later"),
        )
    }

    /// DHAP: the invalid-recipient budget is spent.
    pub fn harvest(ip: IpAddr) -> Reply {
        Reply::new(
            550,
            Some(EnhancedCode::new(5, 1, 1)),
            format!("Too many invalid recipients from [{ip}]"),
        )
    }

    /// DHAP with `dhap_temporary`: the same refusal, to be retried later
    /// (RFC 5321 §4.2.5: a 4xx to RCPT refuses that recipient for now).
    pub fn harvest_temporary(ip: IpAddr) -> Reply {
        Reply::new(
            451,
            Some(EnhancedCode::new(4, 7, 1)),
            format!("Too many invalid recipients from [{ip}]; try again later"),
        )
    }

    /// `[auth_ban]`: the client network is banned for failed logins.
    pub fn banned(ip: IpAddr) -> Reply {
        Reply::new(
            421,
            Some(EnhancedCode::new(4, 7, 0)),
            format!("Too many failed logins from [{ip}], try again later"),
        )
    }

    /// Greylisting: try again after `delay`.
    pub fn greylisted(delay: Duration) -> Reply {
        Reply::new(
            450,
            Some(EnhancedCode::new(4, 7, 1)),
            format!(
                "Greylisted, please try again in {} seconds",
                delay.as_secs().max(1)
            ),
        )
    }
}
