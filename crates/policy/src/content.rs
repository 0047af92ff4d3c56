//! Content-engine verdicts → what happens to the message, per mail-flow
//! policy (issue 11): spam from rspamd, viruses from ClamAV, and what an
//! engine failure does. Pure: the smtpd asks the engines and applies the
//! [`EngineDisposition`] returned here (`docs/content-policy.md`).
//!
//! Spam classes follow the ESA's words: *positive* (rspamd `reject`, or a
//! score at or above the policy's `spam_positive_score`), *suspect* (rspamd
//! `add header` / `rewrite subject`, or a score at or above
//! `spam_suspect_score`), *clean*. rspamd's `soft reject` defers (`451
//! 4.7.1`): rspamd asks for it when a rate limit or its own greylisting
//! says so. A policy's own score thresholds win over rspamd's action.
//!
//! # Security
//! A virus is never bounced to the envelope sender (a forged sender would get
//! the virus report: backscatter); the choices are quarantine (default),
//! drop, or reject at end of data (the sending MTA tells its own user).
//! An engine that fails or times out defers by default (`451 4.7.1` / `451
//! 4.3.0`): accepting unscanned mail must be the operator's explicit choice
//! (`on_failure = "accept"`).
//!
//! # Standards
//! RFC 5321 §4.2 (replies), RFC 3463 (enhanced codes: 5.7.1 delivery not
//! authorized; 4.3.0 system error), RFC 7372 (none specific to content).

use postern_proto::{EnhancedCode, Reply};

/// A spam score in hundredths (rspamd reports two decimals), so policies
/// stay comparable (`Eq`) and exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Score(pub i64);

impl Score {
    /// From rspamd's floating-point score (rounded to hundredths; NaN → 0).
    pub fn from_f64(v: f64) -> Score {
        if v.is_nan() {
            return Score(0);
        }
        #[allow(clippy::cast_possible_truncation)] // clamped to ±1e12 first
        Score((v.clamp(-1e12, 1e12) * 100.0).round() as i64)
    }
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

/// The class of a scanned message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamClass {
    /// Spam beyond doubt.
    Positive,
    /// Probably spam: tag it.
    Suspect,
    /// rspamd asked to try later (`soft reject`).
    SoftReject,
    /// Not spam.
    Clean,
}

impl SpamClass {
    /// The word in logs and filters (`spam class is suspect`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpamClass::Positive => "positive",
            SpamClass::Suspect => "suspect",
            SpamClass::SoftReject => "soft-reject",
            SpamClass::Clean => "clean",
        }
    }
}

/// What positive or suspected spam gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamAction {
    /// `550 5.7.1` at end of data.
    Reject,
    /// Accepted into the policy's spam quarantine.
    Quarantine,
    /// Accepted and discarded (logged).
    Drop,
    /// Delivered with the subject tag and `X-Spam-*` fields.
    Tag,
    /// Delivered with `X-Spam-*` fields only.
    Accept,
}

/// What an infected message gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirusAction {
    /// Accepted into the policy's virus quarantine (default).
    Quarantine,
    /// Accepted and discarded (logged).
    Drop,
    /// `554 5.7.1` at end of data: the sending MTA tells its user; we never
    /// send a DSN to a possibly forged sender.
    Reject,
}

/// What an engine failure (refused, timeout, bad reply) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// `451`: the client retries later (default).
    TempFail,
    /// Go on without the engine's verdict (logged as a warning).
    Accept,
}

/// A mail-flow policy's content actions (`[[mail_flow_policy]]` keys
/// `spam_*`, `virus_*`, `milters`, `filters`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // independent switches, one config key each
pub struct ContentActions {
    /// Ask rspamd (when `[rspamd]` is configured). Default on.
    pub spam_scan: bool,
    /// Ask clamd (when `[clamav]` is configured). Default on.
    pub virus_scan: bool,
    /// Run the `[[milter]]`s. Default on.
    pub milters: bool,
    /// Run the `[filters]` rules. Default on.
    pub filters: bool,
    /// Positive spam (default: quarantine).
    pub spam_positive: SpamAction,
    /// Suspected spam (default: tag).
    pub spam_suspect: SpamAction,
    /// A score at or above this is positive, whatever rspamd's action.
    pub spam_positive_score: Option<Score>,
    /// A score at or above this is suspect, whatever rspamd's action.
    pub spam_suspect_score: Option<Score>,
    /// Put before the subject of tagged spam.
    pub spam_subject_tag: String,
    /// The quarantine positive (or suspected) spam goes to.
    pub spam_quarantine: String,
    /// An infected message (default: quarantine).
    pub virus_action: VirusAction,
    /// The quarantine infected messages go to.
    pub virus_quarantine: String,
    /// An rspamd settings profile for this policy's mail (`Settings-ID`:
    /// an id from rspamd's `local.d/settings.conf`); `None`: rspamd's own
    /// choice.
    pub rspamd_settings: Option<String>,
}

impl Default for ContentActions {
    fn default() -> Self {
        Self {
            spam_scan: true,
            virus_scan: true,
            milters: true,
            filters: true,
            spam_positive: SpamAction::Quarantine,
            spam_suspect: SpamAction::Tag,
            spam_positive_score: None,
            spam_suspect_score: None,
            spam_subject_tag: "[SUSPECTED SPAM]".into(),
            spam_quarantine: "spam".into(),
            virus_action: VirusAction::Quarantine,
            virus_quarantine: "virus".into(),
            rspamd_settings: None,
        }
    }
}

/// What the engines' verdicts do to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineDisposition {
    /// Deliver; `subject_tag` is put before the subject when set.
    Deliver {
        /// The subject prefix of tagged spam.
        subject_tag: Option<String>,
    },
    /// Accepted into this quarantine, with the reason.
    Quarantine {
        /// The quarantine's name.
        name: String,
        /// Why (shown by `postern quarantine list`).
        reason: String,
    },
    /// Accepted and discarded, with the reason (logged).
    Drop {
        /// Why.
        reason: String,
    },
    /// Refused (`5xx`) or deferred (`4xx`) at end of data.
    Refuse(Reply),
}

/// The class of rspamd's verdict under `actions`' thresholds.
pub fn classify_spam(rspamd_action: &str, score: Score, actions: &ContentActions) -> SpamClass {
    if let Some(t) = actions.spam_positive_score
        && score >= t
    {
        return SpamClass::Positive;
    }
    if let Some(t) = actions.spam_suspect_score
        && score >= t
    {
        return SpamClass::Suspect;
    }
    let thresholds = actions.spam_positive_score.is_some() || actions.spam_suspect_score.is_some();
    match rspamd_action {
        "soft reject" => SpamClass::SoftReject,
        // The policy's thresholds replace rspamd's classes.
        _ if thresholds => SpamClass::Clean,
        "reject" => SpamClass::Positive,
        "add header" | "rewrite subject" => SpamClass::Suspect,
        // "no action", "greylist" (we greylist ourselves: [greylist]), unknown.
        _ => SpamClass::Clean,
    }
}

/// What spam of `class` gets under `actions`.
pub fn spam_disposition(
    class: SpamClass,
    score: Score,
    actions: &ContentActions,
) -> EngineDisposition {
    let action = match class {
        SpamClass::Clean => return EngineDisposition::Deliver { subject_tag: None },
        SpamClass::SoftReject => {
            return EngineDisposition::Refuse(Reply::new(
                451,
                Some(EnhancedCode::new(4, 7, 1)),
                "Try again later (spam check)",
            ));
        }
        SpamClass::Positive => actions.spam_positive,
        SpamClass::Suspect => actions.spam_suspect,
    };
    let reason = format!("spam ({}, score {score})", class.as_str());
    match action {
        SpamAction::Reject => EngineDisposition::Refuse(Reply::new(
            550,
            Some(EnhancedCode::new(5, 7, 1)),
            "Message rejected as spam",
        )),
        SpamAction::Quarantine => EngineDisposition::Quarantine {
            name: actions.spam_quarantine.clone(),
            reason,
        },
        SpamAction::Drop => EngineDisposition::Drop { reason },
        SpamAction::Tag => EngineDisposition::Deliver {
            subject_tag: Some(actions.spam_subject_tag.clone()),
        },
        SpamAction::Accept => EngineDisposition::Deliver { subject_tag: None },
    }
}

/// What a message infected with `virus` gets under `actions`.
pub fn virus_disposition(virus: &str, actions: &ContentActions) -> EngineDisposition {
    let reason = format!("virus {virus}");
    match actions.virus_action {
        VirusAction::Quarantine => EngineDisposition::Quarantine {
            name: actions.virus_quarantine.clone(),
            reason,
        },
        VirusAction::Drop => EngineDisposition::Drop { reason },
        VirusAction::Reject => EngineDisposition::Refuse(Reply::new(
            554,
            Some(EnhancedCode::new(5, 7, 1)),
            format!("Message rejected: virus found ({})", printable(virus)),
        )),
    }
}

/// What a failed engine means under `on_failure`: `None` = go on unscanned.
pub fn engine_failure(engine: &str, on_failure: OnFailure) -> Option<Reply> {
    match on_failure {
        OnFailure::Accept => None,
        OnFailure::TempFail => Some(Reply::new(
            451,
            Some(EnhancedCode::new(4, 3, 0)),
            format!("Temporary failure: the {engine} check is unavailable, try again later"),
        )),
    }
}

/// A virus name from clamd in a reply: printable ASCII, bounded.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rspamd_actions_map_to_classes_unless_the_policy_sets_thresholds() {
        let a = ContentActions::default();
        let s = Score::from_f64(3.0);
        assert_eq!(classify_spam("reject", s, &a), SpamClass::Positive);
        assert_eq!(classify_spam("add header", s, &a), SpamClass::Suspect);
        assert_eq!(classify_spam("rewrite subject", s, &a), SpamClass::Suspect);
        assert_eq!(classify_spam("soft reject", s, &a), SpamClass::SoftReject);
        assert_eq!(classify_spam("no action", s, &a), SpamClass::Clean);
        assert_eq!(classify_spam("greylist", s, &a), SpamClass::Clean);

        let t = ContentActions {
            spam_positive_score: Some(Score(1000)),
            spam_suspect_score: Some(Score(400)),
            ..ContentActions::default()
        };
        assert_eq!(
            classify_spam("no action", Score::from_f64(10.0), &t),
            SpamClass::Positive
        );
        assert_eq!(
            classify_spam("no action", Score::from_f64(4.0), &t),
            SpamClass::Suspect
        );
        assert_eq!(
            classify_spam("reject", Score::from_f64(3.99), &t),
            SpamClass::Clean
        );
        assert_eq!(
            classify_spam("soft reject", Score::from_f64(1.0), &t),
            SpamClass::SoftReject
        );
    }

    #[test]
    fn dispositions_follow_the_policy() {
        let a = ContentActions::default();
        let s = Score::from_f64(15.0);
        assert_eq!(
            spam_disposition(SpamClass::Positive, s, &a),
            EngineDisposition::Quarantine {
                name: "spam".into(),
                reason: "spam (positive, score 15.00)".into()
            }
        );
        assert_eq!(
            spam_disposition(SpamClass::Suspect, s, &a),
            EngineDisposition::Deliver {
                subject_tag: Some("[SUSPECTED SPAM]".into())
            }
        );
        let EngineDisposition::Refuse(r) = spam_disposition(SpamClass::SoftReject, s, &a) else {
            panic!()
        };
        assert_eq!(r.code, 451);
        let reject = ContentActions {
            spam_positive: SpamAction::Reject,
            virus_action: VirusAction::Reject,
            ..ContentActions::default()
        };
        let EngineDisposition::Refuse(r) = spam_disposition(SpamClass::Positive, s, &reject) else {
            panic!()
        };
        assert_eq!(r.code, 550);
        let EngineDisposition::Refuse(r) = virus_disposition("Eicar\r\n5", &reject) else {
            panic!()
        };
        assert_eq!(r.code, 554);
        assert!(!r.lines.concat().contains('\r'), "{r:?}");
        assert_eq!(
            virus_disposition("Eicar", &a),
            EngineDisposition::Quarantine {
                name: "virus".into(),
                reason: "virus Eicar".into()
            }
        );
        assert_eq!(engine_failure("spam", OnFailure::Accept), None);
        assert_eq!(
            engine_failure("spam", OnFailure::TempFail).unwrap().code,
            451
        );
    }

    #[test]
    fn scores_are_hundredths() {
        assert_eq!(Score::from_f64(5.006).to_string(), "5.01");
        assert_eq!(Score::from_f64(-0.5).to_string(), "-0.50");
        assert_eq!(Score::from_f64(f64::NAN), Score(0));
    }
}
