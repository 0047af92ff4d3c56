//! [`MemoryStore`]: the in-process counter store (one node; the default).
//!
//! Keys live in a few `std::sync::Mutex`-guarded hash maps (shards, so
//! sessions on different cores rarely wait for each other); no lock is held
//! across an `.await` (every operation is synchronous inside). The clock is
//! `tokio::time::Instant`, so tests run on paused time.
//!
//! # Security
//! Keys carry attacker-chosen data (client IPs, envelope addresses), so the
//! store is bounded: at most `max_keys` entries. When a shard is full,
//! expired entries are purged first; if that leaves less than 1/64 of the
//! shard free, entries are evicted down to that (a warning, at most once a
//! minute): greylisting's first sightings first, then other counters and
//! values, bans last, each the closest to expiry first — so a full store
//! costs amortised O(64) per new key, not a scan per key. An attacker who
//! fills the store (greylist triplets are the cheapest keys to make) can so
//! make us forget counters early (under-count), never reject more, and
//! cannot push out a ban before everything else; the shard hash is keyed per process
//! (`RandomState`) against crafted collisions. Expired entries are also
//! purged lazily: a shard is swept after as many operations as it holds
//! keys (at least 1024), so the amortised cost stays O(1).
//!
//! Memory per key, computed by `memory_per_key` in the tests: the map slot
//! (`String` + `Entry`, 24 + 56 bytes, plus one control byte, at most 7/8
//! full) and the key's heap allocation: about 125 bytes for a 32-byte key,
//! so the default 1 000 000 keys take about 125 MB at worst.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::window::{self, Position};
use crate::{BoxFuture, CounterError, CounterStore};

/// One shard per 1024 keys of capacity, at most this many.
const MAX_SHARDS: usize = 16;
/// A shard is swept for expired entries after this many operations at least.
const MIN_SWEEP_INTERVAL: u64 = 1024;
/// The "store full" warning is logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_mins(1);

#[derive(Debug, Clone, Copy)]
enum Slot {
    Value(u64),
    Counter {
        window_ms: u64,
        index: u64,
        current: u64,
        previous: u64,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    slot: Slot,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<String, Entry>,
    /// Operations since the last sweep.
    ops: u64,
}

/// The in-process counter store. See the module documentation.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Keys per shard.
    shard_capacity: usize,
    /// Bucket 0 starts here.
    origin: Instant,
    evicted: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl MemoryStore {
    /// A store of at most `max_keys` (≥ 1) entries.
    pub fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let shards = (max_keys / 1024).clamp(1, MAX_SHARDS);
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            shard_capacity: max_keys.div_ceil(shards),
            origin: Instant::now(),
            evicted: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        }
    }

    /// The number of entries held, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries were evicted (not expired) because the store was
    /// full, since it was created.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Removes every expired entry now; returns how many. The store also
    /// does this lazily, so calling it is optional (an owner may run it
    /// from a periodic task to return memory sooner).
    pub fn purge_expired(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| {
                let mut shard = lock(s);
                shard.ops = 0;
                sweep(&mut shard.map, now)
            })
            .sum()
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        // The modulo is < shards.len(), so the cast back fits.
        let i = self.hasher.hash_one(key) % self.shards.len() as u64;
        &self.shards[usize::try_from(i).unwrap_or(0)]
    }

    fn now_ms(&self, now: Instant) -> u64 {
        u64::try_from((now - self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `f` on the key's shard after the lazy sweep, with the entry if
    /// it exists and has not expired (an expired one is removed first).
    fn with_entry<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Shard, Option<Entry>, Instant) -> T,
    ) -> Result<T, CounterError> {
        window::check_key(key)?;
        let now = Instant::now();
        let mut shard = lock(self.shard(key));
        shard.ops += 1;
        if shard.ops >= MIN_SWEEP_INTERVAL.max(shard.map.len() as u64) {
            shard.ops = 0;
            sweep(&mut shard.map, now);
        }
        let entry = match shard.map.get(key) {
            Some(e) if e.expires > now => Some(*e),
            Some(_) => {
                shard.map.remove(key);
                None
            }
            None => None,
        };
        Ok(f(&mut shard, entry, now))
    }

    /// Inserts or replaces `key`; makes room first when it is new and the
    /// shard is full.
    fn put(&self, shard: &mut Shard, key: &str, entry: Entry, now: Instant) {
        if let Some(e) = shard.map.get_mut(key) {
            *e = entry;
            return;
        }
        if shard.map.len() >= self.shard_capacity {
            // Each time the shard is found full it gets at least `headroom`
            // free slots, expired entries first: the O(len) sweep then runs
            // at most once per `headroom` new keys (amortised O(64)), even
            // when only a trickle of entries expires.
            let headroom = (self.shard_capacity / 64).max(1);
            sweep(&mut shard.map, now);
            let keep = self.shard_capacity - headroom;
            if shard.map.len() > keep {
                let excess = shard.map.len() - keep;
                let n = evict_soonest(&mut shard.map, excess);
                self.evicted.fetch_add(n as u64, Ordering::Relaxed);
                self.warn_full(now);
            }
        }
        shard.map.insert(key.to_owned(), entry);
    }

    fn warn_full(&self, now: Instant) {
        let mut last = lock(&self.last_warning);
        if last.is_some_and(|t| now - t < WARN_INTERVAL) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            max_keys = self.shard_capacity * self.shards.len(),
            evicted_total = self.evicted(),
            "counter store full: evicting the entries closest to expiry (limits may under-count); \
             raise [counters] max_keys or use backend = \"redis\""
        );
    }

    fn hit_now(&self, key: &str, n: u64, window: Duration) -> Result<u64, CounterError> {
        let window_ms = window::millis(window, "window")?;
        self.with_entry(key, |shard, entry, now| {
            let pos = window::position(self.now_ms(now), window_ms);
            let (previous, current) = match entry.map(|e| e.slot) {
                Some(Slot::Value(_)) => return Err(wrong_kind(key, "value", "counter")),
                Some(Slot::Counter {
                    window_ms: w,
                    index,
                    current,
                    previous,
                }) if w == window_ms => roll(index, previous, current, pos),
                // A new key, or one used with another window: start over.
                _ => (0, 0),
            };
            let current = current.saturating_add(n);
            let entry = Entry {
                slot: Slot::Counter {
                    window_ms,
                    index: pos.index,
                    current,
                    previous,
                },
                // Once the next bucket has passed, neither counts any more.
                expires: now + Duration::from_millis(2 * window_ms - pos.elapsed_ms),
            };
            self.put(shard, key, entry, now);
            Ok(window::estimate(
                previous,
                current,
                pos.elapsed_ms,
                window_ms,
            ))
        })?
    }

    fn peek_now(&self, key: &str, window: Duration) -> Result<u64, CounterError> {
        let window_ms = window::millis(window, "window")?;
        self.with_entry(key, |_, entry, now| {
            let pos = window::position(self.now_ms(now), window_ms);
            match entry.map(|e| e.slot) {
                Some(Slot::Value(_)) => Err(wrong_kind(key, "value", "counter")),
                Some(Slot::Counter {
                    window_ms: w,
                    index,
                    current,
                    previous,
                }) if w == window_ms => {
                    let (previous, current) = roll(index, previous, current, pos);
                    Ok(window::estimate(
                        previous,
                        current,
                        pos.elapsed_ms,
                        window_ms,
                    ))
                }
                _ => Ok(0),
            }
        })?
    }

    fn set_if_absent_now(
        &self,
        key: &str,
        value: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, CounterError> {
        let ttl_ms = window::millis(ttl, "ttl")?;
        self.with_entry(key, |shard, entry, now| match entry.map(|e| e.slot) {
            Some(Slot::Value(v)) => Ok(Some(v)),
            Some(Slot::Counter { .. }) => Err(wrong_kind(key, "counter", "value")),
            None => {
                let entry = Entry {
                    slot: Slot::Value(value),
                    expires: now + Duration::from_millis(ttl_ms),
                };
                self.put(shard, key, entry, now);
                Ok(None)
            }
        })?
    }

    fn set_now(&self, key: &str, value: u64, ttl: Duration) -> Result<(), CounterError> {
        let ttl_ms = window::millis(ttl, "ttl")?;
        self.with_entry(key, |shard, _, now| {
            let entry = Entry {
                slot: Slot::Value(value),
                expires: now + Duration::from_millis(ttl_ms),
            };
            self.put(shard, key, entry, now);
        })
    }

    fn get_now(&self, key: &str) -> Result<Option<u64>, CounterError> {
        self.with_entry(key, |_, entry, _| match entry.map(|e| e.slot) {
            Some(Slot::Value(v)) => Ok(Some(v)),
            Some(Slot::Counter { .. }) => Err(wrong_kind(key, "counter", "value")),
            None => Ok(None),
        })?
    }

    fn delete_now(&self, key: &str) -> Result<(), CounterError> {
        self.with_entry(key, |shard, _, _| {
            shard.map.remove(key);
        })
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(crate::DEFAULT_MAX_KEYS)
    }
}

impl CounterStore for MemoryStore {
    fn hit<'a>(
        &'a self,
        key: &'a str,
        n: u64,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>> {
        Box::pin(std::future::ready(self.hit_now(key, n, window)))
    }

    fn peek<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u64, CounterError>> {
        Box::pin(std::future::ready(self.peek_now(key, window)))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, CounterError>> {
        Box::pin(std::future::ready(self.set_if_absent_now(key, value, ttl)))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(std::future::ready(self.set_now(key, value, ttl)))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, CounterError>> {
        Box::pin(std::future::ready(self.get_now(key)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(std::future::ready(self.delete_now(key)))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

/// The (previous, current) buckets as seen from `pos`, for a counter last
/// written in bucket `index`.
fn roll(index: u64, previous: u64, current: u64, pos: Position) -> (u64, u64) {
    if index == pos.index {
        (previous, current)
    } else if index.checked_add(1) == Some(pos.index) {
        (current, 0)
    } else {
        (0, 0)
    }
}

fn wrong_kind(key: &str, held: &'static str, wanted: &'static str) -> CounterError {
    CounterError::WrongKind {
        key: key.to_owned(),
        held,
        wanted,
    }
}

/// Removes the expired entries; returns how many.
fn sweep(map: &mut HashMap<String, Entry>, now: Instant) -> usize {
    let before = map.len();
    map.retain(|_, e| e.expires > now);
    before - map.len()
}

/// What an entry is worth keeping when the store is full, lowest first:
/// greylisting's first sightings (`grey:…`, the cheapest entries for a
/// sender to create by the thousand), then every other counter and value,
/// then bans (`ban-…`: forgetting one lets a guesser back in early).
fn tier(key: &str) -> u8 {
    if key.starts_with("grey:") {
        0
    } else if key.starts_with("ban-") {
        2
    } else {
        1
    }
}

/// Removes `n` entries, the lowest [`tier`] first and within a tier the
/// soonest to expire (O(len), no key copied).
fn evict_soonest(map: &mut HashMap<String, Entry>, n: usize) -> usize {
    let n = n.min(map.len());
    if n == 0 {
        return 0;
    }
    let mut order: Vec<(u8, Instant)> = map.iter().map(|(k, e)| (tier(k), e.expires)).collect();
    let (_, &mut threshold, _) = order.select_nth_unstable(n - 1);
    let mut removed = 0;
    map.retain(|k, e| {
        if removed < n && (tier(k), e.expires) <= threshold {
            removed += 1;
            false
        } else {
            true
        }
    });
    removed
}

/// The lock, even if a panicking thread poisoned it: every critical section
/// leaves the map consistent (single inserts and removals), so the data is
/// still good.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure quoted in the module documentation.
    #[test]
    fn memory_per_key() {
        let key = "rcpt:ip:2001:db8:ffff::1234:5678"; // 32 bytes
        let slot = std::mem::size_of::<String>() + std::mem::size_of::<Entry>() + 1;
        assert_eq!(std::mem::size_of::<Entry>(), 56);
        // hashbrown keeps the table at most 7/8 full; the key's heap block
        // is rounded up to 16 bytes by the allocator.
        let per_key = slot * 8 / 7 + key.len().div_ceil(16) * 16;
        assert_eq!(per_key, 124, "{per_key} bytes per key");
    }

    #[test]
    fn evicts_the_soonest_to_expire() {
        let now = Instant::now();
        let mut map = HashMap::new();
        for i in 0..10u64 {
            let e = Entry {
                slot: Slot::Value(i),
                expires: now + Duration::from_secs(10 - i),
            };
            map.insert(format!("k{i}"), e);
        }
        assert_eq!(evict_soonest(&mut map, 3), 3);
        let mut left: Vec<_> = map.keys().cloned().collect();
        left.sort();
        assert_eq!(left, ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);
    }

    /// A flood of greylisting first sightings (any sender can create them)
    /// goes before counters, and bans go last, however soon they expire.
    #[test]
    fn bans_are_evicted_last_and_greylist_sightings_first() {
        let now = Instant::now();
        let mut map = HashMap::new();
        let value = |secs: u64| Entry {
            slot: Slot::Value(1),
            expires: now + Duration::from_secs(secs),
        };
        map.insert("ban-ip:192.0.2.0%2F24".to_owned(), value(5));
        map.insert("rcpt:ip:192.0.2.7".to_owned(), value(50));
        for i in 0..5 {
            map.insert(format!("grey:flood{i}"), value(3600));
        }
        assert_eq!(evict_soonest(&mut map, 5), 5);
        assert!(map.keys().all(|k| !k.starts_with("grey:")), "{map:?}");
        assert_eq!(evict_soonest(&mut map, 1), 1);
        assert!(map.contains_key("ban-ip:192.0.2.0%2F24"), "{map:?}");
        assert_eq!(map.len(), 1);
    }
}
