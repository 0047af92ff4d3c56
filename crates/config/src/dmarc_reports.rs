//! `[dmarc_reports]`: DMARC aggregate reports (RFC 7489 §7.2), from the
//! file to `postern_auth::report::ReportSettings`.
//!
//! ```toml
//! [dmarc_reports]
//! enabled = true                       # default false
//! org_name = "Example Corp"            # required when enabled
//! email = "dmarc-noreply@example.com"  # required when enabled: report sender
//! contact_info = "https://example.com/dmarc"   # optional
//! dir = "/var/lib/postern/dmarc"       # default <data_dir>/dmarc
//! send_at = "01:00"                    # UTC, HH:MM
//! retention = "7d"                     # whole days, at least 1d
//! max_records_per_domain_per_day = 100000
//! ```
//!
//! # Security
//! Parses operator input. `email` becomes a header and the envelope sender:
//! it must be one plain `local@domain` address.

use std::path::Path;
use std::time::Duration;

use postern_auth::report::ReportSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;
use crate::raw::{Count, Dur};

/// `[dmarc_reports]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDmarcReports {
    pub enabled: Option<Spanned<bool>>,
    pub dir: Option<Spanned<String>>,
    pub org_name: Option<Spanned<String>>,
    pub email: Option<Spanned<String>>,
    pub contact_info: Option<Spanned<String>>,
    pub send_at: Option<Spanned<String>>,
    pub retention: Option<Spanned<Dur>>,
    pub max_records_per_domain_per_day: Option<Spanned<Count>>,
}

/// Whether `s` is one plain `local@domain.tld` address.
pub(crate) fn plain_address(s: &str) -> bool {
    s.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty()
            && d.contains('.')
            && !d.contains('@')
            && !d.starts_with('.')
            && !d.ends_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b",<>;:\\\"()[]".contains(&b))
    })
}

/// `HH:MM` → time from midnight.
fn time_of_day(s: &str) -> Option<Duration> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u64 = h.parse().ok().filter(|h| *h < 24)?;
    let m: u64 = m.parse().ok().filter(|m| *m < 60)?;
    Some(Duration::from_secs(h * 3600 + m * 60))
}

/// Builds the settings. `table` is the span of the `[dmarc_reports]` header
/// (for "required" errors).
pub(crate) fn build(
    raw: Option<Spanned<RawDmarcReports>>,
    data_dir: &Path,
    cx: &Ctx<'_>,
) -> Result<ReportSettings, ConfigError> {
    let mut s = ReportSettings::new(data_dir);
    let Some(raw) = raw else {
        return Ok(s);
    };
    let table = raw.span();
    let r = raw.into_inner();
    if let Some(v) = &r.enabled {
        s.enabled = *v.get_ref();
    }
    if let Some(v) = &r.dir {
        if v.get_ref().trim().is_empty() {
            return Err(cx.error(v.span(), "dmarc_reports.dir", "must not be empty"));
        }
        s.dir = crate::build::resolve(cx.base_dir, v.get_ref());
    }
    match &r.org_name {
        Some(v) if v.get_ref().trim().is_empty() || v.get_ref().chars().any(char::is_control) => {
            return Err(cx.error(
                v.span(),
                "dmarc_reports.org_name",
                "must be a non-empty name without control characters, e.g. \"Example Corp\"",
            ));
        }
        Some(v) => v.get_ref().trim().clone_into(&mut s.reporter.org_name),
        None if s.enabled => {
            return Err(cx.error(
                table,
                "dmarc_reports.org_name",
                "required when enabled = true: the name shown in reports, e.g. \"Example Corp\"",
            ));
        }
        None => {}
    }
    match &r.email {
        Some(v) if !plain_address(v.get_ref()) => {
            return Err(cx.error(
                v.span(),
                "dmarc_reports.email",
                "must be one plain address, e.g. \"dmarc-noreply@example.com\"",
            ));
        }
        Some(v) => s.reporter.email.clone_from(v.get_ref()),
        None if s.enabled => {
            return Err(cx.error(
                table,
                "dmarc_reports.email",
                "required when enabled = true: the reports' sender address, \
                 e.g. \"dmarc-noreply@example.com\"",
            ));
        }
        None => {}
    }
    if let Some(v) = &r.contact_info {
        if v.get_ref().chars().any(char::is_control) {
            return Err(cx.error(
                v.span(),
                "dmarc_reports.contact_info",
                "must not contain control characters",
            ));
        }
        s.reporter.contact_info = Some(v.get_ref().clone()).filter(|c| !c.trim().is_empty());
    }
    if let Some(v) = &r.send_at {
        s.send_at = time_of_day(v.get_ref()).ok_or_else(|| {
            cx.error(
                v.span(),
                "dmarc_reports.send_at",
                "must be a UTC time of day HH:MM, 00:00 to 23:59, e.g. \"01:00\"",
            )
        })?;
    }
    if let Some(v) = &r.retention {
        let d = v.get_ref().0;
        let days = d.as_secs() / 86_400;
        if days == 0 || d.as_secs() % 86_400 != 0 || d.subsec_nanos() != 0 {
            return Err(cx.error(
                v.span(),
                "dmarc_reports.retention",
                "must be whole days, at least one, e.g. \"7d\"",
            ));
        }
        s.retention_days = u32::try_from(days).unwrap_or(u32::MAX);
    }
    if let Some(v) = &r.max_records_per_domain_per_day {
        let n = v.get_ref().0;
        if n == 0 {
            return Err(cx.error(
                v.span(),
                "dmarc_reports.max_records_per_domain_per_day",
                "must be at least 1, e.g. 100000",
            ));
        }
        s.limits.max_records_per_domain_per_day = u32::try_from(n).unwrap_or(u32::MAX);
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::test_support::load;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn defaults() {
        let c = load("").unwrap().config;
        let d = &c.dmarc_reports;
        assert!(!d.enabled);
        assert_eq!(d.dir, Path::new("/var/lib/postern/dmarc"));
        assert_eq!(d.send_at, Duration::from_hours(1));
        assert_eq!(d.retention_days, 7);
    }

    #[test]
    fn keys() {
        let c = load(
            "[dmarc_reports]\nenabled = true\norg_name = \"Example Corp\"\n\
             email = \"dmarc@example.com\"\ncontact_info = \"https://example.com/dmarc\"\n\
             dir = \"reports\"\nsend_at = \"23:30\"\nretention = \"14d\"\n\
             max_records_per_domain_per_day = 500\n",
        )
        .unwrap()
        .config;
        let d = &c.dmarc_reports;
        assert!(d.enabled);
        assert_eq!(d.reporter.org_name, "Example Corp");
        assert_eq!(d.reporter.email, "dmarc@example.com");
        assert_eq!(
            d.reporter.contact_info.as_deref(),
            Some("https://example.com/dmarc")
        );
        assert_eq!(d.dir, Path::new("/etc/postern/reports"));
        assert_eq!(d.send_at, Duration::from_mins(23 * 60 + 30));
        assert_eq!(d.retention_days, 14);
        assert_eq!(d.limits.max_records_per_domain_per_day, 500);
    }

    /// The commented block in examples/postern.toml loads once its key lines
    /// are uncommented.
    #[test]
    fn the_example_block_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/postern.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("# [dmarc_reports]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        let block: Vec<&str> = text[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .collect();
        assert_eq!(block.len(), 9, "{block:?}");
        let c = load(&(block.join("\n") + "\n")).unwrap().config;
        let d = &c.dmarc_reports;
        assert!(d.enabled);
        assert_eq!(d.reporter.email, "dmarc-noreply@example.com");
        assert_eq!(d.send_at, Duration::from_hours(1));
        assert_eq!(d.retention_days, 7);
        assert_eq!(d.limits.max_records_per_domain_per_day, 100_000);
    }

    #[test]
    fn errors_name_the_place() {
        let err = |extra: &str| load(extra).unwrap_err().to_string();
        assert_eq!(
            err("[dmarc_reports]\nenabled = true\nemail = \"d@example.com\"\n"),
            "postern.toml:11:1: dmarc_reports.org_name: required when enabled = true: \
             the name shown in reports, e.g. \"Example Corp\""
        );
        assert_eq!(
            err("[dmarc_reports]\nemail = \"two@a.example, b@c.example\"\n"),
            "postern.toml:12:9: dmarc_reports.email: must be one plain address, \
             e.g. \"dmarc-noreply@example.com\""
        );
        assert_eq!(
            err("[dmarc_reports]\nsend_at = \"25:00\"\n"),
            "postern.toml:12:11: dmarc_reports.send_at: must be a UTC time of day HH:MM, \
             00:00 to 23:59, e.g. \"01:00\""
        );
        assert_eq!(
            err("[dmarc_reports]\nretention = \"36h\"\n"),
            "postern.toml:12:13: dmarc_reports.retention: must be whole days, at least one, e.g. \"7d\""
        );
        assert!(
            err("[dmarc_reports]\nsend = \"01:00\"\n")
                .starts_with("postern.toml:12:1: dmarc_reports.send: unknown key"),
        );
    }
}
