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
    /// Alerts the binary knows about (tracking indexer behind or failing, …):
    /// one sentence each, with what to do. The default: none.
    fn alerts(&self) -> Vec<String> {
        Vec::new()
    }
    /// Mail-log records dropped because the writer fell behind
    /// (`MailLog::dropped`), for `/metrics`. The default: 0.
    fn mail_log_dropped(&self) -> u64 {
        0
    }
    /// Bytes of the mail log the tracking indexer has not read yet
    /// (`Indexer::lag`), for `/metrics`. The default: unknown.
    fn tracking_behind_bytes(&self) -> Option<u64> {
        None
    }
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
    /// The tracking store (`[tracking]` on), or `None`.
    pub tracking: Option<Arc<dyn postern_trackdb::TrackStore>>,
    /// The metrics registry, or `None` (no `/metrics`).
    pub metrics: Option<postern_metrics::Metrics>,
    /// The console facts.
    pub console: Arc<dyn ConsoleInfo>,
    /// Users, sessions, tokens, login limiter.
    pub auth: Arc<Auth>,
    /// The listener's settings.
    pub settings: Arc<HttpSettings>,
    /// The mail log, for a queued message's events (`GET /api/v1/queue/{id}`).
    pub mail_log: Option<PathBuf>,
    /// At most [`QUERY_PERMITS`] tracking queries at once.
    pub query_permits: Arc<tokio::sync::Semaphore>,
    /// The last scrape's queue gauges and when they were read: listing the
    /// queue copies every envelope inside the scheduler, so `/metrics`
    /// reads it at most once per [`SCRAPE_CACHE`] however often it is asked
    /// (held across the read: concurrent scrapes wait for it, not list again).
    pub scrape_cache:
        Arc<tokio::sync::Mutex<Option<(tokio::time::Instant, postern_metrics::Scrape)>>>,
}

/// Tracking queries run at once (API and pages together): each holds a
/// thread of the blocking pool delivery also uses, and a read connection.
pub const QUERY_PERMITS: usize = 3;

/// How long `/metrics` reuses the queue gauges it read.
pub const SCRAPE_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

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
            tracking: None,
            metrics: None,
            console,
            auth,
            settings,
            mail_log: None,
            scrape_cache: Arc::default(),
            query_permits: Arc::new(tokio::sync::Semaphore::new(QUERY_PERMITS)),
        }
    }

    /// With the tracking store.
    #[must_use]
    pub fn with_tracking(mut self, store: Option<Arc<dyn postern_trackdb::TrackStore>>) -> Self {
        self.tracking = store;
        self
    }

    /// With the metrics registry.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Option<postern_metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
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
            .field("tracking", &self.tracking.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}
