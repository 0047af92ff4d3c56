//! `GET /`: the dashboard — alerts first (spool poisoned, delivery stopped,
//! certificates about to expire, tracking behind, `config check` warnings),
//! then messages per minute in and out, the queue by state, the TLS version
//! mix in and out, the top causes of failure and certificate expiry.
//!
//! # Security
//! Read-only. Figures and our own wordings; cause ids and certificate names
//! are escaped by the template.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use time::{Duration, OffsetDateTime};

use super::chart::Chart;
use super::format::{Share, shares, store_call};
use super::{Layout, Nav, render};
use crate::http::{Authed, HttpState};
use crate::view::{self, Filter};

/// Certificates expiring within this many days raise an alert.
const CERT_ALERT_DAYS: i64 = 14;
/// The chart's span.
const CHART_MINUTES: u32 = 60;

/// One alert line.
#[derive(Debug, Clone)]
pub(crate) struct Alert {
    /// `alert` (act now) or `warning`.
    pub level: &'static str,
    pub text: String,
}

/// One certificate's expiry.
#[derive(Debug, Clone)]
pub(crate) struct CertRow {
    pub name: String,
    pub not_after: String,
    pub days_left: i64,
    pub soon: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(crate) struct Dashboard {
    pub layout: Layout,
    pub alerts: Vec<Alert>,
    /// `None`: tracking is off (no per-minute figures).
    pub chart: Option<Chart>,
    pub tracking_note: Option<String>,
    pub queue_states: Vec<(String, u64)>,
    pub queue_total: u64,
    pub queue_running: bool,
    pub tls_in: Vec<Share>,
    pub tls_out: Vec<Share>,
    pub causes: Vec<(String, u64)>,
    pub certs: Vec<CertRow>,
}

/// `GET /`.
pub(crate) async fn page(State(state): State<HttpState>, who: Authed) -> Response {
    let mut alerts = Vec::new();
    let control = &state.control;
    let health = super::queue::timed(control.spool_health()).await;
    if let Some(h) = &health {
        for w in h.warnings() {
            alerts.push(Alert {
                level: "alert",
                text: w,
            });
        }
    }
    let messages = super::queue::timed(control.messages(None)).await;
    let queue_running = messages.is_some();
    if !queue_running {
        alerts.push(Alert {
            level: "alert",
            text: "delivery is stopped: the queue does not answer (the server is shutting down \
                   or delivery failed to start); nothing is being delivered"
                .to_owned(),
        });
    }
    let mut by_state: BTreeMap<&'static str, u64> = BTreeMap::new();
    for m in view::select(messages.as_deref().unwrap_or_default(), &Filter::default()) {
        *by_state.entry(m.state.as_str()).or_insert(0) += 1;
    }
    let queue_total = by_state.values().sum();
    let queue_states = by_state
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();

    let mut certs: Vec<CertRow> = state
        .console
        .certificates()
        .into_iter()
        .map(|c| CertRow {
            soon: c.days_left < CERT_ALERT_DAYS,
            name: c.name,
            not_after: c.not_after,
            days_left: c.days_left,
        })
        .collect();
    certs.sort_by_key(|c| c.days_left);
    for c in certs.iter().filter(|c| c.soon) {
        let text = if c.days_left < 0 {
            format!(
                "certificate {} expired on {}: peers that verify refuse it; renew it now",
                c.name, c.not_after
            )
        } else {
            format!(
                "certificate {} expires in {} day(s) ({}): renew it",
                c.name, c.days_left, c.not_after
            )
        };
        alerts.push(Alert {
            level: "alert",
            text,
        });
    }
    // Tracking behind, and whatever else the binary knows about.
    for a in state.console.alerts() {
        alerts.push(Alert {
            level: "warning",
            text: a,
        });
    }
    for w in state.console.warnings() {
        alerts.push(Alert {
            level: "warning",
            text: format!("config check: {w}"),
        });
    }

    let now = OffsetDateTime::now_utc();
    let (mut chart, mut tracking_note) = (None, None);
    let (mut tls_in, mut tls_out, mut causes) = (Vec::new(), Vec::new(), Vec::new());
    match &state.tracking {
        None => {
            tracking_note = Some(
                "Tracking is off, so there are no per-minute figures, TLS mix or causes. Turn \
                 it on with [tracking] enabled = true."
                    .to_owned(),
            );
        }
        Some(store) => {
            let since = now - Duration::minutes(i64::from(CHART_MINUTES));
            match store_call(&state.query_permits, store, move |s| s.summary(since)).await {
                Ok(sum) => {
                    chart = Some(Chart::per_minute(
                        &sum.per_minute_in,
                        &sum.per_minute_out,
                        now,
                        CHART_MINUTES,
                    ));
                    tls_in = shares(&sum.tls_in);
                    tls_out = shares(&sum.tls_out);
                    causes = sum.top_causes.into_iter().take(10).collect();
                }
                Err(e) => alerts.push(Alert {
                    level: "alert",
                    text: e,
                }),
            }
        }
    }
    let page = Dashboard {
        layout: Layout::new(&state, &who, Nav::Dashboard, "Dashboard"),
        alerts,
        chart,
        tracking_note,
        queue_states,
        queue_total,
        queue_running,
        tls_in,
        tls_out,
        causes,
        certs,
    };
    render(StatusCode::OK, &page)
}
