//! xtext, the encoding of DSN and AUTH parameter values (`ENVID=`, `ORCPT=`,
//! `AUTH=`).
//!
//! # Security
//! Untrusted input. Validation is a plain scan; decoding never allocates more
//! than the input length.
//!
//! # Standards
//! RFC 3461 §4 (xtext), used by RFC 4954 §5 (`AUTH=`).

use thiserror::Error;

/// Why a string is not valid xtext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum XtextError {
    /// A character outside `xchar` / `hexchar`, or a `+` not followed by two
    /// upper-case hex digits.
    #[error("invalid xtext")]
    Invalid,
    /// The decoded value is not UTF-8.
    #[error("xtext does not decode to UTF-8")]
    NotUtf8,
}

/// RFC 3461 §4: `xchar = any ASCII CHAR between "!" (33) and "~" (126)
/// inclusive, except for "+" and "="`.
fn is_xchar(b: u8) -> bool {
    (33..=126).contains(&b) && b != b'+' && b != b'='
}

/// RFC 3461 §4: `hexchar = ASCII "+" immediately followed by two upper case
/// hexadecimal digits`.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// True if `s` is `*( xchar / hexchar )` (the empty string is valid xtext).
pub fn is_valid_xtext(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            let pair = bytes.get(i + 1..i + 3);
            match pair {
                Some(&[high, low]) if hex_value(high).is_some() && hex_value(low).is_some() => {
                    i += 3;
                }
                _ => return false,
            }
        } else if is_xchar(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Decodes xtext (`+2B` → `+`). The result must be UTF-8.
pub fn decode_xtext(text: &str) -> Result<String, XtextError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            let high = bytes.get(i + 1).copied().and_then(hex_value);
            let low = bytes.get(i + 2).copied().and_then(hex_value);
            match (high, low) {
                (Some(high), Some(low)) => out.push(high << 4 | low),
                _ => return Err(XtextError::Invalid),
            }
            i += 3;
        } else if is_xchar(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(XtextError::Invalid);
        }
    }
    String::from_utf8(out).map_err(|_| XtextError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_table() {
        let cases: &[(&str, Result<&str, XtextError>)] = &[
            ("", Ok("")),
            ("abc", Ok("abc")),
            ("a+2Bb", Ok("a+b")),
            ("+3D", Ok("=")),
            ("+20x+7E", Ok(" x~")),
            ("rfc822;joe@example.org", Ok("rfc822;joe@example.org")),
            ("+C3+BC", Ok("ü")),
            ("+FF", Err(XtextError::NotUtf8)),
            ("a+2b", Err(XtextError::Invalid)), // lower-case hex
            ("a+2", Err(XtextError::Invalid)),
            ("+", Err(XtextError::Invalid)),
            ("a=b", Err(XtextError::Invalid)),
            ("a b", Err(XtextError::Invalid)),
            ("a\u{7f}", Err(XtextError::Invalid)),
            ("ü", Err(XtextError::Invalid)),
            ("+G0", Err(XtextError::Invalid)),
        ];
        for &(input, want) in cases {
            assert_eq!(decode_xtext(input), want.map(str::to_owned), "{input:?}");
            let valid = !matches!(want, Err(XtextError::Invalid));
            assert_eq!(is_valid_xtext(input), valid, "{input:?}");
        }
    }
}
