//! The message as header fields and body, for the changes a milter asks for
//! before the message is stored (issue 11; a rule's edits go through
//! `postern_filter::apply_header_edits`).
//!
//! A field is `(name, value)` with the value exactly as it follows the colon
//! (leading space and folds, `CRLF` + WSP, kept), the shape the milter
//! protocol uses. [`join`] writes fields back as `name:value CRLF` and the
//! body unchanged, so a message without changes round-trips byte for byte
//! (for UTF-8 header sections; other octets in a header become U+FFFD — RFC
//! 6532 allows UTF-8 only).
//!
//! # Security
//! Values written back come from the message or a milter (checked per
//! packet by `postern_milter`); [`safe_value`] tells a fold from a bare CR
//! or LF (RFC 5322 §2.2.3) for values from elsewhere (rspamd's headers).
//!
//! # Standards
//! RFC 5322 §2.2 (header fields, folding), §3.6.5 (Subject).

/// A header section as fields plus where the body starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The fields, in order.
    pub fields: Vec<(String, String)>,
    /// Offset of the body (after the blank line); without a blank line, of
    /// the first line that is not a header field (or the end).
    pub body_at: usize,
    /// The header section ended with a blank line ([`join`] writes one
    /// back only then, so a message's structure never changes).
    pub blank_line: bool,
}

/// Splits `message` (CRLF line ends) into header fields and the body offset.
/// A line without a colon ends the header section there (it becomes body).
pub fn split(message: &[u8]) -> Parsed {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let end = find_crlf(message, at).map_or(message.len(), |e| e + 2);
        let line = &message[at..end];
        if line == b"\r\n" {
            return Parsed {
                fields,
                body_at: end,
                blank_line: true,
            };
        }
        if matches!(line.first(), Some(b' ' | b'\t'))
            && let Some((_, value)) = fields.last_mut()
        {
            // A fold: keep the CRLF that preceded it.
            value.push_str("\r\n");
            value.push_str(&String::from_utf8_lossy(trim_crlf(line)));
            at = end;
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Parsed {
                fields,
                body_at: at,
                blank_line: false,
            };
        };
        let name = String::from_utf8_lossy(&line[..colon]).into_owned();
        let value = String::from_utf8_lossy(trim_crlf(&line[colon + 1..])).into_owned();
        fields.push((name, value));
        at = end;
    }
    Parsed {
        fields,
        body_at: message.len(),
        blank_line: false,
    }
}

/// Writes the fields and `body` back as a message; the blank line between
/// them only when `blank_line` (what [`split`] found).
pub fn join(fields: &[(String, String)], blank_line: bool, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + fields.len() * 64 + 2);
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if blank_line {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(body);
    out
}

/// Whether `value` (as it follows the colon) is safe to write: every CR is
/// part of a fold (`CRLF` followed by a space or tab), no other CR or LF.
pub fn safe_value(value: &str) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' => {
                if b.get(i + 1) != Some(&b'\n') || !matches!(b.get(i + 2), Some(b' ' | b'\t')) {
                    return false;
                }
                i += 2;
            }
            b'\n' | 0 => return false,
            _ => i += 1,
        }
    }
    true
}

fn find_crlf(b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r\n").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@example.com\r\nSubject: hello\r\n world\r\nX-A: 1\r\n\r\nbody\r\n";

    #[test]
    fn round_trips_byte_for_byte() {
        let p = split(MSG);
        assert_eq!(p.fields.len(), 3);
        assert_eq!(p.fields[1], ("Subject".into(), " hello\r\n world".into()));
        assert_eq!(join(&p.fields, p.blank_line, &MSG[p.body_at..]), MSG);
        // A junk line ends the section without a blank line: kept so.
        let junk = b"From: a\r\nX-Junk\r\nSubject: s\r\n\r\nbody\r\n";
        let p = split(junk);
        assert!(!p.blank_line);
        assert_eq!(join(&p.fields, p.blank_line, &junk[p.body_at..]), junk);
    }

    #[test]
    fn injection_is_refused() {
        assert!(!safe_value("a\r\nBcc: evil@example.com"));
        assert!(!safe_value("a\nb"));
        assert!(!safe_value("a\rb"));
        assert!(safe_value("a\r\n b"), "a fold is fine");
    }

    #[test]
    fn no_blank_line_and_junk_lines() {
        let p = split(b"From: a\r\nnot a header\r\nmore\r\n");
        assert_eq!(p.fields.len(), 1);
        assert_eq!(p.body_at, 9);
        let p = split(b"From: a\r\n");
        assert_eq!(p.body_at, 9);
    }
}
