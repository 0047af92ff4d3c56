//! What the gateway does with a message's SPF and DMARC verdicts: the
//! per-mail-flow-policy actions of issue 10 (ESA "SPF/SIDF verification" and
//! "DMARC verification" settings), decided over verdict facts the session
//! supplies. Pure: the verification itself (DNS, cryptography) is
//! `postern_auth`'s; this module never sees a message.
//!
//! Order of the decision (first that applies wins):
//! 1. an operator **override** for the author (`From:`) or envelope domain, or a
//!    valid **ARC chain sealed last by a trusted sealer** (RFC 8617 §7.2), turns
//!    a DMARC/SPF failure into "accept" with the reason logged and reported
//!    (DMARC aggregate `<reason>`: `local_policy` / `trusted_forwarder`);
//! 2. a **temporary** error (a DNS timeout) in a check that could decide:
//!    `451 4.7.x`, never a `5xx` (RFC 7208 §8.6, RFC 7489 §6.6.2);
//! 3. DMARC `fail` under `p=reject` / `p=quarantine` (the `pct` sample applied
//!    by the verifier, §6.6.4): the policy's `dmarc_reject` /
//!    `dmarc_quarantine` action;
//! 4. SPF `fail` for MAIL FROM: the policy's `spf_fail` action.
//!
//! # Security
//! DMARC is what stops anyone spoofing the protected domain's `From:` to our
//! users; the defaults enforce it (`p=reject` → `550 5.7.1`). A DNS failure
//! never rejects permanently, so an attacker who can slow DNS can delay mail
//! but not make us bounce it. Overrides name domains, not IPs, and every use
//! is logged with its reason.
//!
//! # Standards
//! RFC 7208 §8.4 (SPF fail: `550`), §8.6 (temperror: `451`); RFC 7372 §3.2
//! (`X.7.23` SPF validation failed, `X.7.24` SPF validation error); RFC 7489
//! §6.6.2 (temperror), §6.6.4 (pct), §7.2.1 (override reasons), §10 (DMARC
//! rejection `550 5.7.1`); RFC 8617 §7.2 (ARC as input to local policy);
//! RFC 3463 X.7.1.

use postern_proto::{EnhancedCode, Reply};

/// An SPF result (RFC 7208 §2.6), as far as policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfOutcome {
    /// `pass`.
    Pass,
    /// `fail`: the domain says this host is not allowed.
    Fail,
    /// `softfail`, `neutral`, `none`.
    Weak,
    /// `temperror`: DNS did not answer.
    TempError,
    /// `permerror`: the record is broken.
    PermError,
}

/// A DMARC result (RFC 7489 §11.2), as far as policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcOutcome {
    /// Aligned SPF or DKIM pass.
    Pass,
    /// Neither aligned: the domain's policy applies.
    Fail,
    /// No record, or DMARC did not apply.
    None,
    /// DNS did not answer.
    TempError,
    /// Broken record (treated as no policy: RFC 7489 §6.6.3).
    PermError,
}

/// The DMARC policy that applies (`p=` or `sp=`), after `pct` sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcRequest {
    /// `p=none` (monitoring), or sampled out by `pct`.
    None,
    /// `p=quarantine`.
    Quarantine,
    /// `p=reject`.
    Reject,
}

/// The verdicts of one message, as facts for [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFacts {
    /// SPF for MAIL FROM (or the HELO identity for `<>`); `None` when not checked.
    pub spf: Option<SpfOutcome>,
    /// The domain SPF checked (for the reply text).
    pub spf_domain: String,
    /// DMARC; `None` when not checked.
    pub dmarc: Option<DmarcOutcome>,
    /// What the author domain asks for on failure (after `pct`).
    pub dmarc_request: DmarcRequest,
    /// The `From:` domain (RFC 5322), lower case.
    pub from_domain: String,
    /// The MAIL FROM domain (RFC 5321), lower case; empty for `<>`.
    pub mail_from_domain: String,
    /// The ARC chain validated (RFC 8617 `arc=pass`).
    pub arc_pass: bool,
    /// The `d=` of the newest ARC-Seal, lower case, when the chain passed
    /// and that sealer's own `ARC-Authentication-Results` said `dmarc=pass`.
    pub arc_last_sealer: Option<String>,
    /// The message has several `From:` fields or several author domains
    /// (RFC 5322 §3.6 allows one field; RFC 7489 §6.6.1): which domain the
    /// reader sees is the client's choice, so DMARC cannot vouch for it.
    pub ambiguous_author: bool,
}

/// What to do with SPF `fail` (ESA: "SPF fail: reject / tag / accept").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfFailAction {
    /// `550 5.7.23`.
    Reject,
    /// Accept and mark the message (`X-Postern-Auth-Warning:`).
    Tag,
    /// Accept; the verdict is only in `Authentication-Results:`.
    Accept,
}

/// What to do with a DMARC failure whose domain asks for reject/quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcFailAction {
    /// `550 5.7.1` at end of data.
    Reject,
    /// Accept and hold for review (the queue's hold until named quarantines exist).
    Quarantine,
    /// Accept and mark the message.
    Tag,
    /// Accept; the verdict is only in `Authentication-Results:`.
    Accept,
}

/// What to do with a temporary verification error that could decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempErrorAction {
    /// `451 4.7.x`: the client retries later (default).
    TempFail,
    /// Accept as if the check had not run.
    Accept,
}

/// When SPF for MAIL FROM is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfStage {
    /// At `MAIL FROM`: a `reject` is answered before DATA (saves bandwidth;
    /// no ARC/DMARC override can apply).
    Mail,
    /// At end of data, with DKIM, ARC and DMARC (default).
    Data,
}

/// A mail-flow policy's authentication actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthActions {
    /// SPF `fail` (default: tag).
    pub spf_fail: SpfFailAction,
    /// DMARC fail under `p=reject` (default: reject).
    pub dmarc_reject: DmarcFailAction,
    /// DMARC fail under `p=quarantine` (default: quarantine).
    pub dmarc_quarantine: DmarcFailAction,
    /// A DNS failure that could decide (default: tempfail).
    pub temperror: TempErrorAction,
    /// When SPF is checked (default: end of data).
    pub spf_at: SpfStage,
}

impl Default for AuthActions {
    fn default() -> Self {
        Self {
            spf_fail: SpfFailAction::Tag,
            dmarc_reject: DmarcFailAction::Reject,
            dmarc_quarantine: DmarcFailAction::Quarantine,
            temperror: TempErrorAction::TempFail,
            spf_at: SpfStage::Data,
        }
    }
}

/// An operator's exception: failures for this domain (and its subdomains)
/// are accepted, with the reason logged (mailing lists, forwarders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOverride {
    /// The domain, lower case, without a trailing dot.
    pub domain: String,
    /// Why (logged, and reported in DMARC aggregate reports).
    pub reason: String,
}

/// Settings shared by every policy: overrides and trusted ARC sealers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthExceptions {
    /// Per-domain overrides.
    pub overrides: Vec<AuthOverride>,
    /// ARC sealers whose valid chain overrides a DMARC/SPF failure (RFC 8617 §7.2).
    pub trusted_arc_sealers: Vec<String>,
}

/// Why a failure was accepted anyway (RFC 7489 Appendix C `PolicyOverrideType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideReason {
    /// An operator override (`local_policy`).
    LocalPolicy {
        /// The domain matched.
        domain: String,
        /// The operator's reason.
        reason: String,
    },
    /// A valid ARC chain from a trusted sealer (`trusted_forwarder`).
    TrustedForwarder {
        /// The sealer's domain.
        sealer: String,
    },
}

impl OverrideReason {
    /// The RFC 7489 Appendix C `PolicyOverrideType` word.
    pub fn report_type(&self) -> &'static str {
        match self {
            OverrideReason::LocalPolicy { .. } => "local_policy",
            OverrideReason::TrustedForwarder { .. } => "trusted_forwarder",
        }
    }

    /// One line for logs.
    pub fn describe(&self) -> String {
        match self {
            OverrideReason::LocalPolicy { domain, reason } => {
                format!("override for {domain}: {reason}")
            }
            OverrideReason::TrustedForwarder { sealer } => {
                format!("valid ARC chain sealed by trusted forwarder {sealer}")
            }
        }
    }
}

/// The decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDisposition {
    /// Accept as is.
    Accept,
    /// Accept and add `X-Postern-Auth-Warning: <text>`.
    Tag(String),
    /// Accept and hold for review, with the reason.
    Quarantine(String),
    /// Refuse with this reply (`5xx`).
    Reject(Reply),
    /// Refuse for now (`4xx`).
    TempFail(Reply),
}

impl AuthDisposition {
    /// The word in logs and DMARC reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthDisposition::Accept => "accept",
            AuthDisposition::Tag(_) => "tag",
            AuthDisposition::Quarantine(_) => "quarantine",
            AuthDisposition::Reject(_) => "reject",
            AuthDisposition::TempFail(_) => "tempfail",
        }
    }
}

/// `550 5.7.23` (RFC 7372 §3.2): SPF says the host may not send for the domain.
pub fn spf_fail_reply(domain: &str) -> Reply {
    Reply::new(
        550,
        Some(EnhancedCode::new(5, 7, 23)),
        format!(
            "SPF validation failed: {domain} does not designate this host as a permitted sender"
        ),
    )
}

/// `451 4.7.24` (RFC 7372 §3.2): SPF could not be evaluated (DNS).
pub fn spf_temperror_reply(domain: &str) -> Reply {
    Reply::new(
        451,
        Some(EnhancedCode::new(4, 7, 24)),
        format!("SPF validation error for {domain}: DNS lookup failed, try again later"),
    )
}

/// `550 5.7.1` (RFC 7489 §10): the author domain's DMARC policy is reject.
pub fn dmarc_reject_reply(domain: &str) -> Reply {
    Reply::new(
        550,
        Some(EnhancedCode::new(5, 7, 1)),
        format!("Message rejected by the DMARC policy of {domain}: not authenticated as {domain}"),
    )
}

/// `451 4.7.0`: DMARC could not be evaluated (DNS). RFC 3463/7372 have no
/// DMARC-specific code; X.7.0 is "other or undefined security status", with
/// the cause in the text.
pub fn dmarc_temperror_reply(domain: &str) -> Reply {
    Reply::new(
        451,
        Some(EnhancedCode::new(4, 7, 0)),
        format!("DMARC evaluation for {domain} failed: DNS lookup failed, try again later"),
    )
}

/// Whether `domain` is `parent` or below it (both lower case).
fn within(domain: &str, parent: &str) -> bool {
    domain == parent
        || domain
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The override that applies, if any (operator overrides first).
fn override_for(facts: &AuthFacts, exceptions: &AuthExceptions) -> Option<OverrideReason> {
    // The envelope domain counts only when SPF vouched for it: anyone can
    // write any MAIL FROM (an override for a list must not open DMARC for
    // every From domain to whoever names the list in MAIL FROM).
    let mail_from = (facts.spf == Some(SpfOutcome::Pass)).then_some(&facts.mail_from_domain);
    for o in &exceptions.overrides {
        for d in std::iter::once(&facts.from_domain).chain(mail_from) {
            if !d.is_empty() && within(d, &o.domain) {
                return Some(OverrideReason::LocalPolicy {
                    domain: o.domain.clone(),
                    reason: o.reason.clone(),
                });
            }
        }
    }
    if facts.arc_pass
        && let Some(sealer) = &facts.arc_last_sealer
        && exceptions
            .trusted_arc_sealers
            .iter()
            .any(|t| within(sealer, t))
    {
        return Some(OverrideReason::TrustedForwarder {
            sealer: sealer.clone(),
        });
    }
    None
}

/// The decision for a message at end of data.
pub fn decide(
    actions: AuthActions,
    exceptions: &AuthExceptions,
    facts: &AuthFacts,
) -> (AuthDisposition, Option<OverrideReason>) {
    if facts.ambiguous_author && facts.dmarc.is_some() {
        return (ambiguous_author(actions), None);
    }
    let dmarc_fail = facts.dmarc == Some(DmarcOutcome::Fail);
    let spf_fail = facts.spf == Some(SpfOutcome::Fail);
    if (dmarc_fail || spf_fail)
        && let Some(reason) = override_for(facts, exceptions)
    {
        return (AuthDisposition::Accept, Some(reason));
    }
    if let Some(d) = dmarc_decision(actions, facts) {
        return (d, None);
    }
    (spf_decision(actions, facts), None)
}

/// Several authors: treated like a DMARC failure under `p=reject` (the
/// strictest reading of RFC 7489 §6.6.1: every author domain would have to
/// pass, and we cannot tell which one the reader trusts).
fn ambiguous_author(actions: AuthActions) -> AuthDisposition {
    let why = "several From: fields or author domains (RFC 7489 §6.6.1)";
    match actions.dmarc_reject {
        DmarcFailAction::Reject => AuthDisposition::Reject(Reply::new(
            550,
            Some(EnhancedCode::new(5, 7, 1)),
            "Message rejected: it must have exactly one From: field with one author domain",
        )),
        DmarcFailAction::Quarantine => AuthDisposition::Quarantine(why.to_owned()),
        DmarcFailAction::Tag => AuthDisposition::Tag(why.to_owned()),
        DmarcFailAction::Accept => AuthDisposition::Accept,
    }
}

fn dmarc_decision(actions: AuthActions, facts: &AuthFacts) -> Option<AuthDisposition> {
    let domain = &facts.from_domain;
    match facts.dmarc? {
        DmarcOutcome::TempError if actions.temperror == TempErrorAction::TempFail => {
            Some(AuthDisposition::TempFail(dmarc_temperror_reply(domain)))
        }
        DmarcOutcome::Fail => {
            let action = match facts.dmarc_request {
                DmarcRequest::Reject => actions.dmarc_reject,
                DmarcRequest::Quarantine => actions.dmarc_quarantine,
                DmarcRequest::None => return None,
            };
            let why = format!(
                "DMARC fail for {domain} (p={})",
                match facts.dmarc_request {
                    DmarcRequest::Reject => "reject",
                    _ => "quarantine",
                }
            );
            Some(match action {
                DmarcFailAction::Reject => AuthDisposition::Reject(dmarc_reject_reply(domain)),
                DmarcFailAction::Quarantine => AuthDisposition::Quarantine(why),
                DmarcFailAction::Tag => AuthDisposition::Tag(why),
                DmarcFailAction::Accept => AuthDisposition::Accept,
            })
        }
        DmarcOutcome::Pass
        | DmarcOutcome::None
        | DmarcOutcome::PermError
        | DmarcOutcome::TempError => None,
    }
}

/// The SPF part alone (also what `spf_at = "mail"` answers at MAIL FROM).
pub fn spf_decision(actions: AuthActions, facts: &AuthFacts) -> AuthDisposition {
    let domain = &facts.spf_domain;
    match facts.spf {
        Some(SpfOutcome::Fail) => match actions.spf_fail {
            SpfFailAction::Reject => AuthDisposition::Reject(spf_fail_reply(domain)),
            SpfFailAction::Tag => AuthDisposition::Tag(format!("SPF fail for {domain}")),
            SpfFailAction::Accept => AuthDisposition::Accept,
        },
        // A temporary error only matters when it could have been a fail we
        // act on: with spf_fail = accept, nothing waits for DNS.
        Some(SpfOutcome::TempError)
            if actions.temperror == TempErrorAction::TempFail
                && actions.spf_fail == SpfFailAction::Reject =>
        {
            AuthDisposition::TempFail(spf_temperror_reply(domain))
        }
        _ => AuthDisposition::Accept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AuthFacts {
        AuthFacts {
            spf: Some(SpfOutcome::Pass),
            spf_domain: "sender.example".into(),
            dmarc: Some(DmarcOutcome::Pass),
            dmarc_request: DmarcRequest::Reject,
            from_domain: "sender.example".into(),
            mail_from_domain: "sender.example".into(),
            arc_pass: false,
            arc_last_sealer: None,
            ambiguous_author: false,
        }
    }

    fn code(d: &AuthDisposition) -> Option<(u16, String)> {
        match d {
            AuthDisposition::Reject(r) | AuthDisposition::TempFail(r) => Some((
                r.code,
                r.enhanced.map(|e| e.to_string()).unwrap_or_default(),
            )),
            _ => None,
        }
    }

    #[test]
    fn pass_is_accepted() {
        let (d, o) = decide(AuthActions::default(), &AuthExceptions::default(), &facts());
        assert_eq!(d, AuthDisposition::Accept);
        assert!(o.is_none());
    }

    #[test]
    fn dmarc_reject_is_550_5_7_1_by_default() {
        let mut f = facts();
        f.dmarc = Some(DmarcOutcome::Fail);
        let (d, _) = decide(AuthActions::default(), &AuthExceptions::default(), &f);
        assert_eq!(code(&d), Some((550, "5.7.1".into())));
    }

    #[test]
    fn dmarc_quarantine_holds_by_default_and_none_accepts() {
        let mut f = facts();
        f.dmarc = Some(DmarcOutcome::Fail);
        f.dmarc_request = DmarcRequest::Quarantine;
        let (d, _) = decide(AuthActions::default(), &AuthExceptions::default(), &f);
        assert!(matches!(d, AuthDisposition::Quarantine(_)), "{d:?}");
        f.dmarc_request = DmarcRequest::None;
        let (d, _) = decide(AuthActions::default(), &AuthExceptions::default(), &f);
        assert_eq!(
            d,
            AuthDisposition::Accept,
            "p=none or sampled out: monitor only"
        );
    }

    #[test]
    fn configured_actions_apply() {
        let mut f = facts();
        f.dmarc = Some(DmarcOutcome::Fail);
        let actions = AuthActions {
            dmarc_reject: DmarcFailAction::Quarantine,
            ..AuthActions::default()
        };
        let (d, _) = decide(actions, &AuthExceptions::default(), &f);
        assert!(matches!(d, AuthDisposition::Quarantine(_)));
        let actions = AuthActions {
            dmarc_reject: DmarcFailAction::Tag,
            ..AuthActions::default()
        };
        let (d, _) = decide(actions, &AuthExceptions::default(), &f);
        assert!(matches!(d, AuthDisposition::Tag(_)));
    }

    #[test]
    fn temperror_is_never_a_5xx() {
        let mut f = facts();
        f.dmarc = Some(DmarcOutcome::TempError);
        let (d, _) = decide(AuthActions::default(), &AuthExceptions::default(), &f);
        assert_eq!(code(&d), Some((451, "4.7.0".into())));
        let accept = AuthActions {
            temperror: TempErrorAction::Accept,
            ..AuthActions::default()
        };
        assert_eq!(
            decide(accept, &AuthExceptions::default(), &f).0,
            AuthDisposition::Accept
        );
        // SPF temperror matters only where SPF fail would reject.
        let mut f = facts();
        f.dmarc = Some(DmarcOutcome::None);
        f.spf = Some(SpfOutcome::TempError);
        assert_eq!(
            decide(AuthActions::default(), &AuthExceptions::default(), &f).0,
            AuthDisposition::Accept
        );
        let reject = AuthActions {
            spf_fail: SpfFailAction::Reject,
            ..AuthActions::default()
        };
        let (d, _) = decide(reject, &AuthExceptions::default(), &f);
        assert_eq!(code(&d), Some((451, "4.7.24".into())));
    }

    #[test]
    fn several_authors_are_refused_like_dmarc_reject() {
        let mut f = facts();
        f.ambiguous_author = true;
        let (d, _) = decide(AuthActions::default(), &AuthExceptions::default(), &f);
        assert_eq!(code(&d), Some((550, "5.7.1".into())));
        f.dmarc = None;
        assert_eq!(
            decide(AuthActions::default(), &AuthExceptions::default(), &f).0,
            AuthDisposition::Accept,
            "not when DMARC is off for the policy"
        );
    }

    #[test]
    fn spf_fail_actions() {
        let mut f = facts();
        f.dmarc = Some(DmarcOutcome::None);
        f.spf = Some(SpfOutcome::Fail);
        let (d, _) = decide(AuthActions::default(), &AuthExceptions::default(), &f);
        assert!(matches!(d, AuthDisposition::Tag(_)), "default tags");
        let reject = AuthActions {
            spf_fail: SpfFailAction::Reject,
            ..AuthActions::default()
        };
        let (d, _) = decide(reject, &AuthExceptions::default(), &f);
        assert_eq!(code(&d), Some((550, "5.7.23".into())));
    }

    #[test]
    fn overrides_and_trusted_arc_sealers() {
        let mut f = facts();
        f.dmarc = Some(DmarcOutcome::Fail);
        f.from_domain = "news.list.example".into();
        let ex = AuthExceptions {
            overrides: vec![AuthOverride {
                domain: "list.example".into(),
                reason: "mailing list rewrites the subject".into(),
            }],
            trusted_arc_sealers: vec!["forwarder.example".into()],
        };
        let (d, o) = decide(AuthActions::default(), &ex, &f);
        assert_eq!(d, AuthDisposition::Accept);
        assert_eq!(o.map(|o| o.report_type()), Some("local_policy"));

        f.from_domain = "sender.example".into();
        f.mail_from_domain = "sender.example".into();
        f.arc_pass = true;
        f.arc_last_sealer = Some("mx.forwarder.example".into());
        let (d, o) = decide(AuthActions::default(), &ex, &f);
        assert_eq!(d, AuthDisposition::Accept);
        assert_eq!(o.map(|o| o.report_type()), Some("trusted_forwarder"));

        // An override for the envelope domain counts only when SPF passed.
        let mut g = facts();
        g.dmarc = Some(DmarcOutcome::Fail);
        g.from_domain = "bank.example".into();
        g.mail_from_domain = "list.example".into();
        g.spf = Some(SpfOutcome::Fail);
        assert!(matches!(
            decide(AuthActions::default(), &ex, &g).0,
            AuthDisposition::Reject(_)
        ));
        g.spf = Some(SpfOutcome::Pass);
        assert_eq!(
            decide(AuthActions::default(), &ex, &g).0,
            AuthDisposition::Accept
        );

        // A broken chain, or an untrusted sealer, does not help.
        f.arc_pass = false;
        assert!(matches!(
            decide(AuthActions::default(), &ex, &f).0,
            AuthDisposition::Reject(_)
        ));
        f.arc_pass = true;
        f.arc_last_sealer = Some("evilforwarder.example".into());
        assert!(matches!(
            decide(AuthActions::default(), &ex, &f).0,
            AuthDisposition::Reject(_)
        ));
    }
}
