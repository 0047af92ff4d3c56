//! The report message: headers, a short text part and the gzip-compressed
//! XML as a base64 attachment, ready to be queued like any other message.
//!
//! # Security
//! Header values come from configuration (`org_name`, `email`) and from
//! DNS (the policy domain, the destination); any CR, LF or other control
//! character is removed before it reaches a header, so no record can add a
//! header line.
//!
//! # Standards
//! RFC 7489 §7.2.1.1 (subject, file name, `application/gzip`), RFC 5322
//! (Date, Message-ID, From, To), RFC 2045/2046 (MIME, base64 lines ≤ 76),
//! RFC 6713 (`application/gzip`), RFC 3834 (`Auto-Submitted`).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

/// What a report message says.
#[derive(Debug, Clone)]
pub struct ReportMessage<'a> {
    /// `org_name`, shown in From.
    pub org_name: &'a str,
    /// The sender address (`email`).
    pub from: &'a str,
    /// The destination mailbox.
    pub to: &'a str,
    /// The receiver's domain (Submitter).
    pub submitter: &'a str,
    /// The policy domain (Report Domain).
    pub policy_domain: &'a str,
    /// The report id.
    pub report_id: &'a str,
    /// The attachment's file name.
    pub attachment_name: &'a str,
    /// The compressed XML.
    pub gz: &'a [u8],
    /// Date of the message.
    pub date: OffsetDateTime,
    /// Unique part of the Message-ID (before the `@`).
    pub unique: &'a str,
}

/// Removes control characters (CR, LF, TAB, …) from a header value.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// RFC 5322 quoted-string for a display name (ASCII only; other characters
/// are replaced by `?`).
fn display_name(s: &str) -> String {
    let mut out = String::from("\"");
    for c in clean(s).chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// RFC 5322 §3.3 date-time, e.g. `Sun, 06 Dec 2026 01:00:00 +0000`.
pub fn rfc5322_date(t: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl ReportMessage<'_> {
    /// RFC 7489 §7.2.1.1 subject, folded at its spaces (RFC 5322 §2.2.3)
    /// when longer than 78 characters: long domains cannot push the line
    /// past 998.
    fn subject(&self) -> String {
        let parts = [
            format!("Report Domain: {}", clean(self.policy_domain)),
            format!("Submitter: {}", clean(self.submitter)),
            format!("Report-ID: <{}>", clean(self.report_id)),
        ];
        let one = parts.join(" ");
        if one.len() + "Subject: ".len() <= 78 {
            one
        } else {
            parts.join("\r\n ")
        }
    }

    /// The message, CRLF line ends.
    pub fn build(&self) -> Vec<u8> {
        let boundary = format!("=_postern_dmarc_{}", clean(self.unique));
        let name = clean(self.attachment_name).replace('"', "");
        let mut m = String::with_capacity(self.gz.len() * 4 / 3 + 2048);
        let _ = write!(
            m,
            "From: {} <{}>\r\n\
             To: <{}>\r\n\
             Date: {}\r\n\
             Message-ID: <{}@{}>\r\n\
             Subject: {}\r\n\
             MIME-Version: 1.0\r\n\
             Auto-Submitted: auto-generated\r\n\
             Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\
             \r\n\
             This is a DMARC aggregate report (RFC 7489 section 7.2) in MIME format.\r\n\
             \r\n\
             --{boundary}\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             \r\n\
             DMARC aggregate report from {}\r\n\
             \r\n\
             Report Domain: {}\r\n\
             Submitter: {}\r\n\
             Report-ID: {}\r\n\
             \r\n\
             --{boundary}\r\n\
             Content-Type: application/gzip; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             \r\n",
            display_name(self.org_name),
            clean(self.from),
            clean(self.to),
            rfc5322_date(self.date),
            clean(self.unique),
            clean(self.submitter),
            self.subject(),
            clean(self.submitter),
            clean(self.policy_domain),
            clean(self.submitter),
            clean(self.report_id),
        );
        let b64 = STANDARD.encode(self.gz);
        for chunk in b64.as_bytes().chunks(76) {
            // base64 output is ASCII.
            m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            m.push_str("\r\n");
        }
        let _ = write!(m, "\r\n--{boundary}--\r\n");
        m.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_format() {
        let t = OffsetDateTime::from_unix_timestamp(1_796_518_800)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(rfc5322_date(t), "Sun, 06 Dec 2026 01:00:00 +0000");
    }

    #[test]
    fn long_subject_is_folded() {
        let long = format!("{}.example", "a".repeat(60));
        let msg = ReportMessage {
            org_name: "R",
            from: "dmarc@example.com",
            to: "a@b.example",
            submitter: "example.com",
            policy_domain: &long,
            report_id: "id",
            attachment_name: "x.xml.gz",
            gz: b"",
            date: OffsetDateTime::UNIX_EPOCH,
            unique: "u",
        }
        .build();
        let text = String::from_utf8(msg).unwrap_or_default();
        assert!(text.contains(&format!(
            "\r\nSubject: Report Domain: {long}\r\n Submitter: example.com\r\n Report-ID: <id>\r\n"
        )), "{text}");
    }

    #[test]
    fn headers_cannot_be_injected() {
        let msg = ReportMessage {
            org_name: "Ex \"Corp\"\r\nBcc: x@evil.example",
            from: "dmarc@example.com",
            to: "a@b.example\r\nBcc: c@evil.example",
            submitter: "example.com",
            policy_domain: "b.example",
            report_id: "id",
            attachment_name: "example.com!b.example!1!2.xml.gz",
            gz: b"\x1f\x8b",
            date: OffsetDateTime::UNIX_EPOCH,
            unique: "u1",
        }
        .build();
        let text = String::from_utf8(msg).unwrap_or_default();
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(
            text.contains("From: \"Ex \\\"Corp\\\"Bcc: x@evil.example\" <dmarc@example.com>\r\n")
        );
    }
}
