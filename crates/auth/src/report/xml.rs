//! From a policy domain's day to the aggregate report document: mail-auth's
//! report structures, its XML writer, and gzip.
//!
//! mail-auth 0.13.3 writes the RFC 9990 form (the aggregate-reporting RFC
//! that obsoletes RFC 7489 §7.2): the `urn:ietf:params:xml:ns:dmarc-2.0`
//! namespace, `<testing>` instead of `<pct>`. The element names of
//! RFC 7489 Appendix C are otherwise the same, and receivers' parsers read
//! both (tests check the names against Appendix C).
//!
//! # Security
//! Domains and comments come from peers and DNS; mail-auth escapes `<>&"'`
//! in every text element.
//!
//! # Standards
//! RFC 7489 §7.2, Appendix C; RFC 9990 §3 (report format, version 1.0);
//! RFC 1952 (gzip).

use std::io::Write as _;

use mail_auth::flate2::Compression;
use mail_auth::flate2::write::GzEncoder;
use mail_auth::report::{
    ActionDisposition, Alignment as MaAlignment, DKIMAuthResult, Disposition as MaDisposition,
    DkimResult, DmarcResult, PolicyOverride as MaOverride, PolicyOverrideReason, Record, Report,
    SPFAuthResult, SPFDomainScope, SpfResult,
};
use time::Date;

use super::aggregate::{DomainDay, RowKey};
use super::days::{day_bounds, day_name};
use super::record::{Alignment, Disposition, PolicyOverride};

/// Who reports: the report metadata from `[dmarc_reports]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// `org_name`.
    pub org_name: String,
    /// `email`: the report's contact and sender address.
    pub email: String,
    /// `contact_info`.
    pub contact_info: Option<String>,
}

impl Reporter {
    /// The receiver's domain (`Submitter:` and the file name): the domain of
    /// `email`.
    pub fn submitter(&self) -> String {
        super::record::domain_of(&self.email)
    }

    /// A report id unique per reporter, policy domain and day (and stable,
    /// so a receiver can spot a duplicate).
    pub fn report_id(&self, policy_domain: &str, day: Date) -> String {
        format!(
            "{}.{}.{}",
            day_name(day).replace('-', ""),
            policy_domain,
            self.submitter()
        )
    }

    /// RFC 7489 §7.2.1.1: `receiver "!" policy-domain "!" begin "!" end
    /// ".xml.gz"`.
    pub fn attachment_name(&self, policy_domain: &str, day: Date) -> String {
        let (begin, end) = day_bounds(day);
        format!("{}!{policy_domain}!{begin}!{end}.xml.gz", self.submitter())
    }
}

/// The report of one policy domain's day.
pub fn report(reporter: &Reporter, d: &DomainDay, day: Date) -> Report {
    let (begin, end) = day_bounds(day);
    let mut report = Report::new()
        .with_version(1.0)
        .with_org_name(reporter.org_name.clone())
        .with_email(reporter.email.clone())
        .with_report_id(reporter.report_id(&d.policy_domain, day))
        .with_date_range_begin(begin)
        .with_date_range_end(end)
        .with_generator(concat!("Postern ", env!("CARGO_PKG_VERSION")))
        .with_domain(d.policy_domain.clone())
        .with_adkim(alignment(d.published.adkim))
        .with_aspf(alignment(d.published.aspf))
        .with_p(disposition(d.published.p))
        .with_sp(disposition(d.published.sp))
        // RFC 9990 has no pct; a policy applied to part of the mail only is
        // what `testing` stands for now.
        .with_testing(d.published.pct < 100);
    if let Some(c) = &reporter.contact_info {
        report = report.with_extra_contact_info(c.clone());
    }
    for (key, count) in &d.rows {
        report.add_record(record(key, *count));
    }
    report
}

/// The XML of a report.
pub fn to_xml(report: &Report) -> String {
    report.to_xml()
}

/// gzip of the XML.
pub fn gzip(xml: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::with_capacity(xml.len() / 4), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(xml.as_bytes());
    e.finish().unwrap_or_default()
}

fn record(k: &RowKey, count: u32) -> Record {
    let mut r = Record::new()
        .with_source_ip(k.source_ip)
        .with_count(count)
        .with_action_disposition(match k.disposition {
            Disposition::None => ActionDisposition::None,
            Disposition::Quarantine => ActionDisposition::Quarantine,
            Disposition::Reject => ActionDisposition::Reject,
        })
        .with_dmarc_dkim_result(pass_fail(k.dkim_aligned))
        .with_dmarc_spf_result(pass_fail(k.spf_aligned))
        .with_header_from(k.header_from.clone())
        .with_envelope_from(k.envelope_from.clone());
    if let Some(to) = &k.envelope_to {
        r = r.with_envelope_to(to.clone());
    }
    if let Some((why, comment)) = &k.override_reason {
        let (kind, comment) = match why {
            PolicyOverride::TrustedForwarder => (MaOverride::TrustedForwarder, comment.clone()),
            PolicyOverride::MailingList => (MaOverride::MailingList, comment.clone()),
            PolicyOverride::LocalPolicy => (MaOverride::LocalPolicy, comment.clone()),
            PolicyOverride::Other => (MaOverride::Other, comment.clone()),
            // RFC 7489's `forwarded` and `sampled_out` are not in RFC 9990:
            // `other` and `policy_test_mode`, the comment keeps the word.
            PolicyOverride::Forwarded => (MaOverride::Other, prefixed("forwarded", comment)),
            PolicyOverride::SampledOut => {
                (MaOverride::PolicyTestMode, prefixed("sampled_out", comment))
            }
        };
        let mut reason = PolicyOverrideReason::new(kind);
        if !comment.is_empty() {
            reason = reason.with_comment(comment);
        }
        r = r.with_policy_override_reason(reason);
    }
    for (domain, selector, result) in &k.dkim {
        r = r.with_dkim_auth_result(
            DKIMAuthResult::new()
                .with_domain(domain.clone())
                .with_selector(selector.clone())
                .with_result(dkim_result(result)),
        );
    }
    // The report carries the MAIL FROM check (RFC 9990 §3: one spf
    // element). For the null path RFC 7208 §2.4 checks the HELO identity in
    // its place, so a HELO result stands in; with none at all, `none` for
    // the envelope domain.
    let mfrom = k.spf.iter().find(|s| s.1.eq_ignore_ascii_case("mfrom"));
    let spf = mfrom.or_else(|| k.spf.first()).map_or_else(
        || (k.envelope_from.clone(), SpfResult::None),
        |(d, _, res)| (d.clone(), spf_result(res)),
    );
    r = r.with_spf_auth_result(
        SPFAuthResult::new()
            .with_domain(spf.0)
            .with_scope(SPFDomainScope::MailFrom)
            .with_result(spf.1),
    );
    r
}

fn prefixed(word: &str, comment: &str) -> String {
    if comment.is_empty() {
        word.to_owned()
    } else {
        format!("{word}: {comment}")
    }
}

fn pass_fail(b: bool) -> DmarcResult {
    if b {
        DmarcResult::Pass
    } else {
        DmarcResult::Fail
    }
}

fn alignment(a: Alignment) -> MaAlignment {
    match a {
        Alignment::Relaxed => MaAlignment::Relaxed,
        Alignment::Strict => MaAlignment::Strict,
    }
}

fn disposition(d: Disposition) -> MaDisposition {
    match d {
        Disposition::None => MaDisposition::None,
        Disposition::Quarantine => MaDisposition::Quarantine,
        Disposition::Reject => MaDisposition::Reject,
    }
}

/// RFC 7489 Appendix C `DKIMResultType`; an unknown word is `none`.
fn dkim_result(w: &str) -> DkimResult {
    match w.to_ascii_lowercase().as_str() {
        "pass" => DkimResult::Pass,
        "fail" => DkimResult::Fail,
        "policy" => DkimResult::Policy,
        "neutral" => DkimResult::Neutral,
        "temperror" => DkimResult::TempError,
        "permerror" => DkimResult::PermError,
        _ => DkimResult::None,
    }
}

/// RFC 7489 Appendix C `SPFResultType`; an unknown word is `none`.
fn spf_result(w: &str) -> SpfResult {
    match w.to_ascii_lowercase().as_str() {
        "pass" => SpfResult::Pass,
        "fail" => SpfResult::Fail,
        "softfail" => SpfResult::SoftFail,
        "neutral" => SpfResult::Neutral,
        "temperror" => SpfResult::TempError,
        "permerror" => SpfResult::PermError,
        _ => SpfResult::None,
    }
}
