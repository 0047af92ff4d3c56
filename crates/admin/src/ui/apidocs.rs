//! `GET /api/docs`: Swagger UI (vendored, `static/swagger-ui-bundle.js`)
//! over the OpenAPI document at `/api/openapi.json`, for an admin who is
//! signed in. "Try it out" sends requests with the login session; state
//! changes carry the session's CSRF token (`static/swagger-init.js` reads it
//! from the page's `<meta name="postern-csrf">` and adds `X-CSRF-Token`).
//!
//! # Security
//! Needs a session (or a token), like every console page. Nothing is fetched
//! from elsewhere: the bundle and its style sheet are embedded, the online
//! validator is off (`validatorUrl: null`). The start-up code is a static
//! file of ours, not an inline script, so the listener's
//! `Content-Security-Policy` applies unchanged.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{assets, render};
use crate::http::{Authed, HttpState};

#[derive(Template)]
#[template(path = "apidocs.html")]
pub(crate) struct ApiDocsPage {
    pub csrf: String,
    pub user: String,
    pub css: String,
    pub bundle: String,
    pub init: String,
    pub icon: String,
}

/// `GET /api/docs`.
pub(crate) async fn page(State(_state): State<HttpState>, who: Authed) -> Response {
    render(
        StatusCode::OK,
        &ApiDocsPage {
            csrf: who.csrf,
            user: who.user,
            css: assets::url("swagger-ui.css"),
            bundle: assets::url("swagger-ui-bundle.js"),
            init: assets::url("swagger-init.js"),
            icon: assets::url("favicon.svg"),
        },
    )
}
