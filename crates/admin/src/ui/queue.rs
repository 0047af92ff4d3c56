//! `GET /queue` (filter by state, domain, age), `GET /queue/{id}` (one
//! message, its recipients and verbs), `POST /queue/{id}/{verb}` (hold,
//! release, retry, delete — a confirmation page first, then the verb).
//!
//! # Security
//! Envelope addresses, replies, subjects and HELO names are untrusted text,
//! shown escaped. Ids are parsed [`QueueId`]s; filters are parsed with the
//! CLI's parsers ([`State::parse`], [`view::parse_age`]).

use std::future::Future;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use postern_spool::QueueId;
use serde::Deserialize;

use super::format::{list_short, sender};
use super::verbs::{Action, Kind, confirm_then_apply};
use super::{Layout, Nav, error_page, render};
use crate::control::VerbReport;
use crate::health::human_bytes;
use crate::http::{Authed, AuthedChange, HttpState};
use crate::server::REQUEST_TIMEOUT;
use crate::view::{self, Filter, MessageInfo, State as MsgState};

/// Waits at most [`REQUEST_TIMEOUT`] for the queue; `None` when it is stopped.
pub(crate) async fn timed<T>(f: impl Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(REQUEST_TIMEOUT, f)
        .await
        .ok()
        .flatten()
}

/// The most rows a listing page shows (the queue may hold far more).
pub(crate) const MAX_ROWS: usize = 1000;

/// The state words offered in the filter.
const STATES: &[&str] = &[
    "pending",
    "deferred",
    "in_flight",
    "held",
    "deleting",
    "finishing",
];

/// `GET /queue` query (also the form's fields).
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub older_than: Option<String>,
}

/// One row of the queue table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: String,
    pub state: String,
    pub received: String,
    pub sender: String,
    pub recipients: String,
    pub size: String,
    /// Next attempt, or why it is held.
    pub note: String,
}

impl Row {
    fn of(m: &MessageInfo) -> Self {
        let rcpts: Vec<String> = m.recipients.iter().map(|r| r.address.clone()).collect();
        let note = match (&m.quarantine, &m.hold_reason, &m.next_attempt) {
            (Some(q), _, _) => format!("quarantine {q}"),
            (None, Some(h), _) if m.state == MsgState::Held => format!("held: {h}"),
            (_, _, Some(n)) => format!("next attempt {n}"),
            _ => String::new(),
        };
        Self {
            id: m.queue_id.to_string(),
            state: m.state.as_str().to_owned(),
            received: m.received_at.clone(),
            sender: sender(&m.reverse_path),
            recipients: list_short(&rcpts, 3),
            size: human_bytes(m.message_size),
            note,
        }
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
pub(crate) struct QueuePage {
    pub layout: Layout,
    pub query: ListQuery,
    pub states: Vec<(&'static str, bool)>,
    pub rows: Vec<Row>,
    /// Matching messages (`rows` holds at most [`MAX_ROWS`] of them).
    pub total: usize,
    /// `false`: the queue does not answer.
    pub running: bool,
    pub unreadable: Vec<(String, String)>,
}

fn filter_of(q: &ListQuery) -> Result<Filter, String> {
    let mut f = Filter::default();
    if let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) {
        f.state = Some(MsgState::parse(s)?);
    }
    f.domain = q
        .domain
        .clone()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    if let Some(a) = q.older_than.as_deref().filter(|s| !s.trim().is_empty()) {
        f.older_than_secs = Some(view::parse_age(a)?);
    }
    Ok(f)
}

/// `GET /queue`.
pub(crate) async fn list(
    State(state): State<HttpState>,
    who: Authed,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(&state, &who, q, None).await
}

async fn list_page(
    state: &HttpState,
    who: &Authed,
    q: ListQuery,
    status: Option<String>,
) -> Response {
    let mut layout = Layout::new(state, who, Nav::Queue, "Queue");
    layout.status = status;
    let (filter, code) = match filter_of(&q) {
        Ok(f) => (Some(f), StatusCode::OK),
        Err(e) => {
            layout.error = Some(e);
            (None, StatusCode::BAD_REQUEST)
        }
    };
    let all = timed(state.control.messages(None)).await;
    let running = all.is_some();
    if !running {
        layout.error = Some(
            "the queue does not answer (the server is shutting down or delivery is stopped)"
                .to_owned(),
        );
    }
    let selected_all = match (&all, &filter) {
        (Some(all), Some(f)) => view::select(all, f),
        _ => Vec::new(),
    };
    let total = selected_all.len();
    let rows = selected_all.iter().take(MAX_ROWS).map(Row::of).collect();
    let unreadable = if running {
        timed(state.control.unreadable())
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|u| (u.name, u.error))
            .collect()
    } else {
        Vec::new()
    };
    let selected = q.state.clone().unwrap_or_default();
    let page = QueuePage {
        layout,
        states: STATES.iter().map(|s| (*s, *s == selected)).collect(),
        query: q,
        rows,
        total,
        running,
        unreadable,
    };
    render(code, &page)
}

/// One recipient on the message page.
#[derive(Debug, Clone)]
pub(crate) struct RcptRow {
    pub address: String,
    pub state: String,
    pub attempts: u32,
    pub next: String,
    pub last: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub layout: Layout,
    pub id: String,
    /// (term, value) facts.
    pub facts: Vec<(&'static str, String)>,
    pub rcpts: Vec<RcptRow>,
    pub actions: Vec<Action>,
    pub decisions: Vec<(String, String, String)>,
    pub added_headers: String,
    pub tracking: bool,
}

fn opt(facts: &mut Vec<(&'static str, String)>, k: &'static str, v: Option<&String>) {
    if let Some(v) = v {
        facts.push((k, v.clone()));
    }
}

/// The facts and recipients of `m` (with its envelope).
pub(crate) fn facts_of(m: &MessageInfo) -> (Vec<(&'static str, String)>, Vec<RcptRow>) {
    let mut facts = vec![
        ("State", m.state.as_str().to_owned()),
        ("Received", m.received_at.clone()),
        ("Sender", sender(&m.reverse_path)),
        ("Size", human_bytes(m.message_size)),
    ];
    if let Some(env) = &m.envelope {
        opt(&mut facts, "Subject", env.subject.as_ref());
        opt(&mut facts, "Message-ID", env.message_id.as_ref());
        facts.push((
            "From host",
            format!("{} (HELO {})", env.receipt.peer, env.receipt.helo),
        ));
        opt(&mut facts, "Client name", env.receipt.client_name.as_ref());
        facts.push(("Listener", env.receipt.listener.clone()));
        facts.push((
            "Inbound TLS",
            env.receipt.tls.as_ref().map_or_else(
                || "none (plaintext)".to_owned(),
                |t| format!("{} {}", t.version, t.cipher),
            ),
        ));
        opt(&mut facts, "AUTH user", env.receipt.auth_user.as_ref());
    }
    opt(&mut facts, "Held since", m.held_since.as_ref());
    opt(&mut facts, "Hold reason", m.hold_reason.as_ref());
    opt(&mut facts, "Quarantine", m.quarantine.as_ref());
    opt(&mut facts, "Quarantine until", m.quarantine_until.as_ref());
    opt(&mut facts, "Next attempt", m.next_attempt.as_ref());
    opt(&mut facts, "Expires", m.expires_at.as_ref());
    let rcpts = m
        .recipients
        .iter()
        .map(|r| RcptRow {
            address: r.address.clone(),
            state: r.state.as_str().to_owned(),
            attempts: r.attempts,
            next: r.next_attempt.clone().unwrap_or_default(),
            last: [
                r.last_reply.clone(),
                r.last_cause.as_ref().map(|c| format!("[{c}]")),
                r.last_mx.as_ref().map(|m| format!("from {m}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        })
        .collect();
    (facts, rcpts)
}

/// `GET /queue/{id}`.
pub(crate) async fn show(
    State(state): State<HttpState>,
    who: Authed,
    Path(id): Path<String>,
) -> Response {
    show_page(&state, &who, &id, None).await
}

/// The message page, with what a verb did (`report`).
async fn show_page(
    state: &HttpState,
    who: &Authed,
    id: &str,
    report: Option<&VerbReport>,
) -> Response {
    let mut layout = Layout::new(state, who, Nav::Queue, format!("Message {id}"));
    let Ok(qid) = QueueId::parse(id) else {
        "Message".clone_into(&mut layout.title);
        return error_page(
            layout,
            StatusCode::BAD_REQUEST,
            "invalid queue id",
            back_links(),
        );
    };
    let Some(found) = timed(state.control.messages(Some(qid))).await else {
        return error_page(
            layout,
            StatusCode::SERVICE_UNAVAILABLE,
            "the queue does not answer (the server is shutting down or delivery is stopped)",
            back_links(),
        );
    };
    let code = layout.report(report);
    let Some(m) = found.first() else {
        if let Some(r) = report.filter(|r| r.outcome.is_success()) {
            // Deleted (or finished): back to the list, saying so.
            return list_page(state, who, ListQuery::default(), Some(r.text.clone())).await;
        }
        let text = format!(
            "{qid} is not in the queue: delivered, bounced, deleted or never queued. \
             Tracking has its history."
        );
        if layout.error.is_none() {
            layout.error = Some(text);
        }
        let mut links = back_links();
        if state.tracking.is_some() {
            links.insert(0, (format!("/track/{qid}"), format!("History of {qid}")));
        }
        return super::render(StatusCode::NOT_FOUND, &super::ErrorPage { layout, links });
    };
    let info = MessageInfo::of(m, true);
    let (facts, rcpts) = facts_of(&info);
    let mut actions = Vec::new();
    if info.state == MsgState::Held {
        actions.push(Action::new("/queue", &qid, Kind::Release));
    } else {
        actions.push(Action::new("/queue", &qid, Kind::Hold));
        actions.push(Action::new("/queue", &qid, Kind::Retry));
    }
    actions.push(Action::new("/queue", &qid, Kind::Delete));
    let env = info.envelope.as_ref();
    let page = MessagePage {
        layout,
        id: qid.to_string(),
        facts,
        rcpts,
        actions,
        decisions: env
            .map(|e| {
                e.content
                    .iter()
                    .map(|d| (d.by.clone(), d.verdict.clone(), d.action.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        added_headers: env.map(|e| e.added_headers.clone()).unwrap_or_default(),
        tracking: state.tracking.is_some(),
    };
    render(code, &page)
}

fn back_links() -> Vec<(String, String)> {
    vec![("/queue".to_owned(), "Back to the queue".to_owned())]
}

/// `POST /queue/{id}/{verb}`: without `confirm=yes`, the confirmation page;
/// with it, the verb, then the message page saying what happened.
pub(crate) async fn verb(
    State(state): State<HttpState>,
    AuthedChange(who): AuthedChange,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let layout = Layout::new(&state, &who, Nav::Queue, "Queue");
    let (Some(kind), Ok(qid)) = (Kind::parse(&verb), QueueId::parse(&id)) else {
        return error_page(
            layout,
            StatusCode::NOT_FOUND,
            "no such queue action (hold, release, retry, delete on a queue id)",
            back_links(),
        );
    };
    let report = match confirm_then_apply(&state, &who, layout, &body, (kind, qid), false).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    show_page(&state, &who, &id, Some(&report)).await
}
