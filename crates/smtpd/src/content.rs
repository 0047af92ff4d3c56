//! The content policy's runtime (issue 11, `docs/content-policy.md`): the
//! parsed rule files, the dictionaries, the rspamd and clamd clients and the
//! milters, built from [`ContentSettings`] when the server starts or
//! reloads. `session/content.rs` runs them at end of data.
//!
//! Live reload without SIGHUP: at most every [`RELOAD_CHECK`] a message
//! checks whether a rule file or a dictionary changed on disk; a changed
//! file is parsed again and replaces the old version only when it is valid
//! (a broken edit keeps the previous rules and logs the errors at
//! `file:line:column`).
//!
//! # Security
//! Rule files and dictionaries are bounded by their crates. A rule file that
//! became unreadable or invalid never leaves the server without rules: the
//! last good version stays in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use postern_content::Dictionaries;
use postern_engines::{ClamdClient, RspamdClient};
use postern_filter::{NameKind, RuleSet};
use postern_policy::content::OnFailure;

use crate::settings::{ContentSettings, RulesFile};

/// How often a message may look for changed rule files and dictionaries.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// The most the content policy (engines, milters, rules) may take for one
/// message: well inside the client's 10-minute wait for the reply to the
/// end of data (RFC 5321 §4.5.3.2.6), so it never retries a message we are
/// still committing.
pub const CONTENT_DEADLINE: Duration = Duration::from_mins(4);

/// Why the content policy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A rule file does not parse (or names what is not configured).
    #[error("{path}: {errors}")]
    Rules {
        /// The file.
        path: String,
        /// Every error, `file:line:column: message`, one per line.
        errors: String,
    },
    /// A dictionary could not be loaded.
    #[error(transparent)]
    Dictionary(#[from] postern_content::DictError),
}

/// One rule file in force, with what the last look at the file saw.
struct LiveRules {
    path: PathBuf,
    rules: Arc<RuleSet>,
    seen: Option<(SystemTime, u64)>,
}

/// The content policy in force.
#[allow(clippy::struct_field_names)] // `content_rules` is the config's name for them
pub struct Content {
    pub(crate) settings: ContentSettings,
    message_rules: Option<RwLock<LiveRules>>,
    content_rules: Option<RwLock<LiveRules>>,
    pub(crate) dictionaries: Dictionaries,
    pub(crate) rspamd: Option<(RspamdClient, OnFailure)>,
    pub(crate) clamd: Option<(ClamdClient, OnFailure)>,
    last_check: Mutex<Instant>,
}

impl Default for Content {
    fn default() -> Self {
        Self {
            settings: ContentSettings::default(),
            message_rules: None,
            content_rules: None,
            dictionaries: Dictionaries::default(),
            rspamd: None,
            clamd: None,
            last_check: Mutex::new(Instant::now()),
        }
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("message_rules", &self.message_rules.is_some())
            .field("content_rules", &self.content_rules.is_some())
            .field("rspamd", &self.rspamd.is_some())
            .field("clamd", &self.clamd.is_some())
            .field("milters", &self.settings.milters.len())
            .finish_non_exhaustive()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Parses a rule file and checks the names it uses against `settings`
/// (dictionaries, quarantines, notification templates).
fn parse(file: &RulesFile, settings: &ContentSettings) -> Result<RuleSet, ContentError> {
    let origin = file.path.display().to_string();
    let errors = match RuleSet::parse(&file.text, &origin) {
        Ok(rules) => {
            let errors = rules.check_names(|kind, name| match kind {
                NameKind::Dictionary => settings.dictionaries.iter().any(|(n, _)| n == name),
                NameKind::Quarantine => settings.quarantines.iter().any(|q| q == name),
                NameKind::Template => settings.notifications.iter().any(|t| t.name == name),
            });
            if errors.is_empty() {
                return Ok(rules);
            }
            errors
        }
        Err(errors) => errors,
    };
    Err(ContentError::Rules {
        path: origin,
        errors: errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

impl Content {
    /// Builds the runtime: parses the rule texts the configuration read,
    /// loads the dictionaries, makes the engine clients.
    pub fn new(settings: &ContentSettings) -> Result<Content, ContentError> {
        let live = |f: &Option<RulesFile>| -> Result<Option<RwLock<LiveRules>>, ContentError> {
            let Some(file) = f else { return Ok(None) };
            Ok(Some(RwLock::new(LiveRules {
                path: file.path.clone(),
                rules: Arc::new(parse(file, settings)?),
                seen: stamp(&file.path),
            })))
        };
        Ok(Content {
            message_rules: live(&settings.message_rules)?,
            content_rules: live(&settings.content_rules)?,
            dictionaries: Dictionaries::load(&settings.dictionaries)?,
            rspamd: settings
                .rspamd
                .as_ref()
                .map(|(s, f)| (RspamdClient::new(s.clone()), *f)),
            clamd: settings
                .clamav
                .as_ref()
                .map(|(s, f)| (ClamdClient::new(s.clone()), *f)),
            settings: settings.clone(),
            last_check: Mutex::new(Instant::now()),
        })
    }

    /// Whether anything is configured.
    pub fn any(&self) -> bool {
        self.settings.any()
    }

    /// The message filters in force.
    pub(crate) fn message_rules(&self) -> Option<Arc<RuleSet>> {
        self.message_rules
            .as_ref()
            .map(|l| Arc::clone(&l.read().unwrap_or_else(PoisonError::into_inner).rules))
    }

    /// The content filters in force.
    pub(crate) fn content_rules(&self) -> Option<Arc<RuleSet>> {
        self.content_rules
            .as_ref()
            .map(|l| Arc::clone(&l.read().unwrap_or_else(PoisonError::into_inner).rules))
    }

    /// Whether a look for changed files is due (cheap: no I/O), so the
    /// caller goes to the blocking pool only then.
    pub(crate) fn refresh_due(&self) -> bool {
        (self.message_rules.is_some()
            || self.content_rules.is_some()
            || !self.settings.dictionaries.is_empty())
            && self
                .last_check
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .elapsed()
                >= self.settings.reload_interval
    }

    /// At most every `reload_interval` ([`RELOAD_CHECK`]): re-reads changed rule files and
    /// dictionaries (blocking file I/O: call it off the async threads).
    pub(crate) fn refresh_if_due(&self) {
        {
            let mut last = self
                .last_check
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < self.settings.reload_interval {
                return;
            }
            *last = Instant::now();
        }
        for r in self.dictionaries.refresh() {
            tracing::info!("{r}");
        }
        for live in [&self.message_rules, &self.content_rules]
            .into_iter()
            .flatten()
        {
            reload_rules(live, &self.settings);
        }
    }
}

fn reload_rules(live: &RwLock<LiveRules>, settings: &ContentSettings) {
    let (path, seen) = {
        let l = live.read().unwrap_or_else(PoisonError::into_inner);
        (l.path.clone(), l.seen)
    };
    let now = stamp(&path);
    if now == seen || now.is_none() {
        return;
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e,
                "filters: cannot read the changed rule file; the previous rules stay in force");
            return;
        }
    };
    if text.trim().is_empty() {
        // An editor that truncates then writes leaves an empty file for a
        // moment: never a reason to run without rules.
        tracing::warn!(path = %path.display(),
            "filters: the rule file is empty; the previous rules stay in force (replace files by rename)");
        return;
    }
    let file = RulesFile {
        path: path.clone(),
        text,
    };
    // Parsed outside the lock: sessions keep evaluating the old rules.
    let parsed = parse(&file, settings);
    let mut l = live.write().unwrap_or_else(PoisonError::into_inner);
    l.seen = now;
    match parsed {
        Ok(rules) => {
            tracing::info!(path = %path.display(), rules = rules.len(), "filters: rule file reloaded");
            l.rules = Arc::new(rules);
        }
        Err(e) => {
            tracing::error!(error = %e,
                "filters: the changed rule file has errors; the previous rules stay in force");
        }
    }
}
