//! The message as header fields and body, for the changes a filter rule or a
//! milter asks for before the message is stored (issue 11).
//!
//! A field is `(name, value)` with the value exactly as it follows the colon
//! (leading space and folds, `CRLF` + WSP, kept), the shape the milter
//! protocol uses. [`join`] writes fields back as `name:value CRLF` and the
//! body unchanged, so a message without changes round-trips byte for byte
//! (for UTF-8 header sections; other octets in a header become U+FFFD — RFC
//! 6532 allows UTF-8 only).
//!
//! # Security
//! Values we add come from the configuration or a milter and were checked
//! for CR/LF where they were made (`postern_filter` at parse time,
//! `postern_milter` per packet); [`set_field`] and [`add_field`] still
//! refuse a bare CR or LF that is not a fold (RFC 5322 §2.2.3), so no
//! header or body can be injected through them.
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

/// Adds `name: value` at the top of the header section.
pub fn add_field(fields: &mut Vec<(String, String)>, name: &str, value: &str) -> bool {
    if !safe_value(value) {
        return false;
    }
    fields.insert(0, (name.to_owned(), format!(" {value}")));
    true
}

/// Removes every field named `name` (ASCII case-insensitive); how many.
pub fn remove_fields(fields: &mut Vec<(String, String)>, name: &str) -> usize {
    let before = fields.len();
    fields.retain(|(n, _)| !n.trim_end().eq_ignore_ascii_case(name));
    before - fields.len()
}

/// Replaces every field named `name` by one `name: value` where the first
/// was (at the top when there was none).
pub fn set_field(fields: &mut Vec<(String, String)>, name: &str, value: &str) -> bool {
    if !safe_value(value) {
        return false;
    }
    let first = fields
        .iter()
        .position(|(n, _)| n.trim_end().eq_ignore_ascii_case(name));
    remove_fields(fields, name);
    let at = first.unwrap_or(0).min(fields.len());
    fields.insert(at, (name.to_owned(), format!(" {value}")));
    true
}

/// Puts `prefix` before the subject (`Subject: [TAG] old`), once: a subject
/// that already starts with it is left alone. Adds a Subject when absent.
pub fn prefix_subject(fields: &mut Vec<(String, String)>, prefix: &str) -> bool {
    if !safe_value(prefix) {
        return false;
    }
    match fields
        .iter_mut()
        .find(|(n, _)| n.trim_end().eq_ignore_ascii_case("subject"))
    {
        Some((_, value)) => {
            let old = value.trim_start();
            if !old.starts_with(prefix) {
                *value = format!(" {prefix} {old}");
            }
        }
        None => fields.insert(0, ("Subject".to_owned(), format!(" {prefix}"))),
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
    fn edits() {
        let mut p = split(MSG);
        assert!(prefix_subject(&mut p.fields, "[SPAM]"));
        assert!(prefix_subject(&mut p.fields, "[SPAM]"), "idempotent");
        assert!(add_field(&mut p.fields, "X-New", "yes"));
        assert_eq!(remove_fields(&mut p.fields, "x-a"), 1);
        assert!(set_field(&mut p.fields, "From", "b@example.com"));
        let out = String::from_utf8(join(&p.fields, p.blank_line, b"body\r\n")).unwrap();
        assert_eq!(
            out,
            "X-New: yes\r\nFrom: b@example.com\r\nSubject: [SPAM] hello\r\n world\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn injection_is_refused() {
        let mut f = Vec::new();
        assert!(!add_field(&mut f, "X", "a\r\nBcc: evil@example.com"));
        assert!(!set_field(&mut f, "X", "a\nb"));
        assert!(!prefix_subject(&mut f, "a\rb"));
        assert!(add_field(&mut f, "X", "a\r\n b"), "a fold is fine");
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
