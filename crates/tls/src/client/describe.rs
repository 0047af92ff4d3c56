//! Certificates and handshakes described for people: what `cert check`,
//! `tls verify` and the delivery log print (subject, SANs, key, signature
//! algorithm, fingerprint, dates; version, suite and group).
//!
//! # Security
//! Parses peer certificates (untrusted) with x509-parser; a certificate that
//! does not parse is described as `None`, never a panic.
//!
//! # Standards
//! RFC 5280 (X.509), RFC 6151 / RFC 9155 (weak signature hashes).

use rustls::ClientConnection;
use rustls::crypto::aws_lc_rs;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::certs;
use crate::facts::TlsFacts;
use crate::{groups, suites};

/// The facts of a completed client handshake; `sni` is the name we sent
/// (`None` for an IP address). `None` while handshaking.
pub fn client_facts(conn: &ClientConnection, sni: Option<&str>) -> Option<TlsFacts> {
    if conn.is_handshaking() {
        return None;
    }
    let version = match conn.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    };
    Some(TlsFacts {
        version,
        cipher: suites::display_name(u16::from(conn.negotiated_cipher_suite()?.suite())),
        group: conn
            .negotiated_key_exchange_group()
            .map(|g| groups::display_name(u16::from(g.name()))),
        sni: sni.map(str::to_owned),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
    })
}

/// One certificate, for people: what `cert check` and `tls verify` print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertDescription {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// subjectAltName DNS names and IP addresses.
    pub sans: Vec<String>,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity.
    #[serde(serialize_with = "rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(serialize_with = "rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days from now to `not_after` (negative once expired).
    pub days_left: i64,
    /// `RSA`, `ECDSA P-256`, `ECDSA P-384`, `Ed25519`, or the algorithm OID.
    pub key_type: String,
    /// Key size in bits (0 when unknown).
    pub key_bits: u32,
    /// Signature algorithm, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    /// The signature uses MD2, MD5 or SHA-1 (refused by current verifiers).
    pub weak_signature: bool,
    /// Issuer equals subject.
    pub self_signed: bool,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// SHA-256 fingerprint of the DER, `AB:CD:…`.
    pub sha256: String,
}

fn rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string());
    s.serialize_str(&text)
}

/// Describes one DER certificate at the current time; `None` if it cannot be
/// parsed as X.509.
pub fn describe_cert(der: &CertificateDer<'_>) -> Option<CertDescription> {
    describe_cert_at(der, OffsetDateTime::now_utc())
}

/// [`describe_cert`] with `days_left` counted from `now`.
pub fn describe_cert_at(der: &CertificateDer<'_>, now: OffsetDateTime) -> Option<CertDescription> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    let (key_type, key_bits) = crate::certs::key_description(&cert);
    let (signature_algorithm, weak_signature) =
        signature_name(&cert.signature_algorithm.algorithm.to_id_string());
    Some(CertDescription {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans: subject_alt_names(&cert),
        serial: cert.raw_serial_as_string(),
        not_before,
        not_after,
        days_left: (not_after - now).whole_days(),
        key_type,
        key_bits,
        signature_algorithm,
        weak_signature,
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        is_ca: cert.is_ca(),
        sha256: fingerprint(der.as_ref()),
    })
}

/// `2026-12-01 12:00:00 UTC`.
pub fn format_date(t: OffsetDateTime) -> String {
    certs::fmt_date(t)
}

fn fingerprint(der: &[u8]) -> String {
    // The provider's SHA-256 (no extra crypto dependency): every TLS 1.3 suite
    // carries its hash; TLS13_AES_128_GCM_SHA256's is SHA-256.
    let Some(suite) = aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13() else {
        return String::new();
    };
    let digest = suite.common.hash_provider.hash(der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn subject_alt_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => out.push((*d).to_owned()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => {
                        if let Ok(a) = <[u8; 4]>::try_from(*bytes) {
                            out.push(std::net::IpAddr::from(a).to_string());
                        }
                    }
                    16 => {
                        if let Ok(a) = <[u8; 16]>::try_from(*bytes) {
                            out.push(std::net::IpAddr::from(a).to_string());
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    out
}

/// (name, weak) for a signature algorithm OID (RFC 8017 / RFC 5758 / RFC
/// 8410 names). MD2, MD5 and SHA-1 are weak (RFC 6151, RFC 9155).
fn signature_name(oid: &str) -> (String, bool) {
    let (name, weak) = match oid {
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", true),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", true),
        "1.2.840.113549.1.1.5" => ("sha1WithRSAEncryption", true),
        "1.2.840.113549.1.1.10" => ("RSASSA-PSS", false),
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", false),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", false),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", false),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", true),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", false),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", false),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", false),
        "1.2.840.10040.4.3" => ("dsa-with-SHA1", true),
        "1.3.101.112" => ("Ed25519", false),
        "1.3.101.113" => ("Ed448", false),
        other => return (other.to_owned(), false),
    };
    (name.to_owned(), weak)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_names() {
        assert_eq!(
            signature_name("1.2.840.113549.1.1.5"),
            ("sha1WithRSAEncryption".to_owned(), true)
        );
        assert_eq!(
            signature_name("1.2.840.10045.4.3.2"),
            ("ecdsa-with-SHA256".to_owned(), false)
        );
        assert_eq!(signature_name("1.2.3"), ("1.2.3".to_owned(), false));
    }
}
