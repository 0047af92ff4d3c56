//! Delivery latency: from `received` to `delivered`.
//!
//! A `delivered` record carries the message's age (`age_ms`, filled by the
//! delivery scheduler). For records without it (older logs) the age comes
//! from the `received` time remembered here per queue id, in a map bounded
//! to [`MAX_TRACKED`] messages (the oldest forgotten first): a message
//! delivered after more newer ones were received than that is not measured.
//!
//! # Security
//! Bounded: one entry per received message, at most [`MAX_TRACKED`].

use std::collections::{HashMap, VecDeque};

use postern_spool::QueueId;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Messages whose receipt time is remembered.
pub const MAX_TRACKED: usize = 100_000;

/// Receipt times by queue id, oldest first out.
#[derive(Debug)]
pub struct ReceivedTimes {
    at: HashMap<QueueId, OffsetDateTime>,
    order: VecDeque<QueueId>,
    cap: usize,
}

impl Default for ReceivedTimes {
    fn default() -> Self {
        Self::new(MAX_TRACKED)
    }
}

/// An RFC 3339 time, as the mail log writes them.
pub fn parse_ts(ts: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(ts, &Rfc3339).ok()
}

impl ReceivedTimes {
    /// A map remembering at most `cap` messages.
    pub fn new(cap: usize) -> Self {
        Self {
            at: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// Remembers that `id` was received at `ts` (RFC 3339); ignores a time
    /// that does not parse.
    pub fn received(&mut self, id: QueueId, ts: &str) {
        let Some(t) = parse_ts(ts) else { return };
        if self.at.insert(id, t).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.at.remove(&old);
            }
        }
    }

    /// Seconds from `id`'s receipt to `ts`, if its receipt is remembered.
    pub fn age(&self, id: &QueueId, ts: &str) -> Option<f64> {
        let from = self.at.get(id)?;
        let to = parse_ts(ts)?;
        Some((to - *from).as_seconds_f64().max(0.0))
    }

    /// Messages remembered.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets_the_oldest() {
        let mut m = ReceivedTimes::new(2);
        let (a, b, c) = (
            QueueId::generate(),
            QueueId::generate(),
            QueueId::generate(),
        );
        m.received(a, "2026-12-06T10:00:00.000Z");
        m.received(b, "2026-12-06T10:00:01.000Z");
        assert_eq!(m.age(&a, "2026-12-06T10:00:02.500Z"), Some(2.5));
        m.received(c, "2026-12-06T10:00:02.000Z");
        assert_eq!(m.len(), 2);
        assert_eq!(m.age(&a, "2026-12-06T10:00:03Z"), None, "forgotten");
        assert_eq!(m.age(&c, "2026-12-06T10:00:01Z"), Some(0.0), "clock skew");
        m.received(b, "garbage");
        assert_eq!(m.age(&b, "2026-12-06T10:00:02Z"), Some(1.0));
        assert_eq!(m.age(&b, "not a time"), None);
    }
}
