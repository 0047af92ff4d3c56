//! `[[quarantine]]`: named quarantines, from the file to
//! `postern_spool::Quarantines` (in `DeliverySettings::quarantines`).
//!
//! ```toml
//! [[quarantine]]
//! name = "attachments"          # [a-z0-9_-], ≤ 64; policy, virus, spam are built in (redefine to change them)
//! retention = "7d"              # from receipt; at least 1h, at most 365d
//! on_expiry = "delete"          # or "release" (into delivery)
//! description = "executables from outside"
//! ```
//!
//! # Security
//! Names end up in file-backed envelopes, mail-log events and CLI arguments:
//! identifiers only.

use std::collections::BTreeSet;
use std::time::Duration;

use postern_spool::{OnExpiry, QuarantineSpec, Quarantines};
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;
use crate::raw::{Choice, Dur, Pick};

impl Choice for OnExpiry {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("delete", Self::Delete), ("release", Self::Release)];
}

/// `[[quarantine]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawQuarantine {
    pub name: Spanned<String>,
    pub retention: Option<Spanned<Dur>>,
    pub on_expiry: Option<Spanned<Pick<OnExpiry>>>,
    pub description: Option<Spanned<String>>,
}

/// Whether `s` is a quarantine / dictionary / engine name: `[a-z0-9_-]`,
/// 1–64 octets, starting with a letter or digit.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

const MIN_RETENTION: Duration = Duration::from_hours(1);
const MAX_RETENTION: Duration = Duration::from_hours(365 * 24);

/// The built-in quarantines with the file's additions and changes.
pub(crate) fn build(
    raw: Option<Vec<Spanned<RawQuarantine>>>,
    cx: &Ctx<'_>,
) -> Result<Quarantines, ConfigError> {
    let mut q = Quarantines::default();
    let mut seen = BTreeSet::new();
    for (i, entry) in raw.unwrap_or_default().into_iter().enumerate() {
        let key = format!("quarantine[{i}]");
        let r = entry.into_inner();
        let name = r.name.get_ref().clone();
        if !is_name(&name) {
            return Err(cx.error(
                r.name.span(),
                format!("{key}.name"),
                "must be 1-64 characters of a-z, 0-9, '-' and '_', e.g. \"attachments\"",
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(cx.error(
                r.name.span(),
                format!("{key}.name"),
                format!("quarantine {name:?} is defined twice"),
            ));
        }
        // A built-in keeps what the file does not change; a new one starts
        // at 14 days, delete.
        let mut spec = if q.contains(&name) {
            q.get(&name).clone()
        } else {
            QuarantineSpec {
                retention: Duration::from_hours(14 * 24),
                on_expiry: OnExpiry::Delete,
                description: String::new(),
            }
        };
        if let Some(v) = &r.retention {
            let d = v.get_ref().0;
            if !(MIN_RETENTION..=MAX_RETENTION).contains(&d) {
                return Err(cx.error(
                    v.span(),
                    format!("{key}.retention"),
                    "must be between 1h and 365d",
                ));
            }
            spec.retention = d;
        }
        if let Some(v) = &r.on_expiry {
            spec.on_expiry = v.get_ref().0;
        }
        if let Some(v) = &r.description {
            if v.get_ref().chars().any(char::is_control) {
                return Err(cx.error(
                    v.span(),
                    format!("{key}.description"),
                    "must be one line without control characters",
                ));
            }
            v.get_ref().trim().clone_into(&mut spec.description);
        }
        q.insert(&name, spec);
    }
    Ok(q)
}

/// Checks that `name` (at `span`, under `key`) is a configured quarantine.
pub(crate) fn check_exists(
    q: &Quarantines,
    name: &str,
    span: std::ops::Range<usize>,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<(), ConfigError> {
    if q.contains(name) {
        return Ok(());
    }
    let known: Vec<&str> = q.iter().map(|(n, _)| n).collect();
    Err(cx.error(
        span,
        key,
        format!(
            "no quarantine named {name:?}; configured: {} (add a [[quarantine]] with that name)",
            known.join(", ")
        ),
    ))
}
