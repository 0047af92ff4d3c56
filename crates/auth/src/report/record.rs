//! The input of DMARC aggregate reporting: one [`ReportRecord`] per message
//! (or per rejected transaction) whose DMARC policy was evaluated and whose
//! record asks for aggregate reports (`rua=`). The smtpd builds it from its
//! verification results; the recorder stores it as one JSON line.
//!
//! # Security
//! Every string comes from the peer or from DNS. Records are stored as JSON
//! (serde escapes them) and later written into XML by mail-auth, which
//! escapes `<>&"'`; nothing here interprets them.
//!
//! # Standards
//! RFC 7489 §6.3 (`adkim`, `aspf`, `p`, `sp`, `pct`, `rua`), Appendix C (the
//! report's fields); RFC 9990 (aggregate reporting, which obsoletes RFC 7489
//! for reports: no `pct` in the report, `testing` instead).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Identifier alignment mode (`adkim=` / `aspf=`, RFC 7489 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alignment {
    /// `r` (the default).
    Relaxed,
    /// `s`.
    Strict,
}

/// A policy (`p=`, `sp=`) or what we did with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Delivered as usual.
    None,
    /// Delivered to quarantine (spam folder, held).
    Quarantine,
    /// Rejected during the SMTP session.
    Reject,
}

/// Why the disposition differs from the published policy (RFC 7489
/// Appendix C `PolicyOverrideType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyOverride {
    /// The message was relayed through a known forwarder.
    Forwarded,
    /// `pct=` below 100 and this message was not sampled.
    SampledOut,
    /// A forwarder we trust (e.g. a valid ARC seal from a trusted sealer).
    TrustedForwarder,
    /// A mailing list.
    MailingList,
    /// A local rule (per-domain override).
    LocalPolicy,
    /// Anything else; the comment says what.
    Other,
}

/// The DMARC record as published, as far as the report repeats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Published {
    /// `adkim=`.
    pub adkim: Alignment,
    /// `aspf=`.
    pub aspf: Alignment,
    /// `p=`.
    pub p: Disposition,
    /// `sp=` (`p` when absent).
    pub sp: Disposition,
    /// `pct=` (100 when absent).
    pub pct: u8,
}

/// One evaluated message (or rejected transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// When, in Unix seconds (UTC day = which report).
    pub time: i64,
    /// The connecting client's address.
    pub source_ip: IpAddr,
    /// RFC 5322.From domain (an address is reduced to its domain).
    pub header_from: String,
    /// RFC 5321.MailFrom domain (empty for the null path: the HELO domain
    /// is then what SPF checked; put that here).
    pub envelope_from: String,
    /// RFC 5321.RcptTo domain, if known and wanted in reports.
    #[serde(default)]
    pub envelope_to: Option<String>,
    /// The domain where the DMARC record was found: the report is for it.
    pub policy_domain: String,
    /// The record's policy.
    pub published: Published,
    /// The record's `rua=` URIs, raw (`mailto:dmarc@example.com!10m`).
    pub rua: Vec<String>,
    /// What we did.
    pub disposition: Disposition,
    /// Whether an aligned DKIM signature passed.
    pub dkim_aligned: bool,
    /// Whether SPF passed for an aligned domain.
    pub spf_aligned: bool,
    /// Why `disposition` differs from the policy, with a comment.
    #[serde(default)]
    pub override_reason: Option<(PolicyOverride, String)>,
    /// Each DKIM signature: (domain, selector, result word: `pass`, `fail`,
    /// `none`, `policy`, `neutral`, `temperror`, `permerror`).
    #[serde(default)]
    pub dkim: Vec<(String, String, String)>,
    /// Each SPF check: (domain, scope `helo`|`mfrom`, result word: `pass`,
    /// `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`).
    #[serde(default)]
    pub spf: Vec<(String, String, String)>,
}

impl ReportRecord {
    /// Whether this record asks for aggregate reports (has a `rua=` URI).
    pub fn wants_report(&self) -> bool {
        self.rua.iter().any(|u| !u.trim().is_empty())
    }

    /// Lower-cases the domains (and result words) and reduces addresses to
    /// their domain, so that rows group as the report means them (RFC 7489
    /// Appendix C: the identifiers are domains).
    pub fn normalize(&mut self) {
        self.header_from = domain_of(&self.header_from);
        self.envelope_from = domain_of(&self.envelope_from);
        self.envelope_to = self.envelope_to.as_deref().map(domain_of);
        self.policy_domain = domain_of(&self.policy_domain);
        for (domain, _, result) in self.dkim.iter_mut().chain(self.spf.iter_mut()) {
            *domain = domain.trim_end_matches('.').to_ascii_lowercase();
            *result = result.to_ascii_lowercase();
        }
    }
}

/// `user@Example.COM.` → `example.com`; a bare domain is lower-cased.
pub(crate) fn domain_of(s: &str) -> String {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>');
    let d = s.rsplit_once('@').map_or(s, |(_, d)| d);
    d.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_of_reduces_addresses() {
        assert_eq!(domain_of("Alice@Example.COM"), "example.com");
        assert_eq!(domain_of("<a@b.example.>"), "b.example");
        assert_eq!(domain_of("example.org"), "example.org");
        assert_eq!(domain_of(""), "");
    }
}
