//! What `postern queue list|show` and `GET /v1/queue` show: each queued
//! message with one state word and its recipients' states, built from either
//! source — the running scheduler ([`QueuedMessage`] through
//! `QueueControl::messages`), or the spool on disk when the server is stopped
//! ([`read_spool`]) — and filtered the same way ([`Filter`]).
//!
//! A message's state word is the first that applies: `held`, `deleting`,
//! `in_flight` (some recipient is being attempted; a job waiting for a
//! connection slot is not), `deferred` (some recipient
//! waits for a retry), `pending` (some recipient not attempted yet),
//! `finishing` (every recipient delivered or bounced; being removed).
//!
//! # Security
//! Reads the spool read-only (no lock; files there are immutable once named,
//! `state/` lines are appended whole). Envelope addresses and replies are
//! untrusted text: shown, never interpreted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postern_spool::{
    Envelope, MessageState, Quarantines, QueueId, RcptStatus, Spool, SpoolError, StateStore,
};
use serde::{Deserialize, Serialize};

use crate::health::Unreadable;

/// One queued message and its delivery state, from either source.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Its envelope.
    pub envelope: Arc<Envelope>,
    /// Its delivery state.
    pub state: MessageState,
    /// Per recipient: being attempted (always false from the spool).
    pub in_flight: Vec<bool>,
    /// A delete waits for an attempt under way.
    pub deleting: bool,
    /// Unix time (ms) after which a deferral bounces as expired, if known.
    pub expires_ms: Option<u64>,
    /// Still in the quarantine it was accepted into: when its retention
    /// ends (Unix ms), if known.
    pub quarantine_until_ms: Option<u64>,
}

/// What the spool alone does not say about time: the delivery lifetime and
/// the quarantines' retention (from the configuration, for a stopped server).
#[derive(Debug, Clone, Default)]
pub struct Lifetimes {
    /// `[delivery] max_lifetime`.
    pub max_lifetime: Option<Duration>,
    /// `[[quarantine]]`s.
    pub quarantines: Option<Quarantines>,
}

/// A message's or a recipient's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not attempted yet.
    Pending,
    /// Waiting for a retry.
    Deferred,
    /// Being attempted (not: waiting for a connection slot).
    InFlight,
    /// Held by the operator.
    Held,
    /// A delete waits for the attempt under way.
    Deleting,
    /// Every recipient final; being removed.
    Finishing,
    /// A recipient the next hop accepted.
    Delivered,
    /// A recipient that failed permanently.
    Bounced,
}

impl State {
    /// The snake_case word.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Deferred => "deferred",
            State::InFlight => "in_flight",
            State::Held => "held",
            State::Deleting => "deleting",
            State::Finishing => "finishing",
            State::Delivered => "delivered",
            State::Bounced => "bounced",
        }
    }

    /// Parses a word as given to `--state` (`active` is `in_flight`).
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "pending" => State::Pending,
            "deferred" => State::Deferred,
            "in_flight" | "in-flight" | "active" => State::InFlight,
            "held" | "hold" => State::Held,
            "deleting" => State::Deleting,
            "finishing" => State::Finishing,
            other => {
                return Err(format!(
                    "unknown state {other:?}; allowed: pending, deferred, in_flight, held, \
                     deleting, finishing"
                ));
            }
        })
    }
}

/// One recipient as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientInfo {
    /// The address.
    pub address: String,
    /// Its state (`held` for a held message's open recipients).
    pub state: State,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt, RFC 3339 (deferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// The last reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply: Option<String>,
    /// The last cause id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cause: Option<String>,
    /// The host that gave the last reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_mx: Option<String>,
}

/// One message as shown (one JSON object per message in `--json` output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// The queue id.
    pub queue_id: QueueId,
    /// The state word (module documentation).
    pub state: State,
    /// When it was received, RFC 3339.
    pub received_at: String,
    /// The reverse path (`""` = null sender).
    pub reverse_path: String,
    /// Body size in octets.
    pub message_size: u64,
    /// Held since, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<String>,
    /// The earliest next attempt of a deferred recipient, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// When deferrals start to bounce as expired, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The quarantine it is in (accepted held, not released yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
    /// Why it was accepted held (kept after a release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,
    /// When its quarantine's retention ends, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_until: Option<String>,
    /// Every recipient.
    pub recipients: Vec<RecipientInfo>,
    /// The whole envelope (`show` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
}

impl MessageInfo {
    /// The view of `m`; with `detail`, the envelope too.
    pub fn of(m: &QueuedMessage, detail: bool) -> Self {
        let held = m.state.is_held();
        let mut recipients = Vec::with_capacity(m.envelope.recipients.len());
        for (i, rcpt) in m.envelope.recipients.iter().enumerate() {
            let st = m.state.rcpts.get(i).cloned().unwrap_or_default();
            let busy = m.in_flight.get(i).copied().unwrap_or(false);
            let state = match st.status {
                RcptStatus::Delivered => State::Delivered,
                RcptStatus::Bounced => State::Bounced,
                _ if busy => State::InFlight,
                _ if held => State::Held,
                RcptStatus::Deferred => State::Deferred,
                RcptStatus::Pending => State::Pending,
            };
            recipients.push(RecipientInfo {
                address: rcpt.address.clone(),
                state,
                attempts: st.attempts,
                next_attempt: st
                    .next_attempt_ms
                    .filter(|_| st.status == RcptStatus::Deferred)
                    .map(rfc3339),
                last_reply: st.last_reply,
                last_cause: st.last_cause,
                last_mx: st.last_mx,
            });
        }
        let any = |s: State| recipients.iter().any(|r| r.state == s);
        let state = if held {
            State::Held
        } else if m.deleting {
            State::Deleting
        } else if any(State::InFlight) {
            State::InFlight
        } else if any(State::Deferred) {
            State::Deferred
        } else if any(State::Pending) {
            State::Pending
        } else {
            State::Finishing
        };
        Self {
            queue_id: m.envelope.queue_id,
            state,
            received_at: m.envelope.received_at.clone(),
            reverse_path: m.envelope.reverse_path.clone(),
            message_size: m.envelope.wire_size(),
            held_since: m.state.held_at_ms.map(rfc3339),
            next_attempt: m.state.next_due_ms().map(rfc3339),
            expires_at: m.expires_ms.map(rfc3339),
            quarantine: m
                .state
                .is_quarantined(m.envelope.hold.is_some())
                .then(|| m.envelope.quarantine_name().map(str::to_owned))
                .flatten(),
            hold_reason: m.envelope.hold.clone(),
            quarantine_until: m.quarantine_until_ms.map(rfc3339),
            recipients,
            envelope: detail.then(|| (*m.envelope).clone()),
        }
    }
}

/// `--state`, `--domain`, `--older-than` (all optional; all must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// The message's state word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// Some recipient at this domain (ASCII case-insensitive, exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Received longer ago than this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_secs: Option<u64>,
    /// In a quarantine: this one by name, or any (`*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
}

impl Filter {
    /// Whether `info` (received at `received_ms`) matches at `now_ms`.
    pub fn matches(&self, info: &MessageInfo, received_ms: u64, now_ms: u64) -> bool {
        if let Some(s) = self.state
            && info.state != s
        {
            return false;
        }
        if let Some(d) = &self.domain
            && !info.recipients.iter().any(|r| {
                r.address
                    .rsplit_once('@')
                    .is_some_and(|(_, rd)| rd.eq_ignore_ascii_case(d))
            })
        {
            return false;
        }
        if let Some(q) = &self.quarantine
            && !info
                .quarantine
                .as_deref()
                .is_some_and(|name| q == "*" || name == q)
        {
            return false;
        }
        if let Some(secs) = self.older_than_secs
            && now_ms.saturating_sub(received_ms) < secs.saturating_mul(1000)
        {
            return false;
        }
        true
    }
}

/// The messages that match `filter`, sorted by queue id (arrival order).
pub fn select(messages: &[QueuedMessage], filter: &Filter) -> Vec<MessageInfo> {
    let now = now_ms();
    let mut out: Vec<MessageInfo> = messages
        .iter()
        .filter_map(|m| {
            let info = MessageInfo::of(m, false);
            let received = received_ms(&m.envelope);
            filter.matches(&info, received, now).then_some(info)
        })
        .collect();
    out.sort_by_key(|i| i.queue_id);
    out
}

/// What the spool on disk holds: the messages that could be read, and the
/// files that could not (damaged, or an I/O error) — reported, not skipped.
#[derive(Debug, Clone, Default)]
pub struct SpoolContents {
    /// Readable messages with their recorded state.
    pub messages: Vec<QueuedMessage>,
    /// Files in `msg/` (or their `state/`) that could not be read.
    pub unreadable: Vec<Unreadable>,
}

/// Every message in the spool at `dir` with its recorded state (server
/// stopped, or `--spool`): read-only, no lock. `lifetimes` give `expires_at`
/// and `quarantine_until`. A file that cannot be read is listed in
/// `unreadable` with the reason.
pub fn read_spool(dir: &Path, lifetimes: &Lifetimes) -> Result<SpoolContents, SpoolError> {
    let reader = Spool::open_read_only(dir)?;
    let states = StateStore::new(dir);
    let listing = reader.scan()?;
    let mut out = SpoolContents::default();
    for (name, error) in listing.invalid {
        out.unreadable.push(Unreadable {
            name,
            error,
            attempts: None,
            next_attempt: None,
        });
    }
    for env in listing.envelopes {
        let id = env.queue_id;
        match from_disk(env, &states, lifetimes) {
            Ok(m) => out.messages.push(m),
            Err(e) => out.unreadable.push(Unreadable {
                name: id.to_string(),
                error: format!("delivery state: {e}"),
                attempts: None,
                next_attempt: None,
            }),
        }
    }
    out.unreadable.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// One message from the spool at `dir` (read-only), or `None` if not queued.
pub fn read_one(
    dir: &Path,
    id: &QueueId,
    lifetimes: &Lifetimes,
) -> Result<Option<QueuedMessage>, SpoolError> {
    let reader = Spool::open_read_only(dir)?;
    match reader.envelope(id) {
        Ok(env) => from_disk(env, &StateStore::new(dir), lifetimes).map(Some),
        Err(SpoolError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn from_disk(
    env: Envelope,
    states: &StateStore,
    lifetimes: &Lifetimes,
) -> Result<QueuedMessage, SpoolError> {
    let n = env.recipients.len();
    let mut state = states
        .load(&env.queue_id, n)?
        .unwrap_or_else(|| MessageState::new(n));
    let received = received_ms(&env);
    if env.hold.is_some() && state.records == 0 {
        // Accepted held, no state file yet: held since receipt.
        state.hold_from(received);
    }
    // As the scheduler counts them (`MessageState::lifetime_start`,
    // `Quarantines::until`).
    let base = state.lifetime_start(env.hold.is_some(), received);
    let expires_ms = lifetimes
        .max_lifetime
        .map(|l| base.saturating_add(u64::try_from(l.as_millis()).unwrap_or(u64::MAX)));
    let quarantine_until_ms = match (&lifetimes.quarantines, env.quarantine_name()) {
        (Some(q), Some(name)) if state.is_quarantined(true) => Some(q.until(name, received)),
        _ => None,
    };
    Ok(QueuedMessage {
        quarantine_until_ms,
        envelope: Arc::new(env),
        state,
        in_flight: vec![false; n],
        deleting: false,
        expires_ms,
    })
}

/// Unix ms of `received_at`, else of the queue id's timestamp.
pub fn received_ms(env: &Envelope) -> u64 {
    time::OffsetDateTime::parse(
        &env.received_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
    .and_then(|t| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
    .unwrap_or_else(|| env.queue_id.timestamp_micros() / 1000)
}

/// Unix ms, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// RFC 3339 UTC with seconds (`2026-11-22T17:03:57Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `90s`, `30m`, `2h`, `7d`, or plain seconds: for `--older-than` and the
/// API's `older_than`.
pub fn parse_age(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid age {s:?}: expected a number with a unit, e.g. 2h"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "invalid age {s:?}: unknown unit {other:?}; allowed: s, m, h, d"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid age {s:?}: too large"))
}

/// The header fields a reviewer needs to judge a held message (From, To, Cc,
/// Subject, Date, Message-ID), from the start of `message` (the first
/// [`HEADER_PREVIEW_MAX`] bytes are enough for any header section we accept
/// to preview). Hostile text: control characters become spaces and each
/// value is cut to [`HEADER_PREVIEW_VALUE_MAX`] characters.
pub fn header_preview(message: &[u8]) -> Vec<(String, String)> {
    let head = &message[..message.len().min(HEADER_PREVIEW_MAX)];
    let mut out = Vec::new();
    for name in ["From", "To", "Cc", "Subject", "Date", "Message-ID"] {
        for v in postern_proto::header_values(head, name) {
            let v: String = v
                .trim()
                .chars()
                .map(|c| {
                    if c.is_control() || postern_proto::is_bidi_format(c) {
                        ' '
                    } else {
                        c
                    }
                })
                .take(HEADER_PREVIEW_VALUE_MAX)
                .collect();
            out.push((name.to_owned(), v));
        }
    }
    out
}

/// How much of a message [`header_preview`] reads.
pub const HEADER_PREVIEW_MAX: usize = 64 * 1024;
/// The longest value [`header_preview`] keeps, in characters.
pub const HEADER_PREVIEW_VALUE_MAX: usize = 300;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_spool::{EnvelopeRecipient, StateRecord};

    fn msg(rcpts: &[&str]) -> QueuedMessage {
        let env = Envelope {
            queue_id: QueueId::generate(),
            received_at: "2026-01-01T00:00:00Z".into(),
            reverse_path: "a@example.com".into(),
            recipients: rcpts
                .iter()
                .map(|r| EnvelopeRecipient {
                    address: (*r).into(),
                    ..EnvelopeRecipient::default()
                })
                .collect(),
            params: postern_spool::MailParams::default(),
            receipt: postern_spool::Receipt::default(),
            message_size: 10,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        };
        let n = rcpts.len();
        QueuedMessage {
            envelope: Arc::new(env),
            state: MessageState::new(n),
            in_flight: vec![false; n],
            deleting: false,
            expires_ms: None,
            quarantine_until_ms: None,
        }
    }

    fn defer(m: &mut QueuedMessage, i: u32) {
        m.state.apply(&StateRecord::Rcpt {
            rcpt: i,
            status: RcptStatus::Deferred,
            attempts: 1,
            next_attempt_ms: Some(1_800_000_000_000),
            reply: Some("451 4.3.0 later".into()),
            cause: Some("smtp.reply_transient".into()),
            mx: None,
            at_ms: 1,
        });
    }

    #[test]
    fn state_words_and_filters() {
        let pending = msg(&["x@one.example"]);
        let mut deferred = msg(&["y@two.example", "z@one.example"]);
        defer(&mut deferred, 0);
        let mut held = msg(&["w@two.example"]);
        defer(&mut held, 0);
        held.state.apply(&StateRecord::Hold {
            held: true,
            at_ms: 5000,
        });
        let mut busy = msg(&["v@three.example"]);
        busy.in_flight[0] = true;
        let all = vec![pending, deferred, held, busy];
        let words: Vec<State> = select(&all, &Filter::default())
            .iter()
            .map(|i| i.state)
            .collect();
        assert_eq!(
            words,
            [
                State::Pending,
                State::Deferred,
                State::Held,
                State::InFlight
            ]
        );
        let f = Filter {
            state: Some(State::Held),
            ..Filter::default()
        };
        let held_only = select(&all, &f);
        assert_eq!(held_only.len(), 1);
        assert_eq!(held_only[0].recipients[0].state, State::Held);
        assert_eq!(
            held_only[0].held_since.as_deref(),
            Some("1970-01-01T00:00:05Z")
        );
        let f = Filter {
            domain: Some("ONE.example".into()),
            ..Filter::default()
        };
        assert_eq!(select(&all, &f).len(), 2);
        let f = Filter {
            older_than_secs: Some(3600),
            ..Filter::default()
        };
        assert_eq!(select(&all, &f).len(), 4, "received in 2026-01-01");
        let f = Filter {
            older_than_secs: Some(u64::MAX / 2000),
            ..Filter::default()
        };
        assert!(select(&all, &f).is_empty());
        let d = MessageInfo::of(&all[1], true);
        assert_eq!(
            d.recipients[0].last_cause.as_deref(),
            Some("smtp.reply_transient")
        );
        assert!(d.next_attempt.is_some() && d.envelope.is_some());
    }

    #[test]
    fn ages_and_states_parse() {
        assert_eq!(parse_age("90"), Ok(90));
        assert_eq!(parse_age("30m"), Ok(1800));
        assert_eq!(parse_age("2h"), Ok(7200));
        assert_eq!(parse_age("7d"), Ok(604_800));
        assert!(parse_age("2 weeks").is_err());
        assert!(parse_age("h").is_err());
        assert_eq!(State::parse("active"), Ok(State::InFlight));
        assert!(State::parse("frozen").unwrap_err().contains("allowed"));
    }
}
