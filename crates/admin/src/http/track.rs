//! Tracking routes under `/api/v1` (search, a message's life, its TLS
//! evidence, peer posture, dashboard summary), served from the tracking
//! store when `[tracking]` is on.

use axum::Router;

use super::HttpState;

/// The tracking routes.
pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
}
