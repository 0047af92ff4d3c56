//! Causes for what can go wrong before TLS: DNS answers and the SMTP
//! dialogue up to STARTTLS. The ids are spelled exactly as delivery's
//! catalogue spells them (`dns.*`, `conn.*`, `smtp.*`), so `tls verify` and
//! the delivery log name a problem the same way; `diag` may not depend on
//! `delivery` (ADR 0001), hence the copy of the strings, not of the code.
//!
//! # Security
//! Summaries quote host names and remote replies (untrusted): printed only.

use std::io;

use postern_dns::DnsError;
use postern_smtpc::ClientError;
use postern_tls::cause::Cause;

/// The domain publishes a null MX (RFC 7505).
pub const NULL_MX: &str = "dns.null_mx";
/// The domain does not exist.
pub const NO_SUCH_DOMAIN: &str = "dns.no_such_domain";
/// The host has no address.
pub const NO_ADDRESS: &str = "dns.no_address";
/// DNS failed temporarily.
pub const DNS_TEMPORARY: &str = "dns.temporary";
/// A DNSSEC-validated answer was bogus.
pub const DNS_BOGUS: &str = "dns.bogus";
/// The TCP connection was refused.
pub const CONN_REFUSED: &str = "conn.refused";
/// The TCP connection or a command timed out.
pub const CONN_TIMEOUT: &str = "conn.timeout";
/// The peer closed the connection unexpectedly.
pub const CONN_CLOSED: &str = "conn.closed";
/// The network or host is unreachable.
pub const CONN_UNREACHABLE: &str = "conn.unreachable";
/// Another socket error.
pub const CONN_IO: &str = "conn.io_error";
/// A 4xx reply where the dialogue needed 2xx/3xx.
pub const REPLY_TRANSIENT: &str = "smtp.reply_transient";
/// A 5xx reply where the dialogue needed 2xx/3xx.
pub const REPLY_PERMANENT: &str = "smtp.reply_permanent";
/// The server broke the protocol.
pub const PROTOCOL: &str = "smtp.protocol_error";

/// Every id used here.
pub const ALL: &[&str] = &[
    NULL_MX,
    NO_SUCH_DOMAIN,
    NO_ADDRESS,
    DNS_TEMPORARY,
    DNS_BOGUS,
    CONN_REFUSED,
    CONN_TIMEOUT,
    CONN_CLOSED,
    CONN_UNREACHABLE,
    CONN_IO,
    REPLY_TRANSIENT,
    REPLY_PERMANENT,
    PROTOCOL,
];

fn mk(id: &'static str, summary: String, fix: &str, detail: String) -> Cause {
    Cause {
        id,
        summary,
        fix: fix.to_owned(),
        detail,
    }
}

/// A null MX for `domain`.
pub fn null_mx(domain: &str) -> Cause {
    mk(
        NULL_MX,
        format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
        "none on our side: the domain receives no mail",
        String::new(),
    )
}

/// A failed lookup about `what` (the domain's MX or a host's addresses).
pub fn dns(err: &DnsError, for_addresses: bool) -> Cause {
    let detail = err.to_string();
    match err {
        DnsError::NxDomain { name } if !for_addresses => mk(
            NO_SUCH_DOMAIN,
            format!("the domain {name} does not exist in DNS"),
            "check the domain for a typo",
            detail,
        ),
        DnsError::NxDomain { name } | DnsError::NoRecords { name, .. } => mk(
            NO_ADDRESS,
            format!("{name} has no IPv4 or IPv6 address"),
            "the destination's DNS is broken (ask its postmaster), or name the host with --mx",
            detail,
        ),
        DnsError::Bogus { name } => mk(
            DNS_BOGUS,
            format!("the DNSSEC signatures of {name} do not validate (bogus)"),
            "none on our side unless our trust anchor is stale; the domain's operator must fix \
             its DNSSEC (RFC 7672 §2.1.1: no delivery on a bogus answer)",
            detail,
        ),
        _ => mk(
            DNS_TEMPORARY,
            err.name().map_or_else(
                || "a DNS lookup failed".to_owned(),
                |n| format!("the DNS lookup for {n} failed"),
            ),
            "check that the resolver answers (postern dns mx DOMAIN, or --server IP)",
            detail,
        ),
    }
}

/// A session failure before or during STARTTLS (not a handshake failure:
/// those carry their own `tls.*` cause).
pub fn client(err: &ClientError, at: &str) -> Cause {
    let detail = err.to_string();
    match err {
        ClientError::Tls { cause, .. } => cause.clone(),
        ClientError::Connect { source, .. } | ClientError::Io { source, .. } => {
            connection(source.kind(), at, detail)
        }
        ClientError::Timeout { stage } => mk(
            CONN_TIMEOUT,
            format!("{at} did not answer in time ({stage})"),
            "a slow or filtered peer; if every host times out, check that outbound port 25 is \
             not blocked by our network or provider",
            detail,
        ),
        ClientError::UnexpectedReply { stage, reply } => {
            let id = if reply.is_permanent() {
                REPLY_PERMANENT
            } else {
                REPLY_TRANSIENT
            };
            mk(
                id,
                format!("{at} refused {stage}: {}", reply_line(reply)),
                "read the reply: it may name a block list, a rate limit or our EHLO name",
                detail,
            )
        }
        ClientError::Protocol { .. }
        | ClientError::NotOffered { .. }
        | ClientError::Insecure { .. }
        | ClientError::Invalid { .. }
        | ClientError::Body { .. } => mk(
            PROTOCOL,
            format!("the SMTP dialogue with {at} failed: {err}"),
            "look at the transcript (--transcript)",
            detail,
        ),
    }
}

fn reply_line(reply: &postern_smtpc::Reply) -> String {
    let text = reply.lines.join(" / ");
    format!("{} {text}", reply.code)
}

fn connection(kind: io::ErrorKind, at: &str, detail: String) -> Cause {
    use io::ErrorKind as K;
    let (id, what, fix) = match kind {
        K::ConnectionRefused => (
            CONN_REFUSED,
            "refused the connection",
            "the host does not listen on that port (down, or a firewall rejects us)",
        ),
        K::TimedOut | K::WouldBlock => (
            CONN_TIMEOUT,
            "did not answer in time",
            "a filtered or down host; if every host times out, check that outbound port 25 is \
             not blocked by our network or provider",
        ),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => (
            CONN_CLOSED,
            "closed the connection unexpectedly",
            "the peer may rate-limit or block us; read its last reply in the transcript",
        ),
        K::NetworkUnreachable | K::HostUnreachable | K::AddrNotAvailable => (
            CONN_UNREACHABLE,
            "is unreachable",
            "check our routing (IPv6 without a route is common)",
        ),
        _ => (CONN_IO, "failed at the socket level", "look at the detail"),
    };
    mk(id, format!("{at} {what}"), fix, detail)
}
