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
//! subjects: it is created in the data directory with the server's umask.

use std::sync::Arc;

use anyhow::Context as _;
use postern_metrics::Metrics;
use postern_track::MailLog;
use postern_trackdb::{Indexer, SqliteStore, TrackStore};

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
    pub(crate) indexer: Indexer,
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
    Ok(Some(Tracking { store, indexer }))
}
