//! The relay decision for one RCPT.

use std::net::IpAddr;

use ipnet::IpNet;

/// Relay settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelaySettings {
    /// Domains we accept mail for (final destination or gateway). Matching is
    /// ASCII case-insensitive; an entry `.example.com` also matches subdomains.
    pub accepted_domains: Vec<String>,
    /// Client networks allowed to relay to any domain. Empty by default.
    pub relay_networks: Vec<IpNet>,
}

/// A set of domain patterns (exact names, or `.suffix` for subdomains).
#[derive(Debug, Clone, Default)]
pub struct Domains {
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl Domains {
    /// Builds the set; entries are lower-cased and a trailing dot removed.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(entries: I) -> Self {
        let mut d = Self::default();
        for e in entries {
            let e = e.as_ref().trim().trim_end_matches('.').to_ascii_lowercase();
            if e.starts_with('.') {
                d.suffixes.push(e);
            } else if !e.is_empty() {
                d.exact.push(e);
            }
        }
        d
    }

    /// True when `domain` is in the set.
    pub fn contains(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.exact.contains(&domain) || self.suffixes.iter().any(|s| domain.ends_with(s.as_str()))
    }
}

/// What to do with one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptDecision {
    /// The domain is ours: accept.
    AcceptLocal,
    /// Not ours, but the client may relay (relay network or authenticated).
    AcceptRelay,
    /// Not ours and the client may not relay: `554 5.7.1` (RFC 5321 §3.6.2).
    RejectRelay,
}

/// The relay policy built from settings.
#[derive(Debug, Clone, Default)]
pub struct RelayPolicy {
    domains: Domains,
    networks: Vec<IpNet>,
}

impl RelayPolicy {
    /// Builds the policy.
    pub fn new(settings: &RelaySettings) -> Self {
        Self {
            domains: Domains::new(&settings.accepted_domains),
            networks: settings.relay_networks.clone(),
        }
    }

    /// True when `ip` is in a relay network. IPv4-mapped IPv6 addresses are
    /// compared as IPv4 so `::ffff:10.0.0.1` cannot dodge a `10.0.0.0/8` entry.
    pub fn is_relay_client(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// Decides for one recipient domain.
    pub fn decide(
        &self,
        rcpt_domain: &str,
        client_ip: IpAddr,
        authenticated: bool,
    ) -> RcptDecision {
        if self.domains.contains(rcpt_domain) {
            RcptDecision::AcceptLocal
        } else if authenticated || self.is_relay_client(client_ip) {
            RcptDecision::AcceptRelay
        } else {
            RcptDecision::RejectRelay
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(domains: &[&str], nets: &[&str]) -> RelayPolicy {
        RelayPolicy::new(&RelaySettings {
            accepted_domains: domains.iter().map(|s| (*s).to_owned()).collect(),
            relay_networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
        })
    }

    #[test]
    fn default_relays_for_nobody() {
        let p = RelayPolicy::default();
        let ip = "127.0.0.1".parse().unwrap();
        assert_eq!(
            p.decide("example.org", ip, false),
            RcptDecision::RejectRelay
        );
    }

    #[test]
    fn local_domains_case_insensitive_and_suffix() {
        let p = policy(&["Example.COM", ".corp.example"], &[]);
        let ip = "192.0.2.1".parse().unwrap();
        assert_eq!(
            p.decide("example.com.", ip, false),
            RcptDecision::AcceptLocal
        );
        assert_eq!(
            p.decide("mx.corp.example", ip, false),
            RcptDecision::AcceptLocal
        );
        assert_eq!(
            p.decide("corp.example", ip, false),
            RcptDecision::RejectRelay
        );
        assert_eq!(
            p.decide("notexample.com", ip, false),
            RcptDecision::RejectRelay
        );
    }

    #[test]
    fn relay_networks_and_auth() {
        let p = policy(&["example.com"], &["10.0.0.0/8"]);
        assert_eq!(
            p.decide("other.org", "10.1.2.3".parse().unwrap(), false),
            RcptDecision::AcceptRelay
        );
        assert_eq!(
            p.decide("other.org", "::ffff:10.1.2.3".parse().unwrap(), false),
            RcptDecision::AcceptRelay
        );
        assert_eq!(
            p.decide("other.org", "11.1.2.3".parse().unwrap(), false),
            RcptDecision::RejectRelay
        );
        assert_eq!(
            p.decide("other.org", "11.1.2.3".parse().unwrap(), true),
            RcptDecision::AcceptRelay
        );
    }
}
