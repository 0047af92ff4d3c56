//! Decoding of SASL client responses for SMTP AUTH: PLAIN credentials and the
//! single base64 lines of AUTH LOGIN.
//!
//! This module decodes; it does not verify passwords or keep any state (the
//! session runs the AUTH exchange and asks the user store).
//!
//! # Security
//! Untrusted input carrying secrets. [`PlainCredentials`] has a hand-written
//! `Debug` that never prints the password, and [`SaslError`] never contains
//! any of the decoded bytes, so neither can leak a secret into a log.
//!
//! # Standards
//! RFC 4954 (SMTP AUTH: base64 responses, `*` cancels, `=` is an empty initial
//! response, 501 replies), RFC 4616 (PLAIN), RFC 4648 §4 (base64).

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use thiserror::Error;

use crate::reply::{EnhancedCode, Reply};

/// Why a SASL response could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SaslError {
    /// The client sent `*` (RFC 4954 §4).
    #[error("authentication cancelled by the client")]
    Cancelled,
    /// Not base64 (RFC 4648 §4).
    #[error("response is not valid base64")]
    InvalidBase64,
    /// Decoded, but not UTF-8 (RFC 4616 §2 requires UTF-8).
    #[error("response is not UTF-8")]
    NotUtf8,
    /// Not `[authzid] NUL authcid NUL passwd` with non-empty authcid and
    /// password (RFC 4616 §2).
    #[error("malformed PLAIN response")]
    MalformedPlain,
}

impl SaslError {
    /// RFC 4954 §4: a cancelled exchange and an undecodable response both get
    /// `501`.
    pub fn to_reply(&self) -> Reply {
        match self {
            SaslError::Cancelled => Reply::new(
                501,
                Some(EnhancedCode::new(5, 7, 0)),
                "Authentication cancelled",
            ),
            SaslError::InvalidBase64 | SaslError::NotUtf8 => Reply::new(
                501,
                Some(EnhancedCode::new(5, 5, 2)),
                "Cannot decode response",
            ),
            SaslError::MalformedPlain => Reply::new(
                501,
                Some(EnhancedCode::new(5, 5, 2)),
                "Malformed PLAIN response",
            ),
        }
    }
}

/// The decoded PLAIN message (RFC 4616 §2). `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The identity to act as; `None` when empty (act as `authcid`).
    pub authzid: Option<String>,
    /// The identity whose password is checked.
    pub authcid: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Standard alphabet; padding accepted but not required (some clients drop
/// it); non-canonical trailing bits are rejected.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_bytes(b64: &str) -> Result<Vec<u8>, SaslError> {
    let b64 = b64.trim_end_matches([' ', '\t']);
    match b64 {
        // RFC 4954 §4: "*" cancels the exchange.
        "*" => Err(SaslError::Cancelled),
        // RFC 4954 §4: "=" is an initial response of length zero.
        "=" => Ok(Vec::new()),
        _ => BASE64.decode(b64).map_err(|_| SaslError::InvalidBase64),
    }
}

/// Decodes a PLAIN response (`AUTH PLAIN <b64>` or the line after `334 `):
/// `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
pub fn decode_plain(b64: &str) -> Result<PlainCredentials, SaslError> {
    let bytes = decode_bytes(b64)?;
    let text = String::from_utf8(bytes).map_err(|_| SaslError::NotUtf8)?;
    let mut parts = text.split('\0');
    let (Some(act_as), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedPlain);
    };
    // RFC 4616 §2: authcid and passwd are 1*SAFE.
    if user.is_empty() || password.is_empty() {
        return Err(SaslError::MalformedPlain);
    }
    Ok(PlainCredentials {
        authzid: (!act_as.is_empty()).then(|| act_as.to_owned()),
        authcid: user.to_owned(),
        password: password.to_owned(),
    })
}

/// Decodes one base64 line of an AUTH exchange (e.g. the user name or the
/// password of AUTH LOGIN). `*` is [`SaslError::Cancelled`] (RFC 4954 §4); `=`
/// and the empty line decode to the empty string.
pub fn decode_base64_line(b64: &str) -> Result<String, SaslError> {
    let bytes = decode_bytes(b64)?;
    String::from_utf8(bytes).map_err(|_| SaslError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn plain_table() {
        let ok = |z: Option<&str>, c: &str, p: &str| {
            Ok(PlainCredentials {
                authzid: z.map(str::to_owned),
                authcid: c.to_owned(),
                password: p.to_owned(),
            })
        };
        let cases: Vec<(String, Result<PlainCredentials, SaslError>)> = vec![
            (
                b64(b"\0tim\0tanstaaftanstaaf"),
                ok(None, "tim", "tanstaaftanstaaf"),
            ),
            (
                b64(b"Ursel\0Kurt\0xipj3plmq"),
                ok(Some("Ursel"), "Kurt", "xipj3plmq"),
            ),
            (
                b64("\0jürgen\0pässwörd".as_bytes()),
                ok(None, "jürgen", "pässwörd"),
            ),
            // Without padding.
            (
                b64(b"\0a\0bc").trim_end_matches('=').to_owned(),
                ok(None, "a", "bc"),
            ),
            (b64(b"\0tim\0"), Err(SaslError::MalformedPlain)),
            (b64(b"\0\0pw"), Err(SaslError::MalformedPlain)),
            (b64(b"tim\0pw"), Err(SaslError::MalformedPlain)),
            (b64(b"a\0b\0c\0d"), Err(SaslError::MalformedPlain)),
            (b64(b"\0a\0\xff"), Err(SaslError::NotUtf8)),
            ("=".to_owned(), Err(SaslError::MalformedPlain)),
            ("*".to_owned(), Err(SaslError::Cancelled)),
            ("not base64!".to_owned(), Err(SaslError::InvalidBase64)),
            ("AGEAYg=x".to_owned(), Err(SaslError::InvalidBase64)),
        ];
        for (input, want) in cases {
            assert_eq!(decode_plain(&input), want, "{input:?}");
        }
    }

    #[test]
    fn base64_line_table() {
        let cases: Vec<(&str, Result<&str, SaslError>)> = vec![
            ("dXNlcm5hbWU=", Ok("username")),
            ("dXNlcm5hbWU", Ok("username")),
            ("", Ok("")),
            ("=", Ok("")),
            ("*", Err(SaslError::Cancelled)),
            ("*x", Err(SaslError::InvalidBase64)),
            ("/w==", Err(SaslError::NotUtf8)),
            ("dXNl cm5h", Err(SaslError::InvalidBase64)),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode_base64_line(input),
                want.map(str::to_owned),
                "{input:?}"
            );
        }
    }

    #[test]
    fn debug_does_not_print_the_password() {
        let creds = decode_plain(&b64(b"\0tim\0secret-pw")).expect("valid PLAIN");
        let debug = format!("{creds:?}");
        assert!(!debug.contains("secret-pw"), "{debug}");
        assert!(debug.contains("tim"));
    }

    #[test]
    fn replies() {
        for (err, code, enhanced) in [
            (SaslError::Cancelled, 501, EnhancedCode::new(5, 7, 0)),
            (SaslError::InvalidBase64, 501, EnhancedCode::new(5, 5, 2)),
            (SaslError::NotUtf8, 501, EnhancedCode::new(5, 5, 2)),
            (SaslError::MalformedPlain, 501, EnhancedCode::new(5, 5, 2)),
        ] {
            let r = err.to_reply();
            assert_eq!((r.code, r.enhanced), (code, Some(enhanced)), "{err:?}");
        }
    }
}
