//! Prometheus metrics for Postern: a typed registry (prometheus-client, no
//! global recorder) fed from the mail-log records and two smtpd hooks, and
//! rendered in the Prometheus text format for `/metrics`.
//!
//! [`Metrics`] is cheap to clone (one `Arc`). It sees the mail log as a
//! [`postern_track::LogObserver`] (`MailLog::with_observer`): message events
//! (received, attempt, delivered, …) and session events (rejected,
//! throttled, …) move counters on the mail log's writer thread, off the
//! accepting path. Connection open / close and inbound TLS handshake
//! failures come from the smtpd through the same log handle. Gauges of the
//! queue and the spool are read at scrape time: the admin HTTP handler fills
//! a [`Scrape`] and calls [`Metrics::render`].
//!
//! Every metric, its labels and what moves it: docs/metrics.md.
//!
//! # Security
//! Label values never hold addresses, domains or reply text: they come from
//! closed sets, the configuration and the cause catalogue, and every family
//! is bounded ([`labels::MAX_LABEL_SETS`] label sets, the rest folded into
//! `other`), so no client can grow the registry. The latency map is bounded
//! too ([`latency::MAX_TRACKED`]).
//!
//! # Standards
//! Prometheus text exposition format 0.0.4; naming per the Prometheus
//! "Metric and label naming" conventions (base units, `_total` counters).

pub mod labels;
pub mod latency;

mod families;
mod observe;
mod scrape;

use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;

pub use families::LATENCY_BUCKETS;
pub use observe::{ATTEMPT_OUTCOMES, DSN_KINDS};
pub use scrape::Scrape;

/// The `Content-Type` of [`Metrics::render`]'s output (Prometheus text 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// One server's metrics; clones share them.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    f: families::Families,
    bounds: observe::Bounds,
    received_at: Mutex<latency::ReceivedTimes>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family at zero.
    pub fn new() -> Self {
        let (f, registry) = families::Families::new(env!("CARGO_PKG_VERSION"));
        let m = Self {
            inner: Arc::new(Inner {
                registry,
                f,
                bounds: observe::Bounds::default(),
                received_at: Mutex::new(latency::ReceivedTimes::default()),
            }),
        };
        m.preset();
        m
    }

    /// Renders the exposition text: the event families, then the gauges
    /// read at scrape time from `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail; an encoder error would be a
        // bug in a label value, logged rather than failing the scrape.
        if let Err(err) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        {
            tracing::error!(error = %err, "metrics: encoding the registry failed");
        }
        scrape.render_into(&mut out);
        out
    }
}

impl postern_track::LogObserver for Metrics {
    fn mail(&self, r: &postern_track::TrackRecord) {
        self.observe_mail(r);
    }

    fn session(&self, r: &postern_track::SessionRecord) {
        self.observe_session(r);
    }

    fn connection_opened(&self, listener: &str) {
        Metrics::connection_opened(self, listener);
    }

    fn connection_closed(&self, listener: &str) {
        Metrics::connection_closed(self, listener);
    }

    fn tls_failed_inbound(&self, listener: &str, cause_id: &str) {
        self.tls_handshake_failed_inbound(listener, cause_id);
    }
}
