//! The counter store: approximate sliding-window counters and expiring
//! values shared by all sessions and, with Redis, by all nodes behind one MX.
//! Rate limits, directory-harvest budgets, greylisting and AUTH bans are
//! built on it (by `smtpd`, which holds an `Arc<dyn CounterStore>`; the
//! `policy` crate stays pure and never sees this crate).
//!
//! Start at [`open`] with the [`CounterSettings`] of the `[counters]` table:
//! it gives a [`MemoryStore`] (default: in this process, bounded) or a
//! [`RedisStore`]. Counters are **approximate by design**: two fixed buckets
//! per key, weighted (see `window.rs` and docs/counters.md for the bound).
//! Every error is a [`CounterError`]; [`CounterError::Unavailable`] means
//! the backend could not be reached in time, and callers **fail open**: a
//! counter that cannot be read never turns into a reject.
//!
//! # Security
//! Keys carry attacker-chosen data (client IPs, envelope addresses): they
//! must be printable ASCII and at most [`MAX_KEY_LEN`] bytes ([`key`] builds
//! such a key from any parts), and the memory
//! store holds at most `max_keys` of them (when full evicting greylisting's
//! first sightings first, bans last, each the closest to expiry first). See
//! ADR 0009.

pub mod cause;
mod error;
mod key;
mod memory;
mod redis;
mod settings;
mod window;

use std::sync::Arc;
use std::time::Duration;

pub use error::CounterError;
pub use key::key;
pub use memory::MemoryStore;
pub use redis::{RedisStore, check_redis_url};
pub use settings::{
    Backend, CounterSettings, DEFAULT_KEY_PREFIX, DEFAULT_MAX_KEYS, DEFAULT_TIMEOUT, redact_url,
};
pub use window::MAX_KEY_LEN;

/// A boxed `Send` future (the trait is object-safe so `smtpd` can hold an
/// `Arc<dyn CounterStore>`).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A store of approximate counters and expiring values shared by all
/// sessions (and, with Redis, by all nodes). Keys are ASCII strings the
/// caller builds (`rcpt:ip:192.0.2.7`, `grey:...`; [`key`] encodes parts
/// that may hold anything); a key is either a
/// counter or a value ([`CounterError::WrongKind`] otherwise), and a counter
/// key is always used with the same window (a new window restarts it).
pub trait CounterStore: Send + Sync + 'static {
    /// Adds `n` to the sliding-window counter `key` and returns the
    /// approximate total over the last `window` including this addition.
    fn hit<'a>(
        &'a self,
        key: &'a str,
        n: u64,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>>;
    /// The approximate total over the last `window`, without adding.
    fn peek<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>>;
    /// Stores `value` under `key` for `ttl` unless the key exists; returns
    /// the existing value (None when this call stored it). Atomic: of many
    /// concurrent calls on all nodes, exactly one gets None.
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, CounterError>>;
    /// Stores `value` under `key` for `ttl`, replacing any value (or counter).
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>>;
    /// The value under `key`, if present and not expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, CounterError>>;
    /// Removes `key` (value or counter).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CounterError>>;
    /// `memory` or `redis`, for logs and `postern trace`.
    fn backend(&self) -> &'static str;
}

/// The store the settings describe. Does not connect: a Redis store
/// connects on first use (and reconnects by itself), so a Redis that is
/// down at startup delays nothing and fails open.
pub fn open(settings: &CounterSettings) -> Result<Arc<dyn CounterStore>, CounterError> {
    match settings.backend {
        Backend::Memory => Ok(Arc::new(MemoryStore::new(settings.max_keys))),
        Backend::Redis => {
            let url = settings
                .redis_url
                .as_deref()
                .ok_or_else(|| CounterError::Config {
                    what: "backend = \"redis\" needs redis_url".to_owned(),
                })?;
            Ok(Arc::new(RedisStore::new(
                url,
                &settings.key_prefix,
                settings.timeout,
            )?))
        }
    }
}
