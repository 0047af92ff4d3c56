//! The login limiter: failed logins counted per client address (IPv6 by /64)
//! and per user name in fixed windows; past [`MAX_FAILURES`] in [`WINDOW`]
//! a login is refused with `429 Too Many Requests` and `Retry-After` before
//! any password is checked.
//!
//! # Security
//! Against password guessing (OWASP Authentication: account lockout /
//! throttling). Per-name limits stop a distributed guesser on one account; the
//! name limit locks out nobody for long (15 minutes) and a success clears it.
//! Both maps are bounded ([`MAX_ENTRIES`]; the oldest window goes first), so
//! random names cannot grow memory.
//!
//! # Standards
//! RFC 6585 §4 (429), RFC 9110 §10.2.3 (Retry-After).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sessions::Clock;

/// Failures allowed per window (per address, per name).
pub const MAX_FAILURES: u32 = 5;
/// The window.
pub const WINDOW: Duration = Duration::from_mins(15);
/// Entries per map at most.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Counter<K> {
    map: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn blocked(&mut self, k: &K, now: Instant) -> Option<Duration> {
        let w = self.map.get(k)?;
        let end = w.start + WINDOW;
        if now >= end {
            self.map.remove(k);
            return None;
        }
        (w.failures >= MAX_FAILURES).then(|| end - now)
    }

    /// Takes back one counted failure (the attempt succeeded).
    fn undo(&mut self, k: &K) {
        if let Some(w) = self.map.get_mut(k) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    fn fail(&mut self, k: K, now: Instant) {
        if let Some(w) = self.map.get_mut(&k)
            && now < w.start + WINDOW
        {
            w.failures = w.failures.saturating_add(1);
            return;
        }
        if self.map.len() >= MAX_ENTRIES {
            self.map.retain(|_, w| now < w.start + WINDOW);
            if self.map.len() >= MAX_ENTRIES
                && let Some(old) = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.start)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&old);
            }
        }
        self.map.insert(
            k,
            Window {
                start: now,
                failures: 1,
            },
        );
    }
}

/// Failed logins per address and per name.
#[derive(Debug)]
pub struct LoginLimiter {
    inner: Mutex<(Counter<IpAddr>, Counter<String>)>,
    clock: Clock,
}

/// The name as counted: lowercase, at most 64 bytes (longer names cannot
/// exist; this bounds each entry).
fn name_key(user: &str) -> String {
    let mut end = user.len().min(64);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_ascii_lowercase()
}

/// The address as counted: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4)
            } else {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
    }
}

impl LoginLimiter {
    /// Empty.
    pub fn new(clock: Clock) -> Self {
        Self {
            inner: Mutex::new((
                Counter {
                    map: HashMap::new(),
                },
                Counter {
                    map: HashMap::new(),
                },
            )),
            clock,
        }
    }

    /// `Some(wait)` when a login from `ip` as `user` must be refused now.
    pub fn check(&self, ip: IpAddr, user: &str) -> Option<Duration> {
        let now = self.clock.now();
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let a = g.0.blocked(&key(ip), now);
        let b = g.1.blocked(&name_key(user), now);
        a.max(b)
    }

    /// Starts a login attempt: refused (`Err(wait)`) when over the limit,
    /// else counted as a failure at once, in the same step — so parallel
    /// attempts cannot all pass the check before the first failure is
    /// counted (each costs an argon2 verification). [`Self::succeed`]
    /// takes the count back.
    pub fn begin(&self, ip: IpAddr, user: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let a = g.0.blocked(&key(ip), now);
        let b = g.1.blocked(&name_key(user), now);
        if let Some(wait) = a.max(b) {
            return Err(wait);
        }
        g.0.fail(key(ip), now);
        g.1.fail(name_key(user), now);
        Ok(())
    }

    /// Counts a failed login.
    pub fn fail(&self, ip: IpAddr, user: &str) {
        let now = self.clock.now();
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0.fail(key(ip), now);
        g.1.fail(name_key(user), now);
    }

    /// A successful login (begun with [`Self::begin`]): the address's
    /// count taken back by one, the name's cleared.
    pub fn succeed(&self, ip: IpAddr, user: &str) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0.undo(&key(ip));
        g.1.map.remove(&name_key(user));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn five_failures_then_wait() {
        let clock = Clock::manual();
        let l = LoginLimiter::new(clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(l.check(ip, "alice").is_none());
            l.fail(ip, "alice");
        }
        let wait = l.check(ip, "alice").unwrap();
        assert!(wait <= WINDOW && wait + Duration::from_secs(5) > WINDOW);
        // Another address guessing the same name is refused too; the first
        // address is refused for another name.
        assert!(l.check("198.51.100.7".parse().unwrap(), "ALICE").is_some());
        assert!(l.check(ip, "bob").is_some());
        // Same /64: same counter.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            l.fail(a, "x");
        }
        assert!(l.check("2001:db8::ffff".parse().unwrap(), "y").is_some());
        clock.advance(WINDOW);
        assert!(l.check(ip, "alice").is_none());
    }

    #[test]
    fn begin_counts_before_the_verification() {
        let l = LoginLimiter::new(Clock::manual());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // Parallel attempts: each begin counts, so only MAX_FAILURES start.
        let started = (0..40).filter(|_| l.begin(ip, "root").is_ok()).count();
        assert_eq!(started, MAX_FAILURES as usize);
        // A success takes its own count back.
        let l = LoginLimiter::new(Clock::manual());
        for _ in 0..10 {
            l.begin(ip, "alice").unwrap();
            l.succeed(ip, "alice");
        }
        assert!(l.check(ip, "alice").is_none());
    }

    #[test]
    fn bounded() {
        let l = LoginLimiter::new(Clock::manual());
        for i in 0..(MAX_ENTRIES + 10) {
            l.fail("192.0.2.1".parse().unwrap(), &format!("user{i}"));
        }
        assert!(l.inner.lock().unwrap().1.map.len() <= MAX_ENTRIES);
        assert_eq!(name_key(&"é".repeat(100)).len(), 64);
    }
}
