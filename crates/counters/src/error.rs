//! [`CounterError`]: why a counter store operation failed.
//!
//! Callers fail open on [`CounterError::Unavailable`]: a counter that cannot
//! be read or written never turns into a reject (a limit that cannot be
//! checked is not enforced for that command, and the caller logs it). The
//! other variants are bugs or misconfiguration and are logged the same way.
//! [`crate::cause`] maps each variant to an operator-facing cause.

/// A failed counter store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    /// The backend could not be reached in time: connection refused or
    /// reset, DNS failure, TLS failure, or no answer within `[counters]
    /// timeout`. Transient; callers fail open.
    #[error("counter store {backend} unavailable: {reason}")]
    Unavailable {
        /// `redis` (the memory store is never unavailable).
        backend: &'static str,
        /// What happened (`timed out after 200ms`, `connection refused`, …).
        reason: String,
    },
    /// The backend answered something this crate does not expect (a reply
    /// of the wrong shape, a server error such as `NOPERM` or `OOM`, a value
    /// that is not a number written by another program under our prefix).
    #[error("counter store {backend} protocol error: {detail}")]
    Protocol {
        /// `redis` or `memory`.
        backend: &'static str,
        /// The server's or the parser's words.
        detail: String,
    },
    /// The key holds a value where a counter was asked for, or the reverse
    /// (Redis `WRONGTYPE`): two features build the same key.
    #[error("counter store key {key:?} holds a {held}, not a {wanted}")]
    WrongKind {
        /// The caller's key (without the prefix).
        key: String,
        /// `value` or `counter`.
        held: &'static str,
        /// `value` or `counter`.
        wanted: &'static str,
    },
    /// A bad argument from the caller: a key that is empty, too long or not
    /// printable ASCII, or a zero window or TTL.
    #[error("invalid counter store argument: {what}")]
    Invalid {
        /// What is wrong and what is allowed.
        what: String,
    },
    /// The settings cannot be used: an unparsable `redis_url`, `backend =
    /// "redis"` without one.
    #[error("counter store configuration: {what}")]
    Config {
        /// What is wrong and what is allowed.
        what: String,
    },
}

impl CounterError {
    /// Whether the backend was unreachable (transient; fail open and retry
    /// on the next command).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CounterError::Unavailable { .. })
    }
}
