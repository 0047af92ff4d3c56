//! Lookup results and the pure MX rules: null MX, implicit MX, preference
//! order with equal preferences shuffled.
//!
//! # Security
//! MX data comes from the network: exchanges are only names here; nothing is
//! connected to. A root exchange (".") is never returned as a host.
//!
//! # Standards
//! RFC 5321 §5.1 (MX order, randomise equal preferences, implicit MX),
//! RFC 7505 §3 (null MX), RFC 6698 §2.1 (TLSA fields), RFC 1035 §3.3.14 (TXT).

use std::net::IpAddr;

use rand::Rng;
use rand::seq::SliceRandom;

/// What an MX lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MxKind {
    /// MX records; `hosts` holds them in the order to try.
    Mx,
    /// A null MX (RFC 7505): the domain accepts no mail. `hosts` is empty;
    /// mail to it bounces at once.
    NullMx,
    /// No MX records (NODATA): the domain itself is the only host, as if it
    /// had an MX with preference 0 (RFC 5321 §5.1).
    Implicit,
}

/// One mail exchanger.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MxHost {
    /// Lower is tried first.
    pub preference: u16,
    /// Host name, lower case, no trailing dot.
    pub exchange: String,
}

/// Result of [`crate::Resolver::mx`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MxLookup {
    /// The domain asked about (lower case, no trailing dot).
    pub domain: String,
    /// MX, null MX or implicit MX.
    pub kind: MxKind,
    /// Hosts in the order to try (see [`MxKind`]).
    pub hosts: Vec<MxHost>,
    /// DNSSEC-authenticated per the resolver's [`crate::DnssecMode`]
    /// (for `Implicit`: the denial of MX records was).
    pub authenticated: bool,
}

/// Result of [`crate::Resolver::addresses`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AddrLookup {
    /// The host asked about (lower case, no trailing dot).
    pub host: String,
    /// IPv4 addresses (A) first, then IPv6 (AAAA), each in answer order,
    /// without duplicates.
    pub addrs: Vec<IpAddr>,
    /// Every address set that answered was DNSSEC-authenticated.
    pub authenticated: bool,
}

/// Result of [`crate::Resolver::txt`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TxtLookup {
    /// The name asked about.
    pub name: String,
    /// One entry per TXT record, its character-strings joined without
    /// separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2); invalid UTF-8 replaced.
    pub records: Vec<String>,
    /// DNSSEC-authenticated.
    pub authenticated: bool,
}

/// Result of [`crate::Resolver::tlsa`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlsaLookup {
    /// The TLSA owner name asked about (`_25._tcp.host`).
    pub name: String,
    /// The records, in answer order.
    pub records: Vec<Tlsa>,
    /// DNSSEC-authenticated. RFC 7672 §2.2: only authenticated TLSA records
    /// may be used for DANE.
    pub authenticated: bool,
}

/// One TLSA record (RFC 6698 §2.1), fields as numbers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tlsa {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 full certificate, 1 SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// Certificate association data.
    pub data: Vec<u8>,
}

/// Is this exchange the root (".", as in a null MX)?
fn is_root(exchange: &str) -> bool {
    exchange.trim_end_matches('.').is_empty()
}

/// Normalise an exchange name: lower case, no trailing dot.
pub(crate) fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Turn the MX records of `domain` into an [`MxLookup`] (records must not be
/// empty; no records is [`MxKind::Implicit`], decided by the caller).
///
/// - exactly one record whose exchange is "." → null MX (RFC 7505 §3; any
///   preference is accepted: the root can never be a mail host);
/// - otherwise "." exchanges are dropped (RFC 7505 §3 forbids mixing them
///   with real MX records) and the rest is ordered by [`order_hosts`].
pub(crate) fn classify_mx(
    domain: &str,
    records: Vec<(u16, String)>,
    authenticated: bool,
    rng: &mut impl Rng,
) -> MxLookup {
    let total = records.len();
    let hosts: Vec<MxHost> = records
        .into_iter()
        .filter(|(_, exchange)| !is_root(exchange))
        .map(|(preference, exchange)| MxHost {
            preference,
            exchange: normalise(&exchange),
        })
        .collect();
    if hosts.is_empty() {
        return MxLookup {
            domain: domain.to_owned(),
            kind: MxKind::NullMx,
            hosts,
            authenticated,
        };
    }
    if hosts.len() != total {
        tracing::warn!(
            domain,
            "null MX mixed with other MX records (RFC 7505 §3 forbids it); ignoring the null MX"
        );
    }
    MxLookup {
        domain: domain.to_owned(),
        kind: MxKind::Mx,
        hosts: order_hosts(hosts, rng),
        authenticated,
    }
}

/// The implicit MX of `domain` (RFC 5321 §5.1): the domain itself, preference 0.
pub(crate) fn implicit_mx(domain: &str, authenticated: bool) -> MxLookup {
    MxLookup {
        domain: domain.to_owned(),
        kind: MxKind::Implicit,
        hosts: vec![MxHost {
            preference: 0,
            exchange: domain.to_owned(),
        }],
        authenticated,
    }
}

/// Sort by preference, lowest first, shuffling hosts of equal preference
/// (RFC 5321 §5.1: "the sender-SMTP MUST randomize them to spread the load").
/// A host listed twice keeps only its most preferred entry.
pub fn order_hosts(mut hosts: Vec<MxHost>, rng: &mut impl Rng) -> Vec<MxHost> {
    hosts.sort_by(|a, b| {
        a.preference
            .cmp(&b.preference)
            .then_with(|| a.exchange.cmp(&b.exchange))
    });
    hosts.dedup_by(|later, earlier| later.exchange == earlier.exchange);
    let mut ordered = Vec::with_capacity(hosts.len());
    let mut rest = hosts.as_mut_slice();
    while let Some(first) = rest.first() {
        let preference = first.preference;
        let same = rest
            .iter()
            .take_while(|h| h.preference == preference)
            .count();
        let (group, tail) = rest.split_at_mut(same);
        group.shuffle(rng);
        ordered.extend(group.iter().cloned());
        rest = tail;
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn mx(records: &[(u16, &str)]) -> MxLookup {
        let records = records.iter().map(|(p, e)| (*p, (*e).to_owned())).collect();
        classify_mx("example.com", records, false, &mut StdRng::seed_from_u64(7))
    }

    fn exchanges(l: &MxLookup) -> Vec<&str> {
        l.hosts.iter().map(|h| h.exchange.as_str()).collect()
    }

    #[test]
    fn single_root_is_null_mx() {
        for records in [&[(0, ".")][..], &[(10, "")], &[(0, ".."), (5, ".")]] {
            let l = mx(records);
            assert_eq!(l.kind, MxKind::NullMx, "{records:?}");
            assert!(l.hosts.is_empty());
        }
    }

    #[test]
    fn null_mx_mixed_with_hosts_is_dropped() {
        let l = mx(&[(0, "."), (10, "mx.example.com.")]);
        assert_eq!(l.kind, MxKind::Mx);
        assert_eq!(exchanges(&l), ["mx.example.com"]);
    }

    #[test]
    fn sorted_by_preference_and_normalised() {
        let l = mx(&[
            (20, "B.example.com."),
            (5, "a.example.com"),
            (10, "c.example.com."),
        ]);
        assert_eq!(
            exchanges(&l),
            ["a.example.com", "c.example.com", "b.example.com"]
        );
        assert_eq!(
            l.hosts.iter().map(|h| h.preference).collect::<Vec<_>>(),
            [5, 10, 20]
        );
    }

    #[test]
    fn duplicate_exchange_keeps_best_preference() {
        let l = mx(&[(20, "a.example.com"), (10, "a.example.com.")]);
        assert_eq!(l.hosts.len(), 1);
        assert_eq!(l.hosts[0].preference, 10);
    }

    #[test]
    fn equal_preferences_are_shuffled_within_their_group_only() {
        let hosts: Vec<MxHost> = [(10, "a"), (10, "b"), (10, "c"), (5, "first"), (20, "last")]
            .iter()
            .map(|(p, e)| MxHost {
                preference: *p,
                exchange: (*e).to_owned(),
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let order = order_hosts(hosts.clone(), &mut rng);
            let names: Vec<String> = order.into_iter().map(|h| h.exchange).collect();
            assert_eq!(names[0], "first");
            assert_eq!(names[4], "last");
            seen.insert(names[1..4].join(","));
        }
        // 3! = 6 orders of the middle group; 200 draws see them all.
        assert_eq!(seen.len(), 6, "{seen:?}");
    }

    #[test]
    fn implicit_is_the_domain_itself() {
        let l = implicit_mx("example.org", true);
        assert_eq!(l.kind, MxKind::Implicit);
        assert_eq!(exchanges(&l), ["example.org"]);
        assert_eq!(l.hosts[0].preference, 0);
        assert!(l.authenticated);
    }
}
