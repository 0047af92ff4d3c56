//! Text crossing a trust boundary: envelope values going into rspamd's HTTP
//! request headers, and the engines' words coming back into SMTP replies,
//! message header fields and logs.
//!
//! # Security
//! - Outbound: HELO names, envelope addresses and AUTH user names are chosen
//!   by the SMTP client. A CR or LF in one would end the HTTP header early
//!   and let the client add headers of its own to our request to rspamd
//!   (HTTP header injection / request splitting, CWE-113), e.g. a forged
//!   `Settings` or `IP`. [`header_value`] replaces every control character
//!   with a space, as RFC 9110 §5.5 allows for CR, LF and NUL, and bounds
//!   the length.
//! - Inbound: a header field the engine asks us to add may be folded
//!   (CRLF followed by a space or tab, RFC 5322 §2.2.3) but any other line
//!   break would start a new header field, or the body, of the stored
//!   message: [`folded_field_value`] refuses it. Texts meant for an SMTP
//!   reply become one line of printable ASCII ([`reply_text`]; RFC 5321
//!   §4.5.3.1.5 bounds a reply line at 512 octets).
//!
//! # Standards
//! RFC 9110 §5.5 (field values), RFC 5322 §2.2 and §2.2.3 (field names,
//! folding), RFC 5321 §4.2 and §4.5.3.1.5 (reply text and length).

/// The longest request header value we send (an SMTP path is at most 256
/// octets, RFC 5321 §4.5.3.1.3; a HELO name at most 255): longer input is
/// cut at a character boundary.
pub const MAX_HEADER_VALUE: usize = 1000;

/// The longest text we take from an engine for an SMTP reply.
pub const MAX_REPLY_TEXT: usize = 400;

/// A value safe for one HTTP request header: every control character
/// (CR, LF, NUL, TAB, DEL, …) becomes a space, surrounding spaces are
/// trimmed, and the result is at most [`MAX_HEADER_VALUE`] bytes. Non-ASCII
/// text (SMTPUTF8 addresses) is kept as UTF-8.
pub fn header_value(raw: &str) -> String {
    let replaced: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(replaced.trim(), MAX_HEADER_VALUE).to_owned()
}

/// One line of printable ASCII for an SMTP reply or a log line: control
/// characters become spaces, other non-ASCII characters `?`, runs of spaces
/// collapse, at most `max` bytes.
pub fn reply_text(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    for c in raw.chars() {
        let c = match c {
            c if c.is_control() || c == ' ' => ' ',
            c if c.is_ascii_graphic() => c,
            _ => '?',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.len() >= max {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// Whether `name` is a header field name: 1 to 76 printable US-ASCII
/// characters other than `:` (RFC 5322 §2.2; 76 keeps `name: ` on a line).
pub fn is_field_name(name: &str) -> bool {
    (1..=76).contains(&name.len()) && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// A header field value as it may be written into a message: folded lines
/// are kept (a line break followed by a space or tab, normalised to CRLF),
/// leading and trailing line breaks dropped; `None` when a line break is
/// not followed by white space or another control character appears
/// (either would inject a header field or end the header section).
pub fn folded_field_value(raw: &str) -> Option<String> {
    let raw = raw.trim_matches(|c| c == '\r' || c == '\n');
    let mut out = String::with_capacity(raw.len() + 4);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !matches!(chars.peek(), Some(' ' | '\t')) {
                    return None;
                }
                out.push_str("\r\n");
            }
            '\t' => out.push(c),
            c if c.is_control() => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_values_never_carry_line_breaks() {
        // A hostile HELO trying to add its own `Settings` header (CWE-113).
        let helo = "evil.example\r\nSettings: {\"actions\":{\"reject\":1000}}\r\n";
        let v = header_value(helo);
        assert!(!v.contains('\r') && !v.contains('\n'), "{v:?}");
        assert_eq!(v, "evil.example  Settings: {\"actions\":{\"reject\":1000}}");
        assert_eq!(header_value("a\0b\tc\u{7f}d"), "a b c d");
        assert_eq!(header_value("  user@exämple.org "), "user@exämple.org");
        let long = "é".repeat(800);
        let cut = header_value(&long);
        assert!(cut.len() <= MAX_HEADER_VALUE && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn reply_text_is_one_printable_ascii_line() {
        assert_eq!(reply_text("Gtube pattern", 400), "Gtube pattern");
        assert_eq!(
            reply_text("spam\r\n250 OK\r\n  détecté", 400),
            "spam 250 OK d?tect?"
        );
        assert_eq!(reply_text("abcdef", 3), "abc");
    }

    #[test]
    fn field_names() {
        assert!(is_field_name("X-Spam-Status"));
        for bad in ["", "X Spam", "X:Spam", "X-Späm", &"x".repeat(77)] {
            assert!(!is_field_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn folded_values_are_kept_and_injections_refused() {
        assert_eq!(
            folded_field_value("default: False [0.00 / 15.00];\r\n\tSYM(0.00)[]").as_deref(),
            Some("default: False [0.00 / 15.00];\r\n\tSYM(0.00)[]")
        );
        // LF-only folding is normalised to CRLF.
        assert_eq!(folded_field_value("a;\n b").as_deref(), Some("a;\r\n b"));
        assert_eq!(folded_field_value("Yes\r\n").as_deref(), Some("Yes"));
        for bad in [
            "Yes\r\nBcc: victim@example.org",
            "a\rb",
            "a\nb",
            "a\0b",
            "a\r\n\r\n b",
        ] {
            assert_eq!(folded_field_value(bad), None, "{bad:?}");
        }
    }
}
