//! Resolver settings: which name servers, static overrides, DNSSEC mode,
//! timeouts. Plain data; the `config` crate fills it from `postern.toml`.
//!
//! # Security
//! `DnssecMode::TrustAdBit` trusts the AD bit of the configured name servers:
//! they must be validating resolvers reached over a path nobody can tamper
//! with (loopback). See [`DnssecMode`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How the resolver learns whether an answer is DNSSEC-authenticated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecMode {
    /// Never authenticated (DANE cannot be used).
    Off,
    /// Trust the AD bit (RFC 4035 §3.2.3, RFC 6840 §5.8) set by the name
    /// servers: explicitly configured ones always, the system (resolv.conf)
    /// ones only when they are all loopback addresses. Queries carry the AD
    /// bit (RFC 6840 §5.7) so a validating resolver reports it. This is the
    /// Postfix model: run unbound or systemd-resolved on the host.
    #[default]
    TrustAdBit,
    /// Validate in-process with hickory (DO bit, RRSIG chain to the root
    /// trust anchor); an answer is authenticated when every record's proof is
    /// `Secure`, and a `Bogus` answer is an error.
    Validate,
}

/// One static override (the HOSTS-file equivalent): for `name`, these
/// addresses and/or MX records are used instead of asking DNS. An empty list
/// means "no override for that type": DNS is asked as usual.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaticEntry {
    /// Domain or host name (case-insensitive, trailing dot optional).
    pub name: String,
    /// Addresses answered for A/AAAA lookups of `name` (both families); their
    /// PTR lookups answer `name` too, as a hosts file does.
    #[serde(default)]
    pub a: Vec<IpAddr>,
    /// MX records `(preference, exchange)` answered for `name`; `(0, ".")`
    /// alone is a null MX.
    #[serde(default)]
    pub mx: Vec<(u16, String)>,
}

/// Settings for [`crate::Resolver`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// Name servers (UDP, then TCP on truncation). Empty: the system's
    /// (`/etc/resolv.conf`; its `search`/`domain` lines are ignored — mail
    /// domains are always fully qualified).
    pub nameservers: Vec<SocketAddr>,
    /// Static overrides; they win over DNS for their name and type.
    pub overrides: Vec<StaticEntry>,
    /// Where the "authenticated" bit of every answer comes from.
    pub dnssec: DnssecMode,
    /// Time allowed for one try (all name servers). Default 5 s.
    pub timeout: Duration,
    /// Tries per query, the first included (resolv.conf `attempts`); 0 counts
    /// as 1. Default 2.
    pub attempts: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            nameservers: Vec::new(),
            overrides: Vec::new(),
            dnssec: DnssecMode::default(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}
