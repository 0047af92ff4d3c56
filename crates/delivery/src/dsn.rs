//! Delivery status notifications (RFC 3464): the `multipart/report` message a
//! sender receives when recipients failed, were delayed, or (NOTIFY=SUCCESS)
//! were delivered.
//!
//! This module only builds bytes; the scheduler decides who gets one and queues
//! it through the spool like any message, from the null sender `<>` (RFC 5321
//! §4.5.5), so a DSN can never cause another DSN.
//!
//! # Security
//! Remote replies and addresses are untrusted: every value written into a
//! header or a status field has its control characters replaced, so a reply
//! cannot inject header lines or MIME boundaries, and long values are cut. The
//! returned content is the sender's own message (RET=FULL) or only its header
//! section (RET=HDRS, and our default when RET is absent: less data echoed).
//!
//! # Standards
//! RFC 3464 (delivery-status format), RFC 3461 §4 (NOTIFY, RET, ENVID, ORCPT),
//! RFC 6522 (multipart/report), RFC 3463 (status codes), RFC 3834
//! (`Auto-Submitted: auto-replied`), RFC 5322 (message format), RFC 7505 §4.3
//! (5.1.10 for null MX).

use std::fmt::Write as _;

use postern_spool::Envelope;

use crate::clock::rfc5322;

/// Returned content is cut to this many octets for RET=FULL; beyond it only
/// the header section is returned (RFC 3461 §4.3 lets the MTA truncate).
pub const MAX_RETURNED_FULL: usize = 10 * 1024 * 1024;
/// Header sections are cut to this many octets.
pub const MAX_RETURNED_HEADERS: usize = 256 * 1024;
/// Longest value written in a status field (RFC 5322 §2.1.1: lines ≤ 998).
const MAX_FIELD: usize = 900;

/// RFC 3464 §2.3.3 `Action:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `failed`.
    Failed,
    /// `delayed`.
    Delayed,
    /// `delivered`.
    Delivered,
    /// `relayed`: handed to a next hop that does not do DSN (RFC 3461 §6.2.2).
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// One recipient in a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// The address we tried (`Final-Recipient`).
    pub address: String,
    /// The RCPT `ORCPT=` parameter as given (`rfc822;xtext`).
    pub orcpt: Option<String>,
    /// What happened.
    pub action: Action,
    /// RFC 3463 status (`5.1.1`).
    pub status: String,
    /// The host that answered.
    pub remote_mta: Option<String>,
    /// The remote reply (`550 5.1.1 no such user`), for `Diagnostic-Code: smtp;`.
    pub diagnostic: Option<String>,
    /// One sentence for the human-readable part.
    pub explanation: String,
    /// Unix ms of the last attempt.
    pub last_attempt_ms: Option<u64>,
    /// For `delayed`: Unix ms until which we keep trying.
    pub will_retry_until_ms: Option<u64>,
}

/// What to return of the original message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// The whole message (`message/rfc822`).
    Full(Vec<u8>),
    /// The header section (`text/rfc822-headers`).
    Headers(Vec<u8>),
}

/// Everything needed to build one DSN.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// Our host name (`Reporting-MTA`, `From: MAILER-DAEMON@…`).
    pub reporting_mta: &'a str,
    /// The original envelope.
    pub original: &'a Envelope,
    /// Unix ms of acceptance.
    pub arrival_ms: u64,
    /// Unix ms now.
    pub now_ms: u64,
    /// A unique token for the Message-ID and the MIME boundary (the original
    /// queue id plus a counter does).
    pub unique: &'a str,
    /// Recipients reported.
    pub recipients: &'a [DsnRecipient],
    /// Returned content.
    pub returned: Returned,
}

/// The subject line for a DSN with these actions.
pub fn subject(recipients: &[DsnRecipient]) -> &'static str {
    if recipients.iter().any(|r| r.action == Action::Failed) {
        "Undelivered Mail Returned to Sender"
    } else if recipients.iter().any(|r| r.action == Action::Delayed) {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    }
}

/// Builds the DSN message (CRLF line ends, ready for the spool).
pub fn build(input: &DsnInput<'_>) -> Vec<u8> {
    let host = clean(input.reporting_mta);
    let boundary = format!("=_postern_dsn_{}", clean(input.unique));
    let sender = clean(&input.original.reverse_path);
    let mut m = String::with_capacity(4096);
    let crlf = "\r\n";

    // Header section.
    let _ = write!(m, "From: Mail Delivery System <MAILER-DAEMON@{host}>{crlf}");
    let _ = write!(m, "To: <{sender}>{crlf}");
    let _ = write!(m, "Subject: {}{crlf}", subject(input.recipients));
    let _ = write!(m, "Date: {}{crlf}", rfc5322(input.now_ms));
    let _ = write!(m, "Message-ID: <{}.dsn@{host}>{crlf}", clean(input.unique));
    let _ = write!(m, "Auto-Submitted: auto-replied{crlf}");
    let _ = write!(
        m,
        "X-Postern-Original-Queue-Id: {}{crlf}",
        input.original.queue_id
    );
    let _ = write!(m, "MIME-Version: 1.0{crlf}");
    let _ = write!(
        m,
        "Content-Type: multipart/report; report-type=delivery-status;{crlf}\tboundary=\"{boundary}\"{crlf}"
    );
    let _ = write!(m, "{crlf}This is a MIME-encapsulated message.{crlf}{crlf}");

    // 1. Human-readable part.
    let _ = write!(m, "--{boundary}{crlf}");
    let _ = write!(m, "Content-Type: text/plain; charset=utf-8{crlf}");
    let _ = write!(m, "Content-Transfer-Encoding: 8bit{crlf}{crlf}");
    let _ = write!(m, "This is the mail system at host {host}.{crlf}{crlf}");
    for (action, intro) in [
        (
            Action::Failed,
            "Delivery to the following recipients failed permanently:",
        ),
        (
            Action::Delayed,
            "Delivery to the following recipients has been delayed:",
        ),
        (
            Action::Delivered,
            "Your message was delivered to the following recipients:",
        ),
        (
            Action::Relayed,
            "Your message was relayed to the following recipients; their servers do not \
             confirm final delivery:",
        ),
    ] {
        let group: Vec<&DsnRecipient> = input
            .recipients
            .iter()
            .filter(|r| r.action == action)
            .collect();
        if group.is_empty() {
            continue;
        }
        let _ = write!(m, "{intro}{crlf}{crlf}");
        for r in group {
            let _ = write!(m, "    <{}>{crlf}", clean(&r.address));
            let _ = write!(m, "        {}{crlf}", clean(&r.explanation));
            if let Some(d) = &r.diagnostic {
                let who = r.remote_mta.as_deref().map(clean).unwrap_or_default();
                if who.is_empty() {
                    let _ = write!(m, "        Server reply: {}{crlf}", clean(d));
                } else {
                    let _ = write!(m, "        {who} said: {}{crlf}", clean(d));
                }
            }
            if let Some(until) = r.will_retry_until_ms {
                let _ = write!(
                    m,
                    "        We will keep trying until {}.{crlf}",
                    rfc5322(until)
                );
            }
            m.push_str(crlf);
        }
    }
    let _ = write!(
        m,
        "For help, forward this message to your postmaster, with the returned headers.{crlf}{crlf}"
    );

    // 2. message/delivery-status (RFC 3464 §2).
    let _ = write!(m, "--{boundary}{crlf}");
    let _ = write!(m, "Content-Type: message/delivery-status{crlf}{crlf}");
    let _ = write!(m, "Reporting-MTA: dns; {host}{crlf}");
    if let Some(envid) = &input.original.params.envid {
        // RFC 3461 §4.4: the ENVID, decoded from xtext.
        let decoded = postern_proto::decode_xtext(envid).unwrap_or_else(|_| envid.clone());
        let _ = write!(m, "Original-Envelope-Id: {}{crlf}", clean(&decoded));
    }
    let _ = write!(m, "Arrival-Date: {}{crlf}", rfc5322(input.arrival_ms));
    for r in input.recipients {
        m.push_str(crlf);
        if let Some(orcpt) = &r.orcpt {
            // RFC 3461 §4.2: addr-type ";" xtext; RFC 3464 §2.3.1 wants it decoded.
            let (ty, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            let decoded = postern_proto::decode_xtext(addr).unwrap_or_else(|_| addr.to_owned());
            let _ = write!(
                m,
                "Original-Recipient: {};{}{crlf}",
                clean(ty.trim()),
                clean(&decoded)
            );
        }
        let _ = write!(m, "Final-Recipient: rfc822; {}{crlf}", clean(&r.address));
        let _ = write!(m, "Action: {}{crlf}", r.action.as_str());
        let _ = write!(m, "Status: {}{crlf}", clean(&r.status));
        if let Some(mta) = &r.remote_mta {
            let _ = write!(m, "Remote-MTA: dns; {}{crlf}", clean(mta));
        }
        if let Some(d) = &r.diagnostic {
            let _ = write!(m, "Diagnostic-Code: smtp; {}{crlf}", clean(d));
        }
        if let Some(t) = r.last_attempt_ms {
            let _ = write!(m, "Last-Attempt-Date: {}{crlf}", rfc5322(t));
        }
        if let Some(t) = r.will_retry_until_ms {
            let _ = write!(m, "Will-Retry-Until: {}{crlf}", rfc5322(t));
        }
    }
    m.push_str(crlf);

    // 3. The returned message or its headers.
    let mut out = m.into_bytes();
    let (ctype, content) = match &input.returned {
        Returned::Full(b) => ("message/rfc822", b.as_slice()),
        Returned::Headers(h) => ("text/rfc822-headers", h.as_slice()),
    };
    out.extend_from_slice(format!("--{boundary}{crlf}Content-Type: {ctype}{crlf}").as_bytes());
    if ctype == "message/rfc822" && !content.is_ascii() {
        out.extend_from_slice(format!("Content-Transfer-Encoding: 8bit{crlf}").as_bytes());
    }
    out.extend_from_slice(crlf.as_bytes());
    out.extend_from_slice(content);
    if !content.ends_with(b"\r\n") {
        out.extend_from_slice(crlf.as_bytes());
    }
    out.extend_from_slice(format!("{crlf}--{boundary}--{crlf}").as_bytes());
    out
}

/// The header section of `message` (up to and including the blank line), cut
/// at [`MAX_RETURNED_HEADERS`].
pub fn header_section(message: &[u8]) -> Vec<u8> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |p| p + 4);
    let end = end.min(MAX_RETURNED_HEADERS);
    let mut h = message[..end].to_vec();
    // Cut at a line end so the part stays well-formed.
    if !h.ends_with(b"\r\n")
        && let Some(p) = h.windows(2).rposition(|w| w == b"\r\n")
    {
        h.truncate(p + 2);
    }
    h
}

/// The RFC 3463 status for a recipient: the reply's enhanced code when it has
/// one of the right class, else `class.0.0` from the reply code, else from the
/// cause (null MX 5.1.10, no such domain 5.1.2, expired 4.4.7, …).
pub fn status_for(reply: Option<&str>, cause_id: Option<&str>, class: u8) -> String {
    use crate::cause as c;
    match cause_id {
        Some(c::NULL_MX) => return "5.1.10".into(),
        Some(c::NO_SUCH_DOMAIN) => return "5.1.2".into(),
        Some(c::EXPIRED) => return "4.4.7".into(),
        _ => {}
    }
    if let Some(r) = reply {
        let mut words = r.split_whitespace();
        let code = words.next().unwrap_or("");
        if let Some(enh) = words.next() {
            let parts: Vec<&str> = enh.split('.').collect();
            if parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && parts[0] == class.to_string()
            {
                return enh.to_owned();
            }
        }
        if code.len() == 3 && code.starts_with(char::from(b'0' + class)) {
            return format!("{class}.0.0");
        }
    }
    match (class, cause_id) {
        (_, Some(c::NO_ADDRESS)) => format!("{class}.4.4"),
        (_, Some(c::DNS_TEMPORARY | c::DNS_BOGUS)) => format!("{class}.4.3"),
        (_, Some(id)) if id.starts_with("conn.") => format!("{class}.4.1"),
        (_, Some(id)) if id.starts_with("tls.") || id.starts_with("policy.") => {
            format!("{class}.7.10")
        }
        _ => format!("{class}.0.0"),
    }
}

/// One line, no control characters, at most `MAX_FIELD` characters.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FIELD)
        .collect();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_spool::{EnvelopeRecipient, MailParams, QueueId, Receipt};

    #[test]
    fn status_codes() {
        assert_eq!(status_for(Some("550 5.1.1 no such user"), None, 5), "5.1.1");
        assert_eq!(status_for(Some("550 no such user"), None, 5), "5.0.0");
        assert_eq!(status_for(Some("451 4.7.1 greylisted"), None, 4), "4.7.1");
        // Wrong class in the enhanced code: derive from the reply code.
        assert_eq!(status_for(Some("550 2.0.0 odd"), None, 5), "5.0.0");
        assert_eq!(status_for(None, Some(crate::cause::NULL_MX), 5), "5.1.10");
        assert_eq!(status_for(None, Some(crate::cause::EXPIRED), 4), "4.4.7");
        assert_eq!(status_for(None, Some("tls.out.cert_expired"), 4), "4.7.10");
        assert_eq!(
            status_for(None, Some(crate::cause::CONN_REFUSED), 4),
            "4.4.1"
        );
    }

    #[test]
    fn header_section_cuts_at_blank_line() {
        assert_eq!(
            header_section(b"A: 1\r\nB: 2\r\n\r\nbody"),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(header_section(b"A: 1\r\nB: 2"), b"A: 1\r\n");
    }

    #[test]
    fn injection_is_neutralised() {
        let env = Envelope {
            queue_id: QueueId::generate(),
            received_at: String::new(),
            reverse_path: "a@example.com".into(),
            recipients: vec![EnvelopeRecipient::default()],
            params: MailParams::default(),
            receipt: Receipt::default(),
            message_size: 0,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        };
        let r = DsnRecipient {
            address: "b@example.net".into(),
            orcpt: None,
            action: Action::Failed,
            status: "5.0.0".into(),
            remote_mta: Some("mx\r\nBcc: victim@example.org".into()),
            diagnostic: Some("550 nope\r\n--=_postern_dsn_x--".into()),
            explanation: "x".into(),
            last_attempt_ms: None,
            will_retry_until_ms: None,
        };
        let out = build(&DsnInput {
            reporting_mta: "mx.example.com",
            original: &env,
            arrival_ms: 0,
            now_ms: 0,
            unique: "x",
            recipients: &[r],
            returned: Returned::Headers(b"Subject: hi\r\n\r\n".to_vec()),
        });
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(
            !text.contains("\r\n--=_postern_dsn_x--\r\n\r\n--"),
            "{text}"
        );
        assert_eq!(
            text.matches("\r\n--=_postern_dsn_x--\r\n").count(),
            1,
            "{text}"
        );
    }
}
