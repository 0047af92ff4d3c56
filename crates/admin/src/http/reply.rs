//! Answers shared by the admin HTTP handlers: JSON errors (`{"error": "…"}`,
//! the Unix-socket API's shape) and whether a request wants a page.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::ErrorBody;

/// An error answer: `{"error": "…"}`.
pub(crate) fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody { error: text.into() })).into_response()
}

/// The request comes from a browser page (it accepts `text/html`): failures
/// become redirects to `/login` rather than JSON.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `303 See Other` to `to` (a path on this server).
pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}
