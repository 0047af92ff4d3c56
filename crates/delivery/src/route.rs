//! Routing: from a recipient domain to a destination (MX lookup, smart host,
//! or local Maildir folders) and the TLS level that applies, with the reason
//! it applies.
//!
//! First match wins: the `[[route]]` list in order, then the global
//! `relayhost`, then MX delivery with `default_tls`. The reason string
//! ("route[1] domain .example.com", "relayhost", "default") is recorded with
//! every attempt so an operator can see why a level was chosen.
//!
//! Pure: no DNS here. MX resolution happens per attempt (`transport`).
//!
//! # Security
//! Domains come from envelopes (untrusted); they are only compared, lower-cased.
//! An address literal (`[192.0.2.1]`) never matches a domain pattern except `*`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::settings::{DeliverySettings, MaildirSettings, RouteTarget, SmartHost, TlsLevel};

/// How a destination is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// MX lookup of this domain (RFC 5321 §5.1; implicit MX when none).
    Mx {
        /// The recipient domain.
        domain: String,
    },
    /// An address literal recipient (`user@[192.0.2.1]`): that address, port 25.
    Literal(IpAddr),
    /// A smart host (per-route or the global relay host).
    SmartHost(SmartHost),
    /// Local delivery into Maildir folders (`crate::maildir`): no DNS, no
    /// TLS, no connection.
    Maildir(MaildirSettings),
}

/// The result of routing one recipient domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Jobs with equal keys share connections and the per-destination limit.
    pub key: Arc<str>,
    /// The destination for logs: the domain, or `host:port`.
    pub destination: String,
    /// Where to connect.
    pub next_hop: NextHop,
    /// `mx`, `literal`, `smarthost`, `relayhost`, `maildir`.
    pub kind: &'static str,
    /// The TLS level.
    pub tls: TlsLevel,
    /// Why that level (and route) applied.
    pub why: String,
    /// Trust anchors for `verify`; `None` = system roots.
    pub ca_file: Option<PathBuf>,
    /// The level is the default (no route or `relayhost_tls` set it) and may be
    /// raised to `dane` / `mta-sts` when the destination publishes them
    /// (`DeliverySettings::upgrade_tls`; MX delivery only).
    pub upgrade: bool,
}

impl Route {
    /// The route for a message that must travel over verified TLS
    /// (`Envelope::require_tls`): its level raised to at least `verify`
    /// (stronger levels — `dane`, `mta-sts`, or what the destination
    /// publishes — stay), and a key of its own so it never shares a
    /// connection that plans a weaker level. Local delivery is unchanged.
    #[must_use]
    pub fn requiring_tls(mut self) -> Route {
        if self.kind == "maildir" {
            return self;
        }
        if self.tls < TlsLevel::Verify {
            self.tls = TlsLevel::Verify;
            self.why = format!(
                "{}; raised to verify: the message requires TLS (content filter)",
                self.why
            );
        }
        self.key = format!("{}#require-tls", self.key).into();
        self
    }
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct Router {
    settings: Arc<DeliverySettings>,
}

impl Router {
    /// A router over `settings.routes`, `relayhost` and `default_tls`.
    pub fn new(settings: Arc<DeliverySettings>) -> Self {
        Self { settings }
    }

    /// The route for recipient `domain` (any case, trailing dot allowed).
    pub fn route(&self, domain: &str) -> Route {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let s = &self.settings;
        for r in &s.routes {
            let Some(pattern) = r.domains.iter().find(|p| p.matches(&domain)) else {
                continue;
            };
            let tls = r.tls.unwrap_or(s.default_tls);
            let level_why = if r.tls.is_some() {
                format!("{} domain {pattern}", r.origin)
            } else {
                format!("{} domain {pattern} (default level)", r.origin)
            };
            let ca_file = r.ca_file.clone().or_else(|| s.ca_file.clone());
            return match &r.target {
                RouteTarget::SmartHost(h) => smart(h, "smarthost", tls, level_why, ca_file),
                RouteTarget::Maildir(m) => maildir_route(&domain, m, &r.origin, pattern),
                RouteTarget::Mx => {
                    let upgrade = r.tls.is_none() && self.upgrades(tls);
                    mx_route(&domain, tls, level_why, ca_file, upgrade)
                }
            };
        }
        if let Some(h) = &s.relayhost {
            let tls = s.relayhost_tls.unwrap_or(s.default_tls);
            return smart(h, "relayhost", tls, "relayhost".into(), s.ca_file.clone());
        }
        let upgrade = self.upgrades(s.default_tls);
        mx_route(
            &domain,
            s.default_tls,
            "default".into(),
            s.ca_file.clone(),
            upgrade,
        )
    }

    /// Whether a default `level` may be raised by what the destination
    /// publishes: never from `none` (the operator turned TLS off), never when
    /// it is already `dane` / `mta-sts`.
    fn upgrades(&self, level: TlsLevel) -> bool {
        self.settings.upgrade_tls
            && !matches!(level, TlsLevel::None | TlsLevel::Dane | TlsLevel::MtaSts)
    }
}

fn smart(
    h: &SmartHost,
    kind: &'static str,
    tls: TlsLevel,
    why: String,
    ca_file: Option<PathBuf>,
) -> Route {
    let destination = h.key();
    Route {
        key: Arc::from(format!("{kind}:{destination}:{tls}").as_str()),
        destination,
        next_hop: NextHop::SmartHost(h.clone()),
        kind,
        tls,
        why,
        ca_file,
        upgrade: false,
    }
}

/// Local delivery: one destination per recipient domain; TLS does not apply
/// (recorded as level `none` with the reason).
fn maildir_route(
    domain: &str,
    m: &MaildirSettings,
    origin: &str,
    pattern: &crate::settings::DomainPattern,
) -> Route {
    Route {
        key: Arc::from(format!("maildir:{domain}").as_str()),
        destination: domain.to_owned(),
        next_hop: NextHop::Maildir(m.clone()),
        kind: "maildir",
        tls: TlsLevel::None,
        why: format!(
            "{origin} domain {pattern} (local Maildir delivery: no network, TLS does not apply)"
        ),
        ca_file: None,
        upgrade: false,
    }
}

fn mx_route(
    domain: &str,
    tls: TlsLevel,
    why: String,
    ca_file: Option<PathBuf>,
    upgrade: bool,
) -> Route {
    if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let inner = inner.strip_prefix("ipv6:").unwrap_or(inner);
        if let Ok(ip) = inner.parse::<IpAddr>() {
            return Route {
                key: Arc::from(format!("literal:{ip}:{tls}").as_str()),
                destination: domain.to_owned(),
                next_hop: NextHop::Literal(ip),
                kind: "literal",
                tls,
                why,
                ca_file,
                // TLSA and MTA-STS hang off names, not addresses.
                upgrade: false,
            };
        }
    }
    Route {
        key: Arc::from(format!("mx:{domain}:{tls}").as_str()),
        destination: domain.to_owned(),
        next_hop: NextHop::Mx {
            domain: domain.to_owned(),
        },
        kind: "mx",
        tls,
        why,
        ca_file,
        upgrade,
    }
}

/// The domain part of an address (after the last `@`), or `""`.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::settings::{DomainPattern, RouteSettings};

    fn settings() -> DeliverySettings {
        let mut s = DeliverySettings::new(std::path::Path::new("/d"));
        s.routes = vec![
            RouteSettings {
                domains: vec![DomainPattern::parse("fabrikam.com").unwrap()],
                target: RouteTarget::Mx,
                tls: Some(TlsLevel::Opportunistic),
                ca_file: None,
                origin: "route[0]".into(),
            },
            RouteSettings {
                domains: vec![DomainPattern::parse(".corp.example").unwrap()],
                target: RouteTarget::SmartHost(SmartHost {
                    host: "exchange.corp.example".into(),
                    port: 587,
                    implicit_tls: false,
                    auth: None,
                }),
                tls: Some(TlsLevel::Verify),
                ca_file: Some("/ca.pem".into()),
                origin: "route[1]".into(),
            },
        ];
        s.default_tls = TlsLevel::Required;
        s
    }

    #[test]
    fn a_message_requiring_tls_is_raised_to_verify_on_a_key_of_its_own() {
        let r = Router::new(Arc::new(settings()));
        let plain = r.route("fabrikam.com");
        let strict = r.route("fabrikam.com").requiring_tls();
        assert_eq!(strict.tls, TlsLevel::Verify);
        assert_ne!(strict.key, plain.key, "never shares a weaker connection");
        assert!(strict.why.contains("requires TLS"), "{}", strict.why);
        // A stronger level stays.
        let mut dane = r.route("fabrikam.com");
        dane.tls = TlsLevel::Dane;
        assert_eq!(dane.requiring_tls().tls, TlsLevel::Dane);
        assert_eq!(
            r.route("hr.corp.example").requiring_tls().tls,
            TlsLevel::Verify
        );
    }

    #[test]
    fn first_match_wins_then_default() {
        let r = Router::new(Arc::new(settings()));
        let a = r.route("Fabrikam.COM.");
        assert_eq!(a.tls, TlsLevel::Opportunistic);
        assert_eq!(a.why, "route[0] domain fabrikam.com");
        assert_eq!(
            a.next_hop,
            NextHop::Mx {
                domain: "fabrikam.com".into()
            }
        );
        let b = r.route("hr.corp.example");
        assert_eq!(b.kind, "smarthost");
        assert_eq!(b.destination, "exchange.corp.example:587");
        assert_eq!(b.tls, TlsLevel::Verify);
        assert_eq!(b.ca_file.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let c = r.route("contoso.com");
        assert_eq!(c.tls, TlsLevel::Required);
        assert_eq!(c.why, "default");
        assert!(
            c.upgrade,
            "the default level may be raised by DANE / MTA-STS"
        );
        assert!(!a.upgrade, "a level written in a route is never raised");
        assert!(!b.upgrade, "smart hosts are not upgraded");
        assert_ne!(a.key, c.key);
        assert_eq!(r.route("contoso.com").key, c.key);
    }

    #[test]
    fn maildir_routes_are_local() {
        let mut s = settings();
        let md = MaildirSettings {
            template: crate::settings::MaildirTemplate::parse("/var/vmail/{domain}/{user}")
                .unwrap(),
            recipient_delimiter: Some("+".into()),
            create: false,
        };
        s.routes.insert(
            0,
            RouteSettings {
                domains: vec![DomainPattern::parse("example.org").unwrap()],
                target: RouteTarget::Maildir(md.clone()),
                tls: None,
                ca_file: None,
                origin: "route[0]".into(),
            },
        );
        s.relayhost = Some(SmartHost {
            host: "relay.isp.example".into(),
            port: 25,
            implicit_tls: false,
            auth: None,
        });
        let r = Router::new(Arc::new(s));
        let m = r.route("Example.ORG");
        assert_eq!(m.kind, "maildir");
        assert_eq!(m.next_hop, NextHop::Maildir(md));
        assert_eq!(m.destination, "example.org");
        assert_eq!(&*m.key, "maildir:example.org");
        assert_eq!(m.tls, TlsLevel::None);
        assert!(!m.upgrade);
        assert!(
            m.why.starts_with("route[0] domain example.org (local"),
            "{}",
            m.why
        );
        // A maildir route wins over the relay host; other domains do not match it.
        assert_eq!(r.route("sub.example.org").kind, "relayhost");
    }

    #[test]
    fn relayhost_catches_the_rest() {
        let mut s = settings();
        s.relayhost = Some(SmartHost {
            host: "relay.isp.example".into(),
            port: 25,
            implicit_tls: false,
            auth: None,
        });
        let r = Router::new(Arc::new(s));
        assert_eq!(r.route("fabrikam.com").kind, "mx");
        let x = r.route("contoso.com");
        assert_eq!(x.kind, "relayhost");
        assert_eq!(x.why, "relayhost");
    }

    #[test]
    fn address_literals() {
        let r = Router::new(Arc::new(settings()));
        let l = r.route("[192.0.2.7]");
        assert_eq!(l.next_hop, NextHop::Literal("192.0.2.7".parse().unwrap()));
        let l6 = r.route("[IPv6:2001:db8::1]");
        assert_eq!(
            l6.next_hop,
            NextHop::Literal("2001:db8::1".parse().unwrap())
        );
        assert_eq!(domain_of("a@b@c.example"), "c.example");
        assert_eq!(domain_of("postmaster"), "");
    }
}
