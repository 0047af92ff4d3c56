//! Checks of single values shared by conditions and actions: header field names, names
//! of configured objects, enhanced status codes, TLS versions.
//!
//! # Standards
//! RFC 5322 §3.6.8 (field names), RFC 3463 §3.1 (enhanced status codes), RFC 8446 /
//! RFC 5246 (TLS version numbers).

use postern_proto::EnhancedCode;

/// RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126.
pub(crate) fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 76 && s.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

pub(crate) fn bad_field_name(name: &str) -> String {
    format!(
        "{name:?} is not a header field name: 1 to 76 printable ASCII characters, no space or colon (RFC 5322 §3.6.8)"
    )
}

/// Names of dictionaries, quarantines and templates: the configuration's rule for names
/// (`[a-z0-9_-]`, 1 to 64 bytes, starting with a letter or digit), so a name a rule uses
/// can be defined.
pub(crate) fn is_identifier(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub(crate) fn bad_identifier(what: &str, name: &str) -> String {
    format!(
        "{name:?} is not a {what} name: a letter or digit, then letters, digits, `_`, `-` or `.`, at most 64"
    )
}

/// `class.subject.detail` (RFC 3463 §3.1): class 4 or 5 here, 1 to 3 digits each.
pub(crate) fn parse_enhanced(s: &str) -> Option<EnhancedCode> {
    let mut parts = s.split('.');
    let (c, sub, det) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || ![c, sub, det]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let class: u8 = c.parse().ok()?;
    if class != 4 && class != 5 {
        return None;
    }
    Some(EnhancedCode::new(
        class,
        sub.parse().ok()?,
        det.parse().ok()?,
    ))
}

/// "1.2", "TLSv1.2", "TLS1.3" → (1, 2).
pub(crate) fn parse_tls_version(s: &str) -> Option<(u8, u8)> {
    let s = s.trim();
    let digits = s
        .strip_prefix("TLSv")
        .or_else(|| s.strip_prefix("tlsv"))
        .or_else(|| s.strip_prefix("TLS"))
        .unwrap_or(s);
    let (a, b) = digits.split_once('.')?;
    let v = (a.parse().ok()?, b.parse().ok()?);
    (v.0 == 1 && v.1 <= 3).then_some(v)
}
