//! `GET /posture?direction=inbound|outbound&since=30d`: the peers' TLS
//! posture — for each peer, the TLS versions and ciphers it used, STARTTLS,
//! certificate verification, DANE / MTA-STS, plaintext retries, messages and
//! last seen — risky peers first, their risks written out in words.
//!
//! At most [`LIMIT`] peers, most at risk first; when more were seen the page
//! says it shows the first [`LIMIT`] (the store is asked for one more to
//! know).
//!
//! # Security
//! Peer names come from DNS and HELO: shown escaped. `since` is parsed with
//! the queue filter's age parser and capped at a year. The answer is bounded:
//! a flood of made-up HELO names cannot make one page hold every peer.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use postern_trackdb::{Direction, PeerPosture, PostureQuery};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::format::{store_call, tls_is_weak, tls_words};
use super::{Layout, Nav, error_page, render};
use crate::http::{Authed, HttpState};
use crate::view::parse_age;

/// Peers per page, at most.
const LIMIT: usize = 500;
/// The longest look back.
const MAX_SINCE_SECS: u64 = 366 * 86_400;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PostureParams {
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    since: Option<String>,
}

/// One peer as shown.
#[derive(Debug, Clone)]
pub(crate) struct PeerRow {
    pub peer: String,
    pub risks: Vec<String>,
    pub ips: String,
    /// (version in words, count, weak).
    pub versions: Vec<(String, u64, bool)>,
    pub ciphers: String,
    pub starttls: String,
    pub verified: u64,
    pub unverified: u64,
    pub dane: u64,
    pub mta_sts: u64,
    pub plaintext_retries: u64,
    pub messages: u64,
    pub last_seen: String,
}

impl PeerRow {
    fn of(p: &PeerPosture, inbound: bool) -> Self {
        Self {
            peer: p.peer.clone(),
            risks: p.risks.clone(),
            ips: super::format::list_short(&p.ips, 4),
            versions: p
                .tls_versions
                .iter()
                .map(|(v, n)| (tls_words(v), *n, tls_is_weak(v)))
                .collect(),
            ciphers: p
                .ciphers
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            starttls: match (p.starttls, inbound) {
                (Some(true), false) => "offered",
                (Some(false), false) => "NOT offered",
                (Some(true), true) => "used",
                (Some(false), true) => "NOT used",
                (None, _) => "unknown",
            }
            .to_owned(),
            verified: p.verified,
            unverified: p.unverified,
            dane: p.dane,
            mta_sts: p.mta_sts,
            plaintext_retries: p.plaintext_retries,
            messages: p.messages,
            last_seen: p.last_seen.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "posture.html")]
pub(crate) struct PosturePage {
    pub layout: Layout,
    pub inbound: bool,
    pub since: String,
    pub peers: Vec<PeerRow>,
    pub at_risk: usize,
    /// More peers were seen than the page shows ([`LIMIT`]).
    pub truncated: bool,
}

/// `GET /posture`.
pub(crate) async fn page(
    State(state): State<HttpState>,
    who: Authed,
    Query(p): Query<PostureParams>,
) -> Response {
    let mut layout = Layout::new(&state, &who, Nav::Posture, "TLS posture");
    let Some(store) = state.tracking.clone() else {
        return error_page(
            layout,
            StatusCode::NOT_FOUND,
            "TLS posture comes from message tracking, which is off: set [tracking] enabled = true",
            Vec::new(),
        );
    };
    let inbound = p.direction.as_deref() == Some("inbound");
    let since = p
        .since
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "30d".to_owned());
    let secs = match parse_age(&since) {
        Ok(s) => s.min(MAX_SINCE_SECS),
        Err(e) => {
            layout.error = Some(format!("since: {e}"));
            return render(
                StatusCode::BAD_REQUEST,
                &PosturePage {
                    layout,
                    inbound,
                    since,
                    peers: Vec::new(),
                    at_risk: 0,
                    truncated: false,
                },
            );
        }
    };
    let q = PostureQuery {
        direction: Some(if inbound {
            Direction::Inbound
        } else {
            Direction::Outbound
        }),
        since: OffsetDateTime::now_utc() - Duration::seconds(i64::try_from(secs).unwrap_or(0)),
        // One more than shown: whether there are more to say so.
        limit: LIMIT + 1,
    };
    let mut code = StatusCode::OK;
    let mut truncated = false;
    let peers: Vec<PeerRow> =
        match store_call(&state.query_permits, &store, move |s| s.posture(&q)).await {
            Ok(v) => {
                truncated = v.len() > LIMIT;
                v.iter()
                    .take(LIMIT)
                    .map(|p| PeerRow::of(p, inbound))
                    .collect()
            }
            Err(e) => {
                layout.error = Some(e);
                code = StatusCode::SERVICE_UNAVAILABLE;
                Vec::new()
            }
        };
    let at_risk = peers.iter().filter(|p| !p.risks.is_empty()).count();
    render(
        code,
        &PosturePage {
            layout,
            inbound,
            since,
            peers,
            at_risk,
            truncated,
        },
    )
}
