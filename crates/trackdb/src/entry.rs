//! One mail-log line: a message event (it has a queue id) or a session event
//! (a decision at SMTP time, keyed by the session id).
//!
//! # Security
//! Lines come from our own log but may be damaged (a crash mid-line, a full
//! disk): anything that does not parse is `None`, never an error.

use postern_track::{SessionRecord, TrackRecord};
use serde::{Deserialize, Serialize};

/// One parsed line of the mail log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // the API shape (api12.md); batches are short-lived
pub enum LogEntry {
    /// A message event.
    Mail(TrackRecord),
    /// A session event (rejected, deferred, throttled, greylisted, dropped).
    Session(SessionRecord),
}

impl LogEntry {
    /// Parses one line (with or without its newline); `None` for garbage,
    /// and for events this version does not know.
    pub fn parse(line: &str) -> Option<LogEntry> {
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            return None;
        }
        // Both kinds share event names (`deferred`): the `queue_id` field
        // tells them apart, so try the message record first.
        if let Ok(rec) = serde_json::from_str::<TrackRecord>(line) {
            return Some(LogEntry::Mail(rec));
        }
        serde_json::from_str::<SessionRecord>(line)
            .ok()
            .map(LogEntry::Session)
    }

    /// The unique event id.
    pub fn event_id(&self) -> &str {
        match self {
            LogEntry::Mail(r) => &r.event_id.0,
            LogEntry::Session(r) => &r.event_id,
        }
    }

    /// The RFC 3339 time.
    pub fn ts(&self) -> &str {
        match self {
            LogEntry::Mail(r) => &r.ts,
            LogEntry::Session(r) => &r.ts,
        }
    }

    /// The stable event name.
    pub fn name(&self) -> &'static str {
        match self {
            LogEntry::Mail(r) => r.event.name(),
            LogEntry::Session(r) => r.event.name(),
        }
    }
}
