//! `GET /quarantine` (the quarantined messages), `GET /quarantine/{id}` (a
//! preview: envelope, subject, Message-ID, why it was quarantined, the
//! content decisions, the message's From/To/Cc/Subject/Date/Message-ID
//! and the header fields added at receipt), `POST
//! /quarantine/{id}/{release|delete}` with a confirmation step. All of it
//! answers 404 while `ConsoleInfo::quarantine_enabled` is false (and the
//! page is left out of the navigation).
//!
//! # Security
//! Quarantined mail is the most hostile text the console shows (spam,
//! phishing subjects): escaped like everything else, and the body is never
//! shown. Verbs refuse messages that are not in a quarantine (409), as the
//! socket API does: this page never touches ordinary queued mail.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use postern_spool::QueueId;

use super::format::{list_short, sender};
use super::queue::{MAX_ROWS, RcptRow, facts_of, timed};
use super::verbs::{Action, Kind, confirm_then_apply};
use super::{Layout, Nav, error_page, render};
use crate::control::VerbReport;
use crate::health::human_bytes;
use crate::http::{Authed, AuthedChange, HttpState};
use crate::view::{self, Filter, MessageInfo};

/// One quarantined message in the list.
#[derive(Debug, Clone)]
pub(crate) struct QRow {
    pub id: String,
    pub quarantine: String,
    pub received: String,
    pub sender: String,
    pub recipients: String,
    pub subject: String,
    pub reason: String,
    pub until: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "quarantine.html")]
pub(crate) struct QuarantinePage {
    pub layout: Layout,
    pub rows: Vec<QRow>,
    /// Quarantined messages (`rows` holds at most `MAX_ROWS`).
    pub total: usize,
}

#[derive(Template)]
#[template(path = "quarantined.html")]
pub(crate) struct PreviewPage {
    pub layout: Layout,
    pub facts: Vec<(&'static str, String)>,
    pub rcpts: Vec<RcptRow>,
    pub actions: Vec<Action>,
    pub decisions: Vec<(String, String, String)>,
    pub added_headers: String,
    /// From, To, Cc, Subject, Date, Message-ID of the message itself.
    pub headers: Vec<(String, String)>,
}

fn disabled(layout: Layout) -> Response {
    error_page(
        layout,
        StatusCode::NOT_FOUND,
        "no quarantine is configured ([[quarantine]] in the configuration)",
        Vec::new(),
    )
}

fn stopped(layout: Layout) -> Response {
    error_page(
        layout,
        StatusCode::SERVICE_UNAVAILABLE,
        "the queue does not answer (the server is shutting down or delivery is stopped)",
        Vec::new(),
    )
}

/// `GET /quarantine`.
pub(crate) async fn list(State(state): State<HttpState>, who: Authed) -> Response {
    list_page(&state, &who, None).await
}

async fn list_page(state: &HttpState, who: &Authed, status: Option<String>) -> Response {
    let mut layout = Layout::new(state, who, Nav::Quarantine, "Quarantine");
    if !state.console.quarantine_enabled() {
        return disabled(layout);
    }
    layout.status = status;
    let Some(all) = timed(state.control.messages(None)).await else {
        return stopped(layout);
    };
    let filter = Filter {
        quarantine: Some("*".to_owned()),
        ..Filter::default()
    };
    let by_id: std::collections::HashMap<QueueId, &postern_spool::Envelope> = all
        .iter()
        .map(|m| (m.envelope.queue_id, m.envelope.as_ref()))
        .collect();
    let selected = view::select(&all, &filter);
    let total = selected.len();
    let rows = selected
        .iter()
        .take(MAX_ROWS)
        .map(|m| {
            let env = by_id.get(&m.queue_id);
            let rcpts: Vec<String> = m.recipients.iter().map(|r| r.address.clone()).collect();
            QRow {
                id: m.queue_id.to_string(),
                quarantine: m.quarantine.clone().unwrap_or_default(),
                received: m.received_at.clone(),
                sender: sender(&m.reverse_path),
                recipients: list_short(&rcpts, 3),
                subject: env
                    .as_ref()
                    .and_then(|e| e.subject.clone())
                    .unwrap_or_default(),
                reason: m.hold_reason.clone().unwrap_or_default(),
                until: m.quarantine_until.clone().unwrap_or_default(),
                size: human_bytes(m.message_size),
            }
        })
        .collect();
    render(
        StatusCode::OK,
        &QuarantinePage {
            layout,
            rows,
            total,
        },
    )
}

/// `GET /quarantine/{id}`.
pub(crate) async fn show(
    State(state): State<HttpState>,
    who: Authed,
    Path(id): Path<String>,
) -> Response {
    preview(&state, &who, &id, None).await
}

async fn preview(
    state: &HttpState,
    who: &Authed,
    id: &str,
    report: Option<&VerbReport>,
) -> Response {
    let mut layout = Layout::new(state, who, Nav::Quarantine, format!("Quarantined {id}"));
    if !state.console.quarantine_enabled() {
        return disabled(layout);
    }
    let Ok(qid) = QueueId::parse(id) else {
        return error_page(
            layout,
            StatusCode::BAD_REQUEST,
            "invalid queue id",
            Vec::new(),
        );
    };
    let Some(found) = timed(state.control.messages(Some(qid))).await else {
        return stopped(layout);
    };
    let info = found.first().map(|m| MessageInfo::of(m, true));
    let Some(info) = info.filter(|i| i.quarantine.is_some()) else {
        if let Some(r) = report.filter(|r| r.outcome.is_success()) {
            return list_page(state, who, Some(r.text.clone())).await;
        }
        return error_page(
            layout,
            StatusCode::NOT_FOUND,
            format!("{qid} is not in a quarantine (released, deleted, or never quarantined)"),
            vec![(
                "/quarantine".to_owned(),
                "Back to the quarantine".to_owned(),
            )],
        );
    };
    let code = layout.report(report);
    let (facts, rcpts) = facts_of(&info);
    let headers = timed(state.control.header_preview(qid))
        .await
        .unwrap_or_default();
    let env = info.envelope.as_ref();
    let page = PreviewPage {
        layout,
        facts,
        rcpts,
        actions: vec![
            Action::new("/quarantine", &qid, Kind::Release),
            Action::new("/quarantine", &qid, Kind::Delete),
        ],
        decisions: env
            .map(|e| {
                e.content
                    .iter()
                    .map(|d| (d.by.clone(), d.verdict.clone(), d.action.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        added_headers: env.map(|e| e.added_headers.clone()).unwrap_or_default(),
        headers,
    };
    render(code, &page)
}

/// `POST /quarantine/{id}/{release|delete}`.
pub(crate) async fn verb(
    State(state): State<HttpState>,
    AuthedChange(who): AuthedChange,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let layout = Layout::new(&state, &who, Nav::Quarantine, "Quarantine");
    if !state.console.quarantine_enabled() {
        return disabled(layout);
    }
    let kind = Kind::parse(&verb).filter(|k| matches!(k, Kind::Release | Kind::Delete));
    let (Some(kind), Ok(qid)) = (kind, QueueId::parse(&id)) else {
        return error_page(
            layout,
            StatusCode::NOT_FOUND,
            "no such quarantine action (release or delete on a queue id)",
            Vec::new(),
        );
    };
    // Only quarantined mail (the socket API's rule).
    let Some(found) = timed(state.control.messages(Some(qid))).await else {
        return stopped(layout);
    };
    if found
        .first()
        .is_none_or(|m| MessageInfo::of(m, false).quarantine.is_none())
    {
        return error_page(
            layout,
            StatusCode::CONFLICT,
            format!("{qid} is not in a quarantine; the queue page acts on ordinary queued mail"),
            vec![(
                "/quarantine".to_owned(),
                "Back to the quarantine".to_owned(),
            )],
        );
    }
    // The scheduler checks the quarantine again in the same step as the verb.
    let report = match confirm_then_apply(&state, &who, layout, &body, (kind, qid), true).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    preview(&state, &who, &id, Some(&report)).await
}
