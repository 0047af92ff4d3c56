//! Relaxed body canonicalization (RFC 6376 §3.4.4), done by us before the
//! body reaches `mail-auth`.
//!
//! `mail-auth` 0.13.3 does not treat whitespace-only trailing lines as empty
//! (upstream issue #62, fixed only in 0.15.0, which needs a newer Rust): the
//! body `hello\r\n \r\n\t\r\n` hashes differently from `hello\r\n`, so our
//! relaxed-body signatures would fail at every other verifier. A relaxed
//! canonical body is a fixed point of the relaxed algorithm (no WSP runs, no
//! trailing WSP, no trailing empty lines), so handing `mail-auth` the output
//! of [`relaxed_body`] makes its (buggy) canonicalization a no-op and the
//! body hash correct.
//!
//! # Standards
//! RFC 6376 §3.4.4 (relaxed body), §3.4.3 (simple body: untouched here).

/// The relaxed canonical form of a message body (RFC 6376 §3.4.4):
/// every run of SP/HTAB inside a line becomes one SP, SP/HTAB at line ends
/// is removed, empty lines at the end are removed, and a non-empty body
/// ends with exactly one CRLF. Lines end at CRLF; a bare LF is taken as a
/// line end too (files edited on Unix), a bare CR is line content.
pub fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    // Position in `out` after the last non-empty line (trailing empty lines cut there).
    let mut keep = 0;
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(raw) = lines.next() {
        let is_last = lines.peek().is_none();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if is_last && line.is_empty() {
            // The empty remainder after the final line end.
            break;
        }
        let mut pending_space = false;
        let mut wrote = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                pending_space = true;
            } else {
                if pending_space {
                    // Leading or inner WSP run: one SP (RFC 6376 §3.4.4 a).
                    out.push(b' ');
                }
                pending_space = false;
                out.push(b);
                wrote = true;
            }
        }
        out.extend_from_slice(b"\r\n");
        if wrote {
            keep = out.len();
        }
    }
    out.truncate(keep);
    out
}

/// Splits a message at the end of its header block: `(headers, body)`,
/// where `headers` includes the empty line. A message without an empty
/// line is all headers and has an empty body.
pub fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    if message.starts_with(b"\r\n") {
        return message.split_at(2);
    }
    if message.starts_with(b"\n") {
        return message.split_at(1);
    }
    let mut i = 0;
    while let Some(pos) = message[i..].iter().position(|&b| b == b'\n') {
        let end = i + pos + 1;
        let rest = &message[end..];
        if rest.starts_with(b"\r\n") {
            return message.split_at(end + 2);
        }
        if rest.starts_with(b"\n") {
            return message.split_at(end + 1);
        }
        i = end;
    }
    (message, &[])
}

/// Bare LF line ends turned into CRLF (a message file written on Unix);
/// CRLF is kept as is.
pub fn to_crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_blank_and_whitespace_only_lines_are_removed() {
        assert_eq!(relaxed_body(b"hello\r\n"), b"hello\r\n");
        assert_eq!(relaxed_body(b"hello\r\n\r\n\r\n"), b"hello\r\n");
        assert_eq!(relaxed_body(b"hello\r\n \r\n\t\r\n"), b"hello\r\n");
        assert_eq!(relaxed_body(b"hello\r\n \t \r\n\r\n  \r\n"), b"hello\r\n");
    }

    #[test]
    fn inner_whitespace_is_reduced_and_line_ends_trimmed() {
        assert_eq!(
            relaxed_body(b" a \t b  \r\n\r\n c\t\r\n"),
            b" a b\r\n\r\n c\r\n"
        );
        // An inner whitespace-only line stays as an empty line.
        assert_eq!(relaxed_body(b"a\r\n \r\nb\r\n"), b"a\r\n\r\nb\r\n");
    }

    #[test]
    fn empty_and_unterminated_bodies() {
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b" \r\n\t"), b"");
        assert_eq!(relaxed_body(b"no newline"), b"no newline\r\n");
        assert_eq!(relaxed_body(b"unix\nlines\n\n"), b"unix\r\nlines\r\n");
    }

    #[test]
    fn relaxed_body_is_a_fixed_point() {
        for body in [
            &b" a \t b  \r\n\r\n c\t\r\n \r\n"[..],
            b"x\r\n\t\r\n",
            b"8-bit \xc3\xa9t\xc3\xa9  \r\n",
        ] {
            let once = relaxed_body(body);
            assert_eq!(relaxed_body(&once), once);
        }
    }

    #[test]
    fn split_at_the_empty_line() {
        let (h, b) = split_message(b"A: 1\r\nB: 2\r\n\r\nbody\r\n");
        assert_eq!(h, b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(b, b"body\r\n");
        let (h, b) = split_message(b"A: 1\r\n");
        assert_eq!((h, b), (&b"A: 1\r\n"[..], &b""[..]));
        assert_eq!(to_crlf(b"a\nb\r\n"), b"a\r\nb\r\n");
    }
}
