//! The session side of the failure-cause catalogue: what a [`ClientError`]
//! and a refused recipient mean for an operator, as stable `conn.*` and
//! `smtp.*` ids with a summary and the smallest safe fix. This is the one
//! place these are classified (beside the error type, as rustls maps errors
//! to alerts); delivery, `tls verify` and `postern send` all call
//! [`ClientError::cause`]. Handshake failures carry their `tls.*` cause from
//! [`postern_tls::cause::classify_outbound`].
//!
//! Ids are API (mail log, tracking DB, metrics): add ids, never rename or
//! reuse one. Fix texts name configuration keys as `` `[table] key` `` and
//! commands as `` `postern …` `` (checked against the schema and the CLI by
//! `crates/postern/tests/catalogues.rs`).
//!
//! # Security
//! Summaries quote host names and remote replies (untrusted): printed and
//! logged, never interpreted. No credential ever reaches a cause.
//!
//! # Standards
//! RFC 5321 §4.2 (reply codes), RFC 4954 §4–6 (AUTH: the `535`, the EHLO
//! keyword, AUTH only after STARTTLS on many servers), RFC 6409 (submission
//! on 587).

use std::io;

use postern_tls::cause::Cause;

use crate::Reply;
use crate::error::{self, ClientError, Stage};

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
/// A 4xx reply where the dialogue needed 2xx/3xx, or to a recipient.
pub const REPLY_TRANSIENT: &str = "smtp.reply_transient";
/// A 5xx reply where the dialogue needed 2xx/3xx, or to a recipient.
pub const REPLY_PERMANENT: &str = "smtp.reply_permanent";
/// The server broke the protocol (bad greeting, unparseable reply).
pub const PROTOCOL: &str = "smtp.protocol_error";
/// The server refused our credentials (`535`, or another 5xx to AUTH).
pub const AUTH_FAILED: &str = "smtp.auth_failed";
/// AUTH was refused on our side: the session is not encrypted.
pub const AUTH_UNAVAILABLE: &str = "smtp.auth_unavailable";
/// The relay host did not advertise AUTH (or not a mechanism we speak).
pub const AUTH_NOT_OFFERED: &str = "smtp.auth_not_offered";
/// Reading the message to send failed (our spool or file).
pub const BODY_READ: &str = "smtp.body_read";
/// We refused to send the caller's input (a CR/LF in an address, an
/// invalid server name).
pub const INVALID_INPUT: &str = "smtp.invalid_input";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[
    CONN_REFUSED,
    CONN_TIMEOUT,
    CONN_CLOSED,
    CONN_UNREACHABLE,
    CONN_IO,
    REPLY_TRANSIENT,
    REPLY_PERMANENT,
    PROTOCOL,
    AUTH_FAILED,
    AUTH_UNAVAILABLE,
    AUTH_NOT_OFFERED,
    BODY_READ,
    INVALID_INPUT,
];

/// Where to make a smart-host session encrypted, in the file's own keys.
const ENCRYPT_KEYS: &str = "`[[route]] tls = \"required\"` (STARTTLS) or `[[route]] \
     implicit_tls = true` (port 465) on its route; for the relay host, \
     `[delivery] relayhost_tls = \"required\"` or `[delivery] relayhost_implicit_tls = true`";

/// The reply on one line, control characters replaced (untrusted text).
fn line(reply: &Reply) -> String {
    error::reply_text(reply)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn mk(id: &'static str, summary: String, fix: &str, detail: String) -> Cause {
    Cause {
        id,
        summary,
        fix: fix.to_owned(),
        detail,
    }
}

impl ClientError {
    /// The catalogue cause of this error; `at` names the peer in the
    /// summary (`mx1.example.com (192.0.2.1:25)`).
    pub fn cause(&self, at: &str) -> Cause {
        let detail = self.to_string();
        match self {
            ClientError::Tls { cause, .. } => cause.clone(),
            ClientError::Connect { source, .. } | ClientError::Io { source, .. } => {
                connection(source.kind(), at, detail)
            }
            ClientError::Timeout { stage } => mk(
                CONN_TIMEOUT,
                format!("{at} did not answer in time ({stage})"),
                "none needed if it passes (retried later); a slow or filtered peer; if every \
                 host times out, check that outbound port 25 is not blocked by our network or \
                 provider",
                detail,
            ),
            ClientError::UnexpectedReply {
                stage: Stage::Auth,
                reply,
            } if reply.is_permanent() => mk(
                AUTH_FAILED,
                format!("{at} refused our credentials: {}", line(reply)),
                "check the user name and password of this smart host with its operator: \
                 `[[route]] auth_user` and `[[route]] auth_password` on its route, or \
                 `[delivery] relayhost_user` and `[delivery] relayhost_password`",
                detail,
            ),
            ClientError::UnexpectedReply { stage, reply } => {
                let text = line(reply);
                if reply.is_permanent() {
                    mk(
                        REPLY_PERMANENT,
                        format!("{at} refused {stage}: {text}"),
                        "read the reply: if it names our server or IP (block list, rDNS, our \
                         EHLO name), fix that; the message is tried on the next host and later",
                        detail,
                    )
                } else {
                    mk(
                        REPLY_TRANSIENT,
                        format!("{at} answered {stage} with a temporary failure: {text}"),
                        "none needed if it passes (retried later); if it persists, read the \
                         reply (rate limit, greylisting) and ask the peer's postmaster",
                        detail,
                    )
                }
            }
            ClientError::AuthNotOffered {
                mechanism,
                offered,
                tls,
            } => auth_not_offered(at, mechanism, offered, *tls, detail),
            ClientError::Insecure { .. } => mk(
                AUTH_UNAVAILABLE,
                format!(
                    "{at}: AUTH refused on our side: the session is not encrypted and the \
                     password is never sent in clear"
                ),
                &format!(
                    "encrypt the session to this smart host: {ENCRYPT_KEYS}; the host must \
                     offer STARTTLS"
                ),
                detail,
            ),
            ClientError::Protocol { .. } | ClientError::NotOffered { .. } => mk(
                PROTOCOL,
                format!("the SMTP dialogue with {at} failed: {self}"),
                "none on our side (retried on the next host and later); read the transcript, \
                 and tell the peer's postmaster if it persists",
                detail,
            ),
            ClientError::Body { .. } => mk(
                BODY_READ,
                "the message could not be read while sending it".to_owned(),
                "check the disk and the server log; the message is retried",
                detail,
            ),
            ClientError::Invalid { .. } => mk(
                INVALID_INPUT,
                format!("refused to send to {at}: {self}"),
                "none on the peer's side: the address or name cannot be sent safely in SMTP; \
                 correct it at the source",
                detail,
            ),
        }
    }
}

fn auth_not_offered(
    at: &str,
    mechanism: &str,
    offered: &[String],
    tls: bool,
    detail: String,
) -> Cause {
    if offered.is_empty() {
        let fix = if tls {
            "the relay host offers no AUTH on this port even over TLS: ask its operator which \
             port takes authenticated submission (often 587), and set it in \
             `[delivery] relayhost` or `[[route]] smarthost` as HOST:PORT"
                .to_owned()
        } else {
            format!(
                "most servers offer AUTH only after STARTTLS, or only on the submission port \
                 587: {ENCRYPT_KEYS}, and use port 587 in `[delivery] relayhost` or \
                 `[[route]] smarthost` if the host takes submission there"
            )
        };
        mk(
            AUTH_NOT_OFFERED,
            format!(
                "{at} did not advertise AUTH{}",
                if tls {
                    ""
                } else {
                    " (on an unencrypted session)"
                }
            ),
            &fix,
            detail,
        )
    } else {
        mk(
            AUTH_NOT_OFFERED,
            format!(
                "{at} offers AUTH {} but not {mechanism}, the mechanisms we speak (PLAIN, LOGIN)",
                offered.join(" ")
            ),
            "none on our side: ask the relay host's operator to enable AUTH PLAIN or LOGIN \
             (over TLS)",
            detail,
        )
    }
}

fn connection(kind: io::ErrorKind, at: &str, detail: String) -> Cause {
    use io::ErrorKind as K;
    let (id, what, fix) = match kind {
        K::ConnectionRefused => (
            CONN_REFUSED,
            "refused the connection",
            "none needed if it passes (retried later); the host does not listen on that port \
             (down, or a firewall rejects us)",
        ),
        K::TimedOut | K::WouldBlock => (
            CONN_TIMEOUT,
            "did not answer in time",
            "none needed if it passes (retried later); if every host times out, check that \
             outbound port 25 is not blocked by our network or provider",
        ),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => (
            CONN_CLOSED,
            "closed the connection unexpectedly",
            "none needed if it passes (retried later); the peer may rate-limit or block us: \
             read its last reply in the transcript",
        ),
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => (
            CONN_UNREACHABLE,
            "is unreachable from here",
            "check our routing (IPv6 without a route is common); retried later",
        ),
        _ => (
            CONN_IO,
            "failed at the socket level",
            "none needed if it passes (retried later); look at the detail",
        ),
    };
    mk(id, format!("{at} {what}"), fix, detail)
}

/// A 4xx reply to one recipient (or to MAIL) from `host`: deferred.
pub fn reply_transient(host: &str, reply: &Reply) -> Cause {
    mk(
        REPLY_TRANSIENT,
        format!("{host} answered with a temporary failure: {}", line(reply)),
        "none needed: the message is retried on schedule; if it persists past a day, ask the \
         destination's postmaster (greylisting, full mailbox, rate limits)",
        String::new(),
    )
}

/// A 5xx reply to one recipient from `host`: bounced.
pub fn reply_permanent(host: &str, reply: &Reply) -> Cause {
    mk(
        REPLY_PERMANENT,
        format!(
            "{host} refused the recipient or message permanently: {}",
            line(reply)
        ),
        "check the address with the sender; if the refusal names our server or IP \
         (block list, SPF, rDNS), fix that and resend",
        String::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_proto::EnhancedCode;

    fn reply(code: u16, text: &str) -> Reply {
        Reply::new(code, Some(EnhancedCode::new(5, 7, 8)), text)
    }

    #[test]
    fn ids_are_unique_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for id in ALL {
            assert!(seen.insert(*id), "duplicate {id}");
            assert!(id.starts_with("conn.") || id.starts_with("smtp."), "{id}");
        }
    }

    /// A smart host without AUTH is not a wrong password.
    #[test]
    fn auth_not_offered_is_its_own_cause() {
        let e = ClientError::AuthNotOffered {
            mechanism: "LOGIN".into(),
            offered: Vec::new(),
            tls: false,
        };
        let c = e.cause("relay.example:25");
        assert_eq!(c.id, AUTH_NOT_OFFERED);
        assert!(!c.fix.contains("password"), "{c}");
        assert!(c.fix.contains("587"), "{c}");
        assert!(c.fix.contains("STARTTLS"), "{c}");
        let wrong = ClientError::UnexpectedReply {
            stage: Stage::Auth,
            reply: reply(535, "Authentication credentials invalid"),
        };
        let c = wrong.cause("relay.example:587");
        assert_eq!(c.id, AUTH_FAILED);
        assert!(c.fix.contains("`[[route]] auth_password`"), "{c}");
    }

    #[test]
    fn io_kinds_map() {
        let e = |kind| ClientError::Io {
            stage: Stage::Banner,
            source: io::Error::from(kind),
        };
        assert_eq!(
            e(io::ErrorKind::ConnectionRefused).cause("h").id,
            CONN_REFUSED
        );
        assert_eq!(e(io::ErrorKind::UnexpectedEof).cause("h").id, CONN_CLOSED);
        assert_eq!(e(io::ErrorKind::Other).cause("h").id, CONN_IO);
    }
}
