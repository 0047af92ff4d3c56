//! [`HttpState`]: what every handler of the admin HTTP listener (API and web
//! pages) gets, and [`ConsoleInfo`], the seam through which the binary shows
//! its configuration, warnings and certificates.
//!
//! # Security
//! `ConsoleInfo::config_text` must come with secrets redacted (the binary's
//! job); everything here is shown to authenticated admins only.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::auth::Auth;
use crate::control::QueueControl;
use crate::settings::HttpSettings;

/// What the console shows about the server itself; implemented by the binary.
pub trait ConsoleInfo: Send + Sync + 'static {
    /// The effective configuration, secrets redacted.
    fn config_text(&self) -> String;
    /// `config check` warnings.
    fn warnings(&self) -> Vec<String>;
    /// The server's certificates and when they expire.
    fn certificates(&self) -> Vec<CertExpiry>;
    /// Whether content quarantine is configured (the quarantine page and
    /// routes are hidden otherwise).
    fn quarantine_enabled(&self) -> bool;
}

/// One certificate's expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertExpiry {
    /// Which certificate (listener name or file).
    pub name: String,
    /// `notAfter`, RFC 3339.
    pub not_after: String,
    /// Days left (negative: expired).
    pub days_left: i64,
}

/// A [`ConsoleInfo`] with nothing to show (tests, and a binary that has no
/// console facts yet).
#[derive(Debug, Clone, Default)]
pub struct NoConsoleInfo;

impl ConsoleInfo for NoConsoleInfo {
    fn config_text(&self) -> String {
        String::new()
    }
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    fn certificates(&self) -> Vec<CertExpiry> {
        Vec::new()
    }
    fn quarantine_enabled(&self) -> bool {
        false
    }
}

/// The state of the admin HTTP listener's handlers. Cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    /// The running queue.
    pub control: Arc<dyn QueueControl>,
    /// The console facts.
    pub console: Arc<dyn ConsoleInfo>,
    /// Users, sessions, tokens, login limiter.
    pub auth: Arc<Auth>,
    /// The listener's settings.
    pub settings: Arc<HttpSettings>,
    /// The mail log, for a queued message's events (`GET /api/v1/queue/{id}`).
    pub mail_log: Option<PathBuf>,
}

impl HttpState {
    /// A state with no tracking store, no metrics and no mail log; add them
    /// with the `with_…` methods.
    pub fn new(
        control: Arc<dyn QueueControl>,
        console: Arc<dyn ConsoleInfo>,
        auth: Arc<Auth>,
        settings: Arc<HttpSettings>,
    ) -> Self {
        Self {
            control,
            console,
            auth,
            settings,
            mail_log: None,
        }
    }

    /// With the mail log.
    #[must_use]
    pub fn with_mail_log(mut self, path: Option<PathBuf>) -> Self {
        self.mail_log = path;
        self
    }
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("settings", &self.settings)
            .field("mail_log", &self.mail_log)
            .finish_non_exhaustive()
    }
}
