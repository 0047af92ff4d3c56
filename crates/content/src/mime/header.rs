//! Header sections of a message or a MIME part: splitting fields from the
//! body, unfolding, RFC 2047 decoding, and the MIME fields a walk needs
//! (Content-Type, Content-Disposition, Content-Transfer-Encoding) with their
//! parameters (RFC 2231 continuations and charsets, through `mail-parser`).
//!
//! # Security
//! Reads untrusted bytes. The scan is one linear pass; nothing is stored
//! here: fields go to a callback, so a header section of millions of fields
//! costs time linear in its size and no memory.
//!
//! # Standards
//! RFC 5322 §2.2 (fields, §2.2.3 unfolding), RFC 2045 §5 (Content-Type and
//! its default), §6 (Content-Transfer-Encoding), RFC 2183 (Content-
//! Disposition), RFC 2231 (parameter continuations and charsets), RFC 2047
//! (encoded words), RFC 6532 (UTF-8 in header fields).

use mail_parser::{HeaderValue, parsers::MessageStream};

/// Splits `raw` into header fields (given to `field` as raw name and raw,
/// still folded, value) and returns the body: what follows the first empty
/// line. A line that is neither a field nor a continuation also ends the
/// header section, and belongs to the body (lenient: broken parts often lack
/// the empty line).
pub(crate) fn split<'a>(raw: &'a [u8], mut field: impl FnMut(&'a [u8], &'a [u8])) -> &'a [u8] {
    let mut pos = 0;
    let mut current: Option<(usize, usize, usize)> = None; // name start, colon, value end
    let flush = |current: &mut Option<(usize, usize, usize)>,
                 field: &mut dyn FnMut(&'a [u8], &'a [u8])| {
        if let Some((start, colon, end)) = current.take() {
            field(&raw[start..colon], &raw[colon + 1..end]);
        }
    };
    while pos < raw.len() {
        let line_end = memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            flush(&mut current, &mut field);
            return &raw[line_end..];
        }
        if matches!(line[0], b' ' | b'\t') && current.is_some() {
            if let Some(c) = current.as_mut() {
                c.2 = line_end;
            }
        } else if let Some(colon) = field_name_end(line) {
            flush(&mut current, &mut field);
            current = Some((pos, pos + colon, line_end));
        } else {
            flush(&mut current, &mut field);
            return &raw[pos..];
        }
        pos = line_end;
    }
    flush(&mut current, &mut field);
    &raw[raw.len()..]
}

/// The offset of the colon when `line` starts with a field name (printable
/// ASCII except colon, RFC 5322 §2.2; white space before the colon tolerated
/// as in RFC 822's obsolete syntax).
fn field_name_end(line: &[u8]) -> Option<usize> {
    let colon = memchr::memchr(b':', line)?;
    let name = line[..colon].trim_ascii_end();
    (!name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))).then_some(colon)
}

/// RFC 5322 §2.2.3: unfold (drop the line breaks, keep the white space) and
/// trim; the bytes as UTF-8 (RFC 6532), invalid sequences replaced.
pub(crate) fn unfold(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        }
    }
    String::from_utf8_lossy(out.trim_ascii()).into_owned()
}

/// The value with RFC 2047 encoded words decoded (and unfolded).
pub fn decode_unstructured(value: &[u8]) -> String {
    let mut buf = Vec::with_capacity(value.len() + 1);
    buf.extend_from_slice(value);
    buf.push(b'\n');
    match MessageStream::new(&buf).parse_unstructured() {
        HeaderValue::Text(text) => text.trim().to_owned(),
        _ => String::new(),
    }
}

/// A parsed Content-Type or Content-Disposition value: lower-case type (and
/// subtype), parameters with lower-case names and decoded values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Params {
    pub kind: String,
    pub subtype: Option<String>,
    pub values: Vec<(String, String)>,
}

impl Params {
    pub fn parse(value: &[u8]) -> Params {
        let mut buf = Vec::with_capacity(value.len() + 1);
        buf.extend_from_slice(value);
        buf.push(b'\n');
        match MessageStream::new(&buf).parse_content_type() {
            HeaderValue::ContentType(ct) => Params {
                kind: ct.ctype().trim().to_ascii_lowercase(),
                subtype: ct.subtype().map(|s| s.trim().to_ascii_lowercase()),
                values: ct
                    .attributes()
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                    .collect(),
            },
            _ => Params::default(),
        }
    }

    /// The parameter named `name` (lower case), first occurrence.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the parameter named `name` (lower case), in order.
    pub fn params<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.values
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// RFC 2231 §3–4 for one parameter: the `name*0*=`, `name*1=`, … segments
/// (or one `name*=`) joined as bytes, percent-decoding the `*` ones, then read
/// in the charset the first segment names. `None` when the parameter has no
/// extended or continued form (the plain `name=` is `mail-parser`'s job).
/// Joining before charset decoding matters: a UTF-8 character may be split
/// across segments.
pub(crate) fn rfc2231_param(value: &[u8], name: &str) -> Option<String> {
    // (section number, encoded?, raw value)
    let mut segments: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    for (key, raw) in parameters(value) {
        let Some(rest) = key
            .strip_prefix(name.as_bytes())
            .and_then(|r| r.strip_prefix(b"*"))
        else {
            continue;
        };
        let (section, encoded) = if rest.is_empty() {
            (0, true)
        } else {
            let (digits, encoded) = match rest.strip_suffix(b"*") {
                Some(d) => (d, true),
                None => (rest, false),
            };
            let Some(n) = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<u32>().ok())
            else {
                continue;
            };
            (n, encoded)
        };
        if segments.len() < 1000 && !segments.iter().any(|(n, _, _)| *n == section) {
            segments.push((section, encoded, raw));
        }
    }
    if segments.is_empty() {
        return None;
    }
    segments.sort_by_key(|(n, _, _)| *n);
    let mut charset = None;
    let mut bytes = Vec::new();
    for (i, (_, encoded, raw)) in segments.iter().enumerate() {
        let mut raw = raw.as_slice();
        if i == 0 && *encoded {
            // charset'language'value (RFC 2231 §4)
            let mut parts = raw.splitn(3, |&b| b == b'\'');
            if let (Some(cs), Some(_lang), Some(v)) = (parts.next(), parts.next(), parts.next()) {
                charset = Some(String::from_utf8_lossy(cs).into_owned());
                raw = v;
            }
        }
        if *encoded {
            percent_decode(raw, &mut bytes);
        } else {
            bytes.extend_from_slice(raw);
        }
    }
    Some(super::decode::to_utf8(&bytes, charset.as_deref()))
}

fn percent_decode(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                raw.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
}

/// The `key=value` parameters after the type in a Content-Type or
/// Content-Disposition value: keys lower-cased, quoted values unquoted
/// (backslash escapes), comments not supported (rare in parameters).
fn parameters(value: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = match memchr::memchr(b';', value) {
        Some(i) => &value[i + 1..],
        None => return out,
    };
    while !rest.is_empty() && out.len() < 1000 {
        let Some(eq) = memchr::memchr2(b'=', b';', rest) else {
            break;
        };
        if rest[eq] == b';' {
            rest = &rest[eq + 1..];
            continue;
        }
        let key: Vec<u8> = rest[..eq]
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .map(u8::to_ascii_lowercase)
            .collect();
        rest = rest[eq + 1..].trim_ascii_start();
        let mut val = Vec::new();
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let mut i = 0;
            while i < quoted.len() && quoted[i] != b'"' {
                if quoted[i] == b'\\' && i + 1 < quoted.len() {
                    i += 1;
                }
                if quoted[i] != b'\r' && quoted[i] != b'\n' {
                    val.push(quoted[i]);
                }
                i += 1;
            }
            rest = quoted.get(i + 1..).unwrap_or_default();
            rest = memchr::memchr(b';', rest).map_or(&rest[rest.len()..], |j| &rest[j + 1..]);
        } else {
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            val.extend(rest[..end].iter().filter(|b| !b.is_ascii_whitespace()));
            rest = rest.get(end + 1..).unwrap_or_default();
        }
        out.push((key, val));
    }
    out
}

/// The MIME fields of one entity (first occurrence of each wins).
#[derive(Debug, Default)]
pub(crate) struct MimeFields<'a> {
    pub content_type: Option<&'a [u8]>,
    pub disposition: Option<&'a [u8]>,
    pub encoding: Option<&'a [u8]>,
    /// How many Content-Type fields there were (more than one is ambiguous:
    /// clients differ on which wins).
    pub content_types: usize,
}

impl<'a> MimeFields<'a> {
    /// Remembers `name: value` when it is one of the MIME fields.
    pub fn note(&mut self, name: &[u8], value: &'a [u8]) {
        let name = name.trim_ascii();
        let slot = if name.eq_ignore_ascii_case(b"content-type") {
            self.content_types += 1;
            &mut self.content_type
        } else if name.eq_ignore_ascii_case(b"content-disposition") {
            &mut self.disposition
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            &mut self.encoding
        } else {
            return;
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(raw: &[u8]) -> (Vec<(String, String)>, &[u8]) {
        let mut out = Vec::new();
        let body = split(raw, |n, v| {
            out.push((String::from_utf8_lossy(n).into_owned(), unfold(v)));
        });
        (out, body)
    }

    #[test]
    fn splits_fields_and_body() {
        let (f, body) = fields(b"A: 1\r\nB: two\r\n  folded\r\n\r\nbody\r\n");
        assert_eq!(
            f,
            [("A".into(), "1".into()), ("B".into(), "two  folded".into())]
        );
        assert_eq!(body, b"body\r\n");
        let (f, body) = fields(b"A: 1\nno colon here\nmore\n");
        assert_eq!(f.len(), 1);
        assert_eq!(body, b"no colon here\nmore\n");
        let (f, body) = fields(b"A: 1");
        assert_eq!(f.len(), 1);
        assert!(body.is_empty());
        let (f, body) = fields(b"\r\nbody");
        assert!(f.is_empty());
        assert_eq!(body, b"body");
    }

    #[test]
    fn content_type_parameters() {
        let p = Params::parse(b" Text/HTML; Charset=\"ISO-8859-1\"; name=a.htm");
        assert_eq!(p.kind, "text");
        assert_eq!(p.subtype.as_deref(), Some("html"));
        assert_eq!(p.param("charset"), Some("ISO-8859-1"));
        assert_eq!(p.param("name"), Some("a.htm"));
        let p = Params::parse(b"multipart/mixed; boundary=one; boundary=\"two\"");
        assert_eq!(p.params("boundary").collect::<Vec<_>>(), ["one", "two"]);
    }

    /// Random parameter soup never panics the parameter parser.
    #[test]
    fn hostile_parameters() {
        const ALPHABET: &[u8] = b"a/=*;'\"()\\\r\n %?-_0e";
        let mut state: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            let mut value = Vec::new();
            let len = state % 40;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                value.push(ALPHABET[usize::try_from(state).unwrap_or(0) % ALPHABET.len()]);
            }
            let p = Params::parse(&value);
            let _ = p.param("name");
            let _ = decode_unstructured(&value);
            let _ = rfc2231_param(&value, "name");
        }
        let v = b"text/plain; name*0*=utf-8''%E2; name*1*=%82%AC; name*2=\" x\"";
        assert_eq!(rfc2231_param(v, "name").as_deref(), Some("€ x"));
        let v = b"attachment; filename*=iso-8859-1'fr'r%E9sum%E9.pdf";
        assert_eq!(rfc2231_param(v, "filename").as_deref(), Some("résumé.pdf"));
        let v = b"attachment;\r\n filename*1=\"b\"; filename*0=\"a;\"";
        assert_eq!(
            rfc2231_param(v, "filename").as_deref(),
            Some("a;b"),
            "order by section"
        );
        assert_eq!(
            rfc2231_param(b"attachment; filename=plain", "filename"),
            None
        );
    }

    #[test]
    fn encoded_words() {
        assert_eq!(decode_unstructured(b" =?utf-8?q?caf=C3=A9?= ok"), "café ok");
        assert_eq!(decode_unstructured(b""), "");
    }
}
