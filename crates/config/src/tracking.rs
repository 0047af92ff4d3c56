//! `[tracking]`: the message tracking store, from the file to
//! `postern_trackdb::TrackingSettings`.
//!
//! ```toml
//! [tracking]
//! enabled = true                               # default: true when there is a mail log
//! database = "/var/lib/postern/tracking.db"   # default <data_dir>/tracking.db
//! retention = "30d"                            # default; "0" keeps every event
//! subjects = false                             # default: subjects are not recorded
//! ```
//!
//! # Security
//! Parses operator input. Subjects are personal data: they are recorded
//! only when `subjects = true` (the mail log and the index then hold them).

use std::path::Path;
use std::time::Duration;

use postern_trackdb::TrackingSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;

/// Longest retention accepted (ten years).
const RETENTION_MAX_DAYS: u64 = 3650;

/// `[tracking]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawTracking {
    pub enabled: Option<Spanned<bool>>,
    pub database: Option<Spanned<String>>,
    pub retention: Option<Spanned<String>>,
    pub subjects: Option<Spanned<bool>>,
}

/// Builds the tracking settings; `mail_log` is `[delivery] mail_log` (the
/// index reads it: no mail log, no tracking).
pub(crate) fn build(
    raw: Option<Spanned<RawTracking>>,
    data_dir: &Path,
    mail_log: Option<&Path>,
    cx: &mut Ctx<'_>,
) -> Result<TrackingSettings, ConfigError> {
    let mut s = TrackingSettings::new(data_dir);
    s.enabled = mail_log.is_some();
    let r = raw.map(Spanned::into_inner).unwrap_or_default();
    if let Some(v) = &r.enabled {
        if *v.get_ref() && mail_log.is_none() {
            return Err(cx.error(
                v.span(),
                "tracking.enabled",
                "the tracking store indexes the mail log: set [delivery] mail_log (true or a path), \
                 or leave tracking off",
            ));
        }
        s.enabled = *v.get_ref();
    }
    if let Some(v) = &r.database {
        if v.get_ref().trim().is_empty() {
            return Err(cx.error(v.span(), "tracking.database", "must not be empty"));
        }
        s.database = crate::build::resolve(cx.base_dir, v.get_ref());
    }
    if let Some(v) = &r.retention {
        let text = v.get_ref().trim();
        let d = if text == "0" {
            Duration::ZERO
        } else {
            crate::units::parse_duration(text).map_err(|e| {
                cx.error(
                    v.span(),
                    "tracking.retention",
                    format!("{e}; allowed: a duration in whole days (\"30d\", \"52w\"), or \"0\" to keep every event"),
                )
            })?
        };
        let days = d.as_secs() / 86_400;
        if d.as_secs() % 86_400 != 0 || days > RETENTION_MAX_DAYS {
            return Err(cx.error(
                v.span(),
                "tracking.retention",
                format!(
                    "must be whole days, at most {RETENTION_MAX_DAYS}d (\"30d\"), or \"0\" to keep every event"
                ),
            ));
        }
        s.retention_days = u32::try_from(days).unwrap_or(u32::MAX);
    }
    if let Some(v) = &r.subjects {
        s.subjects = *v.get_ref();
    }
    if s.enabled && s.retention_days == 0 {
        cx.warn(
            r.retention.as_ref().map(Spanned::span),
            "tracking.retention",
            "\"0\": events are never pruned and the database grows without end",
        );
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::test_support::load;
    use std::path::Path;

    #[test]
    fn defaults_follow_the_mail_log() {
        let c = load("").unwrap().config;
        assert_eq!(c.tracking.enabled, c.delivery.mail_log.is_some());
        assert_eq!(
            c.tracking.database,
            Path::new("/var/lib/postern/tracking.db")
        );
        assert_eq!(c.tracking.retention_days, 30);
        assert!(!c.tracking.subjects);
        let c = load("[delivery]\nmail_log = false\n").unwrap().config;
        assert!(!c.tracking.enabled);
    }

    #[test]
    fn keys() {
        let c = load(
            "[delivery]\nmail_log = true\n[tracking]\ndatabase = \"t.db\"\nretention = \"7d\"\nsubjects = true\n",
        )
        .unwrap()
        .config;
        assert!(c.tracking.enabled);
        assert_eq!(c.tracking.database, Path::new("/etc/postern/t.db"));
        assert_eq!(c.tracking.retention_days, 7);
        assert!(c.tracking.subjects);
        let l = load("[delivery]\nmail_log = true\n[tracking]\nretention = \"0\"\n").unwrap();
        assert_eq!(l.config.tracking.retention_days, 0);
        assert!(
            l.warnings
                .iter()
                .any(|w| w.to_string().contains("tracking.retention")),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn errors_name_the_place() {
        let err = |extra: &str| load(extra).unwrap_err().to_string();
        let e = err("[delivery]\nmail_log = false\n[tracking]\nenabled = true\n");
        assert!(
            e.contains(":14:11: tracking.enabled: the tracking store indexes the mail log"),
            "{e}"
        );
        let e = err("[tracking]\nretention = \"36h\"\n");
        assert!(
            e.contains(":12:13: tracking.retention: must be whole days"),
            "{e}"
        );
        let e = err("[tracking]\nretention = \"soon\"\n");
        assert!(e.contains("tracking.retention:"), "{e}");
        let e = err("[tracking]\nindex = 1\n");
        assert!(e.contains("tracking.index: unknown key"), "{e}");
    }
}
