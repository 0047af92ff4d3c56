//! The OpenAPI 3.1 document of the admin HTTP API, served at
//! `/api/openapi.json` without authentication: it describes routes and
//! security schemes, nothing about this server's data (the same document is
//! in every Postern of this version).
//!
//! # Standards
//! OpenAPI Specification 3.1 (generated with utoipa).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi as _;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};

use super::{api, auth, ops, track};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Postern admin API", description = "Queue, quarantine, tracking and operations of a Postern server. Authenticate with `Authorization: Bearer pst_…` (postern admin token create) or a login session (cookie; state changes also need X-CSRF-Token). See docs/admin-http.md."),
    paths(
        api::whoami, api::status, api::list, api::show, api::hold, api::release, api::retry,
        api::delete, api::retry_all, api::flush, api::quarantine_list, api::quarantine_show,
        api::quarantine_release, api::quarantine_delete, api::recheck,
        auth::routes::login, auth::routes::logout, auth::routes::login_csrf,
        ops::healthz, ops::readyz, ops::metrics,
        track::search, track::life, track::evidence, track::posture, track::summary,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "queue", description = "The running queue (like postern queue …)"),
        (name = "quarantine", description = "Quarantined messages"),
        (name = "tracking", description = "Message tracking, TLS evidence and posture"),
        (name = "auth", description = "Login, logout, the caller"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

/// The security schemes routes refer to: `bearer`, `session`, `csrf`.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("An API token: postern admin token create NAME".into());
        c.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "postern_session",
                "The login session (POST /login); named __Host-postern_session when the listener has TLS",
            ))),
        );
        c.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token (GET /api/v1/whoami); required with a session on POST, PUT, PATCH, DELETE",
            ))),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/openapi.json`.
pub(crate) async fn serve() -> Response {
    match document().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => super::reply::error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("OpenAPI document: {e}"),
        ),
    }
}
