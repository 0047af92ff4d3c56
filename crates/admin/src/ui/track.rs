//! `GET /track`: the tracking search (every `SearchQuery` filter) with its
//! results, and `GET /track/{id}`: one message's life — the timeline of its
//! events and its transport-security evidence (the inbound hop and every
//! outbound attempt: version, cipher, group, certificate, verification,
//! policy and why, downgrade), with a link to the JSON export.
//!
//! # Security
//! Everything here came from the network at some point (subjects, HELO
//! names, replies, certificate subjects): shown escaped. Query values are
//! bounded before they reach the store (`MAX_FIELD`), the limit is capped.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use postern_track::{MailEvent, SessionEvent};
use postern_trackdb::{EventRow, Evidence, SearchQuery, TlsEvidence};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::format::{describe, list_short, store_call, tls_words};
use super::{Layout, Nav, error_page, render};
use crate::http::{Authed, HttpState};

/// The longest filter value accepted (an address is at most 254 octets).
const MAX_FIELD: usize = 512;
/// Results per page unless asked.
const DEFAULT_LIMIT: usize = 100;
/// The most results one page shows.
const MAX_LIMIT: usize = 1000;

/// The event names a search may ask for: the message events, then the
/// session events the gateway records (rejected, throttled, greylisted,
/// dropped; `deferred` is both).
fn event_names() -> Vec<&'static str> {
    let mut names = MailEvent::NAMES.to_vec();
    names.extend(
        SessionEvent::NAMES
            .iter()
            .filter(|n| !MailEvent::NAMES.contains(n)),
    );
    names
}

/// The form as submitted (echoed back into the inputs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Form {
    pub sender: String,
    pub recipient: String,
    pub start: String,
    pub end: String,
    pub events: Vec<String>,
    pub queue_id: String,
    pub message_id: String,
    pub subject: String,
    pub ip: String,
    pub tls_version: String,
    pub limit: String,
}

impl Form {
    fn parse(raw: &str) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
        let mut f = Form::default();
        let max_events = event_names().len();
        for (k, v) in pairs {
            let v: String = v.trim().chars().take(MAX_FIELD).collect();
            match k.as_str() {
                "sender" => f.sender = v,
                "recipient" => f.recipient = v,
                "start" => f.start = v,
                "end" => f.end = v,
                "event" if !v.is_empty() && f.events.len() < max_events => {
                    f.events.push(v);
                }
                "queue_id" => f.queue_id = v,
                "message_id" => f.message_id = v,
                "subject" => f.subject = v,
                "ip" => f.ip = v,
                "tls_version" => f.tls_version = v,
                "limit" => f.limit = v,
                _ => {}
            }
        }
        f
    }

    fn is_empty(&self) -> bool {
        [
            &self.sender,
            &self.recipient,
            &self.start,
            &self.end,
            &self.queue_id,
            &self.message_id,
            &self.subject,
            &self.ip,
            &self.tls_version,
        ]
        .iter()
        .all(|s| s.is_empty())
            && self.events.is_empty()
    }

    /// The store query, or what is wrong with the form.
    fn query(&self) -> Result<SearchQuery, String> {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let names = event_names();
        for e in &self.events {
            if !names.contains(&e.as_str()) {
                return Err(format!(
                    "unknown event {e:?}; allowed: {}",
                    names.join(", ")
                ));
            }
        }
        let limit = if self.limit.is_empty() {
            DEFAULT_LIMIT
        } else {
            self.limit
                .parse::<usize>()
                .map_err(|_| "limit: a number of results, e.g. 100".to_owned())?
                .clamp(1, MAX_LIMIT)
        };
        Ok(SearchQuery {
            sender: opt(&self.sender),
            recipient: opt(&self.recipient),
            start: parse_time("start", &self.start)?,
            end: parse_time("end", &self.end)?,
            events: self.events.clone(),
            queue_id: opt(&self.queue_id),
            message_id: opt(&self.message_id),
            subject: opt(&self.subject),
            ip: opt(&self.ip),
            tls_version: opt(&self.tls_version),
            limit,
        })
    }
}

/// RFC 3339, or the `YYYY-MM-DDTHH:MM[:SS]` of a `datetime-local` input (UTC).
fn parse_time(key: &str, s: &str) -> Result<Option<OffsetDateTime>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Some(t));
    }
    let full = match s.len() {
        16 => format!("{s}:00Z"),
        19 => format!("{s}Z"),
        _ => String::new(),
    };
    OffsetDateTime::parse(&full, &Rfc3339)
        .map(Some)
        .map_err(|_| format!("{key}: a UTC time like 2026-12-06T23:05 or 2026-12-06T23:05:00Z"))
}

/// One result row.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub ts: String,
    pub event: String,
    pub queue_id: String,
    pub sender: String,
    pub recipients: String,
    pub peer: String,
    pub tls: String,
    pub status: String,
    pub detail: String,
}

impl Hit {
    fn of(r: &EventRow) -> Self {
        let peer = [
            r.client_name.clone().or_else(|| r.client_ip.clone()),
            r.server_name.clone().or_else(|| r.server_ip.clone()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" → ");
        Self {
            ts: r.ts.clone(),
            event: r.event.clone(),
            queue_id: r.queue_id.clone().unwrap_or_default(),
            sender: r.sender.clone().unwrap_or_default(),
            recipients: list_short(&r.recipients, 3),
            peer,
            tls: match (&r.tls_version, &r.tls_cipher) {
                (Some(v), Some(c)) => format!("{v} {c}"),
                (Some(v), None) => tls_words(v),
                _ => String::new(),
            },
            status: [r.status.clone(), r.reply.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            detail: r.detail.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "track.html")]
pub(crate) struct SearchPage {
    pub layout: Layout,
    pub form: Form,
    /// (name, checked) for the event checkboxes.
    pub events: Vec<(&'static str, bool)>,
    /// `None`: no search made yet.
    pub hits: Option<Vec<Hit>>,
    pub limit: usize,
}

/// `GET /track`.
pub(crate) async fn search(
    State(state): State<HttpState>,
    who: Authed,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut layout = Layout::new(&state, &who, Nav::Track, "Message tracking");
    let Some(store) = state.tracking.clone() else {
        return tracking_off(layout);
    };
    let form = Form::parse(raw.as_deref().unwrap_or(""));
    let events = event_names()
        .into_iter()
        .map(|n| (n, form.events.iter().any(|e| e == n)))
        .collect();
    let mut code = StatusCode::OK;
    let mut hits = None;
    let mut limit = DEFAULT_LIMIT;
    if !form.is_empty() {
        match form.query() {
            Ok(q) => {
                limit = q.limit;
                match store_call(&state.query_permits, &store, move |s| s.search(&q)).await {
                    Ok(rows) => hits = Some(rows.iter().map(Hit::of).collect()),
                    Err(e) => {
                        layout.error = Some(e);
                        code = StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
            }
            Err(e) => {
                layout.error = Some(e);
                code = StatusCode::BAD_REQUEST;
            }
        }
    }
    render(
        code,
        &SearchPage {
            layout,
            form,
            events,
            hits,
            limit,
        },
    )
}

fn tracking_off(layout: Layout) -> Response {
    error_page(
        layout,
        StatusCode::NOT_FOUND,
        "message tracking is off: set [tracking] enabled = true (with a mail log) and restart",
        vec![(
            "/queue".to_owned(),
            "The queue (messages not yet delivered)".to_owned(),
        )],
    )
}

/// The TLS facts of one hop, as shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsView {
    pub version: String,
    pub legacy: bool,
    pub cipher: String,
    pub group: String,
    pub sni: String,
    pub fingerprint: String,
    pub subject: String,
    pub sans: String,
    pub issuer: String,
    pub not_after: String,
}

impl TlsView {
    fn of(t: &TlsEvidence) -> Self {
        let cert = t.cert.clone().unwrap_or_default();
        Self {
            version: tls_words(&t.version),
            legacy: super::format::tls_is_weak(&t.version),
            cipher: t.cipher.clone(),
            group: t.group.clone().unwrap_or_default(),
            sni: t.sni.clone().unwrap_or_default(),
            fingerprint: cert.fingerprint_sha256,
            subject: cert.subject,
            sans: cert.sans.join(", "),
            issuer: cert.issuer,
            not_after: cert.not_after,
        }
    }
}

/// The inbound hop.
#[derive(Debug, Clone)]
pub(crate) struct InView {
    pub ts: String,
    pub client: String,
    pub helo: String,
    pub listener: String,
    pub auth_user: String,
    pub tls: Option<TlsView>,
}

/// One outbound attempt.
#[derive(Debug, Clone)]
pub(crate) struct OutView {
    pub ts: String,
    pub attempt: u32,
    pub destination: String,
    pub route: String,
    pub host: String,
    pub policy: String,
    pub policy_reason: String,
    pub starttls: String,
    pub tls: Option<TlsView>,
    pub verification: String,
    pub verified: bool,
    pub verification_result: String,
    pub downgraded: bool,
    pub outcome: String,
    pub reply: String,
    pub cause: String,
    pub fix: String,
}

#[derive(Template)]
#[template(path = "timeline.html")]
pub(crate) struct TimelinePage {
    pub layout: Layout,
    pub queue_id: String,
    pub facts: Vec<(&'static str, String)>,
    pub related: Vec<String>,
    pub events: Vec<(String, String, String)>,
    pub inbound: Option<InView>,
    pub outbound: Vec<OutView>,
    pub json_url: String,
}

/// `GET /track/{id}`: a queue id or a Message-ID.
pub(crate) async fn timeline(
    State(state): State<HttpState>,
    who: Authed,
    Path(key): Path<String>,
) -> Response {
    let mut layout = Layout::new(&state, &who, Nav::Track, "Message history");
    let Some(store) = state.tracking.clone() else {
        return tracking_off(layout);
    };
    let key: String = key.chars().take(MAX_FIELD).collect();
    let k = key.clone();
    let life = match store_call(&state.query_permits, &store, move |s| s.message(&k)).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return error_page(
                layout,
                StatusCode::NOT_FOUND,
                format!("no tracked message with queue id or Message-ID {key}"),
                vec![(
                    "/track".to_owned(),
                    "Search the tracking database".to_owned(),
                )],
            );
        }
        Err(e) => {
            return error_page(layout, StatusCode::SERVICE_UNAVAILABLE, e, Vec::new());
        }
    };
    let ev = Evidence::from_life(&life);
    layout.title = format!("Message {}", life.queue_id);
    let mut facts = vec![("Outcome", life.outcome.clone())];
    if let Some(s) = &life.sender {
        facts.push(("Sender", super::format::sender(s)));
    }
    facts.push(("Recipients", life.recipients.join(", ")));
    if let Some(m) = &life.message_id {
        facts.push(("Message-ID", m.clone()));
    }
    if let Some(s) = &life.subject {
        facts.push(("Subject", s.clone()));
    }
    let events = life
        .records
        .iter()
        .map(|r| (r.ts.clone(), r.event.name().to_owned(), describe(r)))
        .collect();
    let inbound = ev.inbound.as_ref().map(|h| InView {
        ts: h.ts.clone(),
        client: match &h.client_name {
            Some(n) => format!("{n} ({})", h.client_ip),
            None => h.client_ip.clone(),
        },
        helo: h.helo.clone(),
        listener: h.listener.clone(),
        auth_user: h.auth_user.clone().unwrap_or_default(),
        tls: h.tls.as_ref().map(TlsView::of),
    });
    let outbound = ev
        .outbound
        .iter()
        .map(|o| OutView {
            ts: o.ts.clone(),
            attempt: o.attempt,
            destination: o.destination.clone(),
            route: o.route.clone(),
            host: if o.ip.is_empty() {
                o.mx.clone()
            } else {
                format!("{} ({})", o.mx, o.ip)
            },
            policy: o.policy.clone(),
            policy_reason: o.policy_reason.clone(),
            starttls: match o.starttls_offered {
                Some(true) => "offered".to_owned(),
                Some(false) => "NOT offered".to_owned(),
                None => "unknown (the session ended before EHLO)".to_owned(),
            },
            tls: o.tls.as_ref().map(TlsView::of),
            verification: o.verification.clone(),
            verified: o.verified,
            verification_result: o.verification_result.clone(),
            downgraded: o.downgraded,
            outcome: o.outcome.clone(),
            reply: o.reply.clone().unwrap_or_default(),
            cause: o
                .cause
                .as_ref()
                .map(|c| format!("{}: {}", c.id, c.summary))
                .unwrap_or_default(),
            fix: o.cause.as_ref().map(|c| c.fix.clone()).unwrap_or_default(),
        })
        .collect();
    let page = TimelinePage {
        json_url: format!("/api/v1/track/{}/evidence", life.queue_id),
        queue_id: life.queue_id.clone(),
        layout,
        facts,
        related: life.related.clone(),
        events,
        inbound,
        outbound,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_form_parses_every_filter() {
        let f = Form::parse(
            "sender=a%40x.example&recipient=%40y.example&start=2026-12-06T23%3A05&end=\
             2026-12-07T00%3A00%3A00Z&event=delivered&event=bounced&queue_id=Q&message_id=M\
             &subject=hi&ip=192.0.2.0%2F24&tls_version=TLSv1.2&limit=5000",
        );
        let q = f.query().unwrap();
        assert_eq!(q.sender.as_deref(), Some("a@x.example"));
        assert_eq!(q.recipient.as_deref(), Some("@y.example"));
        assert_eq!(q.events, ["delivered", "bounced"]);
        assert_eq!(q.start.unwrap().minute(), 5);
        assert!(q.end.is_some());
        assert_eq!(q.ip.as_deref(), Some("192.0.2.0/24"));
        assert_eq!(q.limit, MAX_LIMIT);
        assert!(Form::parse("").is_empty());
        assert!(
            Form::parse("event=nope")
                .query()
                .unwrap_err()
                .contains("allowed")
        );
        assert!(
            Form::parse("start=yesterday")
                .query()
                .unwrap_err()
                .contains("start")
        );
    }
}
