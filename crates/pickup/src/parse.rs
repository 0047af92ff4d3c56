//! Reading a pickup file's header block (pure): IIS envelope lines, the
//! fallback to `Sender:`/`From:` and `To:`/`Cc:`/`Bcc:`, line-end normalising,
//! and the `Received:` header we add. The crate documentation has the rules.
//!
//! # Security
//! Parses untrusted files: the header block is bounded ([`MAX_HEADER_BLOCK`]),
//! recipients too ([`MAX_RECIPIENTS`]); addresses are parsed by `postern-proto`.
//!
//! # Standards
//! RFC 5322 §2.3, §3.6, §3.6.2, §3.6.3; RFC 5321 §4.4; RFC 6531.

use mail_parser::{HeaderValue, MessageParser};
use postern_proto::{Limits, Mailbox};
use postern_spool::QueueId;

/// The largest header block (envelope lines and header fields) read before
/// the blank line that ends it; past this the file is malformed.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// The most recipients one pickup file may name.
pub const MAX_RECIPIENTS: usize = 1000;

/// Turns bare LF and bare CR into CRLF, across chunk boundaries.
#[derive(Debug, Default)]
pub(crate) struct Crlf {
    pending_cr: bool,
}

impl Crlf {
    pub(crate) fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        while let Some(i) = input.iter().position(|&b| b == b'\r' || b == b'\n') {
            out.extend_from_slice(&input[..i]);
            if input[i] == b'\n' {
                out.extend_from_slice(b"\r\n");
                input = &input[i + 1..];
            } else if i + 1 == input.len() {
                // A CR at the end of a chunk: its LF may be in the next one.
                self.pending_cr = true;
                return;
            } else {
                out.extend_from_slice(b"\r\n");
                let skip = if input[i + 1] == b'\n' { 2 } else { 1 };
                input = &input[i + skip..];
            }
        }
        out.extend_from_slice(input);
    }

    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Where the header ends in CRLF text: `(end of the last field's CRLF, start
/// of the body)`, or `None` while no blank line has been seen.
pub(crate) fn find_separator(text: &[u8]) -> Option<(usize, usize)> {
    if text.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    text.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i + 2, i + 4))
}

/// A pickup file's header block, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The reverse path; `""` is the null sender (`X-Sender: <>`).
    pub sender: String,
    /// The recipients, canonical and without duplicates, in order.
    pub recipients: Vec<String>,
    /// The header fields to store, CRLF-terminated, without the envelope
    /// lines, the mbox `From ` line and `Bcc:`.
    pub header: Vec<u8>,
    /// A `Date:` field is present.
    pub has_date: bool,
    /// A `Message-ID:` field is present.
    pub has_message_id: bool,
    /// Some envelope address is not ASCII (RFC 6531).
    pub smtputf8: bool,
}

/// One header line: byte range without its CRLF, and with it.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

fn lines(text: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let (end, next) = match text[start..].windows(2).position(|w| w == b"\r\n") {
            Some(i) => (start + i, start + i + 2),
            None => (text.len(), text.len()),
        };
        out.push(Line { start, end, next });
        start = next;
    }
    out
}

/// The value after `name:` if `line` starts with that field name (any case).
fn envelope_value<'a>(line: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let n = name.len();
    (line.len() > n && line[..n].eq_ignore_ascii_case(name.as_bytes()) && line[n] == b':')
        .then(|| &line[n + 1..])
}

/// An mbox separator (`From alice@example.com Mon Jan  1 …`), not a `From:`
/// field (which may have blanks before its colon: RFC 5322 §4.5.3 obs-syntax).
fn is_mbox_from(line: &[u8]) -> bool {
    line.strip_prefix(b"From ")
        .is_some_and(|rest| rest.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b':'))
}

/// Quotes a line for an operator message: lossy UTF-8, at most 80 characters.
fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    format!("{out:?}")
}

/// An address from an `X-Sender:`/`X-Receiver:` line: `addr` or `<addr>`.
fn envelope_address(value: &[u8]) -> Result<Option<Mailbox>, String> {
    let s = std::str::from_utf8(value)
        .map_err(|_| "the address is not valid UTF-8".to_owned())?
        .trim();
    let s = s
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s)
        .trim();
    if s.is_empty() {
        return Ok(None);
    }
    Mailbox::parse(s, &Limits::default())
        .map(Some)
        .map_err(|e| format!("{} ({e})", show(s.as_bytes())))
}

/// The addresses of one address field (`From:`, `To:` …), checked.
fn field_addresses(field: &[u8], name: &str, line_no: usize) -> Result<Vec<Mailbox>, String> {
    let mut raw = field.to_vec();
    raw.extend_from_slice(b"\r\n\r\n");
    let parsed = MessageParser::new().parse_headers(&raw);
    let mut out = Vec::new();
    let Some(msg) = parsed else {
        return Ok(out);
    };
    for h in msg.headers() {
        let HeaderValue::Address(list) = &h.value else {
            continue;
        };
        for addr in list.iter() {
            let text = addr.address.as_deref().map(str::trim).unwrap_or_default();
            if text.is_empty() {
                if let Some(display) = addr.name.as_deref().filter(|n| !n.trim().is_empty()) {
                    return Err(format!(
                        "bad address in the {name}: header (line {line_no}): {} is not an address",
                        show(display.as_bytes())
                    ));
                }
                continue;
            }
            let mb = Mailbox::parse(text, &Limits::default()).map_err(|e| {
                format!(
                    "bad address in the {name}: header (line {line_no}): {} ({e})",
                    show(text.as_bytes())
                )
            })?;
            out.push(mb);
        }
    }
    Ok(out)
}

/// Reads the header block of a pickup file: envelope lines, header fields,
/// the addresses that matter. `header` is CRLF text without the blank line
/// that ends it. The error is the reason for the badmail folder, in an
/// operator's words.
pub fn parse_header(header: &[u8]) -> Result<Parsed, String> {
    let all = lines(header);
    let mut i = 0;
    if all
        .first()
        .is_some_and(|l| is_mbox_from(&header[l.start..l.end]))
    {
        i = 1;
    }
    let mut x_sender: Option<Option<Mailbox>> = None;
    let mut x_receivers: Vec<Mailbox> = Vec::new();
    while let Some(l) = all.get(i) {
        let line = &header[l.start..l.end];
        if let Some(v) = envelope_value(line, "x-sender") {
            if x_sender.is_some() {
                return Err(format!("more than one X-Sender line (line {})", i + 1));
            }
            x_sender =
                Some(envelope_address(v).map_err(|e| {
                    format!("bad address in the X-Sender line (line {}): {e}", i + 1)
                })?);
        } else if let Some(v) = envelope_value(line, "x-receiver") {
            match envelope_address(v) {
                Ok(Some(mb)) => x_receivers.push(mb),
                Ok(None) => {
                    return Err(format!(
                        "bad address in the X-Receiver line (line {}): it is empty",
                        i + 1
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "bad address in the X-Receiver line (line {}): {e}",
                        i + 1
                    ));
                }
            }
        } else {
            break;
        }
        i += 1;
    }

    // Header fields: a line with a name and a colon, then its folded lines.
    let mut fields: Vec<(String, usize, usize, usize)> = Vec::new(); // (name, start, next, line no.)
    for (n, l) in all.iter().enumerate().skip(i) {
        let line = &header[l.start..l.end];
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            let Some(last) = fields.last_mut() else {
                return Err(format!(
                    "the header begins with an indented (folded) line (line {}): {}",
                    n + 1,
                    show(line)
                ));
            };
            last.2 = l.next;
            continue;
        }
        let name = line
            .iter()
            .position(|b| *b == b':')
            .map(|c| line[..c].trim_ascii_end())
            .filter(|name| !name.is_empty() && name.iter().all(|b| (33..=126).contains(b)));
        let Some(name) = name else {
            return Err(format!(
                "line {} of the header is not a header field (\"Name: value\"), and no blank \
                 line separates the header from the body before it: {}",
                n + 1,
                show(line)
            ));
        };
        fields.push((
            String::from_utf8_lossy(name).into_owned(),
            l.start,
            l.next,
            n + 1,
        ));
    }

    let mut kept = Vec::with_capacity(header.len());
    let (mut senders, mut froms, mut rcpts) = (Vec::new(), Vec::new(), Vec::new());
    let (mut has_date, mut has_message_id) = (false, false);
    for (name, start, next, line_no) in &fields {
        let raw = &header[*start..*next];
        let lower = name.to_ascii_lowercase();
        let body = raw.strip_suffix(b"\r\n").unwrap_or(raw);
        match lower.as_str() {
            "sender" => senders.extend(field_addresses(body, name, *line_no)?),
            "from" => froms.extend(field_addresses(body, name, *line_no)?),
            "to" | "cc" | "bcc" => {
                let found = field_addresses(body, name, *line_no)?;
                if x_receivers.is_empty() {
                    rcpts.extend(found);
                }
            }
            "date" => has_date = true,
            "message-id" => has_message_id = true,
            _ => {}
        }
        // RFC 5322 §3.6.3: blind recipients must not see each other.
        if lower != "bcc" {
            kept.extend_from_slice(raw);
            if !raw.ends_with(b"\r\n") {
                kept.extend_from_slice(b"\r\n");
            }
        }
    }

    let sender = match x_sender {
        Some(s) => s,
        None => Some(senders.into_iter().chain(froms).next().ok_or_else(|| {
            "no sender: no X-Sender line and no Sender or From header".to_owned()
        })?),
    };
    let candidates = if x_receivers.is_empty() {
        rcpts
    } else {
        x_receivers
    };
    let mut recipients: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut smtputf8 = sender.as_ref().is_some_and(|s| !s.is_ascii());
    for mb in candidates {
        smtputf8 |= !mb.is_ascii();
        let key = (mb.local_part.clone(), mb.domain.to_lowercase());
        if seen.insert(key) {
            recipients.push(mb.to_string());
        }
    }
    if recipients.is_empty() {
        return Err("no recipients: no X-Receiver line and no To/Cc/Bcc header".to_owned());
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(format!(
            "too many recipients: {}; a pickup file may name at most {MAX_RECIPIENTS}",
            recipients.len()
        ));
    }
    Ok(Parsed {
        sender: sender.map(|s| s.to_string()).unwrap_or_default(),
        recipients,
        header: kept,
        has_date,
        has_message_id,
        smtputf8,
    })
}

/// Our `Received:` header, folded like the smtpd's (RFC 5321 §4.4).
pub fn received_header(hostname: &str, queue_id: &QueueId, date: time::OffsetDateTime) -> String {
    format!(
        "Received: from pickup\r\n\tby {hostname} (Postern) with local-pickup\r\n\tid {queue_id}; {}\r\n",
        rfc5322_date(date)
    )
}

pub(crate) fn rfc5322_date(date: time::OffsetDateTime) -> String {
    date.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn crlf(input: &[&[u8]]) -> Vec<u8> {
        let mut c = Crlf::default();
        let mut out = Vec::new();
        for chunk in input {
            c.push(chunk, &mut out);
        }
        c.finish(&mut out);
        out
    }

    /// RFC 5322 §2.3: lines end in CRLF; bare LF and bare CR are normalised,
    /// also when a CRLF is split between two reads.
    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(crlf(&[b"a\nb\r\nc\rd"]), b"a\r\nb\r\nc\r\nd");
        assert_eq!(crlf(&[b"a\r", b"\nb"]), b"a\r\nb");
        assert_eq!(crlf(&[b"a\r", b"b"]), b"a\r\nb");
        assert_eq!(crlf(&[b"a\r"]), b"a\r\n");
        assert_eq!(crlf(&[b"\r\r\n\n"]), b"\r\n\r\n\r\n");
        assert_eq!(crlf(&[b"x", b"", b"\r", b"", b"\n"]), b"x\r\n");
    }

    #[test]
    fn separator() {
        assert_eq!(find_separator(b"\r\nbody"), Some((0, 2)));
        assert_eq!(find_separator(b"A: b\r\n\r\nbody"), Some((6, 8)));
        assert_eq!(find_separator(b"A: b\r\nC: d\r\n"), None);
    }

    fn parse(text: &str) -> Result<Parsed, String> {
        let norm = crlf(&[text.as_bytes()]);
        let (h, _) = find_separator(&norm).unwrap_or((norm.len(), norm.len()));
        parse_header(&norm[..h])
    }

    fn header(p: &Parsed) -> String {
        String::from_utf8(p.header.clone()).unwrap()
    }

    /// IIS pickup format: leading X-Sender/X-Receiver lines (any case) are the
    /// envelope and are not stored; the header's own addresses do not count.
    #[test]
    fn iis_envelope_lines() {
        let p = parse(
            "x-sender: <app@example.com>\nX-RECEIVER: alice@example.net\nX-Receiver: <bob@example.org>\n\
             From: Other <other@example.com>\nTo: carol@example.com\nSubject: hi\n\nbody\n",
        )
        .unwrap();
        assert_eq!(p.sender, "app@example.com");
        assert_eq!(p.recipients, ["alice@example.net", "bob@example.org"]);
        assert_eq!(
            header(&p),
            "From: Other <other@example.com>\r\nTo: carol@example.com\r\nSubject: hi\r\n"
        );
        assert!(!p.has_date && !p.has_message_id && !p.smtputf8);
        // X-Sender alone: recipients from the header.
        let p = parse("X-Sender: <>\nTo: a@b.example\n\nx").unwrap();
        assert_eq!(p.sender, "");
        assert_eq!(p.recipients, ["a@b.example"]);
        // An X-Sender further down is an ordinary header field.
        let p = parse("From: a@b.example\nX-Sender: z@z.example\nTo: c@d.example\n\nx").unwrap();
        assert_eq!(p.sender, "a@b.example");
        assert!(header(&p).contains("X-Sender: z@z.example\r\n"));
    }

    /// Without envelope lines: RFC 5322 §3.6.2 Sender before From; recipients
    /// from every To, Cc and Bcc (groups included), without duplicates; Bcc
    /// removed from the stored copy (§3.6.3), folded lines and all.
    #[test]
    fn header_fallback_and_bcc_removal() {
        let p = parse(
            "From: A <a@example.com>, B <b@example.com>\nSender: s@example.com\n\
             To: Team: x@example.net, y@example.net;, z@example.net\n\
             Cc: \"Quoted, Name\" <x@Example.NET>\nBcc: hidden@example.org,\n hidden2@example.org\n\
             Date: Mon, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <m@example.com>\n\nbody",
        )
        .unwrap();
        assert_eq!(p.sender, "s@example.com");
        assert_eq!(
            p.recipients,
            [
                "x@example.net",
                "y@example.net",
                "z@example.net",
                "hidden@example.org",
                "hidden2@example.org"
            ]
        );
        let h = header(&p);
        assert!(!h.to_ascii_lowercase().contains("bcc"), "{h}");
        assert!(!h.contains("hidden"), "{h}");
        assert!(h.starts_with("From: A <a@example.com>, B <b@example.com>\r\n"));
        assert!(p.has_date && p.has_message_id);

        let p =
            parse("From: a@example.com\nTo: undisclosed-recipients:;\nbcc: only@example.org\n\nx")
                .unwrap();
        assert_eq!(p.sender, "a@example.com");
        assert_eq!(p.recipients, ["only@example.org"]);
        assert_eq!(
            header(&p),
            "From: a@example.com\r\nTo: undisclosed-recipients:;\r\n"
        );
    }

    #[test]
    fn mbox_from_line_and_headers_only_file() {
        let p = parse("From alice@example.com Mon Jan  1 00:00:00 2026\nFrom: alice@example.com\nTo: b@example.net\n")
            .unwrap();
        assert_eq!(p.sender, "alice@example.com");
        assert_eq!(
            header(&p),
            "From: alice@example.com\r\nTo: b@example.net\r\n"
        );
        // RFC 5322 obs-syntax: blanks before the colon.
        let p = parse("From : a@example.com\nTo : b@example.net\n\n").unwrap();
        assert_eq!(p.sender, "a@example.com");
    }

    #[test]
    fn utf8_addresses_need_smtputf8() {
        let p = parse("From: a@example.com\nTo: jörg@bücher.example\n\nx").unwrap();
        assert!(p.smtputf8);
        assert_eq!(p.recipients, ["jörg@bücher.example"]);
    }

    /// Each malformed case gets a reason an operator can act on.
    #[test]
    fn malformed_files_say_why() {
        let cases: &[(&str, &str)] = &[
            (
                "From: a@example.com\nSubject: x\n\nbody",
                "no recipients: no X-Receiver line and no To/Cc/Bcc header",
            ),
            (
                "To: b@example.com\n\nbody",
                "no sender: no X-Sender line and no Sender or From header",
            ),
            (
                "X-Sender: a@example.com\nX-Receiver: bob@\n\nbody",
                "bad address in the X-Receiver line (line 2): \"bob@\" (bad address syntax)",
            ),
            (
                "X-Sender: a@example.com\nX-Receiver:\n\nbody",
                "bad address in the X-Receiver line (line 2): it is empty",
            ),
            (
                "X-Sender: a@example.com\nX-Sender: b@example.com\nX-Receiver: c@example.com\n\n",
                "more than one X-Sender line (line 2)",
            ),
            (
                "From: a@example.com\nTo: bob\n\nbody",
                "bad address in the To: header (line 2)",
            ),
            (
                "From: a@example.com\nTo: b@example.com\nthis is not a header\n\nbody",
                "line 3 of the header is not a header field",
            ),
            (
                " folded: first\nFrom: a@example.com\n\n",
                "the header begins with an indented (folded) line (line 1)",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
        let mut many = String::new();
        for i in 0..=MAX_RECIPIENTS {
            many.push_str("X-Receiver: r");
            many.push_str(&i.to_string());
            many.push_str("@example.com\n");
        }
        let err = parse(&format!("X-Sender: a@example.com\n{many}\nx")).unwrap_err();
        assert!(err.starts_with("too many recipients: 1001"), "{err}");
    }

    #[test]
    fn received_header_format() {
        let id = QueueId::generate();
        let h = received_header(
            "mx.example.com",
            &id,
            time::macros::datetime!(2026-11-22 16:40:01 UTC),
        );
        assert_eq!(
            h,
            format!(
                "Received: from pickup\r\n\tby mx.example.com (Postern) with local-pickup\r\n\tid {id}; Sun, 22 Nov 2026 16:40:01 +0000\r\n"
            )
        );
    }
}
