//! Static overrides, the HOSTS-file equivalent: per name, addresses and/or MX
//! records answered without asking DNS. Used to pin a partner's mail host
//! (the MailSite guide's HOSTS-file trick) and by tests.
//!
//! # Security
//! Configuration, not network input. Overridden answers are never reported
//! as DNSSEC-authenticated.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::records::normalise;
use crate::settings::StaticEntry;

/// Overrides indexed by normalised name; entries for the same name merge.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides {
    addrs: HashMap<String, Vec<IpAddr>>,
    mx: HashMap<String, Vec<(u16, String)>>,
}

impl Overrides {
    pub(crate) fn new(entries: &[StaticEntry]) -> Overrides {
        let mut o = Overrides::default();
        for e in entries {
            let name = normalise(&e.name);
            if !e.a.is_empty() {
                let list = o.addrs.entry(name.clone()).or_default();
                for ip in &e.a {
                    if !list.contains(ip) {
                        list.push(*ip);
                    }
                }
            }
            if !e.mx.is_empty() {
                o.mx.entry(name).or_default().extend(e.mx.iter().cloned());
            }
        }
        o
    }

    /// Addresses for `name` (normalised), IPv4 first, when overridden.
    pub(crate) fn addresses(&self, name: &str) -> Option<Vec<IpAddr>> {
        let list = self.addrs.get(name)?;
        let mut out: Vec<IpAddr> = list.iter().copied().filter(IpAddr::is_ipv4).collect();
        out.extend(list.iter().copied().filter(IpAddr::is_ipv6));
        Some(out)
    }

    /// MX records for `name` (normalised), when overridden.
    pub(crate) fn mx(&self, name: &str) -> Option<Vec<(u16, String)>> {
        self.mx.get(name).cloned()
    }

    /// Names whose overridden addresses include `ip` (a hosts file answers
    /// reverse lookups too), sorted.
    pub(crate) fn names_for(&self, ip: IpAddr) -> Vec<String> {
        let mut names: Vec<String> = self
            .addrs
            .iter()
            .filter(|(_, addrs)| addrs.contains(&ip))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_normalise_and_order() {
        let o = Overrides::new(&[
            StaticEntry {
                name: "MX.Example.com.".into(),
                a: vec!["2001:db8::1".parse().unwrap(), "192.0.2.1".parse().unwrap()],
                mx: vec![],
            },
            StaticEntry {
                name: "mx.example.com".into(),
                a: vec!["192.0.2.2".parse().unwrap(), "192.0.2.1".parse().unwrap()],
                mx: vec![(10, "x.example.net".into())],
            },
        ]);
        let addrs: Vec<String> = o
            .addresses("mx.example.com")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(addrs, ["192.0.2.1", "192.0.2.2", "2001:db8::1"]);
        assert_eq!(o.mx("mx.example.com").unwrap().len(), 1);
        assert!(o.mx("example.com").is_none());
        assert!(o.addresses("example.com").is_none());
        assert_eq!(
            o.names_for("192.0.2.2".parse().unwrap()),
            ["mx.example.com"]
        );
    }
}
