//! Every reply the session machine composes, in one table. Parser and decoder
//! errors map to replies beside their error types (`CommandError::to_reply`,
//! `DataError::to_reply`, `SaslError::to_reply`); spool errors map in
//! `postern-smtpd`, which owns the spool.
//!
//! Texts are generic on purpose: the peer learns what to do, the operator log
//! gets the cause (ARCHITECTURE.md "Errors").
//!
//! # Standards
//! RFC 5321 §4.2 (reply codes), RFC 3463 / RFC 2034 (enhanced codes), RFC 3207
//! (STARTTLS), RFC 4954 §6 (AUTH codes), RFC 1870 (SIZE), RFC 3030 (BDAT).

use crate::reply::{EnhancedCode, Reply};

fn r(code: u16, (c, s, d): (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, Some(EnhancedCode::new(c, s, d)), text)
}

/// `220` greeting; no enhanced code (RFC 2034 §3 excludes the greeting).
pub(crate) fn greeting(hostname: &str, banner: Option<&str>) -> Reply {
    Reply::new(
        220,
        None,
        format!("{hostname} ESMTP {}", banner.unwrap_or("Postern")),
    )
}
/// `HELO` answer; no enhanced code (RFC 2034 §3).
pub(crate) fn helo(hostname: &str) -> Reply {
    Reply::new(250, None, hostname.to_owned())
}
pub(crate) fn ok() -> Reply {
    r(250, (2, 0, 0), "OK")
}
pub(crate) fn reset() -> Reply {
    r(250, (2, 0, 0), "Reset state")
}
pub(crate) fn bye() -> Reply {
    r(221, (2, 0, 0), "Bye")
}
/// RFC 5321 §4.1.1.8: lists only what this session offers now.
pub(crate) fn help(starttls: bool, auth: bool, vrfy: bool) -> Reply {
    let mut text =
        String::from("See RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP");
    if vrfy {
        text.push_str(" VRFY");
    }
    if starttls {
        text.push_str(" STARTTLS");
    }
    if auth {
        text.push_str(" AUTH");
    }
    r(214, (2, 0, 0), text)
}
pub(crate) fn sender_ok() -> Reply {
    r(250, (2, 1, 0), "Sender OK")
}
pub(crate) fn recipient_ok() -> Reply {
    r(250, (2, 1, 5), "Recipient OK")
}
/// `354` has no enhanced code (RFC 2034 applies to 2xx/4xx/5xx).
pub(crate) fn start_data() -> Reply {
    Reply::new(354, None, "End data with <CR><LF>.<CR><LF>")
}
pub(crate) fn queued(queue_id: &str) -> Reply {
    r(250, (2, 0, 0), format!("Ok: queued as {queue_id}"))
}
pub(crate) fn bdat_chunk(octets: u64) -> Reply {
    r(250, (2, 0, 0), format!("{octets} octets received"))
}
pub(crate) fn vrfy_ambiguous() -> Reply {
    r(
        252,
        (2, 5, 0),
        "Cannot VRFY user, but will accept message and attempt delivery",
    )
}
pub(crate) fn vrfy_disabled() -> Reply {
    r(502, (5, 5, 1), "VRFY command is disabled")
}
pub(crate) fn expn_disabled() -> Reply {
    r(502, (5, 5, 1), "EXPN command is disabled")
}
pub(crate) fn starttls_ready() -> Reply {
    r(220, (2, 0, 0), "Ready to start TLS")
}
pub(crate) fn starttls_unavailable() -> Reply {
    r(502, (5, 5, 1), "STARTTLS not available")
}
pub(crate) fn already_tls() -> Reply {
    r(503, (5, 5, 1), "TLS already active")
}
/// RFC 3207 §4: the server requires TLS before this command.
pub(crate) fn starttls_first() -> Reply {
    r(530, (5, 7, 0), "Must issue a STARTTLS command first")
}
pub(crate) fn auth_required() -> Reply {
    r(530, (5, 7, 0), "Authentication required")
}
pub(crate) fn helo_first() -> Reply {
    r(503, (5, 5, 1), "Send EHLO or HELO first")
}
pub(crate) fn nested_mail() -> Reply {
    r(503, (5, 5, 1), "Sender already specified")
}
pub(crate) fn need_mail() -> Reply {
    r(503, (5, 5, 1), "Need MAIL command")
}
/// RFC 5321 §3.3: DATA with no valid recipient.
pub(crate) fn no_recipients() -> Reply {
    r(554, (5, 5, 1), "No valid recipients")
}
/// RFC 3030 §2: the recipients are fixed once the body has started.
pub(crate) fn rcpt_after_bdat() -> Reply {
    r(
        503,
        (5, 5, 1),
        "RCPT is not allowed after BDAT in the same transaction",
    )
}
/// Something that cannot happen went wrong; the client may retry.
pub(crate) fn local_error() -> Reply {
    r(451, (4, 3, 0), "Local error in processing, try again later")
}
pub(crate) fn data_after_bdat() -> Reply {
    r(
        503,
        (5, 5, 1),
        "DATA is not allowed after BDAT in the same transaction",
    )
}
/// RFC 1870 §6 / RFC 3463 X.3.4.
pub(crate) fn message_too_big(max: u64) -> Reply {
    r(
        552,
        (5, 3, 4),
        format!("Message size exceeds fixed limit of {max} octets"),
    )
}
pub(crate) fn binarymime_unsupported() -> Reply {
    r(555, (5, 5, 4), "BODY=BINARYMIME is not supported")
}
/// RFC 5321 §4.5.3.1.10: too many recipients is a 452 so the client retries the rest.
pub(crate) fn too_many_recipients() -> Reply {
    r(452, (4, 5, 3), "Too many recipients")
}
pub(crate) fn too_many_errors() -> Reply {
    r(421, (4, 7, 0), "Too many errors, closing connection")
}
pub(crate) fn timeout(hostname: &str) -> Reply {
    r(
        421,
        (4, 4, 2),
        format!("{hostname} Timeout exceeded, closing connection"),
    )
}
pub(crate) fn shutting_down(hostname: &str) -> Reply {
    r(421, (4, 3, 2), format!("{hostname} Service shutting down"))
}
pub(crate) fn auth_not_enabled() -> Reply {
    r(503, (5, 5, 1), "Authentication not enabled")
}
pub(crate) fn already_authenticated() -> Reply {
    r(503, (5, 5, 1), "Already authenticated")
}
pub(crate) fn auth_in_transaction() -> Reply {
    r(
        503,
        (5, 5, 1),
        "AUTH not permitted during a mail transaction",
    )
}
/// RFC 4954 §6: unknown mechanism.
pub(crate) fn auth_mechanism_unknown() -> Reply {
    r(504, (5, 5, 4), "Unrecognized authentication type")
}
pub(crate) fn auth_ok() -> Reply {
    r(235, (2, 7, 0), "Authentication successful")
}
/// RFC 4954 §6: 535 5.7.8.
pub(crate) fn auth_failed() -> Reply {
    r(535, (5, 7, 8), "Authentication credentials invalid")
}
/// RFC 4954 §4: client cancelled with "*".
pub(crate) fn auth_cancelled() -> Reply {
    r(501, (5, 0, 0), "Authentication cancelled")
}
pub(crate) fn auth_bad_encoding() -> Reply {
    r(501, (5, 5, 2), "Invalid base64 in AUTH response")
}
/// RFC 4954 §6: the verifier is busy (the session waited its turn too long).
pub(crate) fn auth_temporary_failure() -> Reply {
    r(
        454,
        (4, 7, 0),
        "Temporary authentication failure, try again later",
    )
}
pub(crate) fn too_many_auth_failures() -> Reply {
    r(
        421,
        (4, 7, 0),
        "Too many authentication failures, closing connection",
    )
}
/// A SASL continuation; the text is base64 and carries no enhanced code (RFC 4954 §4).
pub(crate) fn auth_challenge(b64: &str) -> Reply {
    Reply::new(334, None, b64.to_owned())
}
/// RFC 5321 §4.5.3.1.4: "500 Line too long".
pub(crate) fn line_too_long(max: usize) -> Reply {
    r(
        500,
        (5, 5, 2),
        format!("Line too long (limit {max} octets)"),
    )
}
/// A line over the reader's limit: too long for a command and for an AUTH
/// line (RFC 4954 §4) alike.
pub(crate) fn line_too_long_for_reader(max: usize) -> Reply {
    r(
        500,
        (5, 5, 2),
        format!("Line too long (limit {max} octets, 12288 for AUTH)"),
    )
}
/// RFC 5321 §2.3.8: only CRLF ends a line; the connection is closed after it
/// (SMTP smuggling defence, as Postfix `smtpd_forbid_bare_newline`).
pub(crate) fn bare_line_feed() -> Reply {
    r(
        500,
        (5, 5, 2),
        "Bare <LF> received; lines must end with <CR><LF> (RFC 5321 section 2.3.8)",
    )
}
/// RFC 5321 §4.1.1.1: the EHLO/HELO argument is a domain or an address literal.
pub(crate) fn bad_helo() -> Reply {
    r(
        501,
        (5, 5, 4),
        "Invalid EHLO/HELO argument: expected a domain or an address literal",
    )
}
/// RFC 5321 §3.1: after a `554` greeting, everything but QUIT gets `503`.
pub(crate) fn no_service() -> Reply {
    r(503, (5, 5, 1), "No SMTP service here, only QUIT")
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_has_the_right_shape() {
        let cases: Vec<(Reply, &str)> = vec![
            (greeting("mx", None), "220 mx ESMTP Postern\r\n"),
            (greeting("mx", Some("Hi")), "220 mx ESMTP Hi\r\n"),
            (
                starttls_first(),
                "530 5.7.0 Must issue a STARTTLS command first\r\n",
            ),
            (too_many_recipients(), "452 4.5.3 Too many recipients\r\n"),
            (
                message_too_big(10),
                "552 5.3.4 Message size exceeds fixed limit of 10 octets\r\n",
            ),
            (
                vrfy_ambiguous(),
                "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n",
            ),
            (expn_disabled(), "502 5.5.1 EXPN command is disabled\r\n"),
            (
                auth_failed(),
                "535 5.7.8 Authentication credentials invalid\r\n",
            ),
            (start_data(), "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (queued("ABC"), "250 2.0.0 Ok: queued as ABC\r\n"),
        ];
        for (reply, want) in cases {
            assert_eq!(String::from_utf8(reply.to_bytes()).unwrap(), want);
        }
    }
}
