//! Tracking routes under `/api/v1`: search, a message's life, its
//! transport-security evidence, peer TLS posture, and the dashboard summary,
//! answered from the tracking store (`[tracking]`) on the blocking pool.
//!
//! ```text
//! GET /api/v1/track/search?sender=&recipient=&start=&end=&event=&queue_id=&message_id=&subject=&ip=&tls_version=&limit=
//! GET /api/v1/track/{id}              MessageLife (queue id or Message-ID)
//! GET /api/v1/track/{id}/evidence     Evidence (inbound hop, each outbound attempt)
//! GET /api/v1/posture?direction=inbound|outbound&since=30d&limit=
//! GET /api/v1/summary?since=60m       dashboard figures
//! ```
//!
//! Times (`start`, `end`, `since`) are RFC 3339, or an age (`30m`, `2h`,
//! `7d`) meaning that long ago. `event` is one name or several separated by
//! commas. 503 when tracking is off; 404 for an unknown message. A posture
//! answer holds 200 peers unless `limit` says otherwise, 2000 at most.
//!
//! # Security
//! Every route needs [`Authed`]. Query values are only bound as SQL
//! parameters by the store; a search's `limit` is capped by the store
//! (10 000), a posture's here (2000). At most `QUERY_PERMITS` queries run at
//! once (API and pages together); the others wait for a turn, within the
//! request timeout.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use postern_trackdb::{Direction, Evidence, PostureQuery, SearchQuery, StoreError, TrackStore};
use serde::Deserialize;
use time::OffsetDateTime;

use super::HttpState;
use super::auth::Authed;
use super::reply::error;
use crate::server::ErrorBody;

/// The tracking routes.
pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/track/search", get(search))
        .route("/api/v1/track/{id}", get(life))
        .route("/api/v1/track/{id}/evidence", get(evidence))
        .route("/api/v1/posture", get(posture))
        .route("/api/v1/summary", get(summary))
}

/// `GET /api/v1/track/search` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// Exact address, or `@domain` / `domain`.
    sender: Option<String>,
    /// Exact address, or `@domain` / `domain`.
    recipient: Option<String>,
    /// From (RFC 3339, or an age like `2h`).
    start: Option<String>,
    /// Until (RFC 3339, or an age).
    end: Option<String>,
    /// Event names, comma-separated (`delivered,bounced`).
    event: Option<String>,
    /// Queue id.
    queue_id: Option<String>,
    /// Message-ID, with or without angle brackets.
    message_id: Option<String>,
    /// Subject substring (when subjects are recorded).
    subject: Option<String>,
    /// Client or server IP, or a CIDR prefix.
    ip: Option<String>,
    /// `TLSv1.3`, `TLSv1.2`, …, or `none`.
    tls_version: Option<String>,
    /// Rows at most (default 100, at most 10 000).
    limit: Option<usize>,
}

/// `GET /api/v1/posture` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PostureParams {
    /// `inbound` or `outbound`; both when absent.
    direction: Option<String>,
    /// From (RFC 3339, or an age; default `30d`).
    since: Option<String>,
    /// Peers at most: 200 when absent; 2000 at most (a larger value, or 0,
    /// gives 2000). Most at risk first, so a cut keeps the risky peers.
    limit: Option<usize>,
}

/// `GET /api/v1/summary` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SummaryParams {
    /// From (RFC 3339, or an age; default `60m`).
    since: Option<String>,
}

/// Peers in a posture answer without `limit`, and at most.
const POSTURE_DEFAULT: usize = 200;
const POSTURE_MAX: usize = 2000;

/// The peers a posture answer may hold for `limit`. Bounded: a flood of
/// made-up HELO names must not make one answer hold every peer.
fn posture_limit(limit: Option<usize>) -> usize {
    match limit {
        None => POSTURE_DEFAULT,
        Some(0) => POSTURE_MAX,
        Some(n) => n.min(POSTURE_MAX),
    }
}

/// A query parameter that does not parse: answered 400 with the sentence.
#[derive(Debug)]
struct BadParam(String);

impl IntoResponse for BadParam {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0)
    }
}

/// A time parameter: RFC 3339, or an age (`30m`, `2h`, `7d`) before now.
fn parse_time(key: &str, v: &str) -> Result<OffsetDateTime, BadParam> {
    if let Ok(t) = OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    match crate::view::parse_age(v) {
        // An age past the calendar's start is refused, not a panic.
        Ok(secs) => i64::try_from(secs)
            .ok()
            .and_then(|s| OffsetDateTime::now_utc().checked_sub(time::Duration::seconds(s)))
            .ok_or_else(|| BadParam(format!("{key}: the age {v:?} is too long"))),
        Err(_) => Err(BadParam(format!(
            "{key}: expected an RFC 3339 time (2026-12-06T10:00:00Z) or an age (30m, 2h, 7d), got {v:?}"
        ))),
    }
}

fn opt_time(key: &str, v: Option<&str>) -> Result<Option<OffsetDateTime>, BadParam> {
    v.filter(|s| !s.is_empty())
        .map(|s| parse_time(key, s))
        .transpose()
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl SearchParams {
    fn query(self) -> Result<SearchQuery, BadParam> {
        Ok(SearchQuery {
            start: opt_time("start", self.start.as_deref())?,
            end: opt_time("end", self.end.as_deref())?,
            sender: nonempty(self.sender),
            recipient: nonempty(self.recipient),
            events: self
                .event
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            queue_id: nonempty(self.queue_id),
            message_id: nonempty(self.message_id),
            subject: nonempty(self.subject),
            ip: nonempty(self.ip),
            tls_version: nonempty(self.tls_version),
            limit: self.limit.unwrap_or(0),
        })
    }
}

/// Runs `f` on the store on the blocking pool; 503 when tracking is off.
async fn with_store<T: Send + 'static>(
    s: &HttpState,
    f: impl FnOnce(&dyn TrackStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let Some(store) = s.tracking.clone() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "message tracking is off: set [tracking] enabled = true (it needs a mail log)",
        ));
    };
    let store: Arc<dyn TrackStore> = store;
    // The permit goes with the query (see `ui::format::store_call`).
    let Ok(permit) = Arc::clone(&s.query_permits).acquire_owned().await else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "tracking store closed",
        ));
    };
    let run = move || {
        let _permit = permit;
        f(&*store)
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "admin http: tracking store");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("tracking store: {e}"),
            ))
        }
        Err(_) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "tracking query failed",
        )),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    axum::Json(v).into_response()
}

/// Searches the tracked events (`postern track search`).
#[utoipa::path(get, path = "/api/v1/track/search", tag = "tracking", params(SearchParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "EventRow list, newest first", body = serde_json::Value),
              (status = 400, description = "A parameter is invalid", body = ErrorBody),
              (status = 503, description = "Tracking is off", body = ErrorBody)))]
pub(crate) async fn search(
    State(s): State<HttpState>,
    _a: Authed,
    Query(p): Query<SearchParams>,
) -> Response {
    let q = match p.query() {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    match with_store(&s, move |st| st.search(&q)).await {
        Ok(rows) => json(&rows),
        Err(r) => r,
    }
}

async fn life_of(s: &HttpState, id: String) -> Result<postern_trackdb::MessageLife, Response> {
    let key = id.clone();
    match with_store(s, move |st| st.message(&key)).await? {
        Some(l) => Ok(l),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("no tracked message {id:?} (queue id or Message-ID)"),
        )),
    }
}

/// The whole life of a message (`postern track show`).
#[utoipa::path(get, path = "/api/v1/track/{id}", tag = "tracking",
    params(("id" = String, Path, description = "Queue id or Message-ID")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "MessageLife", body = serde_json::Value),
              (status = 404, description = "Not tracked", body = ErrorBody),
              (status = 503, description = "Tracking is off", body = ErrorBody)))]
pub(crate) async fn life(
    State(s): State<HttpState>,
    _a: Authed,
    Path(id): Path<String>,
) -> Response {
    match life_of(&s, id).await {
        Ok(l) => json(&l),
        Err(r) => r,
    }
}

/// A message's transport-security evidence (`postern track evidence`).
#[utoipa::path(get, path = "/api/v1/track/{id}/evidence", tag = "tracking",
    params(("id" = String, Path, description = "Queue id or Message-ID")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Evidence: inbound hop, outbound attempts", body = serde_json::Value),
              (status = 404, description = "Not tracked", body = ErrorBody),
              (status = 503, description = "Tracking is off", body = ErrorBody)))]
pub(crate) async fn evidence(
    State(s): State<HttpState>,
    _a: Authed,
    Path(id): Path<String>,
) -> Response {
    match life_of(&s, id).await {
        Ok(l) => json(&Evidence::from_life(&l)),
        Err(r) => r,
    }
}

/// Peer TLS posture (`postern tls posture`), most at risk first.
#[utoipa::path(get, path = "/api/v1/posture", tag = "tracking", params(PostureParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "PeerPosture list", body = serde_json::Value),
              (status = 400, description = "A parameter is invalid", body = ErrorBody),
              (status = 503, description = "Tracking is off", body = ErrorBody)))]
pub(crate) async fn posture(
    State(s): State<HttpState>,
    _a: Authed,
    Query(p): Query<PostureParams>,
) -> Response {
    let direction = match p.direction.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some("inbound") => Some(Direction::Inbound),
        Some("outbound") => Some(Direction::Outbound),
        Some(d) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("direction: expected inbound or outbound, got {d:?}"),
            );
        }
    };
    let since = match parse_time(
        "since",
        p.since
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("30d"),
    ) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let q = PostureQuery {
        direction,
        since,
        limit: posture_limit(p.limit),
    };
    match with_store(&s, move |st| st.posture(&q)).await {
        Ok(v) => json(&v),
        Err(r) => r,
    }
}

/// Dashboard figures (per-minute traffic, TLS mix, top causes, events).
#[utoipa::path(get, path = "/api/v1/summary", tag = "tracking", params(SummaryParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Summary", body = serde_json::Value),
              (status = 400, description = "A parameter is invalid", body = ErrorBody),
              (status = 503, description = "Tracking is off", body = ErrorBody)))]
pub(crate) async fn summary(
    State(s): State<HttpState>,
    _a: Authed,
    Query(p): Query<SummaryParams>,
) -> Response {
    let since = match parse_time(
        "since",
        p.since
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("60m"),
    ) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    match with_store(&s, move |st| st.summary(since)).await {
        Ok(v) => json(&v),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An age past the calendar's start is a 400, never a panic.
    #[test]
    fn huge_ages_are_refused() {
        assert!(parse_time("since", "99999999d").is_err());
        assert!(parse_time("since", "7d").is_ok());
        assert!(parse_time("since", "2026-12-06T10:00:00Z").is_ok());
    }
}
