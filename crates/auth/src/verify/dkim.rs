//! DKIM verification of every signature (RFC 6376 §6) with `mail-auth`,
//! plus the verify-side workaround for its relaxed-body bug, and the
//! mapping of its outputs to [`DkimVerdict`]s.
//!
//! `mail-auth` 0.13.3 hashes relaxed bodies without treating
//! whitespace-only trailing lines as empty (upstream #62; see
//! [`crate::canon`]), so a correct `c=*/relaxed` signature over a body
//! ending in `" \r\n\t\r\n"` fails there. `AuthenticatedMessage` computes
//! one body hash per (canonicalization, hash, length) at parse time; when
//! the body has such lines, [`fix_relaxed_body_hashes`] recomputes the
//! relaxed entries over [`crate::canon::relaxed_body`] (a fixed point of the
//! library's own relaxed pass). Simple-body entries keep the original body.
//! The same entries serve ARC-Message-Signatures, so ARC gets the fix too.
//! No second parse, and no extra work for bodies without such lines.
//!
//! # Security
//! At most [`MAX_SIGNATURES`] signatures are verified per message (each
//! costs a DNS lookup, so a message with thousands would be a lookup
//! amplifier; RFC 6376 §6.1 lets verifiers limit them); the others get
//! `policy` with the reason. Signatures with `l=` are refused at parse time (strict parsing: `l=`
//! lets anyone append content, RFC 6376 §8.2) and reported `permerror`.
//! `rsa-sha1` never passes (RFC 8301 §3.1). A signature that cannot be
//! parsed is `permerror`, never a panic.
//!
//! # Standards
//! RFC 6376 §3.4.4 (relaxed body), §6.1 (verifier actions), RFC 8301,
//! RFC 8463, RFC 6008 (`header.b`), RFC 8601 §2.7.1 (result words).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::{Algorithm, HashAlgorithm};
use mail_auth::dkim::{Canonicalization, DkimError};
use mail_auth::{AuthenticatedMessage, DkimOutput, DnsError, Error};

use super::results::{DkimResult, DkimVerdict};
use crate::canon;

/// Signatures verified per message; the rest are reported `policy`.
pub const MAX_SIGNATURES: usize = 10;

/// Removes the signatures past [`MAX_SIGNATURES`] from the parsed message
/// and returns their (`policy`) verdicts.
pub fn over_limit(message: &mut AuthenticatedMessage<'_>) -> Vec<DkimVerdict> {
    if message.dkim_headers.len() <= MAX_SIGNATURES {
        return Vec::new();
    }
    message
        .dkim_headers
        .split_off(MAX_SIGNATURES)
        .iter()
        .map(|h| DkimVerdict {
            result: DkimResult::Policy,
            domain: h.header.d.to_ascii_lowercase(),
            selector: h.header.s.clone(),
            algorithm: algorithm_name(h.header.a).to_owned(),
            header_b: STANDARD.encode(&h.header.b).chars().take(8).collect(),
            reason: format!("not verified: more than {MAX_SIGNATURES} signatures"),
        })
        .collect()
}

/// Whether the body ends in lines that are whitespace-only but not empty:
/// the only case where `mail-auth`'s relaxed body hash is wrong.
pub fn has_whitespace_only_trailing_lines(body: &[u8]) -> bool {
    // Look at everything after the last byte that is not SP/HTAB/CR/LF.
    let tail_start = body
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |p| p + 1);
    let tail = &body[tail_start..];
    // Whitespace on the last content line itself is handled correctly by
    // the library; only whitespace after a line end matters.
    match tail.iter().position(|&b| b == b'\n') {
        Some(first_eol) => tail[first_eol..].iter().any(|&b| b == b' ' || b == b'\t'),
        None => false,
    }
}

/// Recomputes the relaxed-body hashes of a parsed message over the
/// correctly canonicalized body, when the body needs it. Returns whether
/// anything was recomputed.
pub fn fix_relaxed_body_hashes(message: &mut AuthenticatedMessage<'_>) -> bool {
    let body = message.raw_body();
    if !has_whitespace_only_trailing_lines(body)
        || !message
            .body_hashes
            .iter()
            .any(|(c, _, _, _)| *c == Canonicalization::Relaxed)
    {
        return false;
    }
    let canonical = canon::relaxed_body(body);
    for (c, hash, l, bh) in &mut message.body_hashes {
        if *c == Canonicalization::Relaxed {
            // `l=` signatures are refused at parse time; keep `l` anyway.
            *bh = hash_body(*hash, &canonical, *l);
        }
    }
    true
}

fn hash_body(hash: HashAlgorithm, canonical: &[u8], l: u64) -> Vec<u8> {
    hash.hash(Canonicalization::Relaxed.canonical_body(canonical, l))
        .as_ref()
        .to_vec()
}

/// The `a=` text.
pub fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RsaSha1 => "rsa-sha1",
        Algorithm::RsaSha256 => "rsa-sha256",
        Algorithm::Ed25519Sha256 => "ed25519-sha256",
    }
}

/// A short reason for a library error.
pub fn reason_of(err: &Error) -> String {
    match err {
        Error::Dkim(DkimError::FailedBodyHashMatch) => "body hash did not verify".into(),
        Error::Dkim(DkimError::SignatureExpired) => "signature expired (x=)".into(),
        Error::Dkim(DkimError::RevokedPublicKey) => "key revoked (empty p=)".into(),
        Error::Dkim(DkimError::FailedAuidMatch) => "i= not in d= (key has t=s)".into(),
        Error::Dkim(DkimError::SignatureLength) => "l= body length tag not accepted".into(),
        Error::Dkim(e) => e.to_string(),
        Error::Crypto(_) => "signature did not verify".into(),
        Error::Dns(DnsError::RecordNotFound(_)) => "no key record".into(),
        Error::Dns(DnsError::InvalidRecordType) => "key record is not a DKIM key".into(),
        Error::Dns(DnsError::Resolver(e)) => format!("key lookup failed: {e}"),
        Error::ParseError => "malformed".into(),
        other => other.to_string(),
    }
}

/// Maps `mail-auth`'s outputs (and the message's unparsable signatures)
/// to verdicts.
pub fn verdicts(
    message: &AuthenticatedMessage<'_>,
    outputs: &[DkimOutput<'_>],
) -> Vec<DkimVerdict> {
    let mut out = Vec::with_capacity(outputs.len());
    for output in outputs {
        // Outputs without a signature are the parse errors, handled below
        // from the headers (to name d= and s= where they can be read).
        let Some(sig) = output.signature() else {
            continue;
        };
        let (result, reason) = match output.result() {
            mail_auth::DkimResult::Pass => (DkimResult::Pass, String::new()),
            mail_auth::DkimResult::Neutral(e) => {
                let result = if matches!(e, Error::Dkim(DkimError::FailedBodyHashMatch)) {
                    // A body hash mismatch is a failure (RFC 6376 §6.1.3).
                    DkimResult::Fail
                } else {
                    DkimResult::Neutral
                };
                (result, reason_of(e))
            }
            mail_auth::DkimResult::Fail(e) => (DkimResult::Fail, reason_of(e)),
            mail_auth::DkimResult::PermError(e) => (DkimResult::PermError, reason_of(e)),
            mail_auth::DkimResult::TempError(e) => (DkimResult::TempError, reason_of(e)),
            mail_auth::DkimResult::None => (DkimResult::None, String::new()),
        };
        let (result, reason) = if sig.a == Algorithm::RsaSha1 {
            (
                DkimResult::PermError,
                "rsa-sha1 is not accepted (RFC 8301)".to_owned(),
            )
        } else {
            (result, reason)
        };
        out.push(DkimVerdict {
            result,
            domain: sig.d.to_ascii_lowercase(),
            selector: sig.s.clone(),
            algorithm: algorithm_name(sig.a).to_owned(),
            header_b: STANDARD.encode(&sig.b),
            reason,
        });
    }
    for header in &message.errors {
        if !header.name.eq_ignore_ascii_case(b"DKIM-Signature") {
            continue;
        }
        let value = String::from_utf8_lossy(header.value);
        out.push(DkimVerdict {
            result: DkimResult::PermError,
            domain: tag(&value, "d").to_ascii_lowercase(),
            selector: tag(&value, "s"),
            algorithm: tag(&value, "a"),
            header_b: tag(&value, "b"),
            reason: format!("signature not usable: {}", reason_of(&header.header)),
        });
    }
    shorten_header_b(&mut out);
    out
}

/// A tag's value from a tag-list (RFC 6376 §3.2), whitespace removed;
/// empty when absent. Only for naming a broken signature.
fn tag(value: &str, name: &str) -> String {
    value
        .split(';')
        .filter_map(|part| part.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default()
}

/// Cuts each `header_b` to 8 characters, or more where two signatures
/// would share the prefix (RFC 6008 §4).
fn shorten_header_b(verdicts: &mut [DkimVerdict]) {
    let full: Vec<String> = verdicts.iter().map(|v| v.header_b.clone()).collect();
    for (i, v) in verdicts.iter_mut().enumerate() {
        let mut len = 8.min(full[i].len());
        while len < full[i].len()
            && full
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other != &full[i] && other.starts_with(&full[i][..len]))
        {
            len += 1;
        }
        full[i][..len].clone_into(&mut v.header_b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_only_trailing_lines_are_detected() {
        assert!(has_whitespace_only_trailing_lines(b"hello\r\n \r\n\t\r\n"));
        assert!(has_whitespace_only_trailing_lines(b"hello\r\n\r\n \r\n"));
        assert!(has_whitespace_only_trailing_lines(b"hello\r\n \t"));
        assert!(!has_whitespace_only_trailing_lines(b"hello\r\n"));
        assert!(!has_whitespace_only_trailing_lines(b"hello \t\r\n\r\n\r\n"));
        assert!(!has_whitespace_only_trailing_lines(b"a \r\n b\r\n"));
        assert!(!has_whitespace_only_trailing_lines(b""));
    }

    #[test]
    fn tags_of_a_broken_signature() {
        let v = "v=1; a=rsa-sha256; d=Example.COM; s=sel;\r\n\tb=abc def; bh=";
        assert_eq!(tag(v, "d"), "Example.COM");
        assert_eq!(tag(v, "s"), "sel");
        assert_eq!(tag(v, "b"), "abcdef");
        assert_eq!(tag(v, "x"), "");
    }

    #[test]
    fn header_b_is_at_least_8_and_unique() {
        let mk = |b: &str| DkimVerdict {
            result: DkimResult::Pass,
            domain: String::new(),
            selector: String::new(),
            algorithm: String::new(),
            header_b: b.into(),
            reason: String::new(),
        };
        let mut v = vec![
            mk("AAAAAAAAxyz1"),
            mk("AAAAAAAAxyz2"),
            mk("BBBBBBBBBBBB"),
            mk("C"),
        ];
        shorten_header_b(&mut v);
        let b: Vec<&str> = v.iter().map(|v| v.header_b.as_str()).collect();
        assert_eq!(b, ["AAAAAAAAxyz1", "AAAAAAAAxyz2", "BBBBBBBB", "C"]);
    }
}
