//! Mail authentication in the server (issue 10): the verifier and signing
//! keys built from `[authentication]` / `[[dkim]]`, the facts the policy
//! decides on, and the header fields added at end of data.
//!
//! What happens to a message at end of data (`session/mailauth.rs` drives it):
//! 1. **Verify** (when `[authentication] verify` and the client's mail-flow
//!    policy's `spf`/`dkim`/`dmarc` switches say so; never for authenticated
//!    or relay clients, whose mail is ours): SPF for HELO and MAIL FROM,
//!    every DKIM signature, the ARC chain, DMARC — `postern_auth::verify`.
//! 2. **Decide** with the policy's actions (`postern_policy::authentication`):
//!    reject (`550 5.7.1` / `550 5.7.23`), defer (`451 4.7.x`), quarantine
//!    (the message is queued *held*), tag, or accept.
//! 3. **Add** our `Authentication-Results:` (RFC 8601) and, for our own users'
//!    mail, `DKIM-Signature:` fields — into `Envelope::added_headers`, which
//!    delivery sends before the stored body.
//!
//! # Security
//! Incoming `Authentication-Results:` fields that claim our authserv-id are
//! removed before the message is stored (RFC 8601 §5: a forged verdict
//! under our name would be trusted by the mailbox behind us). Verification
//! is bounded: messages larger than `max_verify_size` are not DKIM-verified
//! (said in the header), DNS answers are cached with bounded caches, and
//! every lookup has the `[dns] timeout`.
//!
//! # Standards
//! RFC 8601 (Authentication-Results), RFC 7208 (SPF), RFC 6376 (DKIM),
//! RFC 7489 (DMARC), RFC 8617 (ARC).

use postern_auth::signing::SigningTable;
use postern_auth::verify::{
    AuthResults, DmarcPolicy, DmarcResult, SpfResult, Verifier, VerifierSettings,
};
use postern_policy::authentication::{AuthFacts, DmarcOutcome, DmarcRequest, SpfOutcome};

use crate::settings::AuthenticationSettings;

/// Why mail authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailAuthError {
    /// The verifier (resolver, public-suffix list).
    #[error("[authentication]: {0}")]
    Verifier(#[from] postern_auth::verify::VerifyError),
    /// A signing key.
    #[error("{0}")]
    Signing(#[from] postern_auth::signing::LoadError),
}

/// The verifier and signing keys of the current configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct MailAuth {
    /// `None` when `[authentication] verify` is off.
    pub(crate) verifier: Option<Verifier>,
    /// The `[[dkim]]` keys that sign.
    pub(crate) signing: SigningTable,
}

impl MailAuth {
    pub(crate) fn new(s: &AuthenticationSettings) -> Result<Self, MailAuthError> {
        let verifier = if s.verify {
            Some(Verifier::new(&VerifierSettings {
                nameservers: s.nameservers.clone(),
                timeout: s.dns_timeout,
                public_suffix_list: s.public_suffix_list.clone(),
                ..VerifierSettings::default()
            })?)
        } else {
            None
        };
        Ok(Self {
            verifier,
            signing: SigningTable::load(&s.signing)?,
        })
    }
}

/// The policy's view of a message's verdicts.
pub(crate) fn facts(results: &AuthResults, mail_from: &str) -> AuthFacts {
    let spf = &results.spf.mail_from;
    let dmarc = &results.dmarc;
    let dmarc_outcome = match dmarc.result {
        DmarcResult::Pass => DmarcOutcome::Pass,
        DmarcResult::Fail => DmarcOutcome::Fail,
        DmarcResult::None => DmarcOutcome::None,
        DmarcResult::TempError => DmarcOutcome::TempError,
        DmarcResult::PermError => DmarcOutcome::PermError,
    };
    AuthFacts {
        spf: Some(spf_outcome(spf.result)),
        spf_domain: spf.domain.clone(),
        dmarc: Some(dmarc_outcome),
        dmarc_request: match dmarc.effective_policy() {
            DmarcPolicy::Reject => DmarcRequest::Reject,
            DmarcPolicy::Quarantine => DmarcRequest::Quarantine,
            DmarcPolicy::None => DmarcRequest::None,
        },
        from_domain: dmarc.from_domain.to_ascii_lowercase(),
        mail_from_domain: mail_from
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default(),
        arc_pass: results.arc.result == postern_auth::verify::ArcResult::Pass,
        arc_last_sealer: results.arc.sealers.last().map(|s| s.to_ascii_lowercase()),
    }
}

/// The policy's view of one SPF result.
pub(crate) fn spf_outcome(r: SpfResult) -> SpfOutcome {
    match r {
        SpfResult::Pass => SpfOutcome::Pass,
        SpfResult::Fail => SpfOutcome::Fail,
        SpfResult::SoftFail | SpfResult::Neutral | SpfResult::None => SpfOutcome::Weak,
        SpfResult::TempError => SpfOutcome::TempError,
        SpfResult::PermError => SpfOutcome::PermError,
    }
}

/// `name: value\r\n`, the value folded at whitespace to keep lines under
/// 78 octets where it can (RFC 5322 §2.1.1, §2.2.3).
pub(crate) fn field(name: &str, value: &str) -> String {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if line_len + 1 + word.len() > 78 && line_len > name.len() + 1 {
            out.push_str("\r\n\t");
            line_len = 1;
        } else {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out.push_str("\r\n");
    out
}

/// One line summing up the verdicts, for logs and the transcript.
pub(crate) fn summary(results: &AuthResults) -> String {
    let mut parts = vec![
        format!(
            "spf={} ({})",
            results.spf.mail_from.result.as_str(),
            results.spf.mail_from.domain
        ),
        format!(
            "spf-helo={} ({})",
            results.spf.helo.result.as_str(),
            results.spf.helo.domain
        ),
    ];
    if results.dkim.is_empty() {
        parts.push("dkim=none".into());
    }
    for d in &results.dkim {
        parts.push(format!(
            "dkim={} (d={} s={})",
            d.result.as_str(),
            d.domain,
            d.selector
        ));
    }
    parts.push(format!("arc={}", results.arc.result.as_str()));
    let dm = &results.dmarc;
    if dm.from_domain.is_empty() {
        parts.push(format!("dmarc={}", dm.result.as_str()));
    } else {
        parts.push(format!(
            "dmarc={} (header.from={} p={})",
            dm.result.as_str(),
            dm.from_domain,
            dm.policy.as_str()
        ));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_fold_under_78() {
        let value = "mx.example.net; spf=pass smtp.mailfrom=someone@sender.example; \
                     dkim=pass header.d=sender.example header.s=s2026 header.b=AbCdEfGh; \
                     dmarc=pass header.from=sender.example";
        let f = field("Authentication-Results", value);
        assert!(f.ends_with("\r\n"));
        for line in f.trim_end().split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        let unfolded = f.replace("\r\n\t", " ");
        assert_eq!(unfolded, format!("Authentication-Results: {value}\r\n"));
    }
}
