//! ARC sealing (RFC 8617): the three header fields an intermediary adds to a
//! message it forwards after checking (and perhaps changing) it —
//! `ARC-Authentication-Results` (our verdicts), `ARC-Message-Signature` (a
//! DKIM-style signature of the message as forwarded) and `ARC-Seal` (a
//! signature over every ARC set so far) — for instance `i = previous + 1`.
//!
//! Written here rather than through `mail-auth`'s sealer, which can only seal
//! with an `AuthenticationResults` built from its own verification outputs
//! (our DMARC is our own, ADR 0012): the signatures use `mail-auth`'s RSA
//! keys (`DkimKey`), the canonicalizations are RFC 6376 relaxed (header,
//! and body through [`crate::canon::relaxed_body`], with the workaround for
//! `mail-auth`'s whitespace-line bug).
//!
//! # Security
//! `a=rsa-sha256` only (RFC 8617 §4.1.3 allows no other algorithm today);
//! an Ed25519 key is refused. A chain that already failed (`cv=fail` in the
//! last seal) is not sealed again (§5.1.2: the chain is dead); at most 50
//! instances (§4.2.1). Header values we sign are the message's own, read
//! from its header section only.
//!
//! # Standards
//! RFC 8617 §4.1 (the three fields), §5.1 (sealing), §4.1.3 (the seal's
//! input order); RFC 6376 §3.4.2 (relaxed header canonicalization), §3.4.4
//! (relaxed body), §3.7 (signature computation).

use base64::Engine as _;
pub use mail_auth::common::crypto::DkimKey;
use mail_auth::common::crypto::SigningKey as _;

use crate::canon::{relaxed_body, split_message};

/// The most ARC instances a chain may have (RFC 8617 §4.2.1).
pub const MAX_INSTANCES: u32 = 50;

/// Header fields the message signature covers when present (RFC 8617
/// §4.1.2: never ARC-Seal; the author and content fields, and the
/// signatures of earlier hops).
const SIGNED: &[&str] = &[
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
];

/// Why a message was not sealed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArcSealError {
    /// The key is not RSA.
    #[error(
        "ARC seals are rsa-sha256 only (RFC 8617 §4.1.3): give an RSA [[dkim]] key for the sealing domain"
    )]
    NotRsa,
    /// The chain already failed.
    #[error("the message's ARC chain already failed (cv=fail): not sealed again (RFC 8617 §5.1.2)")]
    ChainFailed,
    /// Too many instances.
    #[error("the message already has {0} ARC sets; at most 50 (RFC 8617 §4.2.1)")]
    TooMany(u32),
    /// The message has no From field to sign.
    #[error("the message has no From: field")]
    NoFrom,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// What the verifier said about the chain the message arrived with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainValidation {
    /// No ARC sets.
    None,
    /// Every set validated.
    Pass,
    /// The chain is broken.
    Fail,
}

impl ChainValidation {
    fn as_str(self) -> &'static str {
        match self {
            ChainValidation::None => "none",
            ChainValidation::Pass => "pass",
            ChainValidation::Fail => "fail",
        }
    }
}

/// Who seals.
pub struct Sealer<'a> {
    /// The signing domain (`d=`).
    pub domain: &'a str,
    /// The selector (`s=`).
    pub selector: &'a str,
    /// The RSA key.
    pub key: &'a DkimKey,
}

/// One header field: its name as written, its raw value (after the colon).
struct Field<'m> {
    name: &'m str,
    value: &'m str,
}

fn fields(head: &str) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut start: Option<usize> = None;
    let mut offsets = Vec::new();
    let bytes = head.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let line_start = i;
        let end = head[i..].find("\r\n").map_or(bytes.len(), |p| i + p + 2);
        if !matches!(bytes.get(line_start), Some(b' ' | b'\t')) {
            if let Some(s) = start {
                offsets.push((s, line_start));
            }
            start = Some(line_start);
        }
        i = end;
    }
    if let Some(s) = start {
        offsets.push((s, bytes.len()));
    }
    for (s, e) in offsets {
        let raw = head[s..e].trim_end_matches("\r\n");
        if let Some((name, value)) = raw.split_once(':')
            && !name.is_empty()
            && !name.contains([' ', '\t'])
        {
            out.push(Field { name, value });
        }
    }
    out
}

/// RFC 6376 §3.4.2 relaxed: lower-case name, unfolded value with runs of
/// WSP as one space, no WSP at either end; `name:value` (no CRLF here).
fn relaxed(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let mut v = String::with_capacity(unfolded.len());
    let mut space = false;
    for c in unfolded.chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space && !v.is_empty() {
                v.push(' ');
            }
            space = false;
            v.push(c);
        }
    }
    format!("{}:{v}", name.trim().to_ascii_lowercase())
}

/// The value of tag `t` in a tag list (`i=2; a=…`).
fn tag<'v>(value: &'v str, t: &str) -> Option<&'v str> {
    value.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == t).then(|| v.trim())
    })
}

/// Seals `message` (the whole message as it will be forwarded, CRLF line
/// ends, our own added header fields included) for instance `i = n + 1`,
/// where the message carries `n` ARC sets whose validation was `chain`.
/// `ar` is our Authentication-Results value (`authserv-id; spf=…`).
/// Returns the three fields, each ending in CRLF, to put at the top.
pub fn seal(
    message: &[u8],
    ar: &str,
    chain: ChainValidation,
    sealer: &Sealer<'_>,
    now: u64,
) -> Result<String, ArcSealError> {
    if !matches!(sealer.key, DkimKey::Rsa(_)) {
        return Err(ArcSealError::NotRsa);
    }
    let (head, body) = split_message(message);
    let head = String::from_utf8_lossy(head);
    let all = fields(&head);
    // Earlier sets, by instance.
    let mut sets: Vec<(u32, &Field<'_>)> = Vec::new();
    let mut last_seal: Option<(u32, &str)> = None;
    for f in &all {
        let lower = f.name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "arc-seal" | "arc-message-signature" | "arc-authentication-results"
        ) {
            let i: u32 = tag(f.value, "i").and_then(|v| v.parse().ok()).unwrap_or(0);
            sets.push((i, f));
            if lower == "arc-seal" && last_seal.is_none_or(|(n, _)| i > n) {
                last_seal = Some((i, f.value));
            }
        }
    }
    let n = sets.iter().map(|(i, _)| *i).max().unwrap_or(0);
    if n >= MAX_INSTANCES {
        return Err(ArcSealError::TooMany(n));
    }
    if let Some((_, v)) = last_seal
        && tag(v, "cv") == Some("fail")
    {
        return Err(ArcSealError::ChainFailed);
    }
    let i = n + 1;
    let cv = if n == 0 { ChainValidation::None } else { chain };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let sign = |data: &[u8]| -> Result<String, ArcSealError> {
        sealer
            .key
            .sign(data)
            .map(|s| b64(&s))
            .map_err(|e| ArcSealError::Sign(e.to_string()))
    };

    // ARC-Authentication-Results.
    let aar_value = format!(" i={i}; {}", ar.trim());

    // ARC-Message-Signature: a DKIM signature with i= (RFC 8617 §4.1.2).
    if !all.iter().any(|f| f.name.eq_ignore_ascii_case("from")) {
        return Err(ArcSealError::NoFrom);
    }
    let mut signed_names = Vec::new();
    let mut hashed = String::new();
    for name in SIGNED {
        // Every instance, bottom-up (RFC 6376 §5.4.2).
        for f in all
            .iter()
            .rev()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
        {
            hashed.push_str(&relaxed(f.name, f.value));
            hashed.push_str("\r\n");
            signed_names.push(*name);
        }
    }
    let bh = {
        use aws_lc_rs::digest;
        b64(digest::digest(&digest::SHA256, &relaxed_body(body)).as_ref())
    };
    let msig_unsigned = format!(
        " i={i}; a=rsa-sha256; c=relaxed/relaxed; d={}; s={}; t={now};\r\n\th={};\r\n\tbh={bh}; b=",
        sealer.domain,
        sealer.selector,
        signed_names.join(":")
    );
    hashed.push_str(&relaxed("ARC-Message-Signature", &msig_unsigned));
    let msig_b = sign(hashed.as_bytes())?;
    let msig_value = format!("{msig_unsigned}{}", fold(&msig_b));

    // ARC-Seal over every set in instance order, ours last, its b= empty
    // (RFC 8617 §5.1.1): AAR, AMS, AS per instance.
    let mut seal_input = String::new();
    for k in 1..i {
        for name in [
            "arc-authentication-results",
            "arc-message-signature",
            "arc-seal",
        ] {
            if let Some((_, f)) = sets
                .iter()
                .find(|(n, f)| *n == k && f.name.eq_ignore_ascii_case(name))
            {
                seal_input.push_str(&relaxed(f.name, f.value));
                seal_input.push_str("\r\n");
            }
        }
    }
    seal_input.push_str(&relaxed("ARC-Authentication-Results", &aar_value));
    seal_input.push_str("\r\n");
    seal_input.push_str(&relaxed("ARC-Message-Signature", &msig_value));
    seal_input.push_str("\r\n");
    let seal_unsigned = format!(
        " i={i}; a=rsa-sha256; cv={}; d={}; s={}; t={now}; b=",
        cv.as_str(),
        sealer.domain,
        sealer.selector
    );
    seal_input.push_str(&relaxed("ARC-Seal", &seal_unsigned));
    let seal_b = sign(seal_input.as_bytes())?;
    Ok(format!(
        "ARC-Seal:{seal_unsigned}{}\r\nARC-Message-Signature:{msig_value}\r\nARC-Authentication-Results:{aar_value}\r\n",
        fold(&seal_b),
        aar_value = fold_ar(&aar_value)
    ))
}

/// A base64 signature folded every 72 characters (relaxed canonicalization
/// ignores the folds).
fn fold(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 72 * 3);
    for (n, chunk) in b64.as_bytes().chunks(72).enumerate() {
        if n > 0 {
            out.push_str("\r\n\t");
        }
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

/// The AAR value as it is written (already canonical enough: our A-R value
/// keeps its own folds).
fn fold_ar(v: &str) -> String {
    v.to_owned()
}
