//! Plain settings for delivery, with documented defaults. Only `crates/config`
//! reads files; it fills these from `[delivery]`, `[[route]]` and `[dns]`.
//!
//! # Security
//! Holds smart-host AUTH passwords: `Debug` redacts them, and nothing here is
//! logged whole.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use postern_spool::Quarantines;
use postern_tls::client::ClientTlsSettings;

pub use crate::maildir::MaildirTemplate;

/// Outbound TLS policy levels (ARCHITECTURE.md, "Outbound TLS policy levels"),
/// shared with `postern tls verify` through `postern_tlspolicy` (ADR 0005).
pub use postern_tlspolicy::Level as TlsLevel;

/// MTA-STS policy fetch settings (timeouts, size cap, URL template).
pub use postern_tlspolicy::mta_sts::FetchSettings as MtaStsFetch;

/// A domain pattern of a `[[route]]`: `example.com` (that domain), `.example.com`
/// (its subdomains, not itself) or `*` (everything). Stored lower case without a
/// trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    /// Exactly this domain.
    Exact(String),
    /// Any subdomain of this domain (the stored value has no leading dot).
    Subdomains(String),
    /// Every domain.
    Any,
}

impl DomainPattern {
    /// Parses `example.com`, `.example.com` or `*`. The caller validates the
    /// domain syntax (config does, with a location).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if s == "*" {
            return Ok(DomainPattern::Any);
        }
        if let Some(rest) = s.strip_prefix('.') {
            if rest.is_empty() || rest.starts_with('.') {
                return Err(format!("{s:?} is not a domain pattern"));
            }
            return Ok(DomainPattern::Subdomains(rest.to_owned()));
        }
        if s.is_empty() || s.contains('*') {
            return Err(format!(
                "{s:?} is not a domain pattern; write \"example.com\", \".example.com\" (subdomains) or \"*\""
            ));
        }
        Ok(DomainPattern::Exact(s))
    }

    /// Whether `domain` (lower case, no trailing dot) matches.
    pub fn matches(&self, domain: &str) -> bool {
        match self {
            DomainPattern::Any => true,
            DomainPattern::Exact(d) => d == domain,
            DomainPattern::Subdomains(d) => domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Subdomains(d) => write!(f, ".{d}"),
            DomainPattern::Any => f.write_str("*"),
        }
    }
}

/// AUTH credentials for a smart host (RFC 4954, PLAIN over TLS only).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password (never logged).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A smart host: all mail of a route goes to this host instead of the MX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartHost {
    /// Host name or IP address (an IP literal skips DNS).
    pub host: String,
    /// Port (25, 587, 465, …).
    pub port: u16,
    /// TLS from the first byte (RFC 8314, port 465) instead of STARTTLS.
    pub implicit_tls: bool,
    /// AUTH credentials, sent only over TLS.
    pub auth: Option<Credentials>,
}

impl SmartHost {
    /// `host:port`, the destination key.
    pub fn key(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Local delivery into Maildir folders (`crate::maildir`): the final
/// delivery for accepted domains that live on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildirSettings {
    /// Where each recipient's Maildir is: `/var/vmail/{domain}/{user}`.
    pub template: MaildirTemplate,
    /// Characters that start an address extension (`+` turns `bob+news`
    /// into the mailbox `bob`, as Postfix's `recipient_delimiter`); `None`
    /// = the whole local part names the mailbox.
    pub recipient_delimiter: Option<String>,
    /// Create a missing Maildir (and `tmp/`, `new/`, `cur/`, mode 0700).
    /// Default false: a missing Maildir bounces `550 5.1.1`.
    pub create: bool,
}

/// Where a route sends mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// Look up the recipient domain's MX records (RFC 5321 §5.1).
    Mx,
    /// Send to this host.
    SmartHost(SmartHost),
    /// Deliver into local Maildir folders (no network, no TLS).
    Maildir(MaildirSettings),
}

/// One `[[route]]`: first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSettings {
    /// Domains this route applies to.
    pub domains: Vec<DomainPattern>,
    /// Where mail goes.
    pub target: RouteTarget,
    /// TLS level; `None` = `DeliverySettings::default_tls`.
    pub tls: Option<TlsLevel>,
    /// PEM file of trust anchors for `verify` (instead of the system roots).
    pub ca_file: Option<PathBuf>,
    /// Where the route is written (`route[2]`), for "why this level applied".
    pub origin: String,
}

/// Delivery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Our name in EHLO and in DSNs (`Reporting-MTA`). Default `localhost`.
    pub hostname: String,
    /// Delay before each retry; the last one repeats. Default 5m, 10m, 20m, 40m,
    /// then 1h.
    pub retry_schedule: Vec<Duration>,
    /// Time after acceptance when undelivered recipients bounce as expired
    /// (`4.4.7`). Default 5 days.
    pub max_lifetime: Duration,
    /// Age after which one delay warning DSN is sent; `None` disables. Default 4h.
    pub delay_warning: Option<Duration>,
    /// Concurrent connections to one destination (domain or smart host).
    /// Default 20, Postfix's `default_destination_concurrency_limit`: with 10,
    /// delivery to one busy smart host fell ~30 % behind 50 inbound sessions
    /// (docs/benchmarks.md, issue 8).
    pub max_connections_per_destination: usize,
    /// Concurrent connections in total. Default 100.
    pub max_connections: usize,
    /// Messages sent over one connection before it is closed (connection
    /// reuse). Default 100.
    pub max_messages_per_connection: usize,
    /// TCP connect timeout. Default 30s.
    pub connect_timeout: Duration,
    /// Per-command timeout (RFC 5321 §4.5.3.2 suggests 5 minutes). Default 5m.
    pub command_timeout: Duration,
    /// Level for destinations no route names. Default `opportunistic`.
    pub default_tls: TlsLevel,
    /// PEM file of trust anchors for `verify` when a route names none; `None`
    /// = the system roots.
    pub ca_file: Option<PathBuf>,
    /// Global smart host for every domain no route matches; `None` = MX.
    pub relayhost: Option<SmartHost>,
    /// TLS level for the relay host; `None` = `default_tls`.
    pub relayhost_tls: Option<TlsLevel>,
    /// Per-domain routes, first match wins.
    pub routes: Vec<RouteSettings>,
    /// Where undeliverable DSNs go. Default `<data_dir>/badmail`.
    pub badmail_dir: PathBuf,
    /// The mail log (JSON lines). Default `<data_dir>/log/mail.log`; `None`
    /// disables it.
    pub mail_log: Option<PathBuf>,
    /// Port used for MX delivery. Default 25 (tests use another).
    pub smtp_port: u16,
    /// Raise the level of destinations that use `default_tls` (no route names
    /// them) to `dane` when their MX host publishes DNSSEC-authenticated TLSA
    /// records, or to `mta-sts` when the domain publishes an MTA-STS policy in
    /// mode `enforce` (ARCHITECTURE.md: "upgraded automatically"). Default
    /// true. Levels written in a `[[route]]` are never changed.
    pub upgrade_tls: bool,
    /// Our client TLS: versions, suites, groups, client certificate,
    /// resumption. Default: TLS 1.2–1.3, built-in suites, no client
    /// certificate, resumption on. SNI is always the host name connected to.
    pub client_tls: ClientTlsSettings,
    /// MTA-STS policy fetches: bounded time and size, the URL template.
    pub mta_sts: MtaStsFetch,
    /// Where fetched MTA-STS policies are cached (RFC 8461 §5.1: a cached
    /// policy protects against an attacker who blocks the TXT lookup or the
    /// fetch). Default `<data_dir>/mta-sts`; `None` disables the cache.
    pub mta_sts_cache: Option<PathBuf>,
    /// Named quarantines: retention and what happens at expiry
    /// (`[[quarantine]]`; `postern_spool::Quarantines` has the built-ins).
    pub quarantines: Quarantines,
    /// Recipient domain patterns of the `[[route]]`s with `arc_seal = true`
    /// (the smtpd seals mail to them at receipt; delivery does not use it).
    pub arc_seal_domains: Vec<String>,
}

/// RFC 5321 §4.5.4.1: retry no sooner than 30 minutes is the RFC's advice for the
/// *first* retry; most MTAs retry sooner (Postfix 5m) because greylisting
/// retries pay off early. Ours: 5m, 10m, 20m, 40m, then hourly.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_mins(5),
    Duration::from_mins(10),
    Duration::from_mins(20),
    Duration::from_mins(40),
    Duration::from_hours(1),
];

impl DeliverySettings {
    /// Defaults, with data under `data_dir`.
    pub fn new(data_dir: &std::path::Path) -> Self {
        Self {
            hostname: "localhost".into(),
            retry_schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
            max_lifetime: Duration::from_hours(5 * 24),
            delay_warning: Some(Duration::from_hours(4)),
            max_connections_per_destination: 20,
            max_connections: 100,
            max_messages_per_connection: 100,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_mins(5),
            default_tls: TlsLevel::Opportunistic,
            ca_file: None,
            relayhost: None,
            relayhost_tls: None,
            routes: Vec::new(),
            badmail_dir: data_dir.join("badmail"),
            mail_log: Some(data_dir.join("log").join("mail.log")),
            smtp_port: 25,
            upgrade_tls: true,
            client_tls: ClientTlsSettings::default(),
            mta_sts: MtaStsFetch::default(),
            mta_sts_cache: Some(data_dir.join("mta-sts")),
            quarantines: Quarantines::default(),
            arc_seal_domains: Vec::new(),
        }
    }

    /// The delay before retry number `n` (1 = first retry): the schedule's
    /// `n-1`th entry, the last one repeating. An empty schedule means 1 hour.
    pub fn retry_delay(&self, n: u32) -> Duration {
        let i = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_schedule
            .get(i)
            .or(self.retry_schedule.last())
            .copied()
            .unwrap_or(Duration::from_hours(1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let exact = DomainPattern::parse("Example.COM.").unwrap();
        assert!(exact.matches("example.com"));
        assert!(!exact.matches("mail.example.com"));
        let sub = DomainPattern::parse(".example.com").unwrap();
        assert!(sub.matches("mail.example.com"));
        assert!(sub.matches("a.b.example.com"));
        assert!(!sub.matches("example.com"));
        assert!(!sub.matches("badexample.com"));
        assert!(DomainPattern::parse("*").unwrap().matches("anything.test"));
        assert!(DomainPattern::parse("*.example.com").is_err());
        assert!(DomainPattern::parse(".").is_err());
        assert_eq!(sub.to_string(), ".example.com");
    }

    #[test]
    fn retry_schedule_repeats_last() {
        let s = DeliverySettings::new(std::path::Path::new("/d"));
        assert_eq!(s.retry_delay(1), Duration::from_mins(5));
        assert_eq!(s.retry_delay(4), Duration::from_mins(40));
        assert_eq!(s.retry_delay(5), Duration::from_hours(1));
        assert_eq!(s.retry_delay(500), Duration::from_hours(1));
    }

    #[test]
    fn credentials_are_redacted() {
        let c = Credentials {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
