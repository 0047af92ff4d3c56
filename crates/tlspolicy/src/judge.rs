//! The decision table: given a level and what a connection showed, pass,
//! pass with a warning, or fail — with the catalogue cause. Delivery and
//! `tls verify` both ask here, so they can never disagree about a
//! destination (ADR 0005).
//!
//! # Standards
//! RFC 7435 (opportunistic: unverified TLS beats plaintext), RFC 3207,
//! RFC 7672 §2.2 (DANE: usable records must match; unusable ones mean
//! mandatory unauthenticated TLS), §3.2.2 (DANE-TA keeps the name check),
//! RFC 8461 §4 (MTA-STS: PKIX plus the MX host name).

use postern_tls::cause::Cause;
use postern_tls::client::PeerVerdict;

use crate::dane::{self, DaneResult};
use crate::{Level, cause};

/// What a level makes of one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Good enough.
    Pass,
    /// Good enough for this level, but worth fixing.
    Warn(Cause),
    /// Not good enough: delivery must not use this connection.
    Fail(Cause),
}

impl Judgement {
    /// Not a failure.
    pub fn is_pass(&self) -> bool {
        !matches!(self, Judgement::Fail(_))
    }

    /// The cause of a warning or failure.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Judgement::Pass => None,
            Judgement::Warn(c) | Judgement::Fail(c) => Some(c),
        }
    }
}

/// DANE evidence for one connection: the TLSA owner name and the result of
/// matching its authenticated records against the presented chain.
#[derive(Debug, Clone, Copy)]
pub struct DaneEvidence<'a> {
    /// `_25._tcp.mx1.example.com`.
    pub tlsa_name: &'a str,
    /// [`crate::dane::match_tlsa`]'s answer.
    pub result: &'a DaneResult,
}

/// The server did not offer STARTTLS (`at`: its address or name; `domain`:
/// the recipient domain).
pub fn starttls_missing(level: Level, at: &str, domain: &str) -> Judgement {
    let c = cause::starttls_not_offered(at, &[domain.to_owned()], level);
    if level.requires_tls() {
        Judgement::Fail(c)
    } else {
        Judgement::Warn(c)
    }
}

/// The handshake failed with `cause` (a `tls.*` / `tls.out.*` cause): only
/// the levels that retry in plaintext survive it.
pub fn handshake_failed(level: Level, cause: Cause) -> Judgement {
    if level.allows_plaintext_retry() {
        Judgement::Warn(cause)
    } else {
        Judgement::Fail(cause)
    }
}

/// A completed handshake: the certificate verdict for the MX host name and,
/// when DANE applies to the host, the TLSA evidence.
pub fn certificate(
    level: Level,
    host: &str,
    verdict: &PeerVerdict,
    dane_evidence: Option<DaneEvidence<'_>>,
) -> Judgement {
    match level {
        Level::None | Level::Opportunistic | Level::OpportunisticStrict | Level::Required => {
            verdict.cause().map_or(Judgement::Pass, Judgement::Warn)
        }
        Level::Verify | Level::MtaSts => verdict.cause().map_or(Judgement::Pass, Judgement::Fail),
        Level::Dane => match dane_evidence {
            None => Judgement::Fail(cause::dane_unavailable(
                host,
                "no DNSSEC-authenticated TLSA records apply to it",
            )),
            Some(e) => dane_judgement(host, verdict, e),
        },
    }
}

fn dane_judgement(host: &str, verdict: &PeerVerdict, e: DaneEvidence<'_>) -> Judgement {
    match e.result {
        DaneResult::Matched {
            name_check_required,
            ..
        } => {
            if *name_check_required && !verdict.name_matches {
                // DANE-TA replaces the roots, not the name check (RFC 7672
                // §3.2.2): report the name, whatever PKIX said.
                let name_only = PeerVerdict {
                    pkix: Ok(()),
                    pkix_problem: None,
                    ..verdict.clone()
                };
                name_only.cause().map_or(Judgement::Pass, Judgement::Fail)
            } else {
                Judgement::Pass
            }
        }
        DaneResult::NoMatch { why } => {
            let suggested = verdict
                .chain
                .first()
                .and_then(|l| dane::suggested_record(l))
                .map(|t| dane::presentation(&t));
            Judgement::Fail(cause::dane_no_match(
                host,
                e.tlsa_name,
                why,
                suggested.as_deref(),
            ))
        }
        // RFC 7672 §2.2: TLS is mandatory but unauthenticated; it was done.
        DaneResult::Unusable { why } => {
            Judgement::Warn(cause::dane_unusable(host, e.tlsa_name, why))
        }
    }
}

/// The MX host against the domain's MTA-STS policy: `pattern` is the
/// policy pattern that allows it (`None`: none does).
pub fn mta_sts_host(
    level: Level,
    domain: &str,
    host: &str,
    patterns: &[String],
    pattern: Option<&str>,
) -> Judgement {
    if pattern.is_some() {
        return Judgement::Pass;
    }
    let c = cause::mta_sts_mx_mismatch(domain, host, patterns);
    if level == Level::MtaSts {
        Judgement::Fail(c)
    } else {
        Judgement::Warn(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_tls::client::PkixProblem;
    use rustls_pki_types::CertificateDer;

    fn verdict(pkix_ok: bool, name_matches: bool) -> PeerVerdict {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.example.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        PeerVerdict {
            chain: vec![CertificateDer::from(cert.der().to_vec())],
            pkix: if pkix_ok {
                Ok(())
            } else {
                Err("self-signed".into())
            },
            pkix_problem: (!pkix_ok).then_some(PkixProblem::SelfSigned),
            name_matches,
            hostname: if name_matches {
                "mx.example.test".into()
            } else {
                "mx1.example.test".into()
            },
            port: Some(25),
        }
    }

    /// (level, verdict, DANE evidence, passes, cause id)
    type Case<'a> = (
        Level,
        &'a PeerVerdict,
        Option<DaneEvidence<'a>>,
        bool,
        Option<&'a str>,
    );

    fn id(j: &Judgement) -> Option<&'static str> {
        j.cause().map(|c| c.id)
    }

    #[test]
    fn certificate_table() {
        let good = verdict(true, true);
        let self_signed = verdict(false, true);
        let wrong_name = verdict(true, false);
        let both_bad = verdict(false, false);
        let ee = DaneResult::Matched {
            usage: 3,
            selector: 1,
            matching: 1,
            index: 0,
            name_check_required: false,
        };
        let ta = DaneResult::Matched {
            usage: 2,
            selector: 0,
            matching: 1,
            index: 1,
            name_check_required: true,
        };
        let no = DaneResult::NoMatch { why: "x".into() };
        let unusable = DaneResult::Unusable { why: "x".into() };
        let ev = |r| {
            Some(DaneEvidence {
                tlsa_name: "_25._tcp.mx.example.test",
                result: r,
            })
        };
        let h = "mx.example.test";
        // (level, verdict, dane, pass?, cause id)
        let cases: Vec<Case<'_>> = vec![
            (
                Level::Opportunistic,
                &self_signed,
                None,
                true,
                Some("tls.out.cert_self_signed"),
            ),
            (
                Level::Required,
                &wrong_name,
                None,
                true,
                Some("tls.out.cert_name_mismatch"),
            ),
            (Level::Verify, &good, None, true, None),
            (
                Level::Verify,
                &self_signed,
                None,
                false,
                Some("tls.out.cert_self_signed"),
            ),
            (
                Level::MtaSts,
                &wrong_name,
                None,
                false,
                Some("tls.out.cert_name_mismatch"),
            ),
            (Level::Dane, &self_signed, ev(&ee), true, None),
            (Level::Dane, &wrong_name, ev(&ee), true, None),
            (Level::Dane, &self_signed, ev(&ta), true, None),
            (
                Level::Dane,
                &both_bad,
                ev(&ta),
                false,
                Some("tls.out.cert_name_mismatch"),
            ),
            (
                Level::Dane,
                &good,
                ev(&no),
                false,
                Some(cause::DANE_NO_MATCH),
            ),
            (
                Level::Dane,
                &good,
                ev(&unusable),
                true,
                Some(cause::DANE_UNUSABLE),
            ),
            (
                Level::Dane,
                &good,
                None,
                false,
                Some(cause::DANE_UNAVAILABLE),
            ),
        ];
        for (i, (level, v, d, pass, cause_id)) in cases.into_iter().enumerate() {
            let j = certificate(level, h, v, d);
            assert_eq!(j.is_pass(), pass, "case {i}: {j:?}");
            assert_eq!(id(&j), cause_id, "case {i}: {j:?}");
        }
        // The no-match fix offers the record for the leaf in use.
        let j = certificate(Level::Dane, h, &good, ev(&no));
        assert!(j.cause().unwrap().fix.contains("IN TLSA 3 1 1 "));
    }

    #[test]
    fn starttls_and_handshake_tables() {
        for level in Level::ALL {
            let j = starttls_missing(*level, "192.0.2.1", "example.com");
            assert_eq!(j.is_pass(), !level.requires_tls(), "{level}");
            assert_eq!(id(&j), Some(cause::STARTTLS_NOT_OFFERED));
            let c = Cause {
                id: postern_tls::cause::NO_SHARED_VERSION,
                summary: String::new(),
                fix: String::new(),
                detail: String::new(),
            };
            assert_eq!(
                handshake_failed(*level, c).is_pass(),
                level.allows_plaintext_retry(),
                "{level}"
            );
        }
        let pats = vec!["mx1.example.com".to_owned()];
        assert_eq!(
            mta_sts_host(
                Level::MtaSts,
                "example.com",
                "mx1.example.com",
                &pats,
                Some("mx1.example.com")
            ),
            Judgement::Pass
        );
        assert!(!mta_sts_host(Level::MtaSts, "example.com", "mx9.x", &pats, None).is_pass());
        assert!(mta_sts_host(Level::Verify, "example.com", "mx9.x", &pats, None).is_pass());
    }
}
