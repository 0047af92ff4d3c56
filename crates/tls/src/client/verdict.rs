//! The verdict on the chain a server presented ([`PeerVerdict`]: PKIX path
//! validation and the name check, classified into a [`PkixProblem`] and a
//! catalogue cause), and the two certificate verifiers behind
//! [`super::Verify`]: record everything, or refuse with a [`PkixRefusal`].
//!
//! # Security
//! Certificates from the peer are untrusted input (webpki, x509-parser);
//! nothing here panics on a malformed one. Record mode never refuses; the
//! handshake signature is still checked with the presented key.
//!
//! # Standards
//! RFC 5280 §6 (path validation), RFC 6125 (name matching), RFC 7672 §3.2.2.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::describe::{CertDescription, describe_cert};
use crate::cause::Cause;
use crate::cause::outbound::{
    CERT_EXPIRED, CERT_INVALID, CERT_NAME_MISMATCH, CERT_NOT_YET_VALID, CERT_SELF_SIGNED,
    CERT_UNTRUSTED, CHAIN_INCOMPLETE,
};

/// What we think of the chain a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerVerdict {
    /// The chain as sent, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKIX path validation against our roots (RFC 5280 §6), without the name
    /// check: `Err` says why it failed.
    pub pkix: Result<(), String>,
    /// The PKIX failure, classified; `None` when `pkix` is `Ok`.
    pub pkix_problem: Option<PkixProblem>,
    /// Whether the leaf covers `hostname` (RFC 6125).
    pub name_matches: bool,
    /// The name we checked: the MX hostname (or the host the operator named).
    pub hostname: String,
    /// The port the chain was presented on, when it came from a connection
    /// (the `postern cert check --remote HOST:PORT` in a fix keeps it).
    pub port: Option<u16>,
}

/// Why a chain did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkixProblem {
    /// The server sent no certificate.
    NoCertificate,
    /// A single self-signed certificate.
    SelfSigned,
    /// The chain ends in a self-signed root we do not trust.
    UntrustedRoot,
    /// The last certificate sent is issued by a CA that was not sent and is
    /// not a trusted root: a missing intermediate (or a private CA).
    Incomplete,
    /// A certificate has expired.
    Expired,
    /// A certificate is not valid yet.
    NotYetValid,
    /// Anything else (bad signature, encoding, usage, unsupported algorithm).
    Other,
}

impl PeerVerdict {
    /// PKIX passed and the name matches.
    pub fn is_verified(&self) -> bool {
        self.pkix.is_ok() && self.name_matches
    }

    /// `yes`, or `no (reason)` as in `verified: no (self-signed)`.
    pub fn summary(&self) -> String {
        if self.is_verified() {
            return "yes".to_owned();
        }
        let mut reasons = Vec::new();
        if let Some(p) = self.pkix_problem {
            reasons.push(
                match p {
                    PkixProblem::NoCertificate => "no certificate",
                    PkixProblem::SelfSigned => "self-signed",
                    PkixProblem::UntrustedRoot => "untrusted root",
                    PkixProblem::Incomplete => "chain incomplete or unknown CA",
                    PkixProblem::Expired => "expired",
                    PkixProblem::NotYetValid => "not yet valid",
                    PkixProblem::Other => "invalid",
                }
                .to_owned(),
            );
        }
        if !self.name_matches {
            reasons.push(format!("name mismatch for {}", self.hostname));
        }
        format!("no ({})", reasons.join(", "))
    }

    /// The leaf, described; `None` when there is none or it cannot be parsed.
    pub fn leaf(&self) -> Option<CertDescription> {
        self.chain.first().and_then(|c| describe_cert(c))
    }

    /// The catalogue cause for an unverified chain (`None` when verified):
    /// what an operator needs to fix it, or to tell the peer.
    pub fn cause(&self) -> Option<Cause> {
        if self.is_verified() {
            return None;
        }
        let described: Vec<CertDescription> =
            self.chain.iter().filter_map(|c| describe_cert(c)).collect();
        let detail = self.pkix.as_ref().err().cloned().unwrap_or_default();
        let host = &self.hostname;
        let target = self
            .port
            .map_or_else(|| host.clone(), |p| crate::cause::host_port(host, p));
        let check = format!("`postern cert check --remote {target}` shows the chain");
        let cause = |id, summary: String, fix: String| Cause {
            id,
            summary,
            fix,
            detail: detail.clone(),
        };
        let leaf_subject = described
            .first()
            .map_or("?".to_owned(), |d| d.subject.clone());
        match self.pkix_problem {
            Some(PkixProblem::SelfSigned) => {
                return Some(cause(
                    CERT_SELF_SIGNED,
                    format!("the certificate of {host} is self-signed ('{leaf_subject}')"),
                    format!(
                        "opportunistic delivery still encrypts; to verify, the peer needs a \
                         CA-issued certificate for {host} (or publish DANE TLSA); {check}"
                    ),
                ));
            }
            Some(PkixProblem::Incomplete) => {
                let last = described.last();
                return Some(cause(
                    CHAIN_INCOMPLETE,
                    format!(
                        "chain incomplete: '{}' is issued by '{}', which {host} did not send and \
                         we do not trust (missing intermediate, or a private CA)",
                        last.map_or("?", |d| d.subject.as_str()),
                        last.map_or("?", |d| d.issuer.as_str()),
                    ),
                    format!(
                        "the peer must send the intermediate certificate(s) after its own; if it \
                         is a private CA you trust, name its file in `[[route]] ca_file` (or \
                         `[delivery] ca_file`); {check}"
                    ),
                ));
            }
            Some(PkixProblem::UntrustedRoot) => {
                return Some(cause(
                    CERT_UNTRUSTED,
                    format!(
                        "the chain of {host} ends in a root we do not trust ('{}')",
                        described.last().map_or("?", |d| d.subject.as_str())
                    ),
                    format!(
                        "if you trust that CA, name its file in `[[route]] ca_file` (or \
                         `[delivery] ca_file`); {check}"
                    ),
                ));
            }
            Some(PkixProblem::Expired) => {
                let expired = described.iter().find(|d| d.days_left < 0);
                return Some(cause(
                    CERT_EXPIRED,
                    format!(
                        "certificate expired: '{}' expired {} days ago",
                        expired.map_or(leaf_subject.as_str(), |d| d.subject.as_str()),
                        expired.map_or(0, |d| -d.days_left)
                    ),
                    format!("the peer must renew its certificate; {check}"),
                ));
            }
            Some(PkixProblem::NotYetValid) => {
                return Some(cause(
                    CERT_NOT_YET_VALID,
                    format!("the certificate of {host} is not valid yet"),
                    "check our clock (NTP) and the peer's certificate dates".to_owned(),
                ));
            }
            Some(PkixProblem::NoCertificate | PkixProblem::Other) => {
                return Some(cause(
                    CERT_INVALID,
                    format!("the certificate of {host} does not verify: {detail}"),
                    check,
                ));
            }
            None => {}
        }
        let names = described
            .first()
            .map(|d| d.sans.join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("'{leaf_subject}' (no subjectAltName)"));
        Some(cause(
            CERT_NAME_MISMATCH,
            format!("certificate name mismatch: cert is for {names}, MX is {host}"),
            format!(
                "the peer needs a certificate whose subjectAltName covers {host}; until then \
                 only unverified TLS works for it; {check}"
            ),
        ))
    }
}

/// The verdict on `chain` against `roots` with the default algorithms (for
/// callers without a [`super::ClientTls`], e.g. checking a certificate file).
pub fn verdict_against(
    roots: &RootCertStore,
    chain: &[CertificateDer<'_>],
    hostname: &str,
    now: UnixTime,
) -> PeerVerdict {
    let algorithms = aws_lc_rs::default_provider().signature_verification_algorithms;
    verdict_with(roots, algorithms, chain, hostname, now)
}

pub(super) fn verdict_with(
    roots: &RootCertStore,
    algorithms: WebPkiSupportedAlgorithms,
    chain: &[CertificateDer<'_>],
    hostname: &str,
    now: UnixTime,
) -> PeerVerdict {
    let owned: Vec<CertificateDer<'static>> =
        chain.iter().map(|c| c.clone().into_owned()).collect();
    let name = ServerName::try_from(hostname.trim_end_matches('.')).ok();
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return PeerVerdict {
            chain: owned,
            pkix: Err("the server sent no certificate".to_owned()),
            pkix_problem: Some(PkixProblem::NoCertificate),
            name_matches: false,
            hostname: hostname.to_owned(),
            port: None,
        };
    };
    let parsed = ParsedCertificate::try_from(leaf_der);
    let name_matches = match (&parsed, &name) {
        (Ok(p), Some(n)) => rustls::client::verify_server_name(p, n).is_ok(),
        _ => false,
    };
    let pkix = parsed.and_then(|p| {
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &p,
            roots,
            intermediates,
            now,
            algorithms.all,
        )
    });
    let pkix_problem = pkix.as_ref().err().map(|e| classify_pkix(e, chain));
    PeerVerdict {
        chain: owned,
        // When the chain's shape already explains the refusal, say that rather
        // than the incidental error webpki met on its way (e.g. a signature
        // error while trying a same-named candidate for a self-signed leaf).
        pkix: pkix.map_err(|e| match pkix_problem {
            Some(PkixProblem::SelfSigned) => {
                "self-signed: no trusted CA issued this certificate".to_owned()
            }
            Some(PkixProblem::UntrustedRoot) => {
                "the chain ends in a root that is not trusted".to_owned()
            }
            _ => describe_pkix_error(&e),
        }),
        pkix_problem,
        name_matches,
        hostname: hostname.to_owned(),
        port: None,
    }
}

fn classify_pkix(err: &rustls::Error, chain: &[CertificateDer<'_>]) -> PkixProblem {
    use CertificateError as C;
    let rustls::Error::InvalidCertificate(ce) = err else {
        return PkixProblem::Other;
    };
    match ce {
        C::Expired | C::ExpiredContext { .. } => return PkixProblem::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => return PkixProblem::NotYetValid,
        _ => {}
    }
    // A chain ending in a self-signed certificate that is not one of our
    // roots is "self-signed" / "untrusted root", whatever webpki met while
    // trying other candidates (a same-named local certificate such as a
    // snakeoil one can turn UnknownIssuer into a signature error).
    let last_self_signed = chain
        .last()
        .and_then(|c| describe_cert(c))
        .is_some_and(|d| d.self_signed);
    match (chain.len(), last_self_signed, ce) {
        (1, true, _) => PkixProblem::SelfSigned,
        (_, true, _) => PkixProblem::UntrustedRoot,
        (_, false, C::UnknownIssuer) => PkixProblem::Incomplete,
        _ => PkixProblem::Other,
    }
}

fn describe_pkix_error(err: &rustls::Error) -> String {
    use CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(ce) => match ce {
            C::UnknownIssuer => "unknown issuer: the chain does not lead to a trusted root".into(),
            C::Expired | C::ExpiredContext { .. } => {
                "a certificate in the chain has expired".into()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "a certificate in the chain is not valid yet".into()
            }
            C::BadSignature => "a signature in the chain does not verify".into(),
            C::BadEncoding => "a certificate cannot be parsed".into(),
            C::Revoked => "a certificate is revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "the certificate is not for TLS servers (extended key usage)".into()
            }
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "a signature in the chain uses an unsupported algorithm or does not fit the \
                 issuer's key"
                    .into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the certificate does not cover the name".into()
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// Accepts any chain; checks handshake signatures with the presented key.
#[derive(Debug)]
pub(super) struct RecordingVerifier {
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Record mode: the verdict is computed after the handshake from the
        // chain the connection keeps (ClientTls::peer_verdict); policy decides.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a [`super::Verify::Pkix`] handshake refused the certificate: rustls' own
/// error plus our verdict on the chain, carried inside the handshake error
/// (`CertificateError::Other`) so [`crate::cause::classify_outbound`] can name the problem
/// (self-signed, missing intermediate, which names the certificate covers)
/// without any per-connection state in the shared verifier. The peer gets
/// a `bad_certificate` alert.
#[derive(Debug)]
pub struct PkixRefusal {
    /// The verdict on the presented chain.
    pub verdict: PeerVerdict,
    /// What webpki said.
    pub error: CertificateError,
}

impl fmt::Display for PkixRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = describe_pkix_error(&rustls::Error::InvalidCertificate(self.error.clone()));
        write!(f, "{text} (verified: {})", self.verdict.summary())
    }
}

impl StdError for PkixRefusal {}

/// rustls' webpki verifier, refusing with a [`PkixRefusal`].
#[derive(Debug)]
pub(super) struct PkixVerifier {
    pub(super) inner: Arc<WebPkiServerVerifier>,
    pub(super) roots: Arc<RootCertStore>,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PkixVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(error)) => {
                let mut chain = Vec::with_capacity(1 + intermediates.len());
                chain.push(end_entity.clone());
                chain.extend(intermediates.iter().cloned());
                let verdict = verdict_with(
                    &self.roots,
                    self.algorithms,
                    &chain,
                    &server_name.to_str(),
                    now,
                );
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(PkixRefusal { verdict, error })),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    // (chain, hostname, PKIX problem, name matches, cause id)
    type Case<'a> = (
        Vec<CertificateDer<'static>>,
        &'a str,
        Option<PkixProblem>,
        bool,
        Option<&'a str>,
    );

    /// CA → intermediate → leaf, built with rcgen.
    struct Pki {
        root: CertificateDer<'static>,
        inter: CertificateDer<'static>,
        inter_issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    }

    fn ca_params(cn: &str) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        p
    }

    fn pki() -> Pki {
        let root_key = rcgen::KeyPair::generate().unwrap();
        let root_params = ca_params("Test Root");
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = rcgen::Issuer::new(root_params, root_key);
        let inter_key = rcgen::KeyPair::generate().unwrap();
        let inter_params = ca_params("Test Intermediate");
        let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
        Pki {
            root: root.der().clone(),
            inter: inter.der().clone(),
            inter_issuer: rcgen::Issuer::new(inter_params, inter_key),
        }
    }

    fn leaf(
        issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
        name: &str,
        days: (i64, i64),
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        let now = OffsetDateTime::now_utc();
        p.not_before = now + time::Duration::days(days.0);
        p.not_after = now + time::Duration::days(days.1);
        p.signed_by(&key, issuer).unwrap().der().clone()
    }

    fn roots(root: &CertificateDer<'static>) -> RootCertStore {
        let mut r = RootCertStore::empty();
        r.add(root.clone()).unwrap();
        r
    }

    #[test]
    fn verdict_table() {
        let pki = pki();
        let roots = roots(&pki.root);
        let good = leaf(&pki.inter_issuer, "mx.example.net", (-1, 90));
        let expired = leaf(&pki.inter_issuer, "mx.example.net", (-30, -2));
        let self_key = rcgen::KeyPair::generate().unwrap();
        let self_signed = rcgen::CertificateParams::new(vec!["mx.example.net".to_owned()])
            .unwrap()
            .self_signed(&self_key)
            .unwrap()
            .der()
            .clone();
        let now = UnixTime::now();
        let cases: Vec<Case<'_>> = vec![
            (
                vec![good.clone(), pki.inter.clone()],
                "mx.example.net",
                None,
                true,
                None,
            ),
            (
                vec![good.clone(), pki.inter.clone(), pki.root.clone()],
                "MX.example.net.",
                None,
                true,
                None,
            ),
            (
                vec![good.clone(), pki.inter.clone()],
                "mx1.other.org",
                None,
                false,
                Some(CERT_NAME_MISMATCH),
            ),
            (
                vec![good.clone()],
                "mx.example.net",
                Some(PkixProblem::Incomplete),
                true,
                Some(CHAIN_INCOMPLETE),
            ),
            (
                vec![expired, pki.inter.clone()],
                "mx.example.net",
                Some(PkixProblem::Expired),
                true,
                Some(CERT_EXPIRED),
            ),
            (
                vec![self_signed],
                "mx.example.net",
                Some(PkixProblem::SelfSigned),
                true,
                Some(CERT_SELF_SIGNED),
            ),
        ];
        for (i, (chain, host, problem, name_ok, cause_id)) in cases.into_iter().enumerate() {
            let v = verdict_against(&roots, &chain, host, now);
            assert_eq!(v.pkix_problem, problem, "case {i}: {v:?}");
            assert_eq!(v.pkix.is_ok(), problem.is_none(), "case {i}");
            assert_eq!(v.name_matches, name_ok, "case {i}");
            assert_eq!(v.cause().map(|c| c.id), cause_id, "case {i}");
            assert_eq!(v.chain.len(), chain.len());
        }
        // Untrusted root: the whole chain sent, but we trust another root.
        let other = pki_roots_other();
        let v = verdict_against(
            &other,
            &[good.clone(), pki.inter.clone(), pki.root.clone()],
            "mx.example.net",
            now,
        );
        assert_eq!(v.pkix_problem, Some(PkixProblem::UntrustedRoot), "{v:?}");
        assert_eq!(v.summary(), "no (untrusted root)");
        let c = v.cause().unwrap();
        assert_eq!(c.id, CERT_UNTRUSTED);
        assert!(c.summary.contains("Test Root"), "{c}");
        // The name-mismatch text names both sides.
        let v = verdict_against(&roots, &[good, pki.inter], "mx1.other.org", now);
        assert_eq!(
            v.cause().unwrap().summary,
            "certificate name mismatch: cert is for mx.example.net, MX is mx1.other.org"
        );
    }

    fn pki_roots_other() -> RootCertStore {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = ca_params("Other Root").self_signed(&key).unwrap();
        roots(other.der())
    }

    #[test]
    fn describes_certificates() {
        let pki = pki();
        let d = describe_cert(&pki.inter).unwrap();
        assert_eq!(d.subject, "CN=Test Intermediate");
        assert_eq!(d.issuer, "CN=Test Root");
        assert!(d.is_ca && !d.self_signed);
        assert_eq!(d.key_type, "ECDSA P-256");
        assert_eq!(d.signature_algorithm, "ecdsa-with-SHA256");
        assert!(!d.weak_signature);
        assert_eq!(d.sha256.len(), 32 * 3 - 1);
        let r = describe_cert(&pki.root).unwrap();
        assert!(r.self_signed);
        assert!(describe_cert(&CertificateDer::from(vec![1, 2, 3])).is_none());
        let json = serde_json_like(&d);
        assert!(json.contains("not_after"), "{json}");
    }

    fn serde_json_like(d: &CertDescription) -> String {
        // No serde_json in this crate: the Debug output is enough to see the field.
        format!("{d:?}")
    }
}
