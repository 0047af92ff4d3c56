//! The DNS side of the failure-cause catalogue: what a [`DnsError`] (and a
//! null MX) means for an operator, as stable `dns.*` ids with a summary and
//! the smallest safe fix. The one place these are classified; delivery and
//! `tls verify` both call it (and wrap the result in their own record type:
//! this crate depends on no other of ours).
//!
//! Ids are API: add, never rename or reuse. Fix texts name configuration
//! keys as `` `[table] key` `` and commands as `` `postern …` ``, checked by
//! `crates/postern/tests/catalogues.rs`.
//!
//! # Security
//! Summaries quote names from DNS answers or the operator: printed only.
//!
//! # Standards
//! RFC 7505 (null MX), RFC 5321 §5.1 (implicit MX), RFC 7672 §2.1.1 (a bogus
//! answer is a lookup error: defer, never deliver on it).

use crate::DnsError;

/// The domain publishes a null MX (RFC 7505): it accepts no mail.
pub const NULL_MX: &str = "dns.null_mx";
/// The recipient domain does not exist.
pub const NO_SUCH_DOMAIN: &str = "dns.no_such_domain";
/// The domain (or its MX hosts) has no usable address.
pub const NO_ADDRESS: &str = "dns.no_address";
/// DNS failed temporarily (SERVFAIL, timeout).
pub const DNS_TEMPORARY: &str = "dns.temporary";
/// A DNSSEC-validated answer was bogus (RFC 7672 §2.1.1: defer).
pub const DNS_BOGUS: &str = "dns.bogus";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[
    NULL_MX,
    NO_SUCH_DOMAIN,
    NO_ADDRESS,
    DNS_TEMPORARY,
    DNS_BOGUS,
];

/// A classified DNS failure (the callers turn it into their cause record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCause {
    /// Stable id.
    pub id: &'static str,
    /// What happened, in one sentence.
    pub summary: String,
    /// The smallest safe fix.
    pub fix: &'static str,
    /// The raw error text.
    pub detail: String,
}

/// Which lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The recipient domain's MX records: NXDOMAIN means no such domain.
    Mx,
    /// A host's addresses: NXDOMAIN means that host has no address.
    Address,
}

/// A null MX for `domain`.
pub fn null_mx(domain: &str) -> DnsCause {
    DnsCause {
        id: NULL_MX,
        summary: format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
        fix: "none on our side: the address is wrong or the domain sends only; tell the sender",
        detail: String::new(),
    }
}

impl DnsError {
    /// The catalogue cause of a failed lookup of `name`.
    pub fn cause(&self, name: &str, lookup: Lookup) -> DnsCause {
        let detail = self.to_string();
        let (id, summary, fix) = match self {
            DnsError::NxDomain { .. } | DnsError::InvalidName { .. } if lookup == Lookup::Mx => (
                NO_SUCH_DOMAIN,
                format!("the domain {name} does not exist in DNS"),
                "check the address for a typo; if the domain is new, wait for its DNS to publish",
            ),
            DnsError::NxDomain { .. } | DnsError::NoRecords { .. } => (
                NO_ADDRESS,
                format!("{name} has no IPv4 or IPv6 address"),
                "none on our side: the destination's DNS is broken (ask its postmaster); if you \
                 know the right address, add `[[dns.static]] name = \"HOST\", a = [\"IP\"]`",
            ),
            DnsError::Bogus { .. } => (
                DNS_BOGUS,
                format!("the DNSSEC signatures of {name} do not validate (bogus): mail is held"),
                "none on our side unless our trust anchor is stale; the domain's operator must \
                 fix its DNSSEC (RFC 7672 §2.1.1 forbids delivering on a bogus answer)",
            ),
            _ => (
                DNS_TEMPORARY,
                format!("the DNS lookup for {name} failed temporarily"),
                "none needed if it passes; if it persists, check `[dns] nameservers` and that \
                 the resolver answers (`postern dns mx DOMAIN`)",
            ),
        };
        DnsCause {
            id,
            summary,
            fix,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nxdomain_depends_on_the_lookup() {
        let e = DnsError::NxDomain {
            name: "nope.example".into(),
        };
        assert_eq!(e.cause("nope.example", Lookup::Mx).id, NO_SUCH_DOMAIN);
        assert_eq!(e.cause("nope.example", Lookup::Address).id, NO_ADDRESS);
        let t = DnsError::Timeout {
            name: "x.example".into(),
        };
        assert_eq!(t.cause("x.example", Lookup::Mx).id, DNS_TEMPORARY);
    }
}
