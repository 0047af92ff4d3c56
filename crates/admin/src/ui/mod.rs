//! The web console's pages (owned by the webui work; this stub only lets the
//! admin HTTP router merge them until they exist).

use axum::Router;

use crate::http::HttpState;

/// The pages.
pub fn routes() -> Router<HttpState> {
    Router::new()
}
