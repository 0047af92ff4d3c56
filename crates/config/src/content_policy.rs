//! The mail-flow policy's content keys (issue 11): which engines run for the
//! policy's clients and what their verdicts do, into
//! `postern_policy::content::ContentActions`.
//!
//! ```toml
//! [[mail_flow_policy]]
//! name = "ACCEPTED"
//! action = "accept"
//! spam_scan = true                  # ask rspamd ([rspamd]); default true
//! virus_scan = true                 # ask clamd ([clamav]); default true
//! milters = true                    # run the [[milter]]s; default true
//! filters = true                    # run the [filters] rules; default true
//! spam_positive = "quarantine"      # reject | quarantine | drop | tag | accept
//! spam_suspect = "tag"              # reject | quarantine | drop | tag | accept
//! spam_positive_score = 15.0        # optional: the policy's own thresholds
//! spam_suspect_score = 5.0
//! spam_subject_tag = "[SUSPECTED SPAM]"
//! spam_quarantine = "spam"
//! virus_action = "quarantine"       # quarantine | drop | reject
//! virus_quarantine = "virus"
//! rspamd_settings = "inbound"       # optional: rspamd Settings-ID (local.d/settings.conf)
//! ```
//!
//! # Security
//! The subject tag becomes part of a header field: one line, printable, ≤ 64
//! characters. Quarantine names must be configured (`[[quarantine]]`).

use postern_policy::content::{ContentActions, Score, SpamAction, VirusAction};
use postern_spool::Quarantines;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;
use crate::gateway::RawMailFlowPolicy;
use crate::raw::Choice;

impl Choice for SpamAction {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("reject", Self::Reject),
        ("quarantine", Self::Quarantine),
        ("drop", Self::Drop),
        ("tag", Self::Tag),
        ("accept", Self::Accept),
    ];
}

impl Choice for VirusAction {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("quarantine", Self::Quarantine),
        ("drop", Self::Drop),
        ("reject", Self::Reject),
    ];
}

/// The policy's content actions; quarantine names checked against
/// `quarantines` when they are known (`None` after a `[[quarantine]]` error).
pub(crate) fn actions(
    p: &RawMailFlowPolicy,
    key: &str,
    quarantines: Option<&Quarantines>,
    cx: &Ctx<'_>,
) -> Result<ContentActions, ConfigError> {
    let mut a = ContentActions {
        spam_scan: p.spam_scan.unwrap_or(true),
        virus_scan: p.virus_scan.unwrap_or(true),
        milters: p.milters.unwrap_or(true),
        filters: p.filters.unwrap_or(true),
        ..ContentActions::default()
    };
    if let Some(v) = &p.spam_positive {
        a.spam_positive = v.get_ref().0;
    }
    if let Some(v) = &p.spam_suspect {
        a.spam_suspect = v.get_ref().0;
    }
    let score = |v: &Option<Spanned<f64>>, name: &str| -> Result<Option<Score>, ConfigError> {
        match v {
            Some(s) if !s.get_ref().is_finite() || s.get_ref().abs() > 1e6 => Err(cx.error(
                s.span(),
                format!("{key}.{name}"),
                "must be a number like 5.0 (rspamd's score scale)",
            )),
            Some(s) => Ok(Some(Score::from_f64(*s.get_ref()))),
            None => Ok(None),
        }
    };
    a.spam_positive_score = score(&p.spam_positive_score, "spam_positive_score")?;
    a.spam_suspect_score = score(&p.spam_suspect_score, "spam_suspect_score")?;
    if let (Some(pos), Some(sus), Some(v)) = (
        a.spam_positive_score,
        a.spam_suspect_score,
        &p.spam_suspect_score,
    ) && sus > pos
    {
        return Err(cx.error(
            v.span(),
            format!("{key}.spam_suspect_score"),
            format!("must not be above spam_positive_score ({pos})"),
        ));
    }
    if let Some(v) = &p.spam_subject_tag {
        let t = v.get_ref();
        if t.len() > 64 || t.chars().any(char::is_control) {
            return Err(cx.error(
                v.span(),
                format!("{key}.spam_subject_tag"),
                "must be one line of at most 64 characters, e.g. \"[SUSPECTED SPAM]\"",
            ));
        }
        a.spam_subject_tag.clone_from(t);
    }
    if let Some(v) = &p.virus_action {
        a.virus_action = v.get_ref().0;
    }
    if let Some(v) = &p.rspamd_settings {
        // Sent as an HTTP header value: a settings id as rspamd names them.
        let id = v.get_ref().trim();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(cx.error(
                v.span(),
                format!("{key}.rspamd_settings"),
                "an rspamd settings id: 1 to 64 of A-Z a-z 0-9 _ - . (an entry of rspamd's \
                 local.d/settings.conf)",
            ));
        }
        a.rspamd_settings = Some(id.to_owned());
    }
    for (raw, slot, name) in [
        (
            &p.spam_quarantine,
            &mut a.spam_quarantine,
            "spam_quarantine",
        ),
        (
            &p.virus_quarantine,
            &mut a.virus_quarantine,
            "virus_quarantine",
        ),
    ] {
        if let Some(v) = raw {
            if let Some(q) = quarantines {
                crate::quarantine::check_exists(
                    q,
                    v.get_ref(),
                    v.span(),
                    &format!("{key}.{name}"),
                    cx,
                )?;
            }
            slot.clone_from(v.get_ref());
        }
    }
    Ok(a)
}
