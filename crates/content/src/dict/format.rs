//! The dictionary file format: one entry per line, an optional `, weight`,
//! `#` comment lines, optional double quotes. Documented for administrators in
//! docs/dictionaries.md; this is the only code that reads it.
//!
//! ```text
//! # ex-employees (comment lines start with #)
//! john.doe@example.com
//! @competitor.example          # not a comment: a whole line is one entry
//! @.spam.example               matches any subdomain of spam.example
//! confidential, 5              the weight is the integer after the last comma
//! "chapter, 11"                quotes keep a trailing ", digits" in the entry
//! "#hashtag", 2                and a leading # or quote
//! ```
//!
//! # Security
//! Reads an administrator's file, which may still be wrong: every problem is
//! an error naming the line; sizes are capped (entry length, file size in
//! [`super::Dictionary::load`]).

use std::collections::HashMap;

/// Largest weight accepted.
pub const MAX_WEIGHT: u32 = 1_000_000;
/// Longest entry accepted, in bytes after folding.
pub const MAX_ENTRY_BYTES: usize = 1024;

/// One entry as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    /// The entry as written (quotes and escapes removed, trimmed).
    pub text: String,
    /// The folded form used for matching (see [`fold`]).
    pub key: String,
    pub weight: u32,
}

/// Line-level problems: (1-based line, what is wrong).
pub(crate) type LineError = (usize, String);

/// Appends the case fold of `c`: Unicode lower case, with final sigma read as
/// sigma (the lower case of "Σ" is "σ" wherever it stands).
pub(crate) fn push_folded(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else if c == 'ς' {
        out.push('σ');
    } else {
        out.extend(c.to_lowercase());
    }
}

/// Case and whitespace folding shared by entries and texts: [`push_folded`]
/// for each character, every run of white space becomes one space, leading
/// and trailing white space dropped.
pub(crate) fn fold(s: &str) -> String {
    if s.is_ascii() {
        return fold_ascii(s.as_bytes());
    }
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        push_folded(&mut out, c);
    }
    out
}

/// [`fold`] for ASCII text, byte by byte (most mail text; about twice as fast).
fn fold_ascii(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut pending_space = false;
    for &b in s {
        // The ASCII characters `char::is_whitespace` accepts (note U+000B).
        if matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        out.push(b.to_ascii_lowercase());
    }
    // Only ASCII bytes were pushed, so this never fails.
    String::from_utf8(out).unwrap_or_default()
}

/// Parses the whole text; duplicates (after folding) with the same weight are
/// dropped, with a different weight they are an error naming both lines.
pub(crate) fn parse_entries(text: &str) -> Result<Vec<RawEntry>, LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries: Vec<RawEntry> = Vec::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new(); // key → (index, line)
    for (idx, line) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = line.strip_suffix('\r').unwrap_or(line).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (entry, weight) = parse_line(line).map_err(|what| (line_no, what))?;
        let key = fold(&entry);
        if key.is_empty() {
            return Err((line_no, "the entry is empty".to_owned()));
        }
        if key.len() > MAX_ENTRY_BYTES {
            return Err((
                line_no,
                format!(
                    "the entry is {} bytes long; at most {MAX_ENTRY_BYTES} are allowed",
                    key.len()
                ),
            ));
        }
        if let Some(&(first, first_line)) = seen.get(&key) {
            if entries[first].weight != weight {
                return Err((
                    line_no,
                    format!(
                        "{entry:?} is already on line {first_line} with weight {}; give it one weight",
                        entries[first].weight
                    ),
                ));
            }
            continue;
        }
        seen.insert(key.clone(), (entries.len(), line_no));
        entries.push(RawEntry {
            text: entry,
            key,
            weight,
        });
    }
    Ok(entries)
}

/// One non-blank, non-comment, trimmed line → (entry, weight).
fn parse_line(line: &str) -> Result<(String, u32), String> {
    if let Some(rest) = line.strip_prefix('"') {
        let (entry, after) = parse_quoted(rest)?;
        let after = after.trim();
        if after.is_empty() {
            return Ok((entry, 1));
        }
        let Some(weight) = after.strip_prefix(',') else {
            return Err(format!(
                "after a quoted entry only \", weight\" may follow, found {after:?}"
            ));
        };
        return Ok((entry, parse_weight(weight.trim())?));
    }
    if let Some((head, tail)) = line.rsplit_once(',') {
        let tail = tail.trim();
        if looks_numeric(tail) {
            return Ok((head.trim().to_owned(), parse_weight(tail)?));
        }
    }
    Ok((line.to_owned(), 1))
}

/// A quoted entry after its opening quote: `\"` and `\\` are the only escapes.
fn parse_quoted(rest: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out.trim().to_owned(), &rest[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                _ => return Err("in a quoted entry only \\\" and \\\\ are escapes".to_owned()),
            },
            c => out.push(c),
        }
    }
    Err("the closing double quote is missing".to_owned())
}

/// `12`, `-3`, `+4`, `1.5`: meant as a weight (so an error if not a valid one).
fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn parse_weight(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(w) if w <= MAX_WEIGHT && !s.starts_with('+') => Ok(w),
        _ => Err(format!(
            "the weight must be a whole number from 0 to {MAX_WEIGHT}, found {s:?} \
             (quote the entry if the comma and number belong to it: \"text, 11\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_lowers_and_collapses_space() {
        assert_eq!(fold("  Ex \t\r\n EMPLOYEE  "), "ex employee");
        assert_eq!(fold("STRASSE Ärger"), "strasse ärger");
        assert_eq!(fold("ΟΔΟΣ οδος"), "οδοσ οδοσ");
        for s in ["", " ", "A\u{b}B\x0c C \r\n", "x\x1fy", " Tab\tEnd "] {
            let slow: String = {
                let mut out = String::new();
                let mut pending = false;
                for c in s.chars() {
                    if c.is_whitespace() {
                        pending = !out.is_empty();
                        continue;
                    }
                    if pending {
                        out.push(' ');
                        pending = false;
                    }
                    push_folded(&mut out, c);
                }
                out
            };
            assert_eq!(fold(s), slow, "{s:?}");
        }
    }

    #[test]
    fn lines() {
        assert_eq!(parse_line("cat"), Ok(("cat".into(), 1)));
        assert_eq!(parse_line("cat , 7"), Ok(("cat".into(), 7)));
        assert_eq!(parse_line("hello, world"), Ok(("hello, world".into(), 1)));
        assert_eq!(parse_line("\"chapter, 11\""), Ok(("chapter, 11".into(), 1)));
        assert_eq!(parse_line("\"a \\\"b\\\"\", 2"), Ok(("a \"b\"".into(), 2)));
        assert_eq!(parse_line("c#"), Ok(("c#".into(), 1)));
        assert!(parse_line("cat, -3").is_err());
        assert!(parse_line("cat, 1.5").is_err());
        assert!(parse_line("cat, 99999999999").is_err());
        assert!(parse_line("cat, +3").is_err());
        assert!(parse_line("\"open").is_err());
        assert!(parse_line("\"a\" b").is_err());
    }

    #[test]
    fn duplicates() {
        let e = parse_entries("Cat\ncat\n").expect("same weight");
        assert_eq!(e.len(), 1);
        let err = parse_entries("cat, 2\n\nCAT, 3\n").expect_err("different weight");
        assert_eq!(err.0, 3);
        assert!(err.1.contains("line 1"), "{}", err.1);
    }
}
