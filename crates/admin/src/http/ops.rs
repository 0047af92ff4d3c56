//! Operations endpoints for load balancers, systemd and Prometheus:
//! `/healthz` (the process answers), `/readyz` (ready for mail: 503 with the
//! reason while the spool is poisoned or delivery is stopped) and `/metrics`.
//!
//! # Security
//! `/healthz` and `/readyz` need no authentication and say one line, no
//! detail beyond the reason (no paths: the spool's poison is named by its
//! operation only). `/metrics` needs a session or Bearer token unless
//! `public_metrics` is set.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::HttpState;
use super::auth::Authed;
use super::reply::error;
use crate::view::{self, Filter};

/// The operations routes.
pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /healthz`: 200 `ok` while the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "ok", content_type = "text/plain", body = String)))]
pub(crate) async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

/// Why the server is not ready, or `None`.
pub(crate) async fn not_ready(s: &HttpState) -> Option<String> {
    let limit = crate::server::REQUEST_TIMEOUT;
    let Ok(Some(_)) = tokio::time::timeout(limit, s.control.status()).await else {
        return Some("delivery is stopped".into());
    };
    if let Ok(Some(h)) = tokio::time::timeout(limit, s.control.spool_health()).await {
        if let Some(p) = &h.poisoned {
            return Some(format!(
                "spool poisoned since {} ({} failed)",
                p.since, p.op
            ));
        }
        if h.low_space() {
            return Some("spool below its free-space floor".into());
        }
    }
    None
}

/// `GET /readyz`: 200 `ready`, or 503 with the reason.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready", content_type = "text/plain", body = String),
              (status = 503, description = "not ready: the reason, one line", content_type = "text/plain", body = String)))]
pub(crate) async fn readyz(State(s): State<HttpState>) -> Response {
    match not_ready(&s).await {
        None => text(StatusCode::OK, "ready\n".into()),
        Some(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// The scrape-time gauges: the queue's (read at most once per
/// [`super::state::SCRAPE_CACHE`], however many scrapes arrive: the cache's
/// lock is held while the queue is read, so scrapes that arrive meanwhile
/// wait and take what it read) and the console's (now).
pub(crate) async fn scrape(s: &HttpState) -> postern_metrics::Scrape {
    let mut cache = s.scrape_cache.lock().await;
    let mut out = match cache.as_ref() {
        Some((at, v)) if at.elapsed() < super::state::SCRAPE_CACHE => v.clone(),
        _ => {
            let v = read_queue(s).await;
            *cache = Some((tokio::time::Instant::now(), v.clone()));
            v
        }
    };
    drop(cache);
    out.mail_log_dropped = s.console.mail_log_dropped();
    out.tracking_behind_bytes = s.console.tracking_behind_bytes();
    out
}

/// How long one scrape waits for each of the queue listing and the spool's
/// health: both together well within the request timeout, so the scrape
/// that holds the cache's lock fills the cache (a slow queue is then read
/// once per [`super::state::SCRAPE_CACHE`], not once per waiting scrape).
const QUEUE_READ: std::time::Duration = std::time::Duration::from_secs(10);

/// The queue gauges, read now.
async fn read_queue(s: &HttpState) -> postern_metrics::Scrape {
    let limit = QUEUE_READ;
    let messages = tokio::time::timeout(limit, s.control.messages(None))
        .await
        .ok()
        .flatten();
    let health = tokio::time::timeout(limit, s.control.spool_health())
        .await
        .ok()
        .flatten();
    let mut by_state: Vec<(String, u64)> = Vec::new();
    let mut oldest = None;
    if let Some(all) = &messages {
        for info in view::select(all, &Filter::default()) {
            let st = info.state.as_str();
            match by_state.iter_mut().find(|(k, _)| k == st) {
                Some((_, n)) => *n += 1,
                None => by_state.push((st.to_owned(), 1)),
            }
        }
        oldest = all.iter().map(|m| view::received_ms(&m.envelope)).min();
    }
    let now = view::now_ms();
    #[allow(clippy::cast_precision_loss)]
    // ages in ms fit f64 exactly far beyond any queue lifetime
    let oldest_age_seconds = oldest.map(|t| now.saturating_sub(t) as f64 / 1000.0);
    postern_metrics::Scrape {
        queue_by_state: by_state,
        oldest_age_seconds,
        spool_poisoned: health.map(|h| h.poisoned.is_some()),
        delivery_running: Some(messages.is_some()),
        mail_log_dropped: s.console.mail_log_dropped(),
        tracking_behind_bytes: s.console.tracking_behind_bytes(),
    }
}

/// `GET /metrics`: the Prometheus exposition. Needs a session or Bearer
/// token unless `public_metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security(("bearer" = []), ("session" = []), ()),
    responses((status = 200, description = "Prometheus text exposition 0.0.4", content_type = "text/plain", body = String),
              (status = 401, description = "Not authenticated (and public_metrics is off)"),
              (status = 404, description = "Metrics are not enabled in this server")))]
pub(crate) async fn metrics(State(s): State<HttpState>, who: Result<Authed, Response>) -> Response {
    if !s.settings.public_metrics
        && let Err(r) = who
    {
        return r;
    }
    let Some(m) = s.metrics.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this server",
        );
    };
    let scrape = scrape(&s).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, postern_metrics::CONTENT_TYPE)],
        m.render(&scrape),
    )
        .into_response()
}
