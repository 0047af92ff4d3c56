//! Summaries of the certificates a server presented: what an operator reads
//! in the report (subject, issuer, names, validity, key, signature). This is
//! description, not verification — `tls verify` judges trust and names.
//!
//! # Security
//! Parses untrusted DER with x509-parser; a certificate that does not parse is
//! summarised as such, never trusted or rejected here.
//!
//! # Standards
//! RFC 5280 (X.509 profile).

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::oid_registry;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::wire::significant_bits;

/// One certificate of a presented chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCert {
    /// Subject DN (RFC 4514 string), or a parse error.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// DNS and IP subjectAltNames.
    pub sans: Vec<String>,
    /// Serial number (hex, colon-separated).
    pub serial: String,
    /// notBefore (RFC 3339).
    pub not_before: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
    /// Whole days until notAfter from the scan time (negative: expired).
    pub days_left: i64,
    /// `RSA`, `ECDSA P-256`, `Ed25519`, …
    pub key_type: String,
    /// Key size in bits (RSA modulus, curve size).
    pub key_bits: u32,
    /// Signature algorithm (short name, e.g. `ecdsa-with-SHA256`).
    pub signature: String,
    /// Subject equals issuer.
    pub self_signed: bool,
    /// A CA certificate (basicConstraints cA).
    pub is_ca: bool,
    /// The DER did not parse; only `subject` (the error) is meaningful.
    pub unparsed: bool,
}

/// A chain and where it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// The handshake that presented it, e.g. `TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384`.
    pub seen_with: String,
    /// Leaf first, as sent.
    pub certs: Vec<ChainCert>,
}

/// Summarises one DER certificate.
pub fn summarize(der: &[u8], now: OffsetDateTime) -> ChainCert {
    let cert = match X509Certificate::from_der(der) {
        Ok((_, c)) => c,
        Err(e) => {
            return ChainCert {
                subject: format!("(certificate does not parse: {e})"),
                issuer: String::new(),
                sans: Vec::new(),
                serial: String::new(),
                not_before: String::new(),
                not_after: String::new(),
                days_left: 0,
                key_type: String::new(),
                key_bits: 0,
                signature: String::new(),
                self_signed: false,
                is_ca: false,
                unparsed: true,
            };
        }
    };
    let ts =
        |t: &x509_parser::time::ASN1Time| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok();
    let not_before = ts(&cert.validity().not_before);
    let not_after = ts(&cert.validity().not_after);
    let fmt =
        |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default();
    let days_left = not_after.map_or(0, |na| (na - now).whole_days());
    let (key_type, key_bits) = key_description(&cert);
    let sig_oid = &cert.signature_algorithm.algorithm;
    let signature = x509_parser::objects::oid2sn(sig_oid, x509_parser::objects::oid_registry())
        .map_or_else(|_| sig_oid.to_id_string(), str::to_owned);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        sans.push(std::net::IpAddr::from(a).to_string());
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        sans.push(std::net::IpAddr::from(a).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    ChainCert {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        serial: cert.raw_serial_as_string(),
        not_before: fmt(not_before),
        not_after: fmt(not_after),
        days_left,
        key_type,
        key_bits,
        signature,
        self_signed: cert.subject() == cert.issuer(),
        is_ca: cert.is_ca(),
        unparsed: false,
    }
}

fn key_description(cert: &X509Certificate<'_>) -> (String, u32) {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == oid_registry::OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => significant_bits(rsa.modulus),
            _ => 0,
        };
        return ("RSA".to_owned(), bits);
    }
    if *alg == oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let (name, bits) = match curve {
            Some(c) if c == oid_registry::OID_EC_P256 => ("ECDSA P-256", 256),
            Some(c) if c == oid_registry::OID_NIST_EC_P384 => ("ECDSA P-384", 384),
            Some(c) if c == oid_registry::OID_NIST_EC_P521 => ("ECDSA P-521", 521),
            _ => ("ECDSA (other curve)", 0),
        };
        return (name.to_owned(), bits);
    }
    if *alg == oid_registry::OID_SIG_ED25519 {
        return ("Ed25519".to_owned(), 256);
    }
    if *alg == oid_registry::OID_SIG_ED448 {
        return ("Ed448".to_owned(), 456);
    }
    if *alg == oid_registry::OID_KEY_TYPE_DSA {
        let bits = match spki.parsed() {
            Ok(PublicKey::DSA(y)) => significant_bits(y),
            _ => 0,
        };
        return ("DSA".to_owned(), bits);
    }
    (alg.to_id_string(), 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_ca_leaf() {
        let ca = postern_testkit::TestCa::new();
        let leaf = ca.issue(&["mx.test.example"]);
        let now = OffsetDateTime::now_utc();
        let s = summarize(&leaf.cert_der, now);
        assert!(!s.unparsed);
        assert_eq!(s.subject, "CN=mx.test.example");
        assert_eq!(s.issuer, "CN=Postern Test CA");
        assert_eq!(s.sans, vec!["mx.test.example"]);
        assert_eq!((s.key_type.as_str(), s.key_bits), ("ECDSA P-256", 256));
        assert!((363..=365).contains(&s.days_left), "{}", s.days_left);
        assert!(!s.self_signed && !s.is_ca);
        assert!(s.signature.contains("ecdsa"), "{}", s.signature);

        let rsa = ca.issue_with(&["a.example"], postern_testkit::KeyKind::Rsa2048, None);
        let s = summarize(&rsa.cert_der, now);
        assert_eq!((s.key_type.as_str(), s.key_bits), ("RSA", 2048));

        let bad = summarize(b"not der", now);
        assert!(bad.unparsed);
        assert!(bad.subject.contains("does not parse"));
    }
}
