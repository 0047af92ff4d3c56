//! `[filters]`, `[[dictionary]]` and `[[notification]]` (issue 11): the
//! rule files (`docs/filters.md`), the dictionaries they name
//! (`docs/dictionaries.md`) and the notification templates of `notify`.
//!
//! ```toml
//! [filters]
//! message_rules = "filters/message.rules"   # once per message
//! content_rules = "filters/content.rules"   # per recipient (the message is split)
//! max_scan_size = "25MiB"                   # default [limits] max_message_size
//! max_text = "1MiB"                         # decoded text a rule can see
//! max_parts = 500
//!
//! [[dictionary]]
//! name = "ex-employees"
//! path = "dictionaries/ex-employees.txt"
//!
//! [[notification]]
//! name = "hr"
//! subject = "Policy notice: {subject}"
//! body = "A message from {sender} to {recipients} matched rule {rule}."
//! ```
//!
//! `config check` reads and parses every rule file and every dictionary:
//! an error in a rule file is reported at its own `file:line:column`, and
//! a name a rule uses (dictionary, quarantine, template) must be configured.
//!
//! # Security
//! Rule files are bounded by `postern_filter` (size, rules, nesting, regex
//! size); dictionaries by `postern_content` (64 MiB). Templates become
//! message text: placeholders are filled with one-line, bounded values.

use std::collections::BTreeSet;
use std::path::PathBuf;

use postern_filter::{NameKind, RuleSet};
use postern_smtpd::{ContentSettings, Notification, RulesFile};
use postern_spool::Quarantines;
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::{ConfigError, ErrorKind, Location};
use crate::raw::{Count, Size};

/// `[filters]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawFilters {
    pub message_rules: Option<Spanned<String>>,
    pub content_rules: Option<Spanned<String>>,
    pub max_scan_size: Option<Spanned<Size>>,
    pub max_text: Option<Spanned<Size>>,
    pub max_parts: Option<Spanned<Count>>,
}

/// `[[dictionary]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDictionary {
    pub name: Spanned<String>,
    pub path: Spanned<String>,
}

/// `[[notification]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawNotification {
    pub name: Spanned<String>,
    pub subject: Spanned<String>,
    pub body: Spanned<String>,
    pub from: Option<Spanned<String>>,
}

/// The placeholders a template may use.
const PLACEHOLDERS: &[&str] = &[
    "sender",
    "recipients",
    "subject",
    "rule",
    "queue_id",
    "reason",
];

/// Builds the content settings (engines come from `crate::engines`).
pub(crate) fn build(
    filters: Option<Spanned<RawFilters>>,
    dictionaries: Option<Vec<Spanned<RawDictionary>>>,
    notifications: Option<Vec<Spanned<RawNotification>>>,
    quarantines: Option<&Quarantines>,
    max_message_size: Option<u64>,
    cx: &mut Ctx<'_>,
) -> Result<ContentSettings, ConfigError> {
    let mut s = ContentSettings {
        max_scan_size: max_message_size.unwrap_or(25 * 1024 * 1024),
        ..ContentSettings::default()
    };
    if let Some(q) = quarantines {
        s.quarantines = q.iter().map(|(n, _)| n.to_owned()).collect();
    }
    // Dictionaries first: the rules name them.
    let mut dict_names = BTreeSet::new();
    for (i, raw) in dictionaries.unwrap_or_default().into_iter().enumerate() {
        let key = format!("dictionary[{i}]");
        let d = raw.into_inner();
        let name = d.name.get_ref().trim().to_owned();
        if !crate::quarantine::is_name(&name) {
            return Err(cx.error(
                d.name.span(),
                format!("{key}.name"),
                "must be 1-64 characters of a-z, 0-9, '-' and '_', e.g. \"ex-employees\"",
            ));
        }
        if !dict_names.insert(name.clone()) {
            return Err(cx.error(
                d.name.span(),
                format!("{key}.name"),
                format!("dictionary {name:?} is defined twice"),
            ));
        }
        let path = path(&d.path, &format!("{key}.path"), cx)?;
        // Read and checked now: a bad line is an error of `config check`.
        if let Err(e) = postern_content::Dictionary::load(&name, &path) {
            return Err(cx.error(d.path.span(), format!("{key}.path"), e.to_string()));
        }
        s.dictionaries.push((name, path));
    }
    let mut template_names = BTreeSet::new();
    for (i, raw) in notifications.unwrap_or_default().into_iter().enumerate() {
        let key = format!("notification[{i}]");
        let n = raw.into_inner();
        let name = n.name.get_ref().trim().to_owned();
        if !crate::quarantine::is_name(&name) {
            return Err(cx.error(
                n.name.span(),
                format!("{key}.name"),
                "must be 1-64 characters of a-z, 0-9, '-' and '_', e.g. \"hr-notice\"",
            ));
        }
        if !template_names.insert(name.clone()) {
            return Err(cx.error(
                n.name.span(),
                format!("{key}.name"),
                format!("notification {name:?} is defined twice"),
            ));
        }
        check_template(&n.subject, &format!("{key}.subject"), true, cx)?;
        check_template(&n.body, &format!("{key}.body"), false, cx)?;
        let from = match &n.from {
            Some(f) if !crate::dmarc_reports::plain_address(f.get_ref()) => {
                return Err(cx.error(
                    f.span(),
                    format!("{key}.from"),
                    "must be one plain address, e.g. \"postmaster@example.com\"",
                ));
            }
            Some(f) => Some(f.get_ref().clone()),
            None => None,
        };
        s.notifications.push(Notification {
            name,
            subject: n.subject.get_ref().clone(),
            body: n.body.get_ref().clone(),
            from,
        });
    }
    if let Some(raw) = filters {
        let f = raw.into_inner();
        if let Some(v) = &f.max_scan_size {
            if v.get_ref().0 == 0 {
                return Err(cx.error(v.span(), "filters.max_scan_size", "must be above 0"));
            }
            if v.get_ref().0 < s.max_scan_size {
                cx.warn(
                    Some(v.span()),
                    "filters.max_scan_size",
                    format!(
                        "below the largest message a listener accepts ({} octets): larger \
                         messages are not scanned by rspamd, clamd or the milters, and rules see \
                         only their header section",
                        s.max_scan_size
                    ),
                );
            }
            s.max_scan_size = v.get_ref().0;
        }
        if let Some(v) = &f.max_text {
            let n = usize::try_from(v.get_ref().0).unwrap_or(usize::MAX);
            if !(1024..=64 * 1024 * 1024).contains(&n) {
                return Err(cx.error(
                    v.span(),
                    "filters.max_text",
                    "must be between 1KiB and 64MiB",
                ));
            }
            s.view.max_text = n;
        }
        if let Some(v) = &f.max_parts {
            let n = usize::try_from(v.get_ref().0).unwrap_or(usize::MAX);
            if !(1..=100_000).contains(&n) {
                return Err(cx.error(
                    v.span(),
                    "filters.max_parts",
                    "must be between 1 and 100000",
                ));
            }
            s.view.max_parts = n;
        }
        let exists = |kind: NameKind, name: &str| match kind {
            NameKind::Dictionary => dict_names.contains(name),
            NameKind::Quarantine => quarantines.is_none_or(|q| q.contains(name)),
            NameKind::Template => template_names.contains(name),
        };
        for (raw, key, slot) in [
            (
                &f.message_rules,
                "filters.message_rules",
                &mut s.message_rules,
            ),
            (
                &f.content_rules,
                "filters.content_rules",
                &mut s.content_rules,
            ),
        ] {
            let Some(v) = raw else { continue };
            let path = path(v, key, cx)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                cx.error(
                    v.span(),
                    key,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let origin = path.display().to_string();
            let errors = match RuleSet::parse(&text, &origin) {
                Ok(rules) => rules.check_names(exists),
                Err(errors) => errors,
            };
            if !errors.is_empty() {
                let all: Vec<ConfigError> = errors
                    .into_iter()
                    .map(|e| {
                        ConfigError::new(
                            ErrorKind::Invalid,
                            &origin,
                            Some(Location {
                                line: e.line as usize,
                                column: e.column as usize,
                                span: 0..0,
                            }),
                            key,
                            e.message,
                        )
                    })
                    .collect();
                if let Some(e) = ConfigError::combine(all) {
                    return Err(e);
                }
            }
            *slot = Some(RulesFile { path, text });
        }
    }
    Ok(s)
}

fn path(v: &Spanned<String>, key: &str, cx: &Ctx<'_>) -> Result<PathBuf, ConfigError> {
    if v.get_ref().trim().is_empty() {
        return Err(cx.error(v.span(), key, "must not be empty"));
    }
    Ok(crate::build::resolve(cx.base_dir, v.get_ref()))
}

/// A template: placeholders `{name}` from [`PLACEHOLDERS`] only; the
/// subject one line.
fn check_template(
    v: &Spanned<String>,
    key: &str,
    one_line: bool,
    cx: &Ctx<'_>,
) -> Result<(), ConfigError> {
    let t = v.get_ref();
    if t.trim().is_empty() || t.len() > 64 * 1024 {
        return Err(cx.error(v.span(), key, "must be non-empty text of at most 64 KiB"));
    }
    if one_line && t.chars().any(char::is_control) {
        return Err(cx.error(v.span(), key, "must be one line"));
    }
    let mut rest = t.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(cx.error(v.span(), key, "a '{' without its '}'"));
        };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(cx.error(
                v.span(),
                key,
                format!(
                    "unknown placeholder {{{name}}}; allowed: {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}
