//! The metric families fed from events, registered in one registry per
//! [`crate::Metrics`] (several servers in one process never share one).
//!
//! Names follow the Prometheus conventions: the `postern_` prefix, base
//! units (`_seconds`), `_total` on counters (the encoder adds it), `_info`
//! on the build info. docs/metrics.md lists every family.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::labels::{
    Decision, Failure, Handshake, Kind, Listener, Outcome, PolicyDecision, Quarantine, StageRule,
    Version,
};

/// Upper bounds of the delivery latency buckets, seconds: from half a second
/// (a local relay) to three days (retries within a typical queue lifetime).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 43_200.0, 86_400.0,
    259_200.0,
];

/// Every family fed from events.
#[derive(Debug)]
pub struct Families {
    pub connections_current: Family<Listener, Gauge>,
    pub connections: Family<Listener, Counter>,
    pub sessions_rejected: Family<StageRule, Counter>,
    pub session_decisions: Family<Decision, Counter>,
    pub policy_decisions: Family<PolicyDecision, Counter>,
    pub received: Family<Listener, Counter>,
    pub delivered: Counter,
    pub deferred: Counter,
    pub bounced: Counter,
    pub quarantined: Family<Quarantine, Counter>,
    pub expired: Counter,
    pub badmail: Counter,
    pub dsn_sent: Family<Kind, Counter>,
    pub dsn_suppressed: Family<Kind, Counter>,
    pub delivery_latency: Histogram,
    pub delivery_attempts: Family<Outcome, Counter>,
    pub tls_handshakes: Family<Handshake, Counter>,
    pub tls_failures: Family<Failure, Counter>,
    pub plaintext_retries: Counter,
}

impl Families {
    /// The families, registered in a new registry with the `postern` prefix.
    pub fn new(version: &str) -> (Self, Registry) {
        let f = Self {
            connections_current: Family::default(),
            connections: Family::default(),
            sessions_rejected: Family::default(),
            session_decisions: Family::default(),
            policy_decisions: Family::default(),
            received: Family::default(),
            delivered: Counter::default(),
            deferred: Counter::default(),
            bounced: Counter::default(),
            quarantined: Family::default(),
            expired: Counter::default(),
            badmail: Counter::default(),
            dsn_sent: Family::default(),
            dsn_suppressed: Family::default(),
            delivery_latency: Histogram::new(LATENCY_BUCKETS.iter().copied()),
            delivery_attempts: Family::default(),
            tls_handshakes: Family::default(),
            tls_failures: Family::default(),
            plaintext_retries: Counter::default(),
        };
        let mut r = Registry::with_prefix("postern");
        r.register(
            "build",
            "The running Postern version (value 1)",
            Info::new(Version {
                version: version.to_owned(),
            }),
        );
        r.register(
            "connections_current",
            "SMTP connections open now, by listener",
            f.connections_current.clone(),
        );
        r.register(
            "connections",
            "SMTP connections admitted, by listener",
            f.connections.clone(),
        );
        r.register(
            "sessions_rejected",
            "Session events `rejected` (5xx or silent close at SMTP time), by stage and rule",
            f.sessions_rejected.clone(),
        );
        r.register(
            "session_decisions",
            "Session events (rejected, deferred, throttled, greylisted, dropped), by event, stage and rule",
            f.session_decisions.clone(),
        );
        r.register(
            "policy_decisions",
            "Decisions of the mail-flow policies (session events and accepted messages), by sender group, policy and event",
            f.policy_decisions.clone(),
        );
        r.register(
            "messages_received",
            "Messages accepted (durably queued), by listener",
            f.received.clone(),
        );
        r.register(
            "messages_delivered",
            "Recipients delivered (one per recipient)",
            f.delivered.clone(),
        );
        r.register(
            "messages_deferred",
            "Recipients deferred (temporary failures; one per recipient and attempt)",
            f.deferred.clone(),
        );
        r.register(
            "messages_bounced",
            "Recipients bounced (permanent failures; one per recipient)",
            f.bounced.clone(),
        );
        r.register(
            "messages_quarantined",
            "Messages accepted into a quarantine, by quarantine",
            f.quarantined.clone(),
        );
        r.register(
            "messages_expired",
            "Messages whose remaining recipients reached the queue lifetime",
            f.expired.clone(),
        );
        r.register(
            "messages_badmail",
            "Messages moved to the badmail folder (undeliverable and unbounceable)",
            f.badmail.clone(),
        );
        r.register(
            "dsn_sent",
            "Delivery status notifications queued, by kind",
            f.dsn_sent.clone(),
        );
        r.register(
            "dsn_suppressed",
            "Delivery status notifications not sent (null sender, NOTIFY=NEVER), by kind",
            f.dsn_suppressed.clone(),
        );
        r.register_with_unit(
            "delivery_latency",
            "Time from receipt to delivery of each delivered recipient",
            Unit::Seconds,
            f.delivery_latency.clone(),
        );
        r.register(
            "delivery_attempts",
            "Outbound connection attempts, by outcome",
            f.delivery_attempts.clone(),
        );
        r.register(
            "tls_handshakes",
            "TLS sessions by direction, version and cipher (in: one per message received over TLS; out: one per attempt with TLS)",
            f.tls_handshakes.clone(),
        );
        r.register(
            "tls_failures",
            "Failed TLS handshakes, by direction and cause id",
            f.tls_failures.clone(),
        );
        r.register(
            "plaintext_retries",
            "Outbound attempts retried in plaintext after a failed TLS handshake",
            f.plaintext_retries.clone(),
        );
        (f, r)
    }
}
