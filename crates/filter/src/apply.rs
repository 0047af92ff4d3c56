//! Applying an [`Outcome`]'s header edits and subject prefix to a header section, so
//! every caller (the server's end of data, a quarantine release, the dry run's "after"
//! view) edits messages the same way. Pure: bytes in, bytes out.
//!
//! Rules, in the order of the edits:
//! - `add-header` appends a field at the end of the header section (as a milter's
//!   `addheader` does): trace fields (`Received:`) stay first and an existing DKIM
//!   signature's signed fields are not touched.
//! - `remove-header` removes every field with that name (case-insensitive).
//! - `change-header` replaces the first field with that name in place and removes the
//!   others; it appends the field when there is none.
//! - The subject prefix goes in front of the first `Subject:` value; a message without
//!   one gets `Subject:` with the prefix.
//!
//! Non-ASCII values and prefixes are written as RFC 2047 encoded words (UTF-8, base64),
//! folded so no line exceeds 78 characters where the value allows it and never 998.
//!
//! # Security
//! The header section comes from the peer; it is split on line ends only, never
//! interpreted further. Values from rules were checked at parse time (no CR, LF or other
//! control characters), so an edit cannot add a line of its own.
//!
//! # Standards
//! RFC 5322 §2.2 (header fields, folding), §2.1.1 (line length), RFC 2047 §2 and §5
//! (encoded words in unstructured fields, at most 75 characters each).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::outcome::{HeaderEdit, Outcome};

/// One field: its raw bytes (all lines, each ending in CRLF) and its name.
struct Field {
    name: String,
    raw: Vec<u8>,
}

/// Returns `header` (the header section: fields, each line ending in CRLF or LF, without
/// the empty line before the body) with `outcome`'s header edits and subject prefix
/// applied. Lines of new fields end in CRLF. Unchanged when the outcome has no edits.
pub fn apply_header_edits(header: &[u8], outcome: &Outcome) -> Vec<u8> {
    if outcome.header_edits.is_empty() && outcome.subject_prefix.is_none() {
        return header.to_vec();
    }
    let mut fields = split(header);
    for edit in &outcome.header_edits {
        match edit {
            HeaderEdit::Add { name, value } => fields.push(field(name, value)),
            HeaderEdit::Remove { name } => fields.retain(|f| !f.name.eq_ignore_ascii_case(name)),
            HeaderEdit::Set { name, value } => {
                let new = field(name, value);
                match fields
                    .iter()
                    .position(|f| f.name.eq_ignore_ascii_case(name))
                {
                    Some(first) => {
                        fields[first] = new;
                        let mut i = 0;
                        fields.retain(|f| {
                            i += 1;
                            i - 1 == first || !f.name.eq_ignore_ascii_case(name)
                        });
                    }
                    None => fields.push(new),
                }
            }
        }
    }
    if let Some(prefix) = &outcome.subject_prefix {
        prefix_subject(&mut fields, prefix);
    }
    fields.into_iter().flat_map(|f| f.raw).collect()
}

fn split(header: &[u8]) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    let mut rest = header;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match fields.last_mut() {
            Some(last) if continuation => last.raw.extend_from_slice(line),
            _ => {
                let name = line
                    .iter()
                    .position(|&b| b == b':')
                    .map(|i| String::from_utf8_lossy(&line[..i]).trim().to_owned())
                    .unwrap_or_default();
                fields.push(Field {
                    name,
                    raw: line.to_vec(),
                });
            }
        }
    }
    // A header section without a final line end: end the last field so a field
    // appended after it starts on its own line.
    if let Some(last) = fields.last_mut()
        && !last.raw.ends_with(b"\n")
    {
        last.raw.extend_from_slice(b"\r\n");
    }
    fields
}

fn field(name: &str, value: &str) -> Field {
    Field {
        name: name.to_owned(),
        raw: unstructured_field(name, value).into_bytes(),
    }
}

/// `Name: value` CRLF for an unstructured field (RFC 5322 §3.2.5): the
/// value as is when ASCII, else RFC 2047 encoded words folded to 78
/// characters. The caller gives a one-line value (no CR, LF or controls).
pub fn unstructured_field(name: &str, value: &str) -> String {
    let mut raw = format!("{name}: ");
    if value.is_ascii() {
        raw.push_str(value);
    } else {
        raw.push_str(&encoded_words(value, 78usize.saturating_sub(raw.len())));
    }
    raw.push_str("\r\n");
    raw
}

fn prefix_subject(fields: &mut Vec<Field>, prefix: &str) {
    let Some(subject) = fields
        .iter_mut()
        .find(|f| f.name.eq_ignore_ascii_case("subject"))
    else {
        fields.push(field("Subject", prefix.trim_end()));
        return;
    };
    // Insert after "Subject:" and the white space that follows it.
    let colon = subject
        .raw
        .iter()
        .position(|&b| b == b':')
        .map_or(0, |i| i + 1);
    let mut at = colon;
    while matches!(subject.raw.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    let mut insert = Vec::new();
    if at == colon {
        insert.push(b' ');
    }
    if prefix.is_ascii() {
        insert.extend_from_slice(prefix.as_bytes());
    } else if subject.raw[at..].starts_with(b"=?") {
        // White space between two encoded words is dropped on decoding (RFC 2047
        // §6.2): the prefix's own trailing space must be inside its encoded word.
        insert.extend_from_slice(encoded_words(prefix, 78usize.saturating_sub(at + 1)).as_bytes());
        insert.extend_from_slice(b"\r\n ");
    } else {
        // Before ordinary text the fold's space is kept on decoding and is the separator.
        insert.extend_from_slice(
            encoded_words(prefix.trim_end(), 78usize.saturating_sub(at + 1)).as_bytes(),
        );
        insert.extend_from_slice(b"\r\n ");
    }
    subject.raw.splice(at..at, insert);
}

/// `=?UTF-8?B?…?=` words of at most 75 characters (RFC 2047 §2), separated by a fold
/// (CRLF SP), split at character boundaries; the first word fits in `first_room`
/// characters (what is left of a 78-character line) when it can hold one character.
fn encoded_words(value: &str, first_room: usize) -> String {
    // A word of n bytes is 12 + 4⌈n/3⌉ characters.
    let bytes_in = |room: usize| 3 * (room.saturating_sub(12) / 4);
    let mut limit = bytes_in(first_room.min(75));
    let mut out = String::new();
    let mut chunk = String::new();
    let flush = |chunk: &mut String, out: &mut String| {
        if !out.is_empty() || chunk.is_empty() {
            out.push_str("\r\n ");
        }
        if !chunk.is_empty() {
            out.push_str("=?UTF-8?B?");
            out.push_str(&STANDARD.encode(chunk.as_bytes()));
            out.push_str("?=");
        }
        chunk.clear();
    };
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > limit {
            flush(&mut chunk, &mut out);
            limit = bytes_in(75);
        }
        chunk.push(c);
    }
    flush(&mut chunk, &mut out);
    out
}
