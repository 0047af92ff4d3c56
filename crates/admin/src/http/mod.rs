//! The admin HTTP listener on TCP: the operations console's JSON API
//! (`/api/v1/…`), login and logout, `/metrics`, `/healthz`, `/readyz`, the
//! OpenAPI document, and the web pages of [`crate::ui`], all behind one
//! router with authentication (admin users with sessions, API tokens).
//!
//! Follow one request: [`serve`] accepts the connection (TLS when
//! configured) and hands it to [`router`]; the middleware adds the security
//! headers, applies the timeout and body limit, and `auth::identify` finds
//! the caller and checks CSRF on state changes; the handler takes
//! [`Authed`] / [`AuthedChange`] and calls the same queue logic as the Unix
//! socket (`crate::server`).
//!
//! ```text
//! POST /login  POST /logout  GET /api/login       login form, logout, login CSRF token
//! GET  /api/openapi.json                          the OpenAPI document (public)
//! GET  /healthz  /readyz                          liveness, readiness (public, one line)
//! GET  /metrics                                   Prometheus (token or session unless public_metrics)
//! /api/v1/…                                       see `api` and docs/admin-http.md
//! ```
//!
//! # Security
//! See `docs/admin-http.md` ("Security model") and `docs/threat-model.md`:
//! loopback by default, TLS required elsewhere; argon2id passwords;
//! server-side sessions with idle and absolute expiry; CSRF token + Origin +
//! Fetch Metadata on every state change made with a session; the `Host`
//! header checked against the configured names (DNS rebinding); SHA-256-stored
//! API tokens re-read on change (revocation is immediate); login rate limits;
//! security headers on every answer; bounded connections, bodies and time.
//!
//! # Standards
//! RFC 9110/9112 (HTTP), RFC 6265bis (cookies), RFC 6750 (Bearer), OpenAPI 3.1.

mod api;
pub mod auth;
mod check;
mod forwarded;
mod headers;
pub mod host;
mod openapi;
mod ops;
mod reply;
mod serve;
mod state;
mod track;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};

pub use api::WhoAmI;
pub use auth::{Auth, AuthError, AuthVia, Authed, AuthedChange};
pub use check::config_warnings;
pub use forwarded::{ClientAddr, client_addr};
pub use headers::{CSP, REQUEST_TIMEOUT};
pub use host::{HostNames, PublicUrl, PublicUrlError};
pub use openapi::document as openapi_document;
pub use serve::{
    HANDSHAKE_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_PER_CLIENT, check_listen, serve,
    serve_listener,
};
pub use state::{CertExpiry, ConsoleInfo, HttpState, NoConsoleInfo};

/// The whole application: API, login, operations, OpenAPI, and the web pages
/// of [`crate::ui::routes`], with the security middleware.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(ops::routes())
        .route("/login", post(auth::routes::login))
        .route("/logout", post(auth::routes::logout))
        .route("/api/login", get(auth::routes::login_csrf))
        .route("/api/openapi.json", get(openapi::serve))
        .merge(crate::ui::routes())
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), auth::identify))
        .layer(DefaultBodyLimit::max(auth::MAX_BODY))
        .layer(from_fn(headers::limit_body))
        .layer(from_fn(headers::timeout))
        .layer(from_fn_with_state(state.clone(), host::check))
        .layer(from_fn_with_state(state.clone(), forwarded::resolve))
        .layer(from_fn_with_state(state.clone(), headers::security))
        .with_state(state)
}

async fn not_found() -> Response {
    reply::error(
        StatusCode::NOT_FOUND,
        "no such page or endpoint; see /api/openapi.json",
    )
}
