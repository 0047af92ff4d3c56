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

/// A batch of mail-log lines for [`crate::TrackStore::index_batch`]: the
/// parsed entries and, beside each, its line as logged when it can be
/// stored as it is (the JSON record is then not serialised again).
#[derive(Debug, Default)]
pub struct Batch<'a> {
    /// The parsed entries.
    pub entries: Vec<LogEntry>,
    /// For each entry (same index), its line without the newline; `None`
    /// when the entry was changed after parsing (a subject removed) and must
    /// be serialised. Empty = serialise every entry.
    pub lines: Vec<Option<&'a str>>,
}

impl<'a> Batch<'a> {
    /// Adds an entry with its line (`None`: serialise it).
    pub fn push(&mut self, entry: LogEntry, line: Option<&'a str>) {
        self.entries.push(entry);
        self.lines.push(line);
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No event.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Empties it for the next batch (keeping its allocations).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.lines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_mail_and_session_events_apart() {
        let id = postern_spool::QueueId::generate();
        let mail = format!(
            r#"{{"ts":"2026-12-01T10:00:00Z","event_id":"E{id}.1","queue_id":"{id}","event":"deferred","rcpt":"a@b.example","status":"4.0.0","attempts":1}}"#
        );
        let session = r#"{"ts":"2026-12-01T10:00:00Z","event_id":"S1.1","session":"S1","event":"deferred","client":"192.0.2.1","listener":"mx","stage":"connect","rule":"ptr","reply":"421 4.7.0 later"}"#;
        assert!(matches!(LogEntry::parse(&mail), Some(LogEntry::Mail(_))));
        let s = LogEntry::parse(&format!("{session}\n"));
        assert!(matches!(s, Some(LogEntry::Session(_))), "{s:?}");
        assert_eq!(s.as_ref().map(LogEntry::name), Some("deferred"));
        assert_eq!(s.as_ref().map(LogEntry::event_id), Some("S1.1"));
        for garbage in [
            "",
            "{}",
            "not json",
            r#"{"ts":"t","event_id":"x","session":"S","event":"future_kind"}"#,
            &mail[..mail.len() - 5],
        ] {
            assert_eq!(LogEntry::parse(garbage), None, "{garbage}");
        }
    }
}
