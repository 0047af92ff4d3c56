//! The counter store's side of the failure-cause catalogue (ADR 0007): what
//! a [`CounterError`] means for an operator, as stable `counters.*` ids with
//! a summary and the smallest safe fix.
//!
//! Ids are API: add, never rename or reuse. Fix texts name configuration
//! keys as `` `[table] key` `` and commands as `` `postern …` ``.
//!
//! # Security
//! Summaries quote the caller's key (client IPs, envelope addresses the
//! operator may see anyway in the mail log) and the server's words; never a
//! password (URLs are shown redacted).

use crate::CounterError;

/// The backend did not answer in time or refused the connection.
pub const UNAVAILABLE: &str = "counters.unavailable";
/// The backend answered something unexpected.
pub const PROTOCOL: &str = "counters.protocol";
/// A key holds a value where a counter was asked for, or the reverse.
pub const WRONG_KIND: &str = "counters.wrong_kind";
/// The caller passed a bad key, window or TTL.
pub const INVALID: &str = "counters.invalid";
/// The settings cannot be used.
pub const CONFIG: &str = "counters.config";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[UNAVAILABLE, PROTOCOL, WRONG_KIND, INVALID, CONFIG];

/// A classified counter store failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterCause {
    /// Stable id.
    pub id: &'static str,
    /// What happened, in one sentence.
    pub summary: String,
    /// The smallest safe fix.
    pub fix: &'static str,
    /// The raw error text.
    pub detail: String,
}

impl CounterError {
    /// The catalogue cause of this error.
    pub fn cause(&self) -> CounterCause {
        let detail = self.to_string();
        let (id, summary, fix) = match self {
            CounterError::Unavailable { backend, .. } => (
                UNAVAILABLE,
                format!(
                    "the {backend} counter store did not answer in time: limits, greylisting \
                     and bans are not enforced until it does (fail open)"
                ),
                "check that Redis runs and is reachable from this node (`redis-cli -u URL \
                 ping`); if it answers but slowly, raise `[counters] timeout`; to run without \
                 it, set `[counters] backend = \"memory\"` (counters then stop being shared)",
            ),
            CounterError::Protocol { backend, .. } => (
                PROTOCOL,
                format!("the {backend} counter store answered something unexpected"),
                "read the detail: NOAUTH or WRONGPASS needs the password in `[counters] \
                 redis_url`, NOPERM an ACL allowing the hash and string commands on the \
                 prefix, OOM a larger Redis maxmemory; a non-number value means another \
                 program writes under `[counters] key_prefix`: give Postern its own prefix",
            ),
            CounterError::WrongKind { key, .. } => (
                WRONG_KIND,
                format!("the counter store key {key:?} is used both as a counter and as a value"),
                "a bug in Postern (two features build the same key): report it with the key; \
                 meanwhile the check using that key fails open",
            ),
            CounterError::Invalid { .. } => (
                INVALID,
                "Postern asked the counter store with a bad key, window or TTL".to_owned(),
                "a bug in Postern (the caller must build printable ASCII keys and non-zero \
                 windows): report it with the detail",
            ),
            CounterError::Config { .. } => (
                CONFIG,
                "the counter store settings cannot be used".to_owned(),
                "fix `[counters] redis_url` (redis://host:6379/0 or rediss:// for TLS) and \
                 run `postern config check`",
            ),
        };
        CounterCause {
            id,
            summary,
            fix,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_id() {
        let errors = [
            CounterError::Unavailable {
                backend: "redis",
                reason: "connection refused".into(),
            },
            CounterError::Protocol {
                backend: "redis",
                detail: "NOPERM".into(),
            },
            CounterError::WrongKind {
                key: "grey:x".into(),
                held: "value",
                wanted: "counter",
            },
            CounterError::Invalid { what: "x".into() },
            CounterError::Config { what: "x".into() },
        ];
        let ids: Vec<&str> = errors.iter().map(|e| e.cause().id).collect();
        assert_eq!(ids, ALL);
        for e in &errors {
            let c = e.cause();
            assert!(!c.summary.is_empty() && !c.fix.is_empty());
            assert_eq!(c.detail, e.to_string());
        }
        assert!(errors[0].is_unavailable() && !errors[1].is_unavailable());
    }
}
