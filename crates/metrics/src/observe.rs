//! From events to counters: what each mail-log record and each smtpd hook
//! moves (the table in docs/metrics.md says the same in words).
//!
//! # Security
//! Every label set goes through its family's [`Limiter`]; values through
//! [`labels::value`]. Session decisions past the bound keep their event
//! (a closed set) and stage (when known) and fold the rule into `other`.

use std::sync::PoisonError;

use postern_track::{MailEvent, SessionRecord, TrackRecord};

use crate::Metrics;
use crate::labels::{
    self, Decision, Failure, Handshake, Kind, Limiter, Listener, NONE, OTHER, Outcome,
    PolicyDecision, Quarantine, StageRule, value,
};

/// The outcomes of an `attempt` record.
pub const ATTEMPT_OUTCOMES: &[&str] = &["delivered", "deferred", "bounced", "partial", "failed"];

/// The kinds of a `dsn_sent` record.
pub const DSN_KINDS: &[&str] = &["failure", "delay", "success"];

/// One limiter per family with free-form labels.
#[derive(Debug, Default)]
pub struct Bounds {
    listeners: Limiter<Listener>,
    received: Limiter<Listener>,
    rejected: Limiter<StageRule>,
    decisions: Limiter<Decision>,
    policies: Limiter<PolicyDecision>,
    quarantines: Limiter<Quarantine>,
    dsn: Limiter<Kind>,
    outcomes: Limiter<Outcome>,
    handshakes: Limiter<Handshake>,
    failures: Limiter<Failure>,
}

fn other_listener(_: Listener) -> Listener {
    Listener {
        listener: OTHER.to_owned(),
    }
}

/// `TLSv1.3 TLS13_AES_256_GCM_SHA384` (the short form) → version, cipher.
fn split_tls(short: &str) -> (String, String) {
    let mut it = short.split_whitespace();
    (
        value(it.next().unwrap_or_default()),
        value(it.next().unwrap_or_default()),
    )
}

impl Metrics {
    fn listener(&self, listener: &str) -> Listener {
        self.inner.bounds.listeners.admit(
            Listener {
                listener: value(listener),
            },
            other_listener,
        )
    }

    /// Creates the per-listener series at zero (connections, messages
    /// received), so that they exist before the first connection and a
    /// `rate()` over them is 0 rather than absent. Call once per configured
    /// listener.
    pub fn register_listener(&self, listener: &str) {
        let l = self.listener(listener);
        let _ = self.inner.f.connections_current.get_or_create(&l);
        let _ = self.inner.f.connections.get_or_create(&l);
        let l = self.inner.bounds.received.admit(l, other_listener);
        let _ = self.inner.f.received.get_or_create(&l);
    }

    /// Creates the series of the closed label sets at zero: attempt outcomes
    /// and DSN kinds.
    pub(crate) fn preset(&self) {
        for o in ATTEMPT_OUTCOMES {
            let set = self.inner.bounds.outcomes.admit(
                Outcome {
                    outcome: (*o).to_owned(),
                },
                |x| x,
            );
            let _ = self.inner.f.delivery_attempts.get_or_create(&set);
        }
        for k in DSN_KINDS {
            let set = self.inner.bounds.dsn.admit(
                Kind {
                    kind: (*k).to_owned(),
                },
                |x| x,
            );
            let _ = self.inner.f.dsn_sent.get_or_create(&set);
        }
    }

    /// A connection on `listener` was admitted: `postern_connections_current`
    /// up, `postern_connections_total` up.
    pub fn connection_opened(&self, listener: &str) {
        let l = self.listener(listener);
        self.inner.f.connections_current.get_or_create(&l).inc();
        self.inner.f.connections.get_or_create(&l).inc();
    }

    /// That connection ended: `postern_connections_current` down.
    pub fn connection_closed(&self, listener: &str) {
        let l = self.listener(listener);
        self.inner.f.connections_current.get_or_create(&l).dec();
    }

    /// An inbound TLS handshake failed: `postern_tls_failures_total
    /// {direction="in",cause}`. The listener is not a label of that family.
    pub fn tls_handshake_failed_inbound(&self, _listener: &str, cause_id: &str) {
        self.failure("in", cause_id);
    }

    fn failure(&self, direction: &str, cause: &str) {
        let set = self.inner.bounds.failures.admit(
            Failure {
                direction: direction.to_owned(),
                cause: value(cause),
            },
            |f| Failure {
                cause: OTHER.to_owned(),
                ..f
            },
        );
        self.inner.f.tls_failures.get_or_create(&set).inc();
    }

    fn handshake(&self, direction: &str, version: String, cipher: String) {
        let set = self.inner.bounds.handshakes.admit(
            Handshake {
                direction: direction.to_owned(),
                version,
                cipher,
            },
            |h| Handshake {
                version: OTHER.to_owned(),
                cipher: OTHER.to_owned(),
                ..h
            },
        );
        self.inner.f.tls_handshakes.get_or_create(&set).inc();
    }

    fn policy(&self, group: Option<&str>, policy: Option<&str>, event: &str) {
        if group.is_none() && policy.is_none() {
            return;
        }
        let set = self.inner.bounds.policies.admit(
            PolicyDecision {
                group: group.map_or_else(|| NONE.to_owned(), value),
                policy: policy.map_or_else(|| NONE.to_owned(), value),
                event: event.to_owned(),
            },
            |p| PolicyDecision {
                group: OTHER.to_owned(),
                policy: OTHER.to_owned(),
                ..p
            },
        );
        self.inner.f.policy_decisions.get_or_create(&set).inc();
    }

    /// Counts one message event (see docs/metrics.md for which metric each
    /// event moves).
    pub fn observe_mail(&self, rec: &TrackRecord) {
        let fam = &self.inner.f;
        let bounds = &self.inner.bounds;
        match &rec.event {
            MailEvent::Received(rx) => {
                let l = bounds.received.admit(
                    Listener {
                        listener: value(&rx.listener),
                    },
                    other_listener,
                );
                fam.received.get_or_create(&l).inc();
                if let Some(t) = &rx.tls_params {
                    self.handshake("in", value(&t.version), value(&t.cipher));
                } else if let Some(short) = &rx.tls {
                    let (v, c) = split_tls(short);
                    self.handshake("in", v, c);
                }
                self.policy(rx.sender_group.as_deref(), rx.policy.as_deref(), "received");
                self.inner
                    .received_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .received(rec.queue_id, &rec.ts);
            }
            MailEvent::Attempt(a) => {
                let o = bounds.outcomes.admit(
                    Outcome {
                        outcome: value(&a.outcome),
                    },
                    |_| Outcome {
                        outcome: OTHER.to_owned(),
                    },
                );
                fam.delivery_attempts.get_or_create(&o).inc();
                if let Some(t) = &a.tls {
                    self.handshake("out", value(&t.version), value(&t.cipher));
                }
                if let Some(c) = &a.cause
                    && c.id.starts_with("tls.")
                {
                    self.failure("out", &c.id);
                }
                if a.downgraded {
                    fam.plaintext_retries.inc();
                }
            }
            MailEvent::Delivered(o) => {
                fam.delivered.inc();
                #[allow(clippy::cast_precision_loss)] // milliseconds fit f64 for 285 000 years
                let age = o.age_ms.map(|ms| ms as f64 / 1000.0).or_else(|| {
                    self.inner
                        .received_at
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .age(&rec.queue_id, &rec.ts)
                });
                if let Some(age) = age {
                    fam.delivery_latency.observe(age);
                }
            }
            MailEvent::Deferred(_) => {
                fam.deferred.inc();
            }
            MailEvent::Bounced(_) => {
                fam.bounced.inc();
            }
            MailEvent::Quarantined(q) => {
                let set = bounds.quarantines.admit(
                    Quarantine {
                        quarantine: value(&q.quarantine),
                    },
                    |_| Quarantine {
                        quarantine: OTHER.to_owned(),
                    },
                );
                fam.quarantined.get_or_create(&set).inc();
            }
            MailEvent::Expired(_) => {
                fam.expired.inc();
            }
            MailEvent::Badmail(_) => {
                fam.badmail.inc();
            }
            MailEvent::DsnSent(d) => {
                let kind = bounds.dsn.admit(
                    Kind {
                        kind: value(&d.kind),
                    },
                    |_| Kind {
                        kind: OTHER.to_owned(),
                    },
                );
                if d.suppressed.is_some() {
                    fam.dsn_suppressed.get_or_create(&kind).inc();
                } else {
                    fam.dsn_sent.get_or_create(&kind).inc();
                }
            }
            MailEvent::Queued(_)
            | MailEvent::Held(_)
            | MailEvent::Released(_)
            | MailEvent::Deleted(_)
            | MailEvent::Filtered(_) => {}
        }
    }

    /// Counts one session event: `postern_session_decisions_total`, for
    /// `rejected` also `postern_sessions_rejected_total`, and
    /// `postern_policy_decisions_total` when a group or policy decided.
    pub fn observe_session(&self, r: &SessionRecord) {
        let event = r.event.name();
        let d = match &r.event {
            postern_track::SessionEvent::Rejected(d)
            | postern_track::SessionEvent::Deferred(d)
            | postern_track::SessionEvent::Throttled(d)
            | postern_track::SessionEvent::Greylisted(d)
            | postern_track::SessionEvent::Dropped(d) => d,
        };
        let f = &self.inner.f;
        let b = &self.inner.bounds;
        let set = b.decisions.admit(
            Decision {
                event: event.to_owned(),
                stage: value(&d.stage),
                rule: value(&d.rule),
            },
            |x| Decision {
                stage: labels::known_stage(&x.stage),
                rule: OTHER.to_owned(),
                ..x
            },
        );
        f.session_decisions.get_or_create(&set).inc();
        if event == "rejected" {
            let set = b.rejected.admit(
                StageRule {
                    stage: value(&d.stage),
                    rule: value(&d.rule),
                },
                |x| StageRule {
                    stage: labels::known_stage(&x.stage),
                    rule: OTHER.to_owned(),
                },
            );
            f.sessions_rejected.get_or_create(&set).inc();
        }
        self.policy(d.group.as_deref(), d.policy.as_deref(), event);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use postern_track::{SessionEvent, SmtpDecision};

    use super::*;
    use crate::labels::MAX_LABEL_SETS;

    fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn ten_thousand_rule_names_stay_bounded() {
        let m = Metrics::new();
        for i in 0..10_000 {
            let d = SmtpDecision {
                stage: if i % 2 == 0 { "rcpt" } else { "weird-stage" }.into(),
                rule: format!("rule_{i}"),
                group: Some(format!("group_{i}")),
                policy: Some("P".into()),
                ..SmtpDecision::default()
            };
            let event = if i % 3 == 0 {
                SessionEvent::Rejected(d)
            } else {
                SessionEvent::Throttled(d)
            };
            m.observe_session(&SessionRecord::new("S", 1, event));
            m.connection_opened(&format!("listener_{i}"));
            m.tls_handshake_failed_inbound("smtp", &format!("tls.cause_{i}"));
        }
        let text = m.render(&crate::Scrape::default());
        let decisions = lines(&text, "postern_session_decisions_total{");
        // The admitted sets plus the folded ones: 2 events x (2 stages known
        // or not, all folded to rcpt / other).
        assert!(decisions.len() <= MAX_LABEL_SETS + 4, "{}", decisions.len());
        assert!(
            decisions
                .iter()
                .any(|l| l.contains("stage=\"rcpt\",rule=\"other\""))
        );
        assert!(
            decisions
                .iter()
                .any(|l| l.contains("stage=\"other\",rule=\"other\""))
        );
        let total: f64 = decisions
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(
            (total - 10_000.0).abs() < f64::EPSILON,
            "nothing lost: {total}"
        );
        for (prefix, extra) in [
            ("postern_sessions_rejected_total{", 2),
            ("postern_policy_decisions_total{", 2),
            ("postern_connections_current{", 1),
            ("postern_connections_total{", 1),
            ("postern_tls_failures_total{", 1),
        ] {
            let n = lines(&text, prefix).len();
            assert!(n <= MAX_LABEL_SETS + extra, "{prefix}: {n}");
        }
        assert!(text.contains("postern_connections_total{listener=\"other\"} 9500"));
    }

    #[test]
    fn label_values_are_sanitised() {
        let m = Metrics::new();
        m.connection_opened("we\"ird\nname");
        let text = m.render(&crate::Scrape::default());
        assert!(
            text.contains("postern_connections_total{listener=\"we\\\"ird_name\"} 1"),
            "{text}"
        );
    }
}
