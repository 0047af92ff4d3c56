//! Checks for every field a milter sends back: NUL-terminated strings,
//! header names and values, envelope addresses, ESMTP parameters, SMTP reply
//! codes and free text.
//!
//! # Security
//! The milter is an outside program and its replies are untrusted input
//! that ends up in our spooled message, our envelope and our SMTP replies.
//! Each check here refuses rather than repairs:
//! - a line break in a header value that is not a fold (not followed by SP
//!   or HTAB) would start a new header field or end the header section
//!   (header injection, the milter variant of CWE-93);
//! - a bare CR, a NUL or another control character in a header value, an
//!   address or a reply would confuse the next parser on the way;
//! - an address must parse as an RFC 5321 mailbox, so a recipient cannot
//!   carry a second `RCPT` or a space-separated parameter;
//! - a reply code must be 4xx or 5xx: a milter can refuse a message, never
//!   make us send a 2xx or 3xx in its name, and an enhanced code must be of
//!   the same class (RFC 3463 §2).
//!
//! # Standards
//! RFC 5322 §2.2 (field names: printable US-ASCII but `:`), §2.2.3 (folding),
//! §2.1.1 (998-octet lines); RFC 6532 §3.2 (UTF-8 in field values); RFC 5321
//! §4.1.2 (mailboxes, ESMTP parameters), §4.2 (reply codes), §4.5.3.1.5
//! (512-octet reply lines); RFC 3463 (enhanced status codes).

use postern_proto::{EnhancedCode, Limits, Mailbox, Reply};

use crate::ProtocolError;

/// Longest header field name we accept from a milter.
pub const MAX_HEADER_NAME: usize = 256;
/// Longest line of a header value (RFC 5322 §2.1.1: 998 octets a line).
pub const MAX_HEADER_LINE: usize = 998;
/// Longest free text (quarantine reason) and reply text line.
pub const MAX_TEXT: usize = 512;
/// Longest ESMTP parameter string.
pub const MAX_ARGS: usize = 1024;

fn bad(what: &'static str, why: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed {
        what,
        why: why.into(),
    }
}

/// Splits `data` into exactly `n` NUL-terminated strings; nothing may follow
/// the last NUL.
pub fn cstrings<'a>(
    what: &'static str,
    data: &'a [u8],
    n: usize,
) -> Result<Vec<&'a [u8]>, ProtocolError> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    for i in 0..n {
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            return Err(bad(
                what,
                format!("field {} of {n} is not NUL-terminated", i + 1),
            ));
        };
        out.push(&rest[..end]);
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        return Err(bad(
            what,
            format!("{} bytes after the last field", rest.len()),
        ));
    }
    Ok(out)
}

/// Splits `data` into one or two NUL-terminated strings (the second is
/// optional: `SMFIR_CHGFROM` and `SMFIR_ADDRCPT_PAR` carry parameters or
/// not).
pub fn one_or_two<'a>(
    what: &'static str,
    data: &'a [u8],
) -> Result<(&'a [u8], Option<&'a [u8]>), ProtocolError> {
    match bytecount_nul(data) {
        1 => Ok((cstrings(what, data, 1)?[0], None)),
        2 => {
            let parts = cstrings(what, data, 2)?;
            Ok((parts[0], Some(parts[1])))
        }
        _ => cstrings(what, data, 1).map(|p| (p[0], None)),
    }
}

/// The NUL bytes in `data`.
fn bytecount_nul(data: &[u8]) -> usize {
    data.split(|b| *b == 0).count() - 1
}

fn utf8<'a>(what: &'static str, bytes: &'a [u8]) -> Result<&'a str, ProtocolError> {
    std::str::from_utf8(bytes).map_err(|_| bad(what, "not UTF-8"))
}

/// A header field name: 1 to 256 printable US-ASCII characters but `:`
/// (RFC 5322 §2.2, ftext of §3.6.8).
pub fn header_name(what: &'static str, bytes: &[u8]) -> Result<String, ProtocolError> {
    if bytes.is_empty() {
        return Err(bad(what, "empty header name"));
    }
    if bytes.len() > MAX_HEADER_NAME {
        return Err(bad(
            what,
            format!("header name longer than {MAX_HEADER_NAME} octets"),
        ));
    }
    if let Some(b) = bytes
        .iter()
        .find(|b| !(33..=126).contains(*b) || **b == b':')
    {
        return Err(bad(
            what,
            format!(
                "header name holds {:?} (RFC 5322 §2.2 allows printable ASCII but ':')",
                char::from(*b)
            ),
        ));
    }
    // Checked above: printable ASCII only.
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A header field value as a milter sends it, returned with CRLF line
/// breaks. Folds may come as LF or CRLF (libmilter programs use both); each
/// must be followed by SP or HTAB and the folded line must hold more than
/// white space (RFC 5322 §2.2.3). UTF-8 is allowed (RFC 6532 §3.2); control
/// characters other than HTAB are not; no line longer than 998 octets.
pub fn header_value(what: &'static str, bytes: &[u8]) -> Result<String, ProtocolError> {
    let text = utf8(what, bytes)?;
    let mut out = String::with_capacity(text.len() + 8);
    let normalized = text.replace("\r\n", "\n");
    for (i, line) in normalized.split('\n').enumerate() {
        if i > 0 {
            if !line.starts_with([' ', '\t']) {
                return Err(bad(
                    what,
                    "a line break not followed by white space (it would start a new header field)",
                ));
            }
            if line.trim_matches([' ', '\t']).is_empty() {
                return Err(bad(what, "a folded line holding only white space"));
            }
            out.push_str("\r\n");
        }
        if line.len() > MAX_HEADER_LINE {
            return Err(bad(
                what,
                format!("a line longer than {MAX_HEADER_LINE} octets (RFC 5322 §2.1.1)"),
            ));
        }
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(bad(what, format!("control character {c:?}")));
        }
        out.push_str(line);
    }
    Ok(out)
}

/// An envelope address, with or without angle brackets, returned in its
/// canonical form without brackets. `<>` (returned as `""`) only when
/// `allow_null` (a new envelope sender may be null, a recipient may not).
pub fn mailbox(
    what: &'static str,
    bytes: &[u8],
    allow_null: bool,
) -> Result<String, ProtocolError> {
    let text = utf8(what, bytes)?.trim_matches([' ', '\t']);
    let bare = match text.strip_prefix('<') {
        Some(inner) => inner
            .strip_suffix('>')
            .ok_or_else(|| bad(what, "'<' without '>'"))?,
        None => text,
    };
    if bare.is_empty() {
        return if allow_null {
            Ok(String::new())
        } else {
            Err(bad(what, "empty address"))
        };
    }
    Mailbox::parse(bare, &Limits::default())
        .map(|m| m.to_string())
        .map_err(|e| bad(what, format!("address {bare:?}: {e}")))
}

/// ESMTP parameters (`KEY=VALUE KEY`, space separated) as a list. Keywords
/// are `ALPHA/DIGIT *(ALPHA/DIGIT/"-")`, values printable without `=` and
/// spaces (RFC 5321 §4.1.2; UTF-8 per RFC 6531 §3.3).
pub fn esmtp_args(what: &'static str, bytes: &[u8]) -> Result<Vec<String>, ProtocolError> {
    if bytes.len() > MAX_ARGS {
        return Err(bad(
            what,
            format!("parameters longer than {MAX_ARGS} octets"),
        ));
    }
    let text = utf8(what, bytes)?;
    let mut out = Vec::new();
    for token in text.split(' ').filter(|t| !t.is_empty()) {
        let (key, value) = match token.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (token, None),
        };
        let key_ok = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let value_ok = value.is_none_or(|v| {
            !v.is_empty() && v.chars().all(|c| !c.is_control() && c != ' ' && c != '=')
        });
        if !key_ok || !value_ok {
            return Err(bad(
                what,
                format!("ESMTP parameter {token:?} (RFC 5321 §4.1.2: keyword[=value])"),
            ));
        }
        out.push(token.to_owned());
    }
    Ok(out)
}

/// Free text (a quarantine reason): UTF-8, no control characters, at most
/// 512 octets.
pub fn text(what: &'static str, bytes: &[u8]) -> Result<String, ProtocolError> {
    if bytes.len() > MAX_TEXT {
        return Err(bad(what, format!("text longer than {MAX_TEXT} octets")));
    }
    let text = utf8(what, bytes)?;
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(bad(what, format!("control character {c:?}")));
    }
    Ok(text.to_owned())
}

/// The data of `SMFIR_REPLYCODE`: `xyz[ x.y.z] text`, or several such lines
/// joined by CRLF with `xyz-` on all but the last (RFC 5321 §4.2.1). The
/// code must be 4xx or 5xx and the same on every line; an enhanced code, when
/// present, must have the same class. Text is kept printable: characters
/// outside HTAB and SP..~ become `?` (the text comes from the milter, the
/// peer sees it).
pub fn reply_code(bytes: &[u8]) -> Result<Reply, ProtocolError> {
    const WHAT: &str = "SMFIR_REPLYCODE";
    let text = utf8(WHAT, bytes)?;
    let lines: Vec<&str> = text.trim_end_matches(['\r', '\n']).split("\r\n").collect();
    if lines.len() > 32 {
        return Err(bad(WHAT, "more than 32 lines"));
    }
    let mut code = None;
    let mut enhanced: Option<EnhancedCode> = None;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.len() > MAX_TEXT {
            return Err(bad(WHAT, format!("a line longer than {MAX_TEXT} octets")));
        }
        let b = line.as_bytes();
        if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
            return Err(bad(
                WHAT,
                format!("{line:?} does not start with a 3-digit code"),
            ));
        }
        let this =
            u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
        if !(b'4'..=b'5').contains(&b[0]) || !(b'0'..=b'5').contains(&b[1]) {
            return Err(bad(
                WHAT,
                format!("code {this} (a milter may only send 4xx or 5xx, RFC 5321 §4.2.1)"),
            ));
        }
        if *code.get_or_insert(this) != this {
            return Err(bad(WHAT, "lines with different codes"));
        }
        let last = i + 1 == lines.len();
        let rest = match b.get(3) {
            None => "",
            Some(b' ') => &line[4..],
            Some(b'-') if !last => &line[4..],
            Some(_) => return Err(bad(WHAT, format!("{line:?}: bad separator after the code"))),
        };
        let (this_enhanced, text) = split_enhanced(rest);
        if let Some(e) = this_enhanced {
            if u16::from(e.class) * 100 != this / 100 * 100 {
                return Err(bad(
                    WHAT,
                    format!("enhanced code {e} does not match reply code {this} (RFC 3463 §2)"),
                ));
            }
            if i == 0 {
                enhanced = Some(e);
            }
        }
        out.push(printable(text));
    }
    let code = code.ok_or_else(|| bad(WHAT, "empty"))?;
    Ok(Reply::multiline(code, enhanced, out))
}

/// `x.y.z text` → the code and the text; anything else → no code.
fn split_enhanced(rest: &str) -> (Option<EnhancedCode>, &str) {
    let (first, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut parts = first.split('.');
    let parsed = (|| {
        let class: u8 = parts.next()?.parse().ok()?;
        let subject: u16 = parts.next()?.parse().ok()?;
        let detail: u16 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !(2..=5).contains(&class) || subject > 999 || detail > 999 {
            return None;
        }
        Some(EnhancedCode::new(class, subject, detail))
    })();
    match parsed {
        Some(code) => (Some(code), text),
        None => (None, rest),
    }
}

/// A replacement body with every line ending made CRLF: a bare LF or a bare
/// CR becomes CRLF, and a non-empty body ends with CRLF. A milter's body
/// must not carry bare line ends into our spool and onward (RFC 5321 §2.3.8;
/// bare LF is the raw material of SMTP smuggling, CVE-2023-51764).
pub fn crlf_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 2);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\t' || (' '..='~').contains(&c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cstrings_need_exact_nul_termination() {
        assert_eq!(cstrings("x", b"a\0b\0", 2).unwrap(), vec![&b"a"[..], b"b"]);
        assert!(cstrings("x", b"a\0b", 2).is_err());
        assert!(cstrings("x", b"a\0b\0c", 2).is_err());
        assert!(cstrings("x", b"a\0b\0", 1).is_err());
        assert_eq!(one_or_two("x", b"a\0").unwrap(), (&b"a"[..], None));
        assert_eq!(
            one_or_two("x", b"a\0b\0").unwrap(),
            (&b"a"[..], Some(&b"b"[..]))
        );
        assert!(one_or_two("x", b"a\0b\0c\0").is_err());
        assert!(one_or_two("x", b"").is_err());
    }

    #[test]
    fn header_names() {
        assert_eq!(header_name("x", b"X-Spam").unwrap(), "X-Spam");
        for bad in [&b""[..], b"X Spam", b"X:Spam", b"X\rSpam", b"X\xc3\xa9"] {
            assert!(header_name("x", bad).is_err(), "{bad:?}");
        }
        assert!(header_name("x", &[b'a'; 257]).is_err());
    }

    #[test]
    fn header_values_fold_but_never_inject() {
        assert_eq!(header_value("x", b"a\n\tb").unwrap(), "a\r\n\tb");
        assert_eq!(header_value("x", b"a\r\n b").unwrap(), "a\r\n b");
        assert_eq!(
            header_value("x", "caf\u{e9}".as_bytes()).unwrap(),
            "caf\u{e9}"
        );
        assert_eq!(header_value("x", b"").unwrap(), "");
        for bad in [
            &b"a\r\nBcc: evil@example.net"[..],
            b"a\nX: y",
            b"a\n",
            b"a\r\n\r\nbody",
            b"a\rb",
            b"a\n \n b",
            b"a\x01b",
            b"\xff",
        ] {
            assert!(header_value("x", bad).is_err(), "{bad:?}");
        }
        assert!(header_value("x", &[b'a'; 999]).is_err());
        assert!(header_value("x", &[b'a'; 998]).is_ok());
    }

    #[test]
    fn mailboxes() {
        assert_eq!(
            mailbox("x", b"<a@example.com>", false).unwrap(),
            "a@example.com"
        );
        assert_eq!(
            mailbox("x", b"a@example.com", false).unwrap(),
            "a@example.com"
        );
        assert_eq!(mailbox("x", b"<>", true).unwrap(), "");
        assert!(mailbox("x", b"<>", false).is_err());
        for bad in [
            &b"<a@example.com"[..],
            b"a@example.com> NOTIFY=NEVER",
            b"a@example.com\r\nRCPT TO:<b@example.net>",
            b"a b@example.com",
            b"nodomain",
        ] {
            assert!(mailbox("x", bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replacement_bodies_get_crlf_line_ends() {
        assert_eq!(crlf_body(b"a\nb\rc\r\n.\n"), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(crlf_body(b"no end"), b"no end\r\n");
        assert_eq!(crlf_body(b""), b"");
        assert_eq!(crlf_body(b"\r"), b"\r\n");
    }

    #[test]
    fn esmtp_parameters() {
        assert_eq!(
            esmtp_args("x", b"SIZE=100 BODY=8BITMIME SMTPUTF8").unwrap(),
            vec!["SIZE=100", "BODY=8BITMIME", "SMTPUTF8"]
        );
        assert!(esmtp_args("x", b"").unwrap().is_empty());
        for bad in [&b"=x"[..], b"A=", b"A=b=c", b"A=\r\n", b"-A"] {
            assert!(esmtp_args("x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reply_codes_are_4xx_or_5xx_with_matching_class() {
        let r = reply_code(b"550 5.7.1 Rejected by policy").unwrap();
        assert_eq!(
            (r.code, r.enhanced, r.lines.clone()),
            (
                550,
                Some(EnhancedCode::new(5, 7, 1)),
                vec!["Rejected by policy".to_owned()]
            )
        );
        let r = reply_code(b"451 try later").unwrap();
        assert_eq!((r.code, r.enhanced), (451, None));
        let r = reply_code(b"554-5.7.1 first\r\n554 5.7.1 second").unwrap();
        assert_eq!(r.lines, vec!["first", "second"]);
        let r = reply_code(b"550 5.7.1 caf\xc3\xa9\x7f").unwrap();
        assert_eq!(r.lines, vec!["caf??"]);
        assert_eq!(reply_code(b"421").unwrap().code, 421);
        for bad in [
            &b"250 2.0.0 ok"[..],
            b"354 go on",
            b"600 x",
            b"560 x",
            b"550 4.7.1 mismatched class",
            b"45 x",
            b"550-5.7.1 a\r\n451 b",
            b"550-last line continues",
            b"550x",
        ] {
            assert!(reply_code(bad).is_err(), "{bad:?}");
        }
    }
}
