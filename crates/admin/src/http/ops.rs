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

/// The operations routes.
pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
