//! A bounded, TTL-respecting cache for `mail-auth`'s parsed DNS records
//! (SPF, DKIM key, MX, A/AAAA, PTR): `mail-auth` asks it before each lookup
//! and fills it with the answer's expiry.
//!
//! # Security
//! Bounded (`cache_entries`): a sender cannot grow it with random names.
//! When full, expired entries go first, then an arbitrary eighth of the
//! entries (cheap, and an attacker cannot pin entries by re-asking).
//! Entries never outlive the DNS TTL.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use mail_auth::ResolverCache;

/// The cache: key → (value, valid until).
pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A cache holding at most `capacity` entries (0 caches nothing).
    pub fn new(capacity: usize) -> Self {
        TtlCache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic while holding the lock leaves a consistent map (every
        // operation is one HashMap call): keep using it.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Entries held now (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.lock();
        match map.get(name) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                map.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let now = Instant::now();
        if self.capacity == 0 || valid_until <= now {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                let drop = (self.capacity / 8).max(1);
                let mut n = 0;
                map.retain(|_, _| {
                    n += 1;
                    n > drop
                });
            }
        }
        map.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_entries_are_not_returned_and_size_is_bounded() {
        let cache: TtlCache<Box<str>, u32> = TtlCache::new(16);
        let later = Instant::now() + Duration::from_mins(1);
        cache.insert("a".into(), 1, later);
        assert_eq!(cache.get("a"), Some(1));
        // Already expired: not stored.
        cache.insert("b".into(), 2, Instant::now());
        assert_eq!(cache.get("b"), None);
        for i in 0..1000 {
            cache.insert(format!("n{i}").into(), i, later);
            assert!(cache.len() <= 16);
        }
        assert!(cache.get("n999").is_some(), "the newest entry is kept");
        assert_eq!(cache.remove("n999"), Some(999));
        let none: TtlCache<Box<str>, u32> = TtlCache::new(0);
        none.insert("a".into(), 1, later);
        assert!(none.is_empty());
    }
}
