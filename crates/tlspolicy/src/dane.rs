//! DANE for SMTP (RFC 7672): do the TLSA records of an MX host match the
//! certificate chain it presented?
//!
//! - DANE-EE (usage 3) matches the leaf only; names and validity dates are
//!   ignored (RFC 7672 §3.1.1): the TLSA record *is* the authentication.
//! - DANE-TA (usage 2) matches any certificate of the presented chain that
//!   the leaf chains up to (signatures and dates checked with webpki, with
//!   the matched certificate as the only trust anchor); the leaf must still
//!   cover the MX host name (RFC 7672 §3.1.2, §3.2.2), which the caller
//!   checks: [`DaneResult::Matched::name_check_required`] says so.
//! - PKIX-TA / PKIX-EE (usages 0 and 1) are unusable for SMTP (RFC 7672
//!   §3.1.3), as are unknown selectors and matching types and data of the
//!   wrong length (RFC 7671 §4).
//!
//! Only records from a DNSSEC-authenticated lookup count (RFC 7672 §2.2):
//! [`authenticated_records`] gives them, or nothing.
//!
//! What the outcomes mean for delivery (RFC 7672 §2.2): `Matched` →
//! authenticated TLS; `NoMatch` → the connection must not be used (defer);
//! `Unusable` → TLS is still mandatory, but unauthenticated.
//!
//! # Security
//! The TLSA data and the chain are untrusted. Certificates are parsed with
//! x509-parser and webpki; nothing here panics on malformed input. Digests
//! are computed with aws-lc-rs.
//!
//! # Standards
//! RFC 6698 §2.1 (TLSA fields), RFC 7671 §5 (usages), RFC 7672 §2.2, §3.1
//! (usages for SMTP), §3.2.2 (reference identifiers).

use std::fmt::Write as _;

use aws_lc_rs::digest;
use postern_dns::{Tlsa, TlsaLookup};
use rustls::RootCertStore;
use rustls::server::ParsedCertificate;
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// Certificate usage PKIX-TA (RFC 6698 §2.1.1): unusable for SMTP.
pub const USAGE_PKIX_TA: u8 = 0;
/// Certificate usage PKIX-EE: unusable for SMTP.
pub const USAGE_PKIX_EE: u8 = 1;
/// Certificate usage DANE-TA: a trust anchor in the presented chain.
pub const USAGE_DANE_TA: u8 = 2;
/// Certificate usage DANE-EE: the server's own certificate or key.
pub const USAGE_DANE_EE: u8 = 3;
/// Selector: the whole certificate (DER).
pub const SELECTOR_CERT: u8 = 0;
/// Selector: the SubjectPublicKeyInfo (DER).
pub const SELECTOR_SPKI: u8 = 1;
/// Matching type: the selected bytes themselves.
pub const MATCHING_FULL: u8 = 0;
/// Matching type: SHA-256 of the selected bytes.
pub const MATCHING_SHA256: u8 = 1;
/// Matching type: SHA-512 of the selected bytes.
pub const MATCHING_SHA512: u8 = 2;

/// The result of matching TLSA records against a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DaneResult {
    /// A usable record matched.
    Matched {
        /// The matching record's usage (2 or 3).
        usage: u8,
        /// Its selector.
        selector: u8,
        /// Its matching type.
        matching: u8,
        /// The index in the presented chain of the matched certificate
        /// (0 = leaf).
        index: usize,
        /// DANE-TA: the leaf must also cover the MX host name (RFC 7672
        /// §3.2.2); DANE-EE: names are not checked.
        name_check_required: bool,
    },
    /// Usable records exist and none matched: the connection must not be
    /// used (RFC 7672 §2.2).
    NoMatch {
        /// What was compared, per record.
        why: String,
    },
    /// No record is usable for SMTP: TLS is mandatory but unauthenticated
    /// (RFC 7672 §2.2).
    Unusable {
        /// Why each record is unusable.
        why: String,
    },
}

impl DaneResult {
    /// A usable record matched.
    pub fn is_match(&self) -> bool {
        matches!(self, DaneResult::Matched { .. })
    }

    /// One line for people: `DANE-EE(3) SPKI(1) SHA-256(1) matched the leaf
    /// certificate`, `no TLSA record matches: …`.
    pub fn describe(&self) -> String {
        match self {
            DaneResult::Matched {
                usage,
                selector,
                matching,
                index,
                name_check_required,
            } => {
                let which = if *index == 0 {
                    "the leaf certificate".to_owned()
                } else {
                    format!("certificate #{index} of the chain (trust anchor)")
                };
                let mut out = format!(
                    "TLSA {} {} {} matched {which}",
                    usage_name(*usage),
                    selector_name(*selector),
                    matching_name(*matching)
                );
                if *name_check_required {
                    out.push_str("; the leaf must also match the MX host name");
                }
                out
            }
            DaneResult::NoMatch { why } => format!("no TLSA record matches: {why}"),
            DaneResult::Unusable { why } => format!("no TLSA record is usable for SMTP: {why}"),
        }
    }
}

/// The records of `lookup` if it was DNSSEC-authenticated; `None` otherwise
/// (RFC 7672 §2.2: unauthenticated TLSA records are ignored).
pub fn authenticated_records(lookup: &TlsaLookup) -> Option<&[Tlsa]> {
    lookup.authenticated.then_some(lookup.records.as_slice())
}

/// Matches `records` against `chain` (leaf first) now. See the module docs.
pub fn match_tlsa(records: &[Tlsa], chain: &[CertificateDer<'_>]) -> DaneResult {
    match_tlsa_at(records, chain, UnixTime::now())
}

/// [`match_tlsa`] at `now` (used for DANE-TA chain validity).
pub fn match_tlsa_at(records: &[Tlsa], chain: &[CertificateDer<'_>], now: UnixTime) -> DaneResult {
    let mut unusable = Vec::new();
    let mut usable = Vec::new();
    for t in records {
        match unusable_reason(t) {
            Some(reason) => unusable.push(format!("{}: {reason}", short(t))),
            None => usable.push(t),
        }
    }
    if usable.is_empty() {
        return DaneResult::Unusable {
            why: if unusable.is_empty() {
                "no TLSA records".to_owned()
            } else {
                unusable.join("; ")
            },
        };
    }
    let Some(leaf) = chain.first() else {
        return DaneResult::NoMatch {
            why: "the server presented no certificate".to_owned(),
        };
    };
    let mut notes = Vec::new();
    // DANE-EE first: it needs nothing but the leaf (RFC 7672 §3.1.1).
    for t in usable.iter().filter(|t| t.usage == USAGE_DANE_EE) {
        match association(leaf, t.selector, t.matching) {
            Some(data) if data == t.data => {
                return DaneResult::Matched {
                    usage: t.usage,
                    selector: t.selector,
                    matching: t.matching,
                    index: 0,
                    name_check_required: false,
                };
            }
            Some(data) => notes.push(format!("{} ≠ leaf {}", short(t), hex_prefix(&data, 16))),
            None => notes.push(format!(
                "{}: the leaf certificate cannot be parsed",
                short(t)
            )),
        }
    }
    for t in usable.iter().filter(|t| t.usage == USAGE_DANE_TA) {
        let mut matched_any = false;
        for (index, cert) in chain.iter().enumerate() {
            if association(cert, t.selector, t.matching).as_deref() != Some(t.data.as_slice()) {
                continue;
            }
            matched_any = true;
            match chains_to(chain, index, now) {
                Ok(()) => {
                    return DaneResult::Matched {
                        usage: t.usage,
                        selector: t.selector,
                        matching: t.matching,
                        index,
                        name_check_required: true,
                    };
                }
                Err(e) => notes.push(format!(
                    "{} matches certificate #{index}, but the leaf does not chain to it: {e}",
                    short(t)
                )),
            }
        }
        if !matched_any {
            notes.push(format!(
                "{} matches no certificate of the {} presented",
                short(t),
                chain.len()
            ));
        }
    }
    if !unusable.is_empty() {
        notes.push(format!("also unusable: {}", unusable.join("; ")));
    }
    DaneResult::NoMatch {
        why: notes.join("; "),
    }
}

/// Why a record cannot be used for SMTP, or `None` when it can.
pub fn unusable_reason(t: &Tlsa) -> Option<String> {
    match t.usage {
        USAGE_PKIX_TA | USAGE_PKIX_EE => {
            return Some(format!(
                "usage {} ({}) is not used for SMTP (RFC 7672 §3.1.3)",
                t.usage,
                usage_name(t.usage)
            ));
        }
        USAGE_DANE_TA | USAGE_DANE_EE => {}
        other => return Some(format!("unknown usage {other}")),
    }
    if t.selector > SELECTOR_SPKI {
        return Some(format!("unknown selector {}", t.selector));
    }
    let expected = match t.matching {
        MATCHING_FULL => None,
        MATCHING_SHA256 => Some(32),
        MATCHING_SHA512 => Some(64),
        other => return Some(format!("unknown matching type {other}")),
    };
    match expected {
        Some(n) if t.data.len() != n => Some(format!(
            "{} data must be {n} octets, found {}",
            matching_name(t.matching),
            t.data.len()
        )),
        None if t.data.is_empty() => Some("empty association data".to_owned()),
        _ => None,
    }
}

/// The association data of `cert` for `selector` and `matching` (what a
/// TLSA record for it holds); `None` for unknown values or an unparseable
/// certificate.
pub fn association(cert: &CertificateDer<'_>, selector: u8, matching: u8) -> Option<Vec<u8>> {
    let selected: Vec<u8> = match selector {
        SELECTOR_CERT => cert.as_ref().to_vec(),
        SELECTOR_SPKI => {
            let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
            parsed.tbs_certificate.subject_pki.raw.to_vec()
        }
        _ => return None,
    };
    match matching {
        MATCHING_FULL => Some(selected),
        MATCHING_SHA256 => Some(digest::digest(&digest::SHA256, &selected).as_ref().to_vec()),
        MATCHING_SHA512 => Some(digest::digest(&digest::SHA512, &selected).as_ref().to_vec()),
        _ => None,
    }
}

/// The DANE-EE SPKI SHA-256 record (`3 1 1`) for `leaf`: what an operator
/// would publish for it (RFC 7671 §5.1 recommends this form).
pub fn suggested_record(leaf: &CertificateDer<'_>) -> Option<Tlsa> {
    Some(Tlsa {
        usage: USAGE_DANE_EE,
        selector: SELECTOR_SPKI,
        matching: MATCHING_SHA256,
        data: association(leaf, SELECTOR_SPKI, MATCHING_SHA256)?,
    })
}

/// Presentation format: `3 1 1 ab12…` with the whole data in hex.
pub fn presentation(t: &Tlsa) -> String {
    format!("{} {} {} {}", t.usage, t.selector, t.matching, hex(&t.data))
}

/// `3 1 1 ab12cd34…` (the data cut to 16 hex digits), for lists.
fn short(t: &Tlsa) -> String {
    format!(
        "{} {} {} {}",
        t.usage,
        t.selector,
        t.matching,
        hex_prefix(&t.data, 16)
    )
}

/// The usage's name: `DANE-EE(3)`.
pub fn usage_name(usage: u8) -> String {
    let name = match usage {
        USAGE_PKIX_TA => "PKIX-TA",
        USAGE_PKIX_EE => "PKIX-EE",
        USAGE_DANE_TA => "DANE-TA",
        USAGE_DANE_EE => "DANE-EE",
        _ => "unknown",
    };
    format!("{name}({usage})")
}

fn selector_name(selector: u8) -> String {
    let name = match selector {
        SELECTOR_CERT => "Cert",
        SELECTOR_SPKI => "SPKI",
        _ => "unknown",
    };
    format!("{name}({selector})")
}

fn matching_name(matching: u8) -> String {
    let name = match matching {
        MATCHING_FULL => "Full",
        MATCHING_SHA256 => "SHA-256",
        MATCHING_SHA512 => "SHA-512",
        _ => "unknown",
    };
    format!("{name}({matching})")
}

/// Lower-case hex.
pub fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn hex_prefix(data: &[u8], digits: usize) -> String {
    let full = hex(data);
    if full.len() > digits {
        format!("{}…", &full[..digits])
    } else {
        full
    }
}

/// Does the leaf chain up to `chain[anchor]`, through `chain[1..anchor]`,
/// with valid signatures and dates? The anchor itself is trusted as is
/// (RFC 7671 §5.2: its own dates and issuer do not matter). A leaf matched
/// as its own anchor passes: there is nothing to chain.
fn chains_to(chain: &[CertificateDer<'_>], anchor: usize, now: UnixTime) -> Result<(), String> {
    if anchor == 0 {
        return Ok(());
    }
    let (Some(leaf), Some(ta)) = (chain.first(), chain.get(anchor)) else {
        return Err("certificate index out of range".to_owned());
    };
    let mut roots = RootCertStore::empty();
    roots
        .add(ta.clone().into_owned())
        .map_err(|e| format!("the trust anchor cannot be used: {e}"))?;
    let parsed = ParsedCertificate::try_from(leaf).map_err(|e| e.to_string())?;
    let algorithms =
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &chain[1..anchor],
        now,
        algorithms.all,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cert() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec!["mx.example.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        c.der().clone()
    }

    fn tlsa(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    #[test]
    fn association_forms() {
        let c = cert();
        let full = association(&c, 0, 0).unwrap();
        assert_eq!(full, c.as_ref());
        let spki = association(&c, 1, 0).unwrap();
        assert!(spki.len() < full.len());
        assert_eq!(association(&c, 0, 1).unwrap().len(), 32);
        assert_eq!(association(&c, 1, 2).unwrap().len(), 64);
        assert_eq!(association(&c, 2, 1), None);
        assert_eq!(association(&c, 1, 3), None);
        assert_eq!(association(&CertificateDer::from(vec![1, 2]), 1, 1), None);
    }

    #[test]
    fn unusable_table() {
        let ok32 = vec![0u8; 32];
        let cases = [
            (tlsa(0, 1, 1, ok32.clone()), true),
            (tlsa(1, 1, 1, ok32.clone()), true),
            (tlsa(4, 1, 1, ok32.clone()), true),
            (tlsa(3, 2, 1, ok32.clone()), true),
            (tlsa(3, 1, 3, ok32.clone()), true),
            (tlsa(3, 1, 1, vec![0u8; 31]), true),
            (tlsa(3, 1, 2, ok32.clone()), true),
            (tlsa(3, 0, 0, Vec::new()), true),
            (tlsa(3, 1, 1, ok32.clone()), false),
            (tlsa(2, 0, 2, vec![0u8; 64]), false),
            (tlsa(3, 0, 0, vec![1]), false),
        ];
        for (t, bad) in cases {
            assert_eq!(unusable_reason(&t).is_some(), bad, "{t:?}");
        }
    }

    #[test]
    fn only_pkix_usages_is_unusable() {
        let c = cert();
        let data = association(&c, 1, 1).unwrap();
        let r = match_tlsa(&[tlsa(1, 1, 1, data)], &[c]);
        let DaneResult::Unusable { why } = &r else {
            panic!("{r:?}")
        };
        assert!(why.contains("PKIX-EE(1)"), "{why}");
        assert!(!r.is_match());
    }

    #[test]
    fn presentation_and_suggestion() {
        let c = cert();
        let s = suggested_record(&c).unwrap();
        assert_eq!((s.usage, s.selector, s.matching), (3, 1, 1));
        let p = presentation(&s);
        assert!(p.starts_with("3 1 1 "));
        assert_eq!(p.len(), 6 + 64);
        assert!(match_tlsa(&[s], &[c]).is_match());
    }

    #[test]
    fn empty_chain_is_no_match() {
        let r = match_tlsa(&[tlsa(3, 1, 1, vec![0; 32])], &[]);
        assert!(matches!(r, DaneResult::NoMatch { .. }), "{r:?}");
    }
}
