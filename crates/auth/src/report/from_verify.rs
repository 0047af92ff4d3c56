//! From the inbound verification's results ([`crate::verify::AuthResults`])
//! to a [`ReportRecord`]: what the smtpd calls after each message.
//!
//! # Standards
//! RFC 7489 §7.2 (what a report row holds), RFC 7208 §2.4 (the MAIL FROM
//! check of a null reverse-path is made on the HELO name).

use std::net::IpAddr;

use super::record::{Alignment, Disposition, PolicyOverride, Published, ReportRecord};
use crate::verify::{self, AuthResults, DmarcPolicy, DmarcResult};

/// What we did with the message and when, beside the verification results.
#[derive(Debug, Clone)]
pub struct Evaluated<'a> {
    /// Unix seconds.
    pub time: i64,
    /// The client.
    pub source_ip: IpAddr,
    /// The RCPT TO domain, if it should appear in reports.
    pub envelope_to: Option<&'a str>,
    /// What we did.
    pub disposition: Disposition,
    /// Why it differs from the policy.
    pub override_reason: Option<(PolicyOverride, String)>,
}

fn disposition(p: DmarcPolicy) -> Disposition {
    match p {
        DmarcPolicy::None => Disposition::None,
        DmarcPolicy::Quarantine => Disposition::Quarantine,
        DmarcPolicy::Reject => Disposition::Reject,
    }
}

fn alignment(a: verify::Alignment) -> Alignment {
    match a {
        verify::Alignment::Relaxed => Alignment::Relaxed,
        verify::Alignment::Strict => Alignment::Strict,
    }
}

impl ReportRecord {
    /// The record of one verified message, or `None` when there is nothing
    /// to report: no DMARC record, no `rua=`, or a result that is not a
    /// policy evaluation (`none`, `temperror`, `permerror`).
    pub fn from_results(r: &AuthResults, what: &Evaluated<'_>) -> Option<ReportRecord> {
        let d = &r.dmarc;
        if !matches!(d.result, DmarcResult::Pass | DmarcResult::Fail) || d.rua.is_empty() {
            return None;
        }
        let published = d.published.as_ref()?;
        // A sampled-out message (pct) is reported as such unless the caller
        // gave another reason.
        let override_reason = what.override_reason.clone().or_else(|| {
            (d.result == DmarcResult::Fail && !d.sampled && d.pct < 100).then(|| {
                (
                    PolicyOverride::SampledOut,
                    format!("pct={} sampling", d.pct),
                )
            })
        });
        let mut rec = ReportRecord {
            time: what.time,
            source_ip: what.source_ip,
            header_from: d.from_domain.clone(),
            envelope_from: r.spf.mail_from.domain.clone(),
            envelope_to: what.envelope_to.map(str::to_owned),
            policy_domain: published.domain.clone(),
            published: Published {
                adkim: alignment(published.adkim),
                aspf: alignment(published.aspf),
                p: disposition(published.p),
                sp: disposition(published.sp),
                pct: published.pct,
            },
            rua: d.rua.clone(),
            disposition: what.disposition,
            dkim_aligned: d.dkim_aligned,
            spf_aligned: d.spf_aligned,
            override_reason,
            dkim: r
                .dkim
                .iter()
                .map(|k| {
                    (
                        k.domain.clone(),
                        k.selector.clone(),
                        k.result.as_str().to_owned(),
                    )
                })
                .collect(),
            spf: vec![
                (
                    r.spf.helo.domain.clone(),
                    "helo".to_owned(),
                    r.spf.helo.result.as_str().to_owned(),
                ),
                (
                    r.spf.mail_from.domain.clone(),
                    "mfrom".to_owned(),
                    r.spf.mail_from.result.as_str().to_owned(),
                ),
            ],
        };
        rec.normalize();
        Some(rec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::verify::{
        ArcResult, ArcVerdict, DkimResult, DkimVerdict, DmarcPublished, DmarcVerdict, SpfResult,
        SpfVerdict, SpfVerdicts,
    };

    fn spf(result: SpfResult, domain: &str) -> SpfVerdict {
        SpfVerdict {
            result,
            domain: domain.into(),
            identity: String::new(),
            reason: String::new(),
        }
    }

    fn results(result: DmarcResult, sampled: bool, rua: &[&str]) -> AuthResults {
        AuthResults {
            spf: SpfVerdicts {
                helo: spf(SpfResult::Pass, "mx.Sender.Example"),
                mail_from: spf(SpfResult::SoftFail, "bounces.sender.example"),
            },
            dkim: vec![DkimVerdict {
                result: DkimResult::Pass,
                domain: "sender.example".into(),
                selector: "s1".into(),
                algorithm: "ed25519-sha256".into(),
                header_b: String::new(),
                reason: String::new(),
            }],
            arc: ArcVerdict {
                result: ArcResult::None,
                instances: 0,
                sealers: vec![],
                reason: String::new(),
            },
            dmarc: DmarcVerdict {
                result,
                from_domain: "news.sender.example".into(),
                org_domain: "sender.example".into(),
                policy: DmarcPolicy::Reject,
                pct: 50,
                sampled,
                spf_aligned: false,
                dkim_aligned: true,
                rua: rua.iter().map(|s| (*s).to_owned()).collect(),
                reason: String::new(),
                published: Some(DmarcPublished {
                    domain: "sender.example".into(),
                    adkim: verify::Alignment::Relaxed,
                    aspf: verify::Alignment::Strict,
                    p: DmarcPolicy::Reject,
                    sp: DmarcPolicy::Quarantine,
                    pct: 50,
                }),
            },
        }
    }

    fn what() -> Evaluated<'static> {
        Evaluated {
            time: 1_796_472_000,
            source_ip: "192.0.2.1".parse().unwrap(),
            envelope_to: Some("User@Receiver.Example"),
            disposition: Disposition::None,
            override_reason: None,
        }
    }

    #[test]
    fn a_verified_message_becomes_a_record() {
        let r = ReportRecord::from_results(
            &results(DmarcResult::Pass, true, &["mailto:d@sender.example"]),
            &what(),
        )
        .unwrap();
        assert_eq!(r.policy_domain, "sender.example");
        assert_eq!(r.header_from, "news.sender.example");
        assert_eq!(r.envelope_from, "bounces.sender.example");
        assert_eq!(r.envelope_to.as_deref(), Some("receiver.example"));
        assert_eq!(r.published.sp, Disposition::Quarantine);
        assert_eq!(r.published.aspf, Alignment::Strict);
        assert!(r.dkim_aligned && !r.spf_aligned);
        assert_eq!(r.override_reason, None);
        assert_eq!(
            r.dkim,
            [("sender.example".into(), "s1".into(), "pass".into())]
        );
        assert_eq!(
            r.spf[0],
            ("mx.sender.example".into(), "helo".into(), "pass".into())
        );
        assert_eq!(r.spf[1].2, "softfail");
    }

    #[test]
    fn sampled_out_and_nothing_to_report() {
        let r = ReportRecord::from_results(
            &results(DmarcResult::Fail, false, &["mailto:d@sender.example"]),
            &what(),
        )
        .unwrap();
        assert_eq!(
            r.override_reason,
            Some((PolicyOverride::SampledOut, "pct=50 sampling".into()))
        );
        assert!(
            ReportRecord::from_results(&results(DmarcResult::Fail, true, &[]), &what()).is_none()
        );
        assert!(
            ReportRecord::from_results(
                &results(DmarcResult::TempError, true, &["mailto:d@sender.example"]),
                &what()
            )
            .is_none()
        );
    }
}
