//! The in-process store: the shared suite on paused tokio time, plus its
//! bound (`max_keys`: expired entries purged first, then the entries closest
//! to expiry evicted) and its lazy purge.

#![allow(clippy::unwrap_used)]

mod suite;

use std::sync::Arc;
use std::time::Duration;

use postern_counters::{CounterStore, MemoryStore};
use suite::Clock;

fn store() -> MemoryStore {
    MemoryStore::new(10_000)
}

#[tokio::test(start_paused = true)]
async fn counts_within_a_window() {
    suite::counts_within_a_window(&store()).await;
}

#[tokio::test(start_paused = true)]
async fn window_slides() {
    suite::window_slides(&store(), &Clock::Tokio).await;
}

#[tokio::test(start_paused = true)]
async fn approximation_bounds() {
    suite::approximation_bounds(&store(), &Clock::Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_if_absent_has_one_winner() {
    suite::set_if_absent_has_one_winner(Arc::new(store())).await;
}

#[tokio::test(start_paused = true)]
async fn values_expire() {
    suite::values_expire(&store(), &Clock::Tokio).await;
}

#[tokio::test(start_paused = true)]
async fn delete_removes_values_and_counters() {
    suite::delete_removes_values_and_counters(&store()).await;
}

#[tokio::test(start_paused = true)]
async fn kinds_do_not_mix() {
    suite::kinds_do_not_mix(&store()).await;
}

#[tokio::test(start_paused = true)]
async fn bad_arguments_are_refused() {
    suite::bad_arguments_are_refused(&store()).await;
}

/// A full store evicts the entries closest to expiry, never more than
/// `max_keys` are held, and the newest key is kept.
#[tokio::test(start_paused = true)]
async fn full_store_evicts_the_soonest_to_expire() {
    let s = MemoryStore::new(100);
    for i in 0..100u64 {
        s.set(&format!("k{i}"), i, Duration::from_secs(100 + i))
            .await
            .unwrap();
    }
    assert_eq!(s.len(), 100);
    assert_eq!(s.evicted(), 0);
    s.set("new", 1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(s.len(), 100);
    assert_eq!(s.evicted(), 1);
    assert_eq!(s.get("k0").await.unwrap(), None, "soonest to expire");
    assert_eq!(s.get("k1").await.unwrap(), Some(1));
    assert_eq!(s.get("new").await.unwrap(), Some(1));
    // Replacing an existing key never evicts.
    s.set("k50", 5, Duration::from_secs(1)).await.unwrap();
    assert_eq!(s.evicted(), 1);
    // Counters count against the bound too.
    for i in 0..1000u64 {
        s.hit(&format!("c{i}"), 1, Duration::from_mins(1))
            .await
            .unwrap();
        assert!(s.len() <= 100);
    }
    // One for `new`, then one per new counter.
    assert_eq!(s.evicted(), 1001);
}

/// When the store is full of expired entries, they go first: nothing live
/// is evicted.
#[tokio::test(start_paused = true)]
async fn full_store_purges_expired_entries_first() {
    let s = MemoryStore::new(100);
    for i in 0..50u64 {
        s.set(&format!("short{i}"), i, Duration::from_secs(1))
            .await
            .unwrap();
        s.set(&format!("long{i}"), i, Duration::from_hours(1))
            .await
            .unwrap();
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    for i in 0..50u64 {
        s.set(&format!("new{i}"), i, Duration::from_mins(1))
            .await
            .unwrap();
    }
    assert_eq!(s.evicted(), 0);
    assert_eq!(s.len(), 100);
    for i in 0..50u64 {
        assert_eq!(s.get(&format!("long{i}")).await.unwrap(), Some(i));
    }
}

/// A full store makes room for 1/64 of its capacity at once, expired
/// entries first, so it is not swept again for each new key when only a
/// trickle of entries expires (a scan per key would let a flood of new
/// keys cost O(max_keys) each).
#[tokio::test(start_paused = true)]
async fn a_full_store_makes_room_for_a_batch() {
    // Under 1024 keys of capacity: one shard; headroom 1023 / 64 = 15.
    let s = MemoryStore::new(1023);
    s.set("short", 0, Duration::from_secs(1)).await.unwrap();
    for i in 0..1022u64 {
        s.set(&format!("k{i:04}"), i, Duration::from_secs(100 + i))
            .await
            .unwrap();
    }
    // (Resets the lazy sweep's operation count: the sweep below is the
    // one a full shard does, not the one every 1024 operations do.)
    assert_eq!(s.purge_expired(), 0);
    tokio::time::advance(Duration::from_secs(2)).await;
    s.set("new0", 0, Duration::from_hours(1)).await.unwrap();
    // "short" expired (1 slot); 14 more were evicted, the soonest first.
    assert_eq!(s.evicted(), 14);
    assert_eq!(s.len(), 1023 - 15 + 1);
    assert_eq!(s.get("k0013").await.unwrap(), None);
    assert_eq!(s.get("k0014").await.unwrap(), Some(14));
    // The next 14 new keys fit without touching anything.
    for i in 1..15u64 {
        s.set(&format!("new{i}"), i, Duration::from_hours(1))
            .await
            .unwrap();
    }
    assert_eq!((s.len(), s.evicted()), (1023, 14));
}

/// Counters expire two windows after their last bucket started, values at
/// their TTL; `purge_expired` returns the memory, and so does the lazy
/// sweep after enough operations.
#[tokio::test(start_paused = true)]
async fn expired_entries_are_purged() {
    // Under 1024 keys of capacity the store has one shard.
    let s = MemoryStore::new(1000);
    for i in 0..100u64 {
        s.hit(&format!("c{i}"), 1, Duration::from_mins(1))
            .await
            .unwrap();
        s.set(&format!("v{i}"), i, Duration::from_secs(90))
            .await
            .unwrap();
    }
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(s.purge_expired(), 100, "the values");
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(s.len(), 100);
    // Lazy: 1024 operations on the (single) shard sweep it.
    for _ in 0..1024 {
        s.peek("other", Duration::from_mins(1)).await.unwrap();
    }
    assert_eq!(s.len(), 0);
    assert_eq!(s.purge_expired(), 0);
}

/// One window's counter, hit with another window, starts over (keys carry
/// one window each; the docs say so).
#[tokio::test(start_paused = true)]
async fn another_window_restarts_the_counter() {
    let s = store();
    s.hit("k", 5, Duration::from_mins(1)).await.unwrap();
    assert_eq!(s.peek("k", Duration::from_hours(1)).await.unwrap(), 0);
    assert_eq!(s.hit("k", 1, Duration::from_hours(1)).await.unwrap(), 1);
    assert_eq!(s.backend(), "memory");
}

/// The cost of one `hit` (docs/counters.md):
/// `cargo test --release -p postern-counters --test memory -- --ignored --nocapture hit_cost`
#[tokio::test]
#[ignore = "measurement, prints ns/op"]
async fn hit_cost() {
    let s = MemoryStore::default();
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("rcpt:ip:10.0.{}.{}", i / 256, i % 256))
        .collect();
    let n = 1_000_000;
    let start = std::time::Instant::now();
    for i in 0..n {
        s.hit(&keys[i % keys.len()], 1, Duration::from_hours(1))
            .await
            .unwrap();
    }
    let ns = start.elapsed().as_nanos() / n as u128;
    println!(
        "memory hit: {ns} ns/op over {n} hits on {} keys",
        keys.len()
    );
}
