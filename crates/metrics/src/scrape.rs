//! Gauges read at scrape time: queue size by state and oldest age, spool
//! health, delivery running, mail-log drops, tracking lag. The admin HTTP
//! handler fills a [`Scrape`] from `QueueControl` (and the indexer) and
//! [`crate::Metrics::render`] turns it into families of a throw-away
//! registry, rendered after the event families.
//!
//! A fact that is `None` (unknown: no delivery in this process, no
//! tracking indexer) is left out of the exposition rather than shown as 0.
//!
//! # Security
//! At most [`crate::labels::MAX_LABEL_SETS`] queue states are rendered.

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use crate::labels::{MAX_LABEL_SETS, State, value};

/// What the scrape reads at that moment.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Queued messages by state (`active`, `deferred`, `held`, …).
    pub queue_by_state: Vec<(String, u64)>,
    /// Age of the oldest queued message, seconds (`None`: queue empty or unknown).
    pub oldest_age_seconds: Option<f64>,
    /// The spool is poisoned (a failed fsync: accepting stops).
    pub spool_poisoned: Option<bool>,
    /// The delivery scheduler is running.
    pub delivery_running: Option<bool>,
    /// Mail-log records dropped because the writer fell behind
    /// (`MailLog::dropped`).
    pub mail_log_dropped: u64,
    /// Bytes of the mail log not yet indexed by the tracking database.
    pub tracking_behind_bytes: Option<u64>,
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Scrape {
    /// Appends the scrape-time families to `out`.
    pub(crate) fn render_into(&self, out: &mut String) {
        let mut r = Registry::with_prefix("postern");
        let by_state = Family::<State, Gauge>::default();
        for (state, n) in self.queue_by_state.iter().take(MAX_LABEL_SETS) {
            by_state
                .get_or_create(&State {
                    state: value(state),
                })
                .set(saturating_i64(*n));
        }
        r.register(
            "queue_messages",
            "Messages in the queue, by state",
            by_state,
        );
        if let Some(age) = self.oldest_age_seconds {
            r.register_with_unit(
                "queue_oldest_age",
                "Age of the oldest message in the queue",
                Unit::Seconds,
                ConstGauge::new(age),
            );
        }
        if let Some(p) = self.spool_poisoned {
            r.register(
                "spool_poisoned",
                "1 when the spool is poisoned (a failed fsync; accepting has stopped), else 0",
                ConstGauge::new(i64::from(p)),
            );
        }
        if let Some(d) = self.delivery_running {
            r.register(
                "delivery_running",
                "1 when the delivery scheduler is running, 0 when it is stopped",
                ConstGauge::new(i64::from(d)),
            );
        }
        r.register(
            "mail_log_dropped",
            "Mail-log records dropped because the writer fell behind",
            ConstCounter::new(self.mail_log_dropped),
        );
        if let Some(b) = self.tracking_behind_bytes {
            r.register_with_unit(
                "tracking_behind",
                "Bytes of the mail log the tracking database has not indexed yet",
                Unit::Bytes,
                ConstGauge::new(saturating_i64(b)),
            );
        }
        if let Err(err) = prometheus_client::encoding::prometheus_text::encode(out, &r) {
            tracing::error!(error = %err, "metrics: encoding the scrape gauges failed");
        }
    }
}
