//! The behaviour every counter store must have, run by `memory.rs` (on
//! paused tokio time) and `redis.rs` (against a real `redis-server`, with
//! the store's wall clock driven by the test).
//!
//! Windows are 60 s and every case starts at the beginning of a bucket, so
//! the expected estimates are exact numbers. Value TTLs are kept by the
//! backend's own clock; on Redis [`Clock::expire`] really waits (1 s).

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postern_counters::{CounterError, CounterStore};

pub const WINDOW: Duration = Duration::from_mins(1);
pub const TTL: Duration = Duration::from_secs(1);

/// How a case moves time.
pub enum Clock {
    /// Paused tokio time (the memory store).
    Tokio,
    /// The wall clock a `RedisStore` reads (ms since the epoch).
    Wall(Arc<AtomicU64>),
}

impl Clock {
    /// A wall clock at the start of a 60 s bucket.
    pub fn wall() -> (Clock, Arc<AtomicU64>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let aligned = u64::try_from(now.as_millis()).unwrap() / 60_000 * 60_000;
        let c = Arc::new(AtomicU64::new(aligned));
        (Clock::Wall(c.clone()), c)
    }

    /// Moves the counters' clock forward.
    pub async fn advance(&self, d: Duration) {
        match self {
            Clock::Tokio => tokio::time::advance(d).await,
            Clock::Wall(c) => {
                c.fetch_add(u64::try_from(d.as_millis()).unwrap(), Ordering::Relaxed);
            }
        }
    }

    /// Lets `d` pass for the backend's TTLs too.
    pub async fn expire(&self, d: Duration) {
        match self {
            Clock::Tokio => tokio::time::advance(d).await,
            Clock::Wall(_) => {
                self.advance(d).await;
                tokio::time::sleep(d).await;
            }
        }
    }
}

pub async fn counts_within_a_window(s: &dyn CounterStore) {
    for i in 1..=5 {
        assert_eq!(s.hit("rcpt:ip:192.0.2.7", 1, WINDOW).await.unwrap(), i);
    }
    assert_eq!(s.hit("rcpt:ip:192.0.2.7", 3, WINDOW).await.unwrap(), 8);
    assert_eq!(s.peek("rcpt:ip:192.0.2.7", WINDOW).await.unwrap(), 8);
    assert_eq!(s.peek("rcpt:ip:192.0.2.8", WINDOW).await.unwrap(), 0);
    assert_eq!(s.hit("rcpt:ip:192.0.2.8", 0, WINDOW).await.unwrap(), 0);
}

pub async fn window_slides(s: &dyn CounterStore, clock: &Clock) {
    let k = "conn:ip:198.51.100.7";
    assert_eq!(s.hit(k, 10, WINDOW).await.unwrap(), 10);
    clock.advance(WINDOW).await;
    // Start of the next bucket: the previous one counts fully…
    assert_eq!(s.peek(k, WINDOW).await.unwrap(), 10);
    clock.advance(WINDOW / 2).await;
    // …half-way through it counts half…
    assert_eq!(s.peek(k, WINDOW).await.unwrap(), 5);
    assert_eq!(s.hit(k, 2, WINDOW).await.unwrap(), 7);
    clock.advance(WINDOW / 4).await;
    assert_eq!(s.peek(k, WINDOW).await.unwrap(), 4);
    clock.advance(WINDOW / 4).await;
    // …and two buckets later not at all.
    assert_eq!(s.peek(k, WINDOW).await.unwrap(), 2);
    clock.advance(WINDOW).await;
    assert_eq!(s.peek(k, WINDOW).await.unwrap(), 0);
    assert_eq!(s.hit(k, 1, WINDOW).await.unwrap(), 1);
    clock.advance(WINDOW * 5).await;
    assert_eq!(s.peek(k, WINDOW).await.unwrap(), 0);
}

/// Steady traffic is counted to within one; any traffic stays within the
/// documented bound (current ≤ estimate ≤ current + previous, error at most
/// previous × max(f, 1 − f)).
pub async fn approximation_bounds(s: &dyn CounterStore, clock: &Clock) {
    let step = Duration::from_secs(1);
    // Steady: one hit a second for five windows.
    for t in 0..300u64 {
        let got = s.hit("steady", 1, WINDOW).await.unwrap();
        let exact = (t + 1).min(60);
        if t >= 60 {
            assert!(got.abs_diff(exact) <= 1, "t={t}s: {got} vs {exact}");
        }
        clock.advance(step).await;
    }
    // Bursty: a pseudo-random number of hits (0..=9, heavier at bucket
    // ends) each second.
    clock.advance(WINDOW * 3).await;
    let mut events: Vec<(u64, u64)> = Vec::new(); // (second, hits)
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for t in 0..300u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = if t % 60 >= 50 { x % 10 } else { x % 3 };
        events.push((t, n));
        let got = s.hit("bursty", n, WINDOW).await.unwrap();
        let exact: u64 = events
            .iter()
            .filter(|(at, _)| *at + 60 > t)
            .map(|(_, n)| n)
            .sum();
        let bucket = t / 60;
        let in_bucket = |b: u64| -> u64 {
            events
                .iter()
                .filter(|(at, _)| at / 60 == b)
                .map(|(_, n)| n)
                .sum()
        };
        let current = in_bucket(bucket);
        let previous = if bucket == 0 {
            0
        } else {
            in_bucket(bucket - 1)
        };
        assert!(
            (current..=current + previous).contains(&got),
            "t={t}s: {got} outside {current}..={}",
            current + previous
        );
        assert!(
            got.abs_diff(exact) <= previous,
            "t={t}s: {got} vs exact {exact}, previous bucket {previous}"
        );
        clock.advance(step).await;
    }
}

/// Of many concurrent `set_if_absent` calls exactly one stores its value,
/// and every other sees that value (greylisting's first-seen time, a ban).
pub async fn set_if_absent_has_one_winner(s: Arc<dyn CounterStore>) {
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let r = s
                    .set_if_absent("grey:192.0.2.0/24:a@example.org:b@example.com", i, WINDOW)
                    .await
                    .unwrap();
                (i, r)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let winners: Vec<u64> = results
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (_, r) in &results {
        assert!(r.is_none() || *r == Some(winners[0]));
    }
    assert_eq!(
        s.get("grey:192.0.2.0/24:a@example.org:b@example.com")
            .await
            .unwrap(),
        Some(winners[0])
    );
}

pub async fn values_expire(s: &dyn CounterStore, clock: &Clock) {
    let k = "ban:auth:203.0.113.9";
    assert_eq!(s.get(k).await.unwrap(), None);
    assert_eq!(s.set_if_absent(k, 7, TTL).await.unwrap(), None);
    assert_eq!(s.get(k).await.unwrap(), Some(7));
    assert_eq!(s.set_if_absent(k, 8, TTL).await.unwrap(), Some(7));
    s.set(k, 9, TTL).await.unwrap();
    assert_eq!(s.get(k).await.unwrap(), Some(9));
    clock.expire(TTL + Duration::from_millis(100)).await;
    assert_eq!(s.get(k).await.unwrap(), None);
    assert_eq!(s.set_if_absent(k, 10, TTL * 60).await.unwrap(), None);
    assert_eq!(s.get(k).await.unwrap(), Some(10));
    s.set(k, u64::MAX, TTL * 60).await.unwrap();
    assert_eq!(s.get(k).await.unwrap(), Some(u64::MAX));
}

pub async fn delete_removes_values_and_counters(s: &dyn CounterStore) {
    s.set("v", 1, WINDOW).await.unwrap();
    s.hit("c", 4, WINDOW).await.unwrap();
    s.delete("v").await.unwrap();
    s.delete("c").await.unwrap();
    s.delete("never-there").await.unwrap();
    assert_eq!(s.get("v").await.unwrap(), None);
    assert_eq!(s.peek("c", WINDOW).await.unwrap(), 0);
    assert_eq!(s.hit("c", 1, WINDOW).await.unwrap(), 1);
}

pub async fn kinds_do_not_mix(s: &dyn CounterStore) {
    s.set("value", 1, WINDOW).await.unwrap();
    s.hit("counter", 1, WINDOW).await.unwrap();
    let wrong = |r: Result<u64, CounterError>, held: &str| match r {
        Err(CounterError::WrongKind { held: h, .. }) => assert_eq!(h, held),
        other => panic!("expected WrongKind, got {other:?}"),
    };
    wrong(s.hit("value", 1, WINDOW).await, "value");
    wrong(s.peek("value", WINDOW).await, "value");
    wrong(s.get("counter").await.map(|v| v.unwrap_or(0)), "counter");
    wrong(
        s.set_if_absent("counter", 1, WINDOW)
            .await
            .map(|v| v.unwrap_or(0)),
        "counter",
    );
    // `set` replaces whatever was there.
    s.set("counter", 5, WINDOW).await.unwrap();
    assert_eq!(s.get("counter").await.unwrap(), Some(5));
}

pub async fn bad_arguments_are_refused(s: &dyn CounterStore) {
    let invalid = |r: Result<u64, CounterError>| {
        assert!(matches!(r, Err(CounterError::Invalid { .. })), "{r:?}");
    };
    invalid(s.hit("", 1, WINDOW).await);
    invalid(s.hit("has space", 1, WINDOW).await);
    invalid(s.hit("caf\u{e9}", 1, WINDOW).await);
    invalid(s.hit(&"k".repeat(601), 1, WINDOW).await);
    invalid(s.hit("k", 1, Duration::ZERO).await);
    invalid(s.peek("k", Duration::ZERO).await);
    invalid(s.set("k", 1, Duration::ZERO).await.map(|()| 0));
    invalid(s.get("\r\nFLUSHALL").await.map(|v| v.unwrap_or(0)));
}
