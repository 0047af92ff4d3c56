//! Middleware on every answer of the admin HTTP listener: security headers,
//! the request timeout, and the body limit.
//!
//! # Security
//! `Content-Security-Policy: default-src 'self'; frame-ancestors 'none';
//! base-uri 'none'; form-action 'self'` (no inline script, no framing:
//! clickjacking; `/api/docs` alone also allows `data:` images, for Swagger
//! UI's icons), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//! no-referrer` (ids in URLs stay here), `X-Frame-Options: DENY` for old
//! browsers, `Cache-Control: no-store` unless the handler chose a cache policy
//! (static files), and `Strict-Transport-Security` with TLS. Each request has
//! [`REQUEST_TIMEOUT`]; bodies over [`MAX_BODY`] are refused with 413.
//!
//! # Standards
//! W3C CSP Level 3, RFC 6797 (HSTS), RFC 9110 §15.5.14 (413).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::HttpState;
use super::auth::MAX_BODY;
use super::reply::error;

/// Time a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The Content-Security-Policy of every answer.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The Content-Security-Policy of `/api/docs` (the vendored Swagger UI):
/// [`CSP`] with `data:` images as well — the bundle draws its icons as
/// `data:image/svg+xml` URIs. Still no inline or foreign script; an image
/// cannot run any.
pub const CSP_API_DOCS: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds the security headers.
pub(crate) async fn security(State(s): State<HttpState>, req: Request, next: Next) -> Response {
    let csp = if req.uri().path() == "/api/docs" {
        CSP_API_DOCS
    } else {
        CSP
    };
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if s.settings.tls.is_some() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

/// Answers 503 when the handler takes longer than [`REQUEST_TIMEOUT`].
pub(crate) async fn timeout(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the request took too long"),
    }
}

/// Refuses a body announced larger than [`MAX_BODY`] before any handler runs
/// (extractors are limited by `DefaultBodyLimit` as well).
pub(crate) async fn limit_body(req: Request, next: Next) -> Response {
    let too_long = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .parse::<u64>()
                .map_or(true, |n| n > MAX_BODY as u64)
        });
    if too_long {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {MAX_BODY} bytes"),
        );
    }
    next.run(req).await
}
