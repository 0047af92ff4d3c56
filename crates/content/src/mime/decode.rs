//! Content-Transfer-Encoding decoding with a bound on what is kept, and
//! charset conversion to UTF-8.
//!
//! # Security
//! Reads untrusted bytes. Decoding is one pass that always counts the whole
//! decoded size (an attachment's size is a filter condition) but keeps at
//! most `keep` bytes, so a 50 MiB base64 attachment costs a scan, not 37 MiB.
//! Malformed input is decoded leniently (junk skipped), never rejected.
//!
//! # Standards
//! RFC 2045 §6.7 (quoted-printable), §6.8 (base64), RFC 2046 §4.1.2
//! (charset parameter; default US-ASCII, read as UTF-8 here, a superset).

use mail_parser::decoders::charsets::map::charset_decoder;

/// A Content-Transfer-Encoding (RFC 2045 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cte {
    /// 7bit, 8bit, binary, or absent.
    Identity,
    Base64,
    QuotedPrintable,
    /// An encoding we do not know: RFC 2045 §6.4 says to treat the part as
    /// application/octet-stream; its bytes are taken as they are.
    Unknown,
}

impl Cte {
    pub fn parse(value: Option<&[u8]>) -> Cte {
        let Some(value) = value else {
            return Cte::Identity;
        };
        let value = value.trim_ascii();
        if value.eq_ignore_ascii_case(b"base64") {
            Cte::Base64
        } else if value.eq_ignore_ascii_case(b"quoted-printable") {
            Cte::QuotedPrintable
        } else if value.is_empty()
            || [&b"7bit"[..], b"8bit", b"binary"]
                .iter()
                .any(|v| value.eq_ignore_ascii_case(v))
        {
            Cte::Identity
        } else {
            Cte::Unknown
        }
    }
}

/// The first `keep` decoded bytes and the whole decoded size.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub prefix: Vec<u8>,
    pub size: u64,
}

impl Decoded {
    /// More was decoded than kept.
    pub fn is_cut(&self) -> bool {
        (self.prefix.len() as u64) < self.size
    }
}

/// Decodes `body` keeping at most `keep` bytes.
pub(crate) fn decode(body: &[u8], cte: Cte, keep: usize) -> Decoded {
    match cte {
        Cte::Identity | Cte::Unknown => Decoded {
            prefix: body[..body.len().min(keep)].to_vec(),
            size: body.len() as u64,
        },
        Cte::Base64 => base64(body, keep),
        Cte::QuotedPrintable => quoted_printable(body, keep),
    }
}

struct Sink {
    out: Decoded,
    keep: usize,
}

impl Sink {
    fn new(keep: usize, hint: usize) -> Sink {
        Sink {
            out: Decoded {
                prefix: Vec::with_capacity(keep.min(hint)),
                size: 0,
            },
            keep,
        }
    }

    fn push(&mut self, b: u8) {
        if self.out.prefix.len() < self.keep {
            self.out.prefix.push(b);
        }
        self.out.size += 1;
    }
}

fn sextet(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// RFC 2045 §6.8, leniently: characters outside the alphabet are ignored
/// (the RFC says so for line breaks and "must be ignored" for the rest);
/// `=` ends a group, so concatenated encodings decode too.
fn base64(body: &[u8], keep: usize) -> Decoded {
    let mut sink = Sink::new(keep, body.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut n = 0;
    for &b in body {
        if let Some(v) = sextet(b) {
            acc = (acc << 6) | v;
            n += 1;
            if n == 4 {
                for shift in [16, 8, 0] {
                    sink.push(byte(acc >> shift));
                }
                acc = 0;
                n = 0;
            }
        } else if b == b'=' {
            flush(&mut sink, acc, n);
            acc = 0;
            n = 0;
        }
    }
    flush(&mut sink, acc, n);
    sink.out
}

/// The low byte of `v` (the truncation is the point).
#[allow(clippy::cast_possible_truncation)]
fn byte(v: u32) -> u8 {
    (v & 0xff) as u8
}

/// A partial group: 2 sextets → 1 byte, 3 → 2 bytes, 1 → nothing.
fn flush(sink: &mut Sink, acc: u32, n: u32) {
    match n {
        2 => sink.push(byte(acc >> 4)),
        3 => {
            sink.push(byte(acc >> 10));
            sink.push(byte(acc >> 2));
        }
        _ => {}
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// RFC 2045 §6.7: `=XX` is a byte, `=` before a line break is a soft line
/// break (white space between tolerated), anything else is literal.
fn quoted_printable(body: &[u8], keep: usize) -> Decoded {
    let mut sink = Sink::new(keep, body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'=' {
            sink.push(b);
            i += 1;
            continue;
        }
        if let (Some(h), Some(l)) = (
            body.get(i + 1).copied().and_then(hex),
            body.get(i + 2).copied().and_then(hex),
        ) {
            sink.push(h << 4 | l);
            i += 3;
            continue;
        }
        let ws = body[i + 1..]
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        let rest = &body[i + 1 + ws..];
        if rest.starts_with(b"\r\n") {
            i += 1 + ws + 2;
        } else if rest.starts_with(b"\n") || rest.is_empty() {
            i += 1 + ws + usize::from(!rest.is_empty());
        } else {
            sink.push(b'=');
            i += 1;
        }
    }
    sink.out
}

/// `bytes` in `charset` as UTF-8; unknown or absent charsets are read as
/// UTF-8 with invalid sequences replaced.
pub(crate) fn to_utf8(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c)
            if !c.eq_ignore_ascii_case("utf-8")
                && !c.eq_ignore_ascii_case("us-ascii")
                && !c.eq_ignore_ascii_case("utf8") =>
        {
            match charset_decoder(c.as_bytes()) {
                Some(decode) => decode(bytes),
                None => String::from_utf8_lossy(bytes).into_owned(),
            }
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary; true when cut.
pub(crate) fn truncate_at_char(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lenient_and_bounded() {
        let d = decode(b"aGVs\r\nbG8g\r\nd29y bGQ=", Cte::Base64, 100);
        assert_eq!(d.prefix, b"hello world");
        assert_eq!(d.size, 11);
        let d = decode(b"aGVsbG8=aGk=", Cte::Base64, 100);
        assert_eq!(d.prefix, b"hellohi", "concatenated encodings");
        let d = decode(b"aGVsbG8gd29ybGQ=", Cte::Base64, 4);
        assert_eq!(d.prefix, b"hell");
        assert_eq!(d.size, 11);
        assert!(d.is_cut());
        assert_eq!(decode(b"!!!", Cte::Base64, 10).size, 0);
    }

    #[test]
    fn quoted_printable_cases() {
        let d = decode(
            b"caf=C3=A9 =\r\nsoft=  \nbreak =3d =ZZ =",
            Cte::QuotedPrintable,
            100,
        );
        assert_eq!(String::from_utf8_lossy(&d.prefix), "café softbreak = =ZZ ");
    }

    #[test]
    fn charsets() {
        assert_eq!(to_utf8(b"caf\xe9", Some("ISO-8859-1")), "café");
        assert_eq!(to_utf8(b"\x80 \x93q\x94", Some("windows-1252")), "€ “q”");
        assert_eq!(to_utf8("café".as_bytes(), Some("UTF-8")), "café");
        assert_eq!(to_utf8(b"caf\xe9", None), "caf\u{fffd}");
        assert_eq!(to_utf8(b"x", Some("no-such-charset")), "x");
    }

    #[test]
    fn truncation_at_char_boundary() {
        let mut s = "aé".to_owned();
        assert!(truncate_at_char(&mut s, 2));
        assert_eq!(s, "a");
        assert!(!truncate_at_char(&mut s, 5));
    }
}
