//! The JSON API under `/api/v1`: the Unix-socket API's queue and quarantine
//! views and verbs (the same handlers' logic, `crate::server`), the tracking
//! store's searches, and `whoami`. Every route needs a session or a Bearer
//! token ([`Authed`]); state changes need [`AuthedChange`] (CSRF for
//! sessions).
//!
//! # Security
//! Ids are parsed `QueueId`s, domains are checked and only compared, query
//! strings are typed (`serde_urlencoded`), bodies are limited (the API reads
//! none). Errors are `{"error": "…"}`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::HttpState;
use super::auth::{AuthVia, Authed, AuthedChange};
use crate::control::{Verb, VerbContext};
use crate::server::{self, ListQuery, QuarantineQuery};

/// The `/api/v1` routes.
pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/status", get(status))
        .route("/api/v1/queue", get(list))
        .route("/api/v1/queue/retry", post(retry_all))
        .route("/api/v1/queue/flush/{domain}", post(flush))
        .route("/api/v1/queue/{id}", get(show).delete(delete))
        .route("/api/v1/queue/{id}/hold", post(hold))
        .route("/api/v1/queue/{id}/release", post(release))
        .route("/api/v1/queue/{id}/retry", post(retry))
        .route("/api/v1/quarantine", get(quarantine_list))
        .route(
            "/api/v1/quarantine/{id}",
            get(quarantine_show).delete(quarantine_delete),
        )
        .route("/api/v1/quarantine/{id}/release", post(quarantine_release))
        .route("/api/v1/spool/recheck", post(recheck))
        .merge(super::track::routes())
}

/// `GET /api/v1/whoami` answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The user (`token:<name>` for an API token).
    pub user: String,
    /// `session` or `token`.
    pub via: String,
    /// The token's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The session's CSRF token (for `X-CSRF-Token`); absent for tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// A read-only token (state changes are refused).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// Who is calling.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "auth",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The caller", body = WhoAmI),
              (status = 401, description = "Not authenticated", body = server::ErrorBody)))]
pub(crate) async fn whoami(a: Authed, ext: axum::http::Extensions) -> axum::Json<WhoAmI> {
    let read_only = ext.get::<super::auth::ReadOnly>().is_some();
    let (via, token, csrf) = match a.via {
        AuthVia::Session => ("session", None, Some(a.csrf)),
        AuthVia::Token(n) => ("token", Some(n), None),
    };
    axum::Json(WhoAmI {
        user: a.user,
        via: via.to_owned(),
        token,
        csrf,
        read_only,
    })
}

/// Queue counts and the spool's health (`postern queue status`).
#[utoipa::path(get, path = "/api/v1/status", tag = "queue",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "QueueStatus: messages, pending, deferred, held, in_flight, connections, unloadable, spool", body = serde_json::Value),
              (status = 401, description = "Not authenticated", body = server::ErrorBody),
              (status = 503, description = "The queue is not running", body = server::ErrorBody)))]
pub(crate) async fn status(State(s): State<HttpState>, _a: Authed) -> Response {
    server::status_response(&*s.control).await
}

/// The queued messages, filtered (`postern queue list`).
#[utoipa::path(get, path = "/api/v1/queue", tag = "queue", params(ListQuery),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "ListBody: messages, unreadable, spool", body = serde_json::Value),
              (status = 400, description = "A filter is invalid", body = server::ErrorBody),
              (status = 401, description = "Not authenticated", body = server::ErrorBody)))]
pub(crate) async fn list(
    State(s): State<HttpState>,
    _a: Authed,
    Query(q): Query<ListQuery>,
) -> Response {
    server::list_response(&*s.control, q).await
}

/// One queued message with its envelope and mail-log events (`postern queue show`).
#[utoipa::path(get, path = "/api/v1/queue/{id}", tag = "queue",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "ShowBody: message, events", body = serde_json::Value),
              (status = 404, description = "Not in the queue", body = server::ErrorBody),
              (status = 409, description = "Queued but unreadable", body = server::ErrorBody)))]
pub(crate) async fn show(
    State(s): State<HttpState>,
    _a: Authed,
    Path(id): Path<String>,
) -> Response {
    server::show_response(&*s.control, s.mail_log.clone(), &id).await
}

/// Holds a message.
#[utoipa::path(post, path = "/api/v1/queue/{id}/hold", tag = "queue",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 403, description = "CSRF check failed", body = server::ErrorBody),
              (status = 404, description = "Not in the queue", body = serde_json::Value)))]
pub(crate) async fn hold(
    State(s): State<HttpState>,
    who: AuthedChange,
    Path(id): Path<String>,
) -> Response {
    let cx = audit(&who, "hold", &id);
    server::id_verb_response_with(&*s.control, &id, Verb::Hold, cx).await
}

/// Releases a held message.
#[utoipa::path(post, path = "/api/v1/queue/{id}/release", tag = "queue",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 403, description = "CSRF check failed", body = server::ErrorBody),
              (status = 404, description = "Not in the queue", body = serde_json::Value)))]
pub(crate) async fn release(
    State(s): State<HttpState>,
    who: AuthedChange,
    Path(id): Path<String>,
) -> Response {
    let cx = audit(&who, "release", &id);
    server::id_verb_response_with(&*s.control, &id, Verb::Release, cx).await
}

/// Retries a message's deferred recipients now.
#[utoipa::path(post, path = "/api/v1/queue/{id}/retry", tag = "queue",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 403, description = "CSRF check failed", body = server::ErrorBody),
              (status = 409, description = "Held: release it first", body = serde_json::Value)))]
pub(crate) async fn retry(
    State(s): State<HttpState>,
    who: AuthedChange,
    Path(id): Path<String>,
) -> Response {
    let cx = audit(&who, "retry", &id);
    server::id_verb_response_with(&*s.control, &id, server::RETRY, cx).await
}

/// Deletes a message (no DSN).
#[utoipa::path(delete, path = "/api/v1/queue/{id}", tag = "queue",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 202, description = "Deleted when the attempt under way ends", body = serde_json::Value),
              (status = 403, description = "CSRF check failed", body = server::ErrorBody)))]
pub(crate) async fn delete(
    State(s): State<HttpState>,
    who: AuthedChange,
    Path(id): Path<String>,
) -> Response {
    let cx = audit(&who, "delete", &id);
    server::id_verb_response_with(&*s.control, &id, Verb::Delete, cx).await
}

/// Retries every deferred recipient now.
#[utoipa::path(post, path = "/api/v1/queue/retry", tag = "queue",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 403, description = "CSRF check failed", body = server::ErrorBody)))]
pub(crate) async fn retry_all(State(s): State<HttpState>, who: AuthedChange) -> Response {
    audit(&who, "retry", "all");
    server::verb_response(&*s.control, Verb::Retry(None)).await
}

/// Retries now the deferred recipients at a domain.
#[utoipa::path(post, path = "/api/v1/queue/flush/{domain}", tag = "queue",
    params(("domain" = String, Path, description = "Recipient domain")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 400, description = "Invalid domain", body = server::ErrorBody),
              (status = 403, description = "CSRF check failed", body = server::ErrorBody)))]
pub(crate) async fn flush(
    State(s): State<HttpState>,
    who: AuthedChange,
    Path(domain): Path<String>,
) -> Response {
    audit(&who, "flush", &domain);
    server::flush_response(&*s.control, domain).await
}

/// The quarantined messages (all quarantines, or one).
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "quarantine", params(QuarantineQuery),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "ListBody of quarantined messages", body = serde_json::Value),
              (status = 401, description = "Not authenticated", body = server::ErrorBody)))]
pub(crate) async fn quarantine_list(
    State(s): State<HttpState>,
    _a: Authed,
    Query(q): Query<QuarantineQuery>,
) -> Response {
    server::quarantine_list_response(&*s.control, q).await
}

/// One quarantined message (the queue's view of it).
#[utoipa::path(get, path = "/api/v1/quarantine/{id}", tag = "quarantine",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "ShowBody", body = serde_json::Value),
              (status = 404, description = "Not in the queue", body = server::ErrorBody)))]
pub(crate) async fn quarantine_show(
    State(s): State<HttpState>,
    _a: Authed,
    Path(id): Path<String>,
) -> Response {
    server::show_response(&*s.control, s.mail_log.clone(), &id).await
}

/// Releases a quarantined message (delivery continues).
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/release", tag = "quarantine",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 409, description = "Not in a quarantine", body = server::ErrorBody)))]
pub(crate) async fn quarantine_release(
    State(s): State<HttpState>,
    who: AuthedChange,
    Path(id): Path<String>,
) -> Response {
    let by = audit(&who, "quarantine release", &id).by;
    server::quarantined_verb_response(&*s.control, &id, Verb::Release, by).await
}

/// Deletes a quarantined message (no DSN).
#[utoipa::path(delete, path = "/api/v1/quarantine/{id}", tag = "quarantine",
    params(("id" = String, Path, description = "Queue id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "VerbReport", body = serde_json::Value),
              (status = 409, description = "Not in a quarantine", body = server::ErrorBody)))]
pub(crate) async fn quarantine_delete(
    State(s): State<HttpState>,
    who: AuthedChange,
    Path(id): Path<String>,
) -> Response {
    let by = audit(&who, "quarantine delete", &id).by;
    server::quarantined_verb_response(&*s.control, &id, Verb::Delete, by).await
}

/// A test write and fsync; clears a poisoned spool (`postern spool recheck`).
#[utoipa::path(post, path = "/api/v1/spool/recheck", tag = "queue",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, description = "RecheckReport", body = serde_json::Value),
              (status = 500, description = "The test write failed", body = serde_json::Value)))]
pub(crate) async fn recheck(State(s): State<HttpState>, who: AuthedChange) -> Response {
    audit(&who, "spool recheck", "");
    server::recheck_response(&*s.control).await
}

/// Logs who changed what (the admin audit trail); the context that records
/// it in the mail log's queue events too.
fn audit(who: &AuthedChange, verb: &str, target: &str) -> VerbContext {
    let by = who.0.by();
    tracing::info!(user = %who.0.user, by = %by, verb, target, "admin http: queue command");
    VerbContext {
        by,
        quarantined_only: false,
    }
}
