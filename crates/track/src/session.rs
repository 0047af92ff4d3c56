//! Session events: what the gateway decided at SMTP time about a client
//! (refused, deferred, throttled, greylisted), keyed by the session id —
//! there is no queue id, nothing was queued. Written to the same mail log as
//! the message events; readers that look for a queue id skip them.
//!
//! ```json
//! {"ts":"…","event_id":"ZX1JSBCKZ2AW.1","session":"ZX1JSBCKZ2AW","event":"throttled",
//!  "client":"198.51.100.7","listener":"smtp","stage":"rcpt","rule":"max_recipients_per_hour_per_ip",
//!  "group":"SUSPECT","policy":"THROTTLED","reply":"452 4.5.3 Too many recipients …",
//!  "sender":"a@b.example","recipient":"u@example.com"}
//! ```
//!
//! # Security
//! The reply text and the addresses come from the client or our policy;
//! JSON escaping keeps each record on one line.

use serde::{Deserialize, Serialize};

/// What was decided, with the rule and the group / policy that decided it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpDecision {
    /// The client address.
    pub client: String,
    /// The listener.
    pub listener: String,
    /// `connect`, `helo`, `mail`, `rcpt`, `data-end`, `auth`.
    pub stage: String,
    /// The rule: a policy key (`max_recipients_per_hour_per_ip`), a
    /// behaviour (`reject`), or a session rule (`relay_denied`).
    pub rule: String,
    /// The sender group, if sender groups are configured and one matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The mail-flow policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The reply the client got (empty for a silent close).
    pub reply: String,
    /// MAIL FROM, once given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The recipient refused (RCPT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

/// The kinds of session events; the `event` field is the stable name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SessionEvent {
    /// A `5xx` (or a silent close): the client may not do this.
    Rejected(SmtpDecision),
    /// A `4xx` that is not a rate limit or greylisting (tempfail policy, PTR
    /// lookup failure, ban).
    Deferred(SmtpDecision),
    /// A rate or concurrency limit answered `4xx`.
    Throttled(SmtpDecision),
    /// Greylisting deferred a recipient.
    Greylisted(SmtpDecision),
    /// The content policy discarded the message (a rule's `drop`, an
    /// engine verdict under a `drop` action, a milter's discard): the
    /// client got `250`, nothing was stored. `reply` holds the reason.
    Dropped(SmtpDecision),
}

impl SessionEvent {
    /// The stable name.
    pub fn name(&self) -> &'static str {
        match self {
            SessionEvent::Rejected(_) => "rejected",
            SessionEvent::Deferred(_) => "deferred",
            SessionEvent::Throttled(_) => "throttled",
            SessionEvent::Greylisted(_) => "greylisted",
            SessionEvent::Dropped(_) => "dropped",
        }
    }

    /// Every name.
    pub const NAMES: &'static [&'static str] =
        &["rejected", "deferred", "throttled", "greylisted", "dropped"];
}

/// One session event as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// RFC 3339 UTC time.
    pub ts: String,
    /// `<session>.<n>`: unique within the log.
    pub event_id: String,
    /// The session id (as in the transcript and operator log).
    pub session: String,
    /// The event.
    #[serde(flatten)]
    pub event: SessionEvent,
}

impl SessionRecord {
    /// A record now; `n` numbers the session's events.
    pub fn new(session: &str, n: u32, event: SessionEvent) -> Self {
        Self {
            ts: crate::event::now_rfc3339(),
            event_id: format!("{session}.{n}"),
            session: session.to_owned(),
            event,
        }
    }
}
