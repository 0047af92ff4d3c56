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
    /// The ARC sealing key.
    #[error("[authentication] arc_selector: {0}")]
    ArcKey(#[from] postern_auth::KeyError),
}

/// The ARC sealing key and where it seals (`[authentication] arc_domain`).
pub(crate) struct ArcKey {
    pub(crate) settings: crate::settings::ArcSealSettings,
    pub(crate) key: postern_auth::arc_seal::DkimKey,
}

impl std::fmt::Debug for ArcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcKey")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The verifier and signing keys of the current configuration.
#[derive(Debug, Clone)]
pub(crate) struct MailAuth {
    /// `None` when `[authentication] verify` is off.
    pub(crate) verifier: Option<Verifier>,
    /// The `[[dkim]]` keys that sign.
    pub(crate) signing: SigningTable,
    /// Messages held in memory for verification or signing, in KiB
    /// (`[authentication] verify_memory`), shared by all sessions.
    pub(crate) memory: std::sync::Arc<tokio::sync::Semaphore>,
    /// The budget's size in KiB.
    pub(crate) memory_kib: u32,
    /// ARC sealing (RFC 8617), when configured.
    pub(crate) arc: Option<std::sync::Arc<ArcKey>>,
}

impl Default for MailAuth {
    fn default() -> Self {
        Self::with_budget(None, SigningTable::default(), DEFAULT_VERIFY_MEMORY)
    }
}

/// Default `[authentication] verify_memory`: 256 MiB.
pub const DEFAULT_VERIFY_MEMORY: u64 = 256 * 1024 * 1024;

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
        let mut me = Self::with_budget(verifier, SigningTable::load(&s.signing)?, s.verify_memory);
        if let Some(a) = &s.arc_seal {
            let key = postern_auth::load_key(&a.key)?.signing_key()?;
            me.arc = Some(std::sync::Arc::new(ArcKey {
                settings: a.clone(),
                key,
            }));
        }
        Ok(me)
    }

    pub(crate) fn with_budget(
        verifier: Option<Verifier>,
        signing: SigningTable,
        bytes: u64,
    ) -> Self {
        let kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        Self {
            verifier,
            signing,
            memory: std::sync::Arc::new(tokio::sync::Semaphore::new(kib as usize)),
            memory_kib: kib,
            arc: None,
        }
    }
}

/// Whether the ARC set `instance`'s own `ARC-Authentication-Results`
/// recorded `dmarc=pass` (RFC 8617 §4.1.1): a trusted sealer's valid chain
/// overrides our DMARC failure only when the sealer itself saw a pass.
pub(crate) fn sealer_saw_dmarc_pass(message: &[u8], instance: u32) -> bool {
    postern_proto::header_values(message, "ARC-Authentication-Results")
        .iter()
        .any(|v| {
            let mut parts = v.splitn(2, ';');
            let i = parts.next().unwrap_or("").trim();
            let rest = parts.next().unwrap_or("");
            i.strip_prefix("i=")
                .and_then(|n| n.trim().parse::<u32>().ok())
                == Some(instance)
                && rest
                    .split(|c: char| c == ';' || c.is_whitespace())
                    .any(|w| w.eq_ignore_ascii_case("dmarc=pass"))
        })
}

/// The policy's view of a message's verdicts (`message`: the message
/// verified, for the author count and the trusted sealer's own verdict).
pub(crate) fn facts(results: &AuthResults, mail_from: &str, message: Option<&[u8]>) -> AuthFacts {
    let spf = &results.spf.mail_from;
    let dmarc = &results.dmarc;
    let dmarc_outcome = match dmarc.result {
        DmarcResult::Pass => DmarcOutcome::Pass,
        DmarcResult::Fail => DmarcOutcome::Fail,
        DmarcResult::None => DmarcOutcome::None,
        // A temporary failure matters only when the domain asks for action:
        // a known p=none record cannot turn into a refusal.
        DmarcResult::TempError
            if dmarc.published.is_some() && dmarc.policy == DmarcPolicy::None =>
        {
            DmarcOutcome::None
        }
        DmarcResult::TempError => DmarcOutcome::TempError,
        DmarcResult::PermError => DmarcOutcome::PermError,
    };
    let arc_pass = results.arc.result == postern_auth::verify::ArcResult::Pass;
    let newest = u32::try_from(results.arc.sealers.len()).unwrap_or(u32::MAX);
    let arc_last_sealer = results
        .arc
        .sealers
        .last()
        .filter(|_| arc_pass && message.is_some_and(|m| sealer_saw_dmarc_pass(m, newest)))
        .map(|s| s.to_ascii_lowercase());
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
        arc_pass,
        arc_last_sealer,
        ambiguous_author: message.is_some_and(|m| postern_auth::signing::authors(m).is_ambiguous()),
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
    fn trusted_sealer_must_have_seen_a_dmarc_pass() {
        let m = b"ARC-Authentication-Results: i=2; mx.google.com;\r\n dkim=pass; dmarc=pass (p=REJECT) header.from=x.example\r\n\
ARC-Authentication-Results: i=1; a.example; dmarc=fail\r\n\r\nbody\r\n";
        assert!(sealer_saw_dmarc_pass(m, 2));
        assert!(!sealer_saw_dmarc_pass(m, 1));
        assert!(!sealer_saw_dmarc_pass(m, 3));
    }

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
