//! The session's view of the counter store (`postern-counters`): the keys of
//! every gateway counter in one place, and fail-open reads.
//!
//! | key                  | window | counts                                    |
//! |----------------------|--------|-------------------------------------------|
//! | `conn:<net>`         | 1 min  | connections from the address              |
//! | `rcpt:<net>`         | 1 h    | recipients accepted from the address      |
//! | `invalid:<net>`      | 1 h    | invalid recipients tried (DHAP)           |
//! | `from:<sender>`      | 1 h    | messages committed from the sender        |
//! | `grey:<net>:<from>:<rcpt>` | value | greylisting: first seen (unix s)    |
//! | `grey-ok:<net>:<from>:<rcpt>` | value | greylisting: passed, allowed  |
//!
//! `<net>` is the IPv4 address, or the IPv6 /64 (a host rotating through its
//! /64 is one client); an IPv4-mapped address counts as IPv4.
//!
//! # Security
//! Every key goes through `postern_counters::key`: octets outside printable
//! ASCII (and `%`, `:`) are percent-encoded, an over-long key is cut with a
//! stable digest, so no sender (SMTPUTF8, quoted local parts, 256-octet
//! paths) can produce an invalid key or dodge its limit. A store that does not answer (Redis down, timeout) makes a read
//! `None`: the limit does not apply (fail open) and one warning per minute
//! says so — a counter outage must not reject mail.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postern_counters::{CounterStore, MemoryStore};
use postern_policy::admission::matcher::canonical_ip;

/// The windows counters use.
pub(crate) struct Window;

impl Window {
    pub(crate) const MINUTE: Duration = Duration::from_mins(1);
    pub(crate) const HOUR: Duration = Duration::from_hours(1);
}

/// The network a rate key counts: the IPv4 address, or the IPv6 /64.
pub(crate) fn net(ip: IpAddr) -> String {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// `kind:<net>` (made safe by `postern_counters::key`).
pub(crate) fn key_ip(kind: &str, ip: IpAddr) -> String {
    postern_counters::key(&[kind, &net(ip)])
}

/// `from:<sender>`, lower case; any octet (SMTPUTF8, quoted local parts) is
/// encoded and an over-long key cut with a digest by `postern_counters::key`.
pub(crate) fn key_sender(sender: &str) -> String {
    postern_counters::key(&["from", &sender.to_ascii_lowercase()])
}

/// Shared by every session: the store, and when it last warned.
#[derive(Clone)]
pub(crate) struct Counters {
    store: Arc<dyn CounterStore>,
    last_warning: Arc<AtomicU64>,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new(Arc::new(MemoryStore::default()))
    }
}

impl Counters {
    pub(crate) fn new(store: Arc<dyn CounterStore>) -> Self {
        Self {
            store,
            last_warning: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The store itself (shared), for `postern trace` in the server.
    pub(crate) fn shared_store(&self) -> Arc<dyn CounterStore> {
        Arc::clone(&self.store)
    }

    /// The store, for greylisting's values and `postern trace`.
    pub(crate) fn store(&self) -> &dyn CounterStore {
        &*self.store
    }

    /// Adds one and returns the total over `window`; `None` when the store
    /// did not answer.
    pub(crate) async fn hit(&self, key: &str, window: Duration) -> Option<u64> {
        self.ok(key, self.store.hit(key, 1, window).await)
    }

    /// The total over `window`; `None` when the store did not answer.
    pub(crate) async fn peek(&self, key: &str, window: Duration) -> Option<u64> {
        self.ok(key, self.store.peek(key, window).await)
    }

    /// The value, `None` on a failure (logged).
    pub(crate) fn ok<T>(
        &self,
        key: &str,
        r: Result<T, postern_counters::CounterError>,
    ) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let last = self.last_warning.load(Ordering::Relaxed);
                if now >= last + 60
                    && self
                        .last_warning
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(backend = self.store.backend(), %key, error = %e,
                        "counter store unavailable; rate limits, DHAP and greylisting do not \
                         apply until it answers (fail open)");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            key_ip("rcpt", "192.0.2.7".parse().unwrap()),
            "rcpt:192.0.2.7"
        );
        assert_eq!(
            key_ip("rcpt", "::ffff:192.0.2.7".parse().unwrap()),
            "rcpt:192.0.2.7"
        );
        assert_eq!(
            key_ip("conn", "2001:db8:1:2:aaaa::1".parse().unwrap()),
            "conn:2001%3Adb8%3A1%3A2%3A%3A/64"
        );
        assert_eq!(key_sender("Alice@Example.COM"), "from:alice@example.com");
        // Multi-byte and long senders neither panic nor collide.
        let long = format!("{}\u{e9}@example.com", "a".repeat(253));
        assert!(key_sender(&long).len() <= postern_counters::MAX_KEY_LEN);
        assert_ne!(
            key_sender(&long),
            key_sender(&format!("{}\u{e8}@example.com", "a".repeat(253)))
        );
        assert_eq!(key_sender("\"a b\"@x.example"), "from:\"a%20b\"@x.example");
    }
}
