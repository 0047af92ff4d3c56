//! Splitting a multipart body into its body parts at the boundary delimiter
//! lines.
//!
//! # Security
//! Reads untrusted bytes: one linear scan (memmem) per multipart body; at
//! most `max` parts are returned, the caller learns that more were there.
//! A boundary that never occurs as a delimiter line yields `None` (the
//! caller shows the body as text), a missing close delimiter ends the last
//! part at the end of the body.
//!
//! # Standards
//! RFC 2046 §5.1.1: a delimiter is `--boundary` at the start of a line,
//! optionally followed by linear white space (transport padding) and the
//! line break; `--boundary--` closes; the line break before a delimiter
//! belongs to the delimiter; the preamble and epilogue are ignored.

/// Longest boundary accepted; RFC 2046 allows 70, mail in the wild a little more.
const MAX_BOUNDARY: usize = 200;

/// A multipart body cut at its delimiters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Split<'a> {
    /// The body parts, at most the `max` asked for.
    pub parts: Vec<&'a [u8]>,
    /// More parts were there than `max`.
    pub more: bool,
    /// What comes before the first delimiter (RFC 2046: to be ignored).
    pub preamble: &'a [u8],
    /// What comes after the close delimiter (RFC 2046: to be ignored); empty
    /// when there is no close delimiter or the split stopped at `max`.
    pub epilogue: &'a [u8],
}

/// The parts of `body` delimited by `boundary`, at most `max`; `None` when
/// no delimiter line occurs (or the boundary is empty or absurdly long).
pub(crate) fn split<'a>(body: &'a [u8], boundary: &str, max: usize) -> Option<Split<'a>> {
    let boundary = boundary.as_bytes();
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return None;
    }
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delimiter);

    let mut out = Split::default();
    let mut part_start: Option<usize> = None;
    let mut seen_delimiter = false;
    let mut search_from = 0;
    while let Some(found) = finder.find(&body[search_from..]) {
        let at = search_from + found;
        search_from = at + 1;
        if at > 0 && body[at - 1] != b'\n' {
            continue;
        }
        let after = &body[at + delimiter.len()..];
        let is_close = after.starts_with(b"--");
        let line_end = if is_close {
            Some(line_end(after, 2))
        } else {
            let padding = after
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
            let rest = &after[padding..];
            if rest.is_empty() {
                Some(padding)
            } else if rest.starts_with(b"\r\n") {
                Some(padding + 2)
            } else if rest.starts_with(b"\n") {
                Some(padding + 1)
            } else {
                None // "--boundaryX": a longer boundary, or text; not a delimiter
            }
        };
        let Some(line_end) = line_end else { continue };
        if !seen_delimiter {
            seen_delimiter = true;
            out.preamble = &body[..content_end(body, 0, at)];
        }
        if let Some(start) = part_start.take() {
            if out.parts.len() == max {
                out.more = true;
                return Some(out);
            }
            out.parts.push(&body[start..content_end(body, start, at)]);
        }
        if is_close {
            out.epilogue = &body[(at + delimiter.len() + line_end).min(body.len())..];
            return Some(out);
        }
        let next = at + delimiter.len() + line_end;
        part_start = Some(next);
        search_from = next;
    }
    if !seen_delimiter {
        return None;
    }
    // No close delimiter: the last part runs to the end of the body.
    if let Some(start) = part_start {
        if out.parts.len() == max {
            out.more = true;
        } else {
            out.parts.push(&body[start..]);
        }
    }
    Some(out)
}

/// The end of the line that starts `skip` bytes into `after` (after its break).
fn line_end(after: &[u8], skip: usize) -> usize {
    memchr::memchr(b'\n', &after[skip..]).map_or(after.len(), |i| skip + i + 1)
}

/// The content of a part starting at `start` whose next delimiter is at
/// `delimiter`: without the line break that belongs to the delimiter.
fn content_end(body: &[u8], start: usize, delimiter: usize) -> usize {
    let mut end = delimiter;
    if end > start && body[end - 1] == b'\n' {
        end -= 1;
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_preamble_epilogue() {
        let body = b"preamble\r\n--b\r\none\r\n--b  \r\ntwo\r\n\r\n--b--\r\nepilogue";
        let s = split(body, "b", 10).expect("parts");
        assert_eq!(s.parts, [&b"one"[..], &b"two\r\n"[..]]);
        assert!(!s.more);
        assert_eq!(s.preamble, b"preamble");
        assert_eq!(s.epilogue, b"epilogue");
    }

    #[test]
    fn longer_boundary_is_not_a_delimiter() {
        let body = b"--b\none\n--bb\nstill one\n--b--\n";
        let s = split(body, "b", 10).expect("parts");
        assert_eq!(s.parts, [&b"one\n--bb\nstill one"[..]]);
        assert!(s.preamble.is_empty() && s.epilogue.is_empty());
    }

    #[test]
    fn missing_close_and_missing_boundary() {
        let s = split(b"--b\none\n--b\ntwo", "b", 10).expect("parts");
        assert_eq!(s.parts, [&b"one"[..], &b"two"[..]]);
        assert!(split(b"no delimiters at all", "b", 10).is_none());
        assert!(split(b"x--b\n", "b", 10).is_none(), "not at a line start");
        assert!(split(b"--\n", "", 10).is_none());
    }

    #[test]
    fn at_most_max() {
        let body = b"--b\n1\n--b\n2\n--b\n3\n--b--\n";
        let s = split(body, "b", 2).expect("parts");
        assert_eq!(s.parts.len(), 2);
        assert!(s.more);
        let s = split(b"--b\n1\n--b--\n", "b", 0).expect("split");
        assert!(s.parts.is_empty() && s.more);
    }
}
