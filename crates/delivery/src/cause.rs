//! The delivery failure-cause catalogue: stable ids for everything but TLS
//! handshakes (those are `tls.out.*` / `tls.*` from `postern_tls`), each with a
//! one-line summary and the smallest safe fix.
//!
//! Ids are API (mail log, tracking DB, metrics): add ids, never rename or reuse
//! one. `docs/delivery.md` lists them.
//!
//! # Security
//! Summaries quote remote replies and host names (untrusted text): they are only
//! ever written to JSON logs and DSN text, never interpreted.

use postern_track::CauseInfo;

/// The remote server answered 4xx.
pub const REPLY_TRANSIENT: &str = "smtp.reply_transient";
/// The remote server answered 5xx.
pub const REPLY_PERMANENT: &str = "smtp.reply_permanent";
/// The remote server broke the protocol (bad greeting, unparseable reply).
pub const PROTOCOL: &str = "smtp.protocol_error";
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
/// The policy requires TLS but the server does not offer STARTTLS (shared with
/// `tls verify`, ADR 0005).
pub const STARTTLS_NOT_OFFERED: &str = postern_tlspolicy::cause::STARTTLS_NOT_OFFERED;
/// The policy requires a verified certificate and the check failed (the
/// `tls.out.*` cause says why; this id is used when no finer one exists).
pub const VERIFY_FAILED: &str = postern_tlspolicy::cause::VERIFY_FAILED;
/// AUTH to a smart host failed.
pub const AUTH_FAILED: &str = "smtp.auth_failed";
/// The route needs AUTH but the server offers no usable mechanism or no TLS.
pub const AUTH_UNAVAILABLE: &str = "smtp.auth_unavailable";
/// The queue lifetime elapsed.
pub const EXPIRED: &str = "delivery.expired";
/// The message could not be read from the spool.
pub const SPOOL_READ: &str = "delivery.spool_read";
/// The message needs SMTPUTF8 and the server does not offer it.
pub const SMTPUTF8_UNSUPPORTED: &str = "smtp.smtputf8_unsupported";
/// The message is larger than the server's declared SIZE.
pub const TOO_BIG: &str = "smtp.message_too_big";
/// Anything else.
pub const INTERNAL: &str = "delivery.internal";
/// Local delivery: the recipient's Maildir does not exist (`create = false`).
pub const LOCAL_MAILBOX_UNKNOWN: &str = "local.mailbox_unknown";
/// Local delivery: the local part (or domain) cannot name a Maildir safely.
pub const LOCAL_UNSAFE_ADDRESS: &str = "local.unsafe_address";
/// Local delivery: the file system is full or the quota exhausted.
pub const LOCAL_MAILBOX_FULL: &str = "local.mailbox_full";
/// Local delivery: another file-system error (permissions, a broken Maildir).
pub const LOCAL_IO_ERROR: &str = "local.io_error";

/// Every id of this catalogue, for documentation and tests.
pub const ALL: &[&str] = &[
    REPLY_TRANSIENT,
    REPLY_PERMANENT,
    PROTOCOL,
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
    STARTTLS_NOT_OFFERED,
    VERIFY_FAILED,
    AUTH_FAILED,
    AUTH_UNAVAILABLE,
    EXPIRED,
    SPOOL_READ,
    SMTPUTF8_UNSUPPORTED,
    TOO_BIG,
    INTERNAL,
    LOCAL_MAILBOX_UNKNOWN,
    LOCAL_UNSAFE_ADDRESS,
    LOCAL_MAILBOX_FULL,
    LOCAL_IO_ERROR,
];

/// Builds a cause record.
pub fn cause(
    id: &str,
    summary: impl Into<String>,
    fix: impl Into<String>,
    detail: impl Into<String>,
) -> CauseInfo {
    CauseInfo {
        id: id.to_owned(),
        summary: summary.into(),
        fix: fix.into(),
        detail: detail.into(),
    }
}

/// A 4xx reply from `host`.
pub fn reply_transient(host: &str, reply: &str) -> CauseInfo {
    cause(
        REPLY_TRANSIENT,
        format!("{host} answered with a temporary failure: {reply}"),
        "none needed: the message is retried on schedule; if it persists past a day, \
         ask the destination's postmaster (greylisting, full mailbox, rate limits)",
        "",
    )
}

/// A 5xx reply from `host`.
pub fn reply_permanent(host: &str, reply: &str) -> CauseInfo {
    cause(
        REPLY_PERMANENT,
        format!("{host} refused the recipient or message permanently: {reply}"),
        "check the address with the sender; if the refusal names our server or IP \
         (blocklist, SPF, rDNS), fix that and resend",
        "",
    )
}

/// Null MX (RFC 7505).
pub fn null_mx(domain: &str) -> CauseInfo {
    cause(
        NULL_MX,
        format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
        "none on our side: the address is wrong or the domain sends only; tell the sender",
        "",
    )
}

/// NXDOMAIN for the recipient domain.
pub fn no_such_domain(domain: &str, detail: &str) -> CauseInfo {
    cause(
        NO_SUCH_DOMAIN,
        format!("the domain {domain} does not exist in DNS"),
        "check the address for a typo; if the domain is new, wait for its DNS to publish",
        detail,
    )
}

/// No address for any MX host or the implicit MX.
pub fn no_address(domain: &str, detail: &str) -> CauseInfo {
    cause(
        NO_ADDRESS,
        format!("no MX host of {domain} has an IPv4 or IPv6 address"),
        "none on our side; the destination's DNS is broken (ask its postmaster), \
         or add a [[dns.static]] entry if you know the right host",
        detail,
    )
}

/// Temporary DNS failure.
pub fn dns_temporary(name: &str, detail: &str) -> CauseInfo {
    cause(
        DNS_TEMPORARY,
        format!("DNS lookup for {name} failed temporarily"),
        "none needed if it passes; if it persists, check [dns] nameservers and that \
         the resolver answers (postern dns mx DOMAIN)",
        detail,
    )
}

/// Bogus DNSSEC answer.
pub fn dns_bogus(name: &str, detail: &str) -> CauseInfo {
    cause(
        DNS_BOGUS,
        format!("the DNSSEC signatures of {name} do not validate (bogus): mail is held"),
        "none on our side unless our trust anchor is stale; the domain's operator must \
         fix its DNSSEC (RFC 7672 §2.1.1 forbids delivering on a bogus answer)",
        detail,
    )
}

/// A connection-level failure, classified from the I/O error kind.
pub fn connection(host: &str, addr: &str, kind: std::io::ErrorKind, detail: &str) -> CauseInfo {
    use std::io::ErrorKind as K;
    let (id, what, fix) = match kind {
        K::ConnectionRefused => (
            CONN_REFUSED,
            "refused the connection",
            "none needed if it passes; the host is not listening on that port (down, or a \
             firewall rejects us); retried automatically",
        ),
        K::TimedOut | K::WouldBlock => (
            CONN_TIMEOUT,
            "did not answer in time",
            "none needed if it passes; if every destination times out, check that outbound \
             port 25 is not blocked by our network or provider",
        ),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => (
            CONN_CLOSED,
            "closed the connection unexpectedly",
            "none needed if it passes; the peer may rate-limit or block us — read its \
             last reply in the transcript",
        ),
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => (
            CONN_UNREACHABLE,
            "is unreachable from here",
            "check our routing (IPv6 without a route is common); retried automatically",
        ),
        _ => (
            CONN_IO,
            "failed at the socket level",
            "none needed if it passes; look at the detail",
        ),
    };
    cause(id, format!("{host} ({addr}) {what}"), fix, detail)
}

/// Queue lifetime reached.
pub fn expired(age: &str, last: Option<&str>) -> CauseInfo {
    cause(
        EXPIRED,
        match last {
            Some(l) => format!("not delivered within {age}; last error: {l}"),
            None => format!("not delivered within {age}"),
        },
        "none for this message (it was returned to the sender); for the destination, \
         see the causes of the earlier deferrals",
        "",
    )
}

/// The message cannot be read.
pub fn spool_read(detail: &str) -> CauseInfo {
    cause(
        SPOOL_READ,
        "the message could not be read from the spool",
        "check the disk and the server log; the message is retried",
        detail,
    )
}

/// Local delivery: no Maildir at `path` for `rcpt` (bounced `5.1.1`).
pub fn local_mailbox_unknown(rcpt: &str, path: &str) -> CauseInfo {
    cause(
        LOCAL_MAILBOX_UNKNOWN,
        format!("no Maildir for {rcpt}: {path} does not exist"),
        "none if the address is wrong (the sender was told); if the mailbox should exist, \
         create it (tmp/, new/ and cur/, owned by the user Postern runs as, mode 0700) \
         or set create = true on the route, and ask the sender to resend",
        "",
    )
}

/// Local delivery: `rcpt` cannot name a Maildir (bounced `5.1.3`).
pub fn local_unsafe_address(rcpt: &str, why: &str) -> CauseInfo {
    cause(
        LOCAL_UNSAFE_ADDRESS,
        format!("the address {rcpt} cannot name a Maildir safely: {why}"),
        "none: such local parts are refused so that an address can never reach a path \
         outside the Maildir tree; if a real mailbox has such a name, rename it",
        why,
    )
}

/// Local delivery: `ENOSPC` / `EDQUOT` writing into `maildir` (deferred).
pub fn local_mailbox_full(maildir: &str, detail: &str) -> CauseInfo {
    cause(
        LOCAL_MAILBOX_FULL,
        format!(
            "the Maildir {maildir} is full: no space left on its file system or quota exceeded"
        ),
        "free space on the file system that holds it (df -h) or raise the quota of the user \
         Postern runs as; the message is retried on schedule",
        detail,
    )
}

/// Local delivery: another file-system error in `maildir` (deferred).
pub fn local_io_error(maildir: &str, permission: bool, detail: &str) -> CauseInfo {
    let fix = if permission {
        "make the Maildir (and its tmp/ and new/) writable by the user Postern runs as \
         (ls -ld; chown); the message is retried on schedule"
    } else {
        "check that the Maildir has tmp/, new/ and cur/ directories and that its disk is \
         healthy (see the detail); the message is retried on schedule"
    };
    cause(
        LOCAL_IO_ERROR,
        format!("local delivery into {maildir} failed"),
        fix,
        detail,
    )
}

/// Anything unexpected: deferred, never bounced (tenet 1).
pub fn internal(detail: &str) -> CauseInfo {
    cause(
        INTERNAL,
        "an unexpected error interrupted the attempt",
        "none needed if it passes; report it with the mail log record if it repeats",
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for id in ALL {
            assert!(seen.insert(*id), "duplicate {id}");
            assert!(id.contains('.'), "{id}");
            assert!(
                !id.starts_with("tls."),
                "{id}: tls ids belong to postern_tls"
            );
        }
    }

    #[test]
    fn connection_kinds_map() {
        let c = connection(
            "mx",
            "192.0.2.1:25",
            std::io::ErrorKind::ConnectionRefused,
            "x",
        );
        assert_eq!(c.id, CONN_REFUSED);
        let c = connection("mx", "192.0.2.1:25", std::io::ErrorKind::Other, "x");
        assert_eq!(c.id, CONN_IO);
    }
}
