//! Reading header fields of a message (RFC 5322 §2.2): the unfolded values
//! of the fields with a given name, from the header section only.
//!
//! # Security
//! Reads hostile bytes: never panics, stops at the first empty line (the
//! end of the header section), treats invalid UTF-8 lossily.
//!
//! # Standards
//! RFC 5322 §2.2 (header fields), §2.2.3 (folding), §2.1 (lines end in
//! CRLF; a bare LF is accepted as a line end here).

/// A bidirectional formatting character (Unicode UAX #9 explicit
/// embeddings, overrides and isolates, and the directional marks): text
/// from the network shown to an operator drops or replaces these, so a
/// hostile subject cannot reorder what is read (CVE-2021-42574, "Trojan
/// Source").
pub fn is_bidi_format(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// The values of the header fields named `name` (case-insensitive), each
/// unfolded (a line end before whitespace becomes one space) and trimmed,
/// in order. A message without an empty line is all header.
pub fn header_values(message: &[u8], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_bytes())
        {
            current = Some(
                String::from_utf8_lossy(&line[colon + 1..])
                    .trim()
                    .to_owned(),
            );
        }
    }
    if let Some(c) = current {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_unfolded_and_the_body_is_not_read() {
        let m = b"From: a@b.example\r\nSubject: one\r\n two\r\nfrom : c@d.example\r\n\r\nFrom: body\r\n";
        assert_eq!(header_values(m, "From"), ["a@b.example", "c@d.example"]);
        assert_eq!(header_values(m, "subject"), ["one two"]);
        assert!(header_values(m, "To").is_empty());
        assert_eq!(header_values(b"X: 1\nX: \xff2", "x"), ["1", "\u{fffd}2"]);
        assert!(header_values(b"", "x").is_empty());
    }
}
