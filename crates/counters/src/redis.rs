//! [`RedisStore`]: counters and values in a Redis server, shared by every
//! Postern node behind one MX.
//!
//! Layout, under the configured prefix (`postern:` by default):
//! - a value is a string key `PREFIX+key` holding the decimal number, set
//!   with `PX` (its TTL);
//! - a counter is a hash `PREFIX+key` whose fields are bucket indexes
//!   (wall-clock milliseconds since the Unix epoch ÷ window) and whose values
//!   are the bucket counts. A `hit` is one atomic pipeline (`MULTI` `HINCRBY`
//!   current, `HGET` previous, `HDEL` the one before, `PEXPIRE` `EXEC`): one
//!   round trip, at most three fields per hash, and the hash expires once
//!   neither of its buckets counts any more (at most 2 × window).
//!
//! Bucket indexes come from each node's wall clock, so the nodes must be
//! NTP-synchronised: a node whose clock is off by `s` puts its hits into the
//! neighbouring bucket for `s` of each window, which moves a few hits between
//! the two weighted buckets (a small error, never a lost hit).
//!
//! Every operation, connecting included, runs within `[counters] timeout`;
//! a timeout, refused connection or dropped connection is
//! [`CounterError::Unavailable`] and the `ConnectionManager` reconnects in
//! the background (callers fail open meanwhile).
//!
//! # Security
//! Keys and values are sent as RESP bulk strings (length-prefixed, so no
//! injection); keys are checked printable ASCII. The connection carries
//! client IPs and envelope addresses: use `rediss://` (rustls with our
//! aws-lc-rs provider, system roots) when Redis is not on the same host.
//! The password in the URL is never logged ([`crate::redact_url`]).
//!
//! # Standards
//! RESP2 (the Redis serialization protocol); Redis ≥ 2.6.12 (`SET … NX PX`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Pipeline, RedisError};
use tokio::sync::OnceCell;

use crate::window;
use crate::{BoxFuture, CounterError, CounterStore};

const BACKEND: &str = "redis";

/// The Redis counter store. See the module documentation.
pub struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    clock: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Checks a `redis_url` without connecting: `redis://`, `rediss://` (TLS),
/// or a Unix socket (`unix:///path`, `redis+unix:///path`).
pub fn check_redis_url(url: &str) -> Result<(), CounterError> {
    client(url).map(|_| ())
}

fn client(url: &str) -> Result<redis::Client, CounterError> {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    if !matches!(scheme, "redis" | "rediss" | "unix" | "redis+unix") {
        return Err(CounterError::Config {
            what: "redis_url must start with redis://, rediss:// (TLS), unix:// or redis+unix://"
                .to_owned(),
        });
    }
    if scheme == "rediss" {
        // The redis crate builds its rustls config on the process-wide
        // provider: make sure it is ours (aws-lc-rs). An error means one is
        // installed already, which is as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    redis::Client::open(url).map_err(|e| CounterError::Config {
        what: format!("redis_url {:?} is not usable: {e}", crate::redact_url(url)),
    })
}

impl RedisStore {
    /// A store on the server at `url` (checked now, connected on first
    /// use), with keys under `prefix` and every operation within `timeout`.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, CounterError> {
        Ok(RedisStore {
            client: client(url)?,
            connection: OnceCell::new(),
            prefix: prefix.to_owned(),
            timeout,
            clock: None,
        })
    }

    /// Reads the wall clock (milliseconds since the Unix epoch) from
    /// `clock` instead of the system. For tests: moving windows forward
    /// without waiting, or simulating a node whose clock is off. TTLs are
    /// still kept by the server's own clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<AtomicU64>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn now_ms(&self) -> u64 {
        match &self.clock {
            Some(c) => c.load(Ordering::Relaxed),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    fn key(&self, key: &str) -> Result<String, CounterError> {
        window::check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    /// Runs `pipe` within the timeout; `key` and `wanted` name a WRONGTYPE.
    async fn query<T: FromRedisValue>(
        &self,
        pipe: &Pipeline,
        key: &str,
        wanted: &'static str,
    ) -> Result<T, CounterError> {
        let run = async {
            let mut conn = self.connection().await?;
            pipe.query_async::<T>(&mut conn).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Err(_) => Err(CounterError::Unavailable {
                backend: BACKEND,
                reason: format!("no answer within {:?} ([counters] timeout)", self.timeout),
            }),
            Ok(Err(e)) => Err(classify(&e, key, wanted)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    async fn hit_async(&self, key: &str, n: u64, window: Duration) -> Result<u64, CounterError> {
        let window_ms = window::millis(window, "window")?;
        let k = self.key(key)?;
        let pos = window::position(self.now_ms(), window_ms);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HINCRBY")
            .arg(&k)
            .arg(pos.index)
            .arg(i64::try_from(n).unwrap_or(i64::MAX))
            .cmd("HGET")
            .arg(&k)
            .arg(pos.index.wrapping_sub(1))
            .cmd("HDEL")
            .arg(&k)
            .arg(pos.index.wrapping_sub(2))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(2 * window_ms - pos.elapsed_ms)
            .ignore();
        let (current, previous): (u64, Option<u64>) = self.query(&pipe, key, "counter").await?;
        Ok(window::estimate(
            previous.unwrap_or(0),
            current,
            pos.elapsed_ms,
            window_ms,
        ))
    }

    async fn peek_async(&self, key: &str, window: Duration) -> Result<u64, CounterError> {
        let window_ms = window::millis(window, "window")?;
        let k = self.key(key)?;
        let pos = window::position(self.now_ms(), window_ms);
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(&k)
            .arg(pos.index)
            .arg(pos.index.wrapping_sub(1));
        let ((current, previous),): ((Option<u64>, Option<u64>),) =
            self.query(&pipe, key, "counter").await?;
        Ok(window::estimate(
            previous.unwrap_or(0),
            current.unwrap_or(0),
            pos.elapsed_ms,
            window_ms,
        ))
    }

    async fn set_if_absent_async(
        &self,
        key: &str,
        value: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, CounterError> {
        let ttl_ms = window::millis(ttl, "ttl")?;
        let k = self.key(key)?;
        let mut pipe = redis::pipe();
        // MULTI/EXEC: nothing runs between the SET and the GET, so the GET
        // sees either our value or the one that was there.
        pipe.atomic()
            .cmd("SET")
            .arg(&k)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .cmd("GET")
            .arg(&k);
        let (stored, existing): (Option<String>, Option<u64>) =
            self.query(&pipe, key, "value").await?;
        match (stored, existing) {
            (Some(_), _) => Ok(None),
            (None, Some(v)) => Ok(Some(v)),
            (None, None) => Err(CounterError::Protocol {
                backend: BACKEND,
                detail: format!("SET NX refused {key:?} but GET found nothing"),
            }),
        }
    }

    async fn set_async(&self, key: &str, value: u64, ttl: Duration) -> Result<(), CounterError> {
        let ttl_ms = window::millis(ttl, "ttl")?;
        let k = self.key(key)?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&k)
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .ignore();
        self.query::<()>(&pipe, key, "value").await
    }

    async fn get_async(&self, key: &str) -> Result<Option<u64>, CounterError> {
        let k = self.key(key)?;
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&k);
        let (v,): (Option<u64>,) = self.query(&pipe, key, "value").await?;
        Ok(v)
    }

    async fn delete_async(&self, key: &str) -> Result<(), CounterError> {
        let k = self.key(key)?;
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&k).ignore();
        self.query::<()>(&pipe, key, "value").await
    }
}

/// A Redis error as a [`CounterError`].
fn classify(e: &RedisError, key: &str, wanted: &'static str) -> CounterError {
    // In a pipeline or transaction the server's errors come as a list.
    let wrong_type = e
        .clone()
        .into_server_errors()
        .is_some_and(|errors| errors.iter().any(|(_, s)| s.code() == "WRONGTYPE"));
    if wrong_type {
        return CounterError::WrongKind {
            key: key.to_owned(),
            held: if wanted == "value" {
                "counter"
            } else {
                "value"
            },
            wanted,
        };
    }
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.kind() == redis::ErrorKind::Io
    {
        return CounterError::Unavailable {
            backend: BACKEND,
            reason: e.to_string(),
        };
    }
    CounterError::Protocol {
        backend: BACKEND,
        detail: e.to_string(),
    }
}

impl CounterStore for RedisStore {
    fn hit<'a>(
        &'a self,
        key: &'a str,
        n: u64,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>> {
        Box::pin(self.hit_async(key, n, window))
    }

    fn peek<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>> {
        Box::pin(self.peek_async(key, window))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, CounterError>> {
        Box::pin(self.set_if_absent_async(key, value, ttl))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(self.set_async(key, value, ttl))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, CounterError>> {
        Box::pin(self.get_async(key))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(self.delete_async(key))
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_redis_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_redis_url("rediss://redis.example:6380").is_ok());
        assert!(check_redis_url("redis://:secret@10.0.0.5").is_ok());
        assert!(check_redis_url("unix:///run/redis/redis.sock").is_ok());
        let e = check_redis_url("http://127.0.0.1").unwrap_err().to_string();
        assert!(e.contains("must start with redis://"), "{e}");
        let e = check_redis_url("redis://:hunter2@[::1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
