//! The SPF void-lookup limit (RFC 7208 §4.6.4: more than 2 DNS queries of
//! a check answered with NXDOMAIN or no records → `permerror`), which
//! `mail-auth` 0.13.3 does not enforce. We see its lookups through the
//! caches it is handed: it asks a cache before each query and inserts what
//! a query found, so a miss that is never followed by an insert (before the
//! next lookup starts) is a query that found nothing. [`Counting`] wraps our
//! shared caches for one `check_host()` and [`Tracker`] counts.
//!
//! Only the query a mechanism itself makes counts (`a`, `mx`, `ptr`,
//! `include`, `redirect`, and the domain's own record): the address lookups
//! of MX exchanges and PTR names are recognised by their number (the MX or
//! PTR answer says how many follow) and never counted, so a domain whose MX
//! hosts are IPv6-only is not penalised for IPv4 clients. `exists` is not
//! counted: `mail-auth` resolves it without telling the cache what it
//! found. Where the sequence is ambiguous the tracker counts less, never
//! more: a `permerror` from here is always a real one.
//!
//! # Security
//! A record of many names that do not exist costs the receiver queries and
//! is a known abuse pattern (RFC 7208 §11.1): the limit stops it after 3.
//!
//! # Standards
//! RFC 7208 §4.6.4 (void lookups), §5 (which mechanisms query DNS).

use std::borrow::Borrow;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use mail_auth::{MX, RecordSet, ResolverCache, Txt};

use super::cache::TtlCache;

/// Void lookups allowed per check (RFC 7208 §4.6.4 suggests 2).
pub const MAX_VOID_LOOKUPS: u32 = 2;

/// Which cache a lookup went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Txt,
    Mx,
    V4,
    V6,
    Ptr,
}

#[derive(Debug, Default)]
struct State {
    /// A mechanism's own query that missed the cache and has not been
    /// answered with records yet.
    pending: Option<Kind>,
    /// Address lookups still to come for the exchanges / names of the last
    /// MX / PTR answer (not counted).
    secondary_left: usize,
    voids: u32,
}

/// Counts the void lookups of one check.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    state: Mutex<State>,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few integer stores: a poisoned lock holds a usable state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn on_get(&self, kind: Kind, hit: Option<(usize, bool)>) {
        let mut s = self.lock();
        if let Some(previous) = s.pending.take() {
            if previous == Kind::V4 && kind == Kind::V6 {
                // `exists` asks both address caches, then resolves without
                // telling the cache: outcome unknown, not counted.
                return;
            }
            s.voids += 1;
        }
        if matches!(kind, Kind::V4 | Kind::V6) && s.secondary_left > 0 {
            s.secondary_left -= 1;
            return;
        }
        match hit {
            Some((targets, empty)) => {
                if empty {
                    s.voids += 1;
                }
                if matches!(kind, Kind::Mx | Kind::Ptr) {
                    s.secondary_left = targets;
                }
            }
            None => s.pending = Some(kind),
        }
    }

    fn on_insert(&self, kind: Kind, targets: usize, empty: bool) {
        let mut s = self.lock();
        if s.pending == Some(kind) {
            s.pending = None;
            if empty {
                s.voids += 1;
            }
        }
        if matches!(kind, Kind::Mx | Kind::Ptr) {
            s.secondary_left = targets;
        }
    }

    /// Void lookups of the finished check. The last unanswered query counts
    /// unless the check ended on it (a temporary error), or it was the
    /// `exp=` lookup after a fail.
    pub(crate) fn voids(&self, result: mail_auth::SpfResult) -> u32 {
        let s = self.lock();
        let last = match (s.pending, result) {
            (None, _)
            | (Some(_), mail_auth::SpfResult::TempError)
            | (Some(Kind::Txt), mail_auth::SpfResult::Fail) => 0,
            (Some(_), _) => 1,
        };
        s.voids + last
    }
}

/// What the tracker needs to know about a cached value.
pub(crate) trait Targets {
    /// How many address lookups follow this answer (MX exchanges, PTR names).
    fn targets(&self) -> usize {
        0
    }
    /// Whether the answer has no records.
    fn empty(&self) -> bool {
        false
    }
}

impl Targets for Txt {}

impl Targets for RecordSet<MX> {
    fn targets(&self) -> usize {
        // mail-auth looks up at most 10 exchanges (§4.6.4), then permerror.
        self.rrset
            .iter()
            .map(|mx| mx.exchanges.len())
            .sum::<usize>()
            .min(11)
    }
    fn empty(&self) -> bool {
        self.rrset.is_empty()
    }
}

impl Targets for RecordSet<Box<str>> {
    fn targets(&self) -> usize {
        self.rrset.len()
    }
    fn empty(&self) -> bool {
        self.rrset.is_empty()
    }
}

impl Targets for RecordSet<Ipv4Addr> {
    fn empty(&self) -> bool {
        self.rrset.is_empty()
    }
}

impl Targets for RecordSet<Ipv6Addr> {
    fn empty(&self) -> bool {
        self.rrset.is_empty()
    }
}

/// A shared cache seen through a tracker.
pub(crate) struct Counting<'a, K, V> {
    inner: &'a TtlCache<K, V>,
    tracker: &'a Tracker,
    kind: Kind,
}

impl<'a, K, V> Counting<'a, K, V> {
    pub(crate) fn new(inner: &'a TtlCache<K, V>, tracker: &'a Tracker, kind: Kind) -> Self {
        Counting {
            inner,
            tracker,
            kind,
        }
    }
}

impl<K: Hash + Eq, V: Clone + Targets> ResolverCache<K, V> for Counting<'_, K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let value = self.inner.get(name);
        self.tracker
            .on_get(self.kind, value.as_ref().map(|v| (v.targets(), v.empty())));
        value
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.remove(name)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        self.tracker
            .on_insert(self.kind, value.targets(), value.empty());
        self.inner.insert(key, value, valid_until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::SpfResult;

    #[test]
    fn misses_without_answers_count() {
        let t = Tracker::default();
        // a:n1 (void), a:n2 (void), a:ok (answer), ip4 → pass.
        t.on_get(Kind::V4, None);
        t.on_get(Kind::V4, None);
        t.on_get(Kind::V4, None);
        t.on_insert(Kind::V4, 0, false);
        assert_eq!(t.voids(SpfResult::Pass), 2);
    }

    #[test]
    fn mx_exchange_lookups_do_not_count() {
        let t = Tracker::default();
        t.on_get(Kind::Txt, None);
        t.on_insert(Kind::Txt, 0, false);
        t.on_get(Kind::Mx, None);
        t.on_insert(Kind::Mx, 3, false);
        // Three exchanges without A records.
        for _ in 0..3 {
            t.on_get(Kind::V4, None);
        }
        // Then `a:missing` (void) and -all.
        t.on_get(Kind::V4, None);
        assert_eq!(t.voids(SpfResult::Fail), 1);
        // Cached MX answer: the same.
        let t = Tracker::default();
        t.on_get(Kind::Mx, Some((2, false)));
        t.on_get(Kind::V4, None);
        t.on_get(Kind::V4, None);
        assert_eq!(t.voids(SpfResult::Neutral), 0);
    }

    #[test]
    fn exists_and_temporary_errors_do_not_count() {
        let t = Tracker::default();
        t.on_get(Kind::V4, None);
        t.on_get(Kind::V6, None);
        t.on_get(Kind::V4, None);
        t.on_get(Kind::V6, None);
        assert_eq!(t.voids(SpfResult::Fail), 0);
        let t = Tracker::default();
        t.on_get(Kind::Txt, None);
        assert_eq!(t.voids(SpfResult::TempError), 0);
        assert_eq!(t.voids(SpfResult::None), 1);
    }
}
