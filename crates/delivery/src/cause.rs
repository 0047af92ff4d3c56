//! The delivery failure-cause catalogue: every id delivery can log but the
//! TLS ones (`tls.*` / `tls.out.*` from `postern_tls`, `policy.*` from
//! `postern_tlspolicy`), each with a one-line summary and the smallest safe
//! fix. The session and DNS ids are classified beside their error types
//! (`postern_smtpc::cause`, `postern_dns::cause`) and only listed here;
//! delivery's own are the queue, the spool and local delivery.
//!
//! Ids are API (mail log, tracking DB, metrics): add ids, never rename or reuse
//! one. `docs/delivery.md` lists them.
//!
//! # Security
//! Summaries quote remote replies and host names (untrusted text): they are only
//! ever written to JSON logs and DSN text, never interpreted.

use postern_track::CauseInfo;

// The session ids (`conn.*`, `smtp.*`) are classified by `postern_smtpc`
// beside its error type, the `dns.*` ids by `postern_dns`; delivery logs them
// under the same names (and `tls verify` too).
pub use postern_dns::cause::{DNS_BOGUS, DNS_TEMPORARY, NO_ADDRESS, NO_SUCH_DOMAIN, NULL_MX};
pub use postern_smtpc::cause::{
    AUTH_FAILED, AUTH_NOT_OFFERED, AUTH_UNAVAILABLE, CONN_CLOSED, CONN_IO, CONN_REFUSED,
    CONN_TIMEOUT, CONN_UNREACHABLE, PROTOCOL, REPLY_PERMANENT, REPLY_TRANSIENT,
};
/// The policy requires TLS but the server does not offer STARTTLS (shared with
/// `tls verify`, ADR 0005).
pub const STARTTLS_NOT_OFFERED: &str = postern_tlspolicy::cause::STARTTLS_NOT_OFFERED;
/// The policy requires a verified certificate and the check failed (the
/// `tls.out.*` cause says why; this id is used when no finer one exists).
pub const VERIFY_FAILED: &str = postern_tlspolicy::cause::VERIFY_FAILED;
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
/// A content filter bounced these recipients of a split message
/// (`Envelope::bounce`): never attempted.
pub const CONTENT_BOUNCE: &str = "delivery.content_bounce";
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
    AUTH_NOT_OFFERED,
    EXPIRED,
    SPOOL_READ,
    SMTPUTF8_UNSUPPORTED,
    TOO_BIG,
    INTERNAL,
    CONTENT_BOUNCE,
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

/// A catalogue cause from `postern_tls` / `postern_tlspolicy` /
/// `postern_smtpc` as a mail-log record.
pub fn from_tls(c: &postern_tls::cause::Cause) -> CauseInfo {
    cause(c.id, c.summary.clone(), c.fix.clone(), c.detail.clone())
}

/// A `postern_dns` cause as a mail-log record.
pub fn from_dns(c: postern_dns::cause::DnsCause) -> CauseInfo {
    cause(c.id, c.summary, c.fix, c.detail)
}

/// A content filter's `bounce` / `reject` for some recipients of a message
/// that others received (one SMTP reply cannot refuse only them).
pub fn content_bounce(reply: &str) -> CauseInfo {
    cause(
        CONTENT_BOUNCE,
        "a content filter rule bounced this recipient",
        "none if intended; otherwise find the rule with `postern filter test RULES MESSAGE.eml \
         --rcpt ADDRESS` and change it",
        reply,
    )
}

/// No host of `domain` to try (every MX host failed to resolve).
pub fn no_host(domain: &str) -> CauseInfo {
    cause(
        NO_ADDRESS,
        format!("no MX host of {domain} has an IPv4 or IPv6 address"),
        "none on our side: the destination's DNS is broken (ask its postmaster); if you know \
         the right address, add `[[dns.static]] name = \"HOST\", a = [\"IP\"]`",
        "no host to try",
    )
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
         or set `[[route]] create = true` on its route, and ask the sender to resend",
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
}
