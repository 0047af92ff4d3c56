//! Starting the operations console's back end for `postern serve`: the
//! Prometheus registry fed by the mail log ([`postern_metrics::Metrics`] as a
//! [`postern_track::LogObserver`]) and the tracking indexer that tails the
//! mail log into the tracking store (`[tracking]`).
//!
//! Wiring (done in `serve.rs`): [`observe`] the mail log right after it is
//! opened, before any clone is handed out; [`start_tracking`] once the mail
//! log exists; stop the indexer after the mail log's last flush, so the
//! events of the shutdown are indexed too (or at the next start: the
//! indexer resumes from its checkpoint).
//!
//! # Security
//! Nothing here reads the network. The tracking database holds envelope
//! addresses, TLS facts and (only with `[tracking] subjects = true`)
//! subjects: it is created `0600` (`postern_trackdb::SqliteStore::open`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use postern_admin::QueueControl;
use postern_admin::http::{Auth, CertExpiry, ConsoleInfo, HttpState};
use postern_metrics::Metrics;
use postern_track::MailLog;
use postern_trackdb::{Indexer, SqliteStore, TrackStore};
use tokio_util::sync::CancellationToken;

/// A tracking database this many bytes behind the mail log is an alert on
/// the dashboard (about 20 000 events).
const BEHIND_ALERT: u64 = 8 * 1024 * 1024;
/// Certificates closer than this to their end are an alert.
const CERT_ALERT_DAYS: i64 = 14;

/// The metrics registry, observing every record of `log`; each configured
/// listener's series exist from the start (at 0).
pub(crate) fn observe(cfg: &postern_config::Config, log: MailLog) -> (MailLog, Metrics) {
    let metrics = Metrics::new();
    for l in &cfg.server.listeners {
        metrics.register_listener(&l.name);
    }
    (log.with_observer(Arc::new(metrics.clone())), metrics)
}

/// The tracking store and its indexer, when `[tracking]` is enabled.
pub(crate) struct Tracking {
    pub(crate) store: Arc<dyn TrackStore>,
    /// Shared with the console (its lag); taken at shutdown to stop it.
    pub(crate) indexer: Arc<Mutex<Option<Indexer>>>,
}

impl Tracking {
    /// Stops the indexer after it indexed what the mail log holds now.
    pub(crate) fn stop(&self) {
        let taken = self
            .indexer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(i) = taken {
            i.stop();
        }
    }
}

/// Opens the tracking database and starts indexing the mail log from where
/// the previous run stopped. `None` when tracking is off.
pub(crate) fn start_tracking(cfg: &postern_config::Config) -> anyhow::Result<Option<Tracking>> {
    let settings = &cfg.tracking;
    let Some(log) = cfg.delivery.mail_log.clone() else {
        return Ok(None);
    };
    if !settings.enabled {
        tracing::info!("message tracking disabled ([tracking] enabled = false)");
        return Ok(None);
    }
    if let Some(dir) = settings.database.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("creating the directory of {}", settings.database.display())
        })?;
    }
    let store: Arc<dyn TrackStore> =
        Arc::new(SqliteStore::open(&settings.database).with_context(|| {
            format!(
                "opening the tracking database {}",
                settings.database.display()
            )
        })?);
    let indexer = Indexer::spawn(Arc::clone(&store), log, settings)
        .context("starting the tracking indexer")?;
    tracing::info!(database = %settings.database.display(), retention_days = settings.retention_days,
        subjects = settings.subjects, "message tracking on");
    Ok(Some(Tracking {
        store,
        indexer: Arc::new(Mutex::new(Some(indexer))),
    }))
}

/// What the console shows about this server: the effective configuration
/// (secrets redacted), the warnings of `config check`, the certificates and
/// the alerts of the moment.
struct ServerConsole {
    config_text: String,
    warnings: Vec<String>,
    certificates: Vec<(String, time::OffsetDateTime)>,
    mail_log: MailLog,
    indexer: Option<Arc<Mutex<Option<Indexer>>>>,
}

impl ConsoleInfo for ServerConsole {
    fn config_text(&self) -> String {
        self.config_text.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn certificates(&self) -> Vec<CertExpiry> {
        let now = time::OffsetDateTime::now_utc();
        self.certificates
            .iter()
            .map(|(name, not_after)| CertExpiry {
                name: name.clone(),
                not_after: not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                days_left: (*not_after - now).whole_days(),
            })
            .collect()
    }

    fn quarantine_enabled(&self) -> bool {
        // The built-in quarantines (policy, virus, spam) always exist.
        true
    }

    fn alerts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(status) = self.indexer_status() {
            if status.behind_bytes > BEHIND_ALERT {
                out.push(format!(
                    "message tracking is {} KiB behind the mail log (searches miss the newest events until it catches up)",
                    status.behind_bytes / 1024
                ));
            }
            if let Some(e) = status.last_error {
                out.push(format!("message tracking: {e}"));
            }
        }
        let dropped = self.mail_log.dropped();
        if dropped > 0 {
            out.push(format!(
                "{dropped} mail-log record(s) dropped (the writer fell behind): tracking and metrics miss them"
            ));
        }
        for c in self.certificates() {
            if c.days_left < CERT_ALERT_DAYS {
                out.push(format!(
                    "certificate {} ends {} ({} days)",
                    c.name, c.not_after, c.days_left
                ));
            }
        }
        out
    }

    fn mail_log_dropped(&self) -> u64 {
        self.mail_log.dropped()
    }

    fn tracking_behind_bytes(&self) -> Option<u64> {
        self.indexer_status().map(|s| s.behind_bytes)
    }
}

impl ServerConsole {
    fn indexer_status(&self) -> Option<postern_trackdb::IndexerStatus> {
        let guard = self
            .indexer
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().map(Indexer::lag)
    }
}

/// The running HTTP listener.
pub(crate) struct Http {
    pub(crate) addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Http {
    /// Stops accepting and waits (bounded) for the requests under way.
    pub(crate) async fn shutdown(self, grace: std::time::Duration) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(grace, self.task).await;
    }
}

/// What the console is built from.
pub(crate) struct ConsoleParts<'a> {
    pub(crate) cfg: &'a postern_config::Config,
    pub(crate) config_path: Option<&'a Path>,
    pub(crate) warnings: Vec<String>,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) certificates: Vec<(String, time::OffsetDateTime)>,
    pub(crate) control: Arc<dyn QueueControl>,
    pub(crate) tracking: Option<&'a Tracking>,
    pub(crate) metrics: Metrics,
    pub(crate) mail_log: MailLog,
}

/// Starts the web console and HTTP API when `[admin] http` is set.
pub(crate) async fn start_http(p: ConsoleParts<'_>) -> anyhow::Result<Option<Http>> {
    let Some(addr) = p.cfg.admin_http.listen else {
        return Ok(None);
    };
    // HTTP/1.1 over the server's own certificate (ALPN says so).
    let tls = p.tls.map(|c| {
        let mut c = (*c).clone();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(c)
    });
    if p.cfg.admin_http.tls && tls.is_none() {
        anyhow::bail!(
            "[admin] http {addr} wants TLS but no certificate could be loaded; configure [[tls.certificate]]"
        );
    }
    let settings = p.cfg.admin_http.settings(tls);
    let mut warnings = p.warnings;
    for w in postern_admin::http::config_warnings(&settings) {
        tracing::warn!("admin http: {w}");
        warnings.push(w);
    }
    let console = ServerConsole {
        config_text: config_text(p.cfg, p.config_path),
        warnings,
        certificates: p.certificates,
        mail_log: p.mail_log,
        indexer: p.tracking.map(|t| Arc::clone(&t.indexer)),
    };
    let auth = Auth::new(&settings).context("loading the admin users and tokens")?;
    let state = HttpState::new(
        p.control,
        Arc::new(console),
        Arc::new(auth),
        Arc::new(settings.clone()),
    )
    .with_tracking(p.tracking.map(|t| Arc::clone(&t.store)))
    .with_metrics(Some(p.metrics))
    .with_mail_log(p.cfg.delivery.mail_log.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin HTTP listener [admin] http = {addr}"))?;
    let bound = listener
        .local_addr()
        .context("the admin HTTP listener's address")?;
    let shutdown = CancellationToken::new();
    let task = postern_admin::http::serve_listener(listener, state, shutdown.clone())
        .context("starting the admin HTTP listener")?;
    Ok(Some(Http {
        addr: bound,
        shutdown,
        task,
    }))
}

/// The effective configuration, secrets redacted (`postern config show`).
fn config_text(cfg: &postern_config::Config, path: Option<&Path>) -> String {
    let Some(path) = path else {
        return format!("# {}\n(the embedded default configuration)", cfg.source);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return format!("# cannot read {}: {e}", path.display()),
    };
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    match postern_config::effective(&text, &cfg.source, base, false) {
        Ok(t) => t,
        Err(e) => format!("# {e}"),
    }
}
