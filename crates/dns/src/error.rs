//! `DnsError`: every way a lookup can fail, in words an operator can act on,
//! and whether the failure is worth retrying.
//!
//! # Standards
//! RFC 1035 §4.1.1 (RCODEs), RFC 2308 (NXDOMAIN vs NODATA), RFC 4035 §5.5
//! (bogus answers), RFC 5321 §4.5.4.1 (temporary DNS failures defer mail).

use hickory_proto::dnssec::Proof;
use hickory_proto::op::ResponseCode;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};

/// A failed lookup. `name` is the name that was asked (lower case, no
/// trailing dot).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN).
    #[error("{name}: no such domain name (NXDOMAIN)")]
    NxDomain { name: String },
    /// The name exists but has no records of this type (NODATA).
    #[error("{name}: the name exists but has no {rtype} records")]
    NoRecords { name: String, rtype: &'static str },
    /// The name server could not answer (SERVFAIL): an upstream failure, or a
    /// validating resolver that found the answer bogus.
    #[error(
        "{name}: the DNS server failed to answer (SERVFAIL); upstream name servers may be down or the answer failed DNSSEC validation at the resolver"
    )]
    ServFail { name: String },
    /// No answer in time from any name server, on every try.
    #[error("{name}: no answer from the DNS servers in time")]
    Timeout { name: String },
    /// In-process DNSSEC validation found the answer bogus (forged, or a
    /// broken signature chain at the domain's operator, or an upstream that
    /// strips DNSSEC records). Transient: a validating resolver reports the
    /// same as SERVFAIL, and RFC 7672 §2.1.1 treats it as a lookup error,
    /// so mail is deferred, never bounced, on it.
    #[error(
        "{name}: DNSSEC validation failed (bogus answer): the signatures do not verify; this is either an attack or a broken DNSSEC setup at the domain"
    )]
    Bogus { name: String },
    /// The input is not a domain name we can ask about.
    #[error("{name:?} is not a valid domain name: {detail}")]
    InvalidName { name: String, detail: String },
    /// The resolver could not be set up (settings or resolv.conf).
    #[error("DNS resolver configuration: {0}")]
    Config(String),
    /// Anything else (REFUSED, network errors, malformed answers).
    #[error("{name}: DNS lookup failed: {detail}")]
    Other { name: String, detail: String },
}

impl DnsError {
    /// Whether retrying later may succeed. Unknown failures are transient
    /// (tenet: unknown delivery errors defer, they do not bounce).
    pub fn is_transient(&self) -> bool {
        match self {
            DnsError::ServFail { .. }
            | DnsError::Timeout { .. }
            | DnsError::Bogus { .. }
            | DnsError::Other { .. }
            | DnsError::Config(_) => true,
            DnsError::NxDomain { .. }
            | DnsError::NoRecords { .. }
            | DnsError::InvalidName { .. } => false,
        }
    }

    /// The name the failed lookup was about, when there is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            DnsError::NxDomain { name }
            | DnsError::NoRecords { name, .. }
            | DnsError::ServFail { name }
            | DnsError::Timeout { name }
            | DnsError::Bogus { name }
            | DnsError::InvalidName { name, .. }
            | DnsError::Other { name, .. } => Some(name),
            DnsError::Config(_) => None,
        }
    }
}

/// How a hickory failure reads for us: a negative answer (kept apart so MX
/// can turn NODATA into an implicit MX) or an error.
pub(crate) enum Negative {
    /// NOERROR with no records of the type; `authenticated` when DNSSEC
    /// proved the denial (in-process validation only).
    NoData { authenticated: bool },
    /// Any other failure.
    Error(DnsError),
}

/// Map a hickory error for a query about `name`.
pub(crate) fn from_net(name: &str, err: NetError) -> Negative {
    let name = name.to_owned();
    let from_rcode = |name: String, code: ResponseCode| {
        match code {
        ResponseCode::NXDomain => Negative::Error(DnsError::NxDomain { name }),
        ResponseCode::NoError => Negative::NoData {
            authenticated: false,
        },
        ResponseCode::ServFail => Negative::Error(DnsError::ServFail { name }),
        ResponseCode::Refused => Negative::Error(DnsError::Other {
            name,
            detail: "the DNS server refused the query (REFUSED); check that it allows recursion for this host".to_owned(),
        }),
        other => Negative::Error(DnsError::Other {
            name,
            detail: format!("the DNS server answered {other}"),
        }),
    }
    };
    match err {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => from_rcode(name, no.response_code),
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => from_rcode(name, code),
        NetError::Dns(HickoryDnsError::Nsec {
            response, proof, ..
        }) => match proof {
            Proof::Bogus => Negative::Error(DnsError::Bogus { name }),
            proof => match from_rcode(name, response.response_code) {
                Negative::NoData { .. } => Negative::NoData {
                    authenticated: proof == Proof::Secure,
                },
                other @ Negative::Error(_) => other,
            },
        },
        NetError::Dns(HickoryDnsError::DnssecBogus) => Negative::Error(DnsError::Bogus { name }),
        NetError::Timeout => Negative::Error(DnsError::Timeout { name }),
        other => Negative::Error(DnsError::Other {
            name,
            detail: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_table() {
        let n = || "example.com".to_owned();
        let cases = [
            (DnsError::NxDomain { name: n() }, false),
            (
                DnsError::NoRecords {
                    name: n(),
                    rtype: "MX",
                },
                false,
            ),
            (DnsError::ServFail { name: n() }, true),
            (DnsError::Timeout { name: n() }, true),
            (DnsError::Bogus { name: n() }, true),
            (
                DnsError::InvalidName {
                    name: n(),
                    detail: String::new(),
                },
                false,
            ),
            (DnsError::Config("x".into()), true),
            (
                DnsError::Other {
                    name: n(),
                    detail: "x".into(),
                },
                true,
            ),
        ];
        for (err, transient) in cases {
            assert_eq!(err.is_transient(), transient, "{err}");
        }
    }

    #[test]
    fn hickory_errors_map() {
        let e = |err| match from_net("example.com", err) {
            Negative::Error(e) => e,
            Negative::NoData { .. } => panic!("expected an error"),
        };
        assert_eq!(
            e(NetError::Timeout),
            DnsError::Timeout {
                name: "example.com".into()
            }
        );
        assert_eq!(
            e(NetError::Dns(HickoryDnsError::ResponseCode(
                ResponseCode::ServFail
            ))),
            DnsError::ServFail {
                name: "example.com".into()
            }
        );
        assert_eq!(
            e(NetError::Dns(HickoryDnsError::DnssecBogus)),
            DnsError::Bogus {
                name: "example.com".into()
            }
        );
        assert!(matches!(
            e(NetError::Dns(HickoryDnsError::ResponseCode(
                ResponseCode::Refused
            ))),
            DnsError::Other { .. }
        ));
    }
}
